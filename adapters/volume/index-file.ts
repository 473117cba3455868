import { writeSync } from 'node:fs';
import { type FileHandle, open, stat } from 'node:fs/promises';
import { NEEDLE_ALIGNMENT } from './needle.ts';

/**
 * The index file (`N.idx`) of volume N: a header tying it to the volume, then one 16-byte entry
 * per needle, in the order of the needles in the volume:
 *
 *   key (u64) | offset / 8 (u32) | length / 8 (u32, 0 for a tombstone)
 *
 * It only makes start-up fast: it may lag behind the volume (start-up scans the rest) and can
 * always be rebuilt from the volume. Header (16 bytes): magic "HSTKIDX1", the volume's nonce.
 */
export const INDEX_HEADER_SIZE = 16;
export const INDEX_ENTRY_SIZE = 16;
const MAGIC = Buffer.from('HSTKIDX1', 'latin1');
const TWO_32 = 2 ** 32;
/** Offsets and lengths are stored in 8-byte units in a u32: a volume addresses 32 GiB. */
export const MAX_VOLUME_BYTES = TWO_32 * NEEDLE_ALIGNMENT;

export interface IndexEntry {
  key: number;
  offset: number;
  /** Bytes of the needle; 0 marks a tombstone (the key was deleted or replaced). */
  length: number;
}

export function indexHeader(nonce: Buffer): Buffer {
  return Buffer.concat([MAGIC, nonce]);
}

export function writeEntry(target: Buffer, at: number, entry: IndexEntry): void {
  target.writeUInt32LE(entry.key % TWO_32, at);
  target.writeUInt32LE(Math.floor(entry.key / TWO_32), at + 4);
  target.writeUInt32LE(entry.offset / NEEDLE_ALIGNMENT, at + 8);
  target.writeUInt32LE(entry.length / NEEDLE_ALIGNMENT, at + 12);
}

export function encodeEntries(entries: readonly IndexEntry[]): Buffer {
  const out = Buffer.allocUnsafe(entries.length * INDEX_ENTRY_SIZE);
  entries.forEach((entry, i) => {
    writeEntry(out, i * INDEX_ENTRY_SIZE, entry);
  });
  return out;
}

export function readEntry(source: Buffer, at: number): IndexEntry {
  return {
    key: source.readUInt32LE(at + 4) * TWO_32 + source.readUInt32LE(at),
    offset: source.readUInt32LE(at + 8) * NEEDLE_ALIGNMENT,
    length: source.readUInt32LE(at + 12) * NEEDLE_ALIGNMENT,
  };
}

/** Index bytes read at a time at start-up: big enough for sequential speed, a whole number of entries. */
const READ_BLOCK = 8 * 1024 * 1024;

export interface IndexScan {
  /** Entries `accept` took, from the first. */
  accepted: number;
  /** False when `accept` refused an entry: the entries from there on were not read. */
  complete: boolean;
}

/**
 * Scans the index file made for the volume with this nonce, block by block through one buffer,
 * handing each entry to `accept` (offset and length in bytes, length 0 for a tombstone) until it
 * refuses one. No object per entry: at 10M entries, start-up time is this loop. Returns undefined
 * when there is no usable index (absent, too short, foreign). A torn last entry is ignored.
 */
