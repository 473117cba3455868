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

/**
 * Reads an index file made for the volume with this nonce. Returns the entries' bytes (a torn
 * last entry dropped), or undefined when there is no usable index (absent, foreign, damaged).
 */
export async function loadIndex(path: string, nonce: Buffer): Promise<Buffer | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const bytes = await handle.readFile();
    if (bytes.byteLength < INDEX_HEADER_SIZE) return undefined;
    if (!bytes.subarray(0, INDEX_HEADER_SIZE).equals(indexHeader(nonce))) return undefined;
    const whole = Math.floor((bytes.byteLength - INDEX_HEADER_SIZE) / INDEX_ENTRY_SIZE);
    return bytes.subarray(INDEX_HEADER_SIZE, INDEX_HEADER_SIZE + whole * INDEX_ENTRY_SIZE);
  } finally {
    await handle.close();
  }
}

/**
 * Appends entries to an index file, one write at a time, in the order given. Entries are written
 * after the data they describe is durable; the index itself is synced on `sync` and at close.
 */
export class IndexWriter {
  readonly #handle: FileHandle;
  #position: number;
  /** Entries not yet written, in order; kept across failures so a later write can catch up. */
  #pending: Buffer[] = [];
  #writing: Promise<void> | undefined;
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

  /** Queues entries; they are written after everything appended before them. */
  append(entries: Buffer): void {
    this.#pending.push(entries);
    void this.#write();
  }

  /**
   * Writes what is pending, one write at a time, at the end of what is written. A failed write
   * (disk full) keeps the unwritten rest pending and is retried by the next append or sync: the
   * volume stays the truth, and until then start-up just scans a little more.
   */
  #write(): Promise<void> {
    this.#writing ??= (async () => {
      try {
        while (this.#pending.length > 0) {
          const chunk = Buffer.concat(this.#pending.splice(0));
          let written = 0;
          try {
            while (written < chunk.byteLength) {
              const { bytesWritten } = await this.#handle.write(
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
            throw err;
          }
        }
        this.#failure = undefined;
      } catch (err) {
        this.#failure = err;
      } finally {
        this.#writing = undefined;
      }
    })();
    return this.#writing;
  }

  /** Writes what is pending and makes the index durable; rejects if that is not possible now. */
  async sync(): Promise<void> {
    await this.#writing;
    await this.#write();
    if (this.#failure !== undefined) throw this.#failure;
    await this.#handle.sync();
  }

  /** Writes what it can; an index left behind only means a longer scan at the next start. */
  async close(): Promise<void> {
    await this.#writing;
    await this.#write();
    await this.#handle.sync().catch(() => {});
    await this.#handle.close();
  }
}