export async function scanIndex(
  path: string,
  nonce: Buffer,
  accept: (key: number, offset: number, length: number) => boolean,
): Promise<IndexScan | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const header = Buffer.alloc(INDEX_HEADER_SIZE);
    const { bytesRead } = await handle.read(header, 0, INDEX_HEADER_SIZE, 0);
    if (bytesRead < INDEX_HEADER_SIZE || !header.equals(indexHeader(nonce))) return undefined;

    const block = Buffer.allocUnsafe(READ_BLOCK);
    const view = new DataView(block.buffer, block.byteOffset, block.byteLength);
    let position = INDEX_HEADER_SIZE;
    let carried = 0; // bytes of a partial entry kept from the previous block
    let accepted = 0;
    for (;;) {
      const { bytesRead } = await handle.read(block, carried, READ_BLOCK - carried, position);
      position += bytesRead;
      const available = carried + bytesRead;
      const whole = available - (available % INDEX_ENTRY_SIZE);
      for (let at = 0; at < whole; at += INDEX_ENTRY_SIZE) {
        const key = view.getUint32(at + 4, true) * TWO_32 + view.getUint32(at, true);
        const offset = view.getUint32(at + 8, true) * NEEDLE_ALIGNMENT;
        const length = view.getUint32(at + 12, true) * NEEDLE_ALIGNMENT;
        if (!accept(key, offset, length)) return { accepted, complete: false };
        accepted++;
      }
      if (bytesRead === 0) return { accepted, complete: true };
      carried = available - whole;
      block.copy(block, 0, whole, available);
    }
  } finally {
    await handle.close();
  }
}

/**
 * Appends entries to an index file, in the order given. Entries are written after the data they
 * describe is durable; the index itself is synced on `sync` and at close. Writes are done on the
 * calling thread: a few entries reach the page cache faster than a trip through libuv's thread
 * pool, which on a busy core costs two context switches per batch of writes.
 */
export class IndexWriter {
  readonly #handle: FileHandle;
  #position: number;
  /** Entries not yet written, in order; kept across failures so a later write can catch up. */
  #pending: Buffer[] = [];
  #writeScheduled = false;
  #closed = false;
  #failure: unknown;

  private constructor(handle: FileHandle, position: number) {
    this.#handle = handle;
    this.#position = position;
  }

  /**
   * Opens the index for appending after `validEntries` entries, cutting anything past them (a
   * torn entry, or entries the caller did not trust); writes a fresh header when `fresh`.
   */
  static async open(
    path: string,
    nonce: Buffer,
    validEntries: number,
    fresh: boolean,
  ): Promise<IndexWriter> {
    const handle = await open(path, fresh ? 'w' : 'r+');
    try {
      const position = INDEX_HEADER_SIZE + validEntries * INDEX_ENTRY_SIZE;
      if (fresh) {
        await handle.write(indexHeader(nonce), 0, INDEX_HEADER_SIZE, 0);
      } else if ((await stat(path)).size !== position) {
        await handle.truncate(position);
      }
      return new IndexWriter(handle, position);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /**
   * Queues entries behind everything appended before them. They are written at the end of this
   * turn of the event loop, so that the writes completed in one turn cost one system call.
   */
  append(entries: Buffer): void {
    this.#pending.push(entries);
    if (this.#writeScheduled) return;
    this.#writeScheduled = true;
    setImmediate(() => {
      this.#writeScheduled = false;
      this.#writePending();
    });
  }

  /**
   * Writes what is pending at the end of what is written. A failed write (disk full) keeps the
   * unwritten rest pending, to be retried by the next append or sync: the volume stays the
   * truth, and until then start-up just scans a little more.
   */
  #writePending(): void {
    // Written by descriptor: once closed, the number may already name another file.
    if (this.#closed) return;
    while (this.#pending.length > 0) {
      const chunk = Buffer.concat(this.#pending.splice(0));
      let written = 0;
      try {
        while (written < chunk.byteLength) {
          const bytesWritten = writeSync(
            this.#handle.fd,
            chunk,
            written,
            chunk.byteLength - written,
            this.#position,
          );
          written += bytesWritten;
          this.#position += bytesWritten;
        }
      } catch (err) {
        this.#pending.unshift(chunk.subarray(written)); // ahead of entries queued since
        this.#failure = err;
        return;
      }
    }
    this.#failure = undefined;
  }

  /** Writes what is pending and makes the index durable; rejects if that is not possible now. */
  async sync(): Promise<void> {
    this.#writePending();
    if (this.#failure !== undefined) throw this.#failure;
    await this.#handle.sync();
  }

  /** Writes what it can; an index left behind only means a longer scan at the next start. */
  async close(): Promise<void> {
    this.#writePending();
    this.#closed = true;
    await this.#handle.sync().catch(() => {});
    await this.#handle.close();
  }
}
