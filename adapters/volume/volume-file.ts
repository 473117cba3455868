import { randomBytes } from 'node:crypto';
import { readSync, writevSync } from 'node:fs';
import { type FileHandle, link, open, statfs, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import { StoreError } from '../../storage/index.ts';
import { syncDirectory } from './fs-util.ts';
import { readBuffer } from './read-slab.ts';
import { creationPath } from './temp-files.ts';

/**
 * A volume file: a superblock, then needles appended one after another. This module only moves
 * bytes; what the bytes mean is the needle codec's business.
 *
 * Superblock (32 bytes): magic "HAYSTACK", format version (u32), volume id (u32), a random 8-byte
 * nonce that ties the volume's index file to it, crc32 of the first 24 bytes, 4 zero bytes.
 */
export const SUPERBLOCK_SIZE = 32;
const MAGIC = Buffer.from('HAYSTACK', 'latin1');
const FORMAT_VERSION = 1;

/** Zeros ahead of the tail are written a piece at a time: see `extendWithZeros`. */
export const ZERO_PIECE = 1024 * 1024;
const ZEROS = Buffer.alloc(ZERO_PIECE);

/** Zeros being written: writes into [from, to) wait until they are. */
interface Zeroing {
  from: number;
  to: number;
  done: Promise<unknown>;
}

export class VolumeFile {
  readonly id: number;
  /** Identifies this volume's life; an index file made for another volume is not trusted. */
  readonly nonce: Buffer;
  readonly #handle: FileHandle;
  /** The directory: a compaction's copy is renamed, but stays in it. */
  readonly #dir: string;
  /**
   * Bytes in the file as this process last left it, zeros written ahead of the tail included
   * (reads never look past it).
   */
  size: number;
  /** Where the writes issued so far end, some maybe still under way: zeros go past it only. */
  #issuedEnd: number;
  #zeroing: Zeroing | undefined;
  /** Reads in progress; a file replaced by compaction is closed once none is left. */
  #readers = 0;
  #retired = false;

  private constructor(id: number, nonce: Buffer, handle: FileHandle, size: number, path: string) {
    this.id = id;
    this.nonce = nonce;
    this.#handle = handle;
    this.#dir = dirname(path);
    this.size = size;
    this.#issuedEnd = size;
  }

  /**
   * Creates a new, empty volume: the superblock is written and synced under a temp name, which is
   * then linked to `path` (failing if it exists) and the directory synced. A crash leaves either
   * no volume or a whole one, never a file too short to be a volume.
   */
  static async create(path: string, id: number): Promise<VolumeFile> {
    const temp = creationPath(path);
    const handle = await open(temp, 'w+');
    try {
      const nonce = randomBytes(8);
      const superblock = Buffer.alloc(SUPERBLOCK_SIZE);
      MAGIC.copy(superblock, 0);
      superblock.writeUInt32LE(FORMAT_VERSION, 8);
      superblock.writeUInt32LE(id, 12);
      nonce.copy(superblock, 16);
      superblock.writeUInt32LE(crc32(superblock.subarray(0, 24)), 24);
      await handle.write(superblock, 0, SUPERBLOCK_SIZE, 0);
      await handle.datasync();
      await link(temp, path);
      await unlink(temp);
      await syncDirectory(path);
      return new VolumeFile(id, nonce, handle, SUPERBLOCK_SIZE, path);
    } catch (err) {
      await handle.close();
      await unlink(temp).catch(() => {});
      throw err;
    }
  }

  /** Opens an existing volume and checks its superblock. */
  static async open(path: string, id: number, mode: 'r' | 'r+' = 'r+'): Promise<VolumeFile> {
    const handle = await open(path, mode);
    try {
      const { size } = await handle.stat();
      const superblock = Buffer.alloc(SUPERBLOCK_SIZE);
      const { bytesRead } = await handle.read(superblock, 0, SUPERBLOCK_SIZE, 0);
      const problem = checkSuperblock(superblock, bytesRead, id);
      if (problem) throw new StoreError('corrupt', `volume ${path}: ${problem}`);
      return new VolumeFile(id, Buffer.from(superblock.subarray(16, 24)), handle, size, path);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  /** Reads `length` bytes at `position`, into `target` (at least that long) when given. */
  async read(position: number, length: number, target?: Buffer): Promise<Buffer> {
    const buffer = target ?? Buffer.allocUnsafe(length);
    this.retain();
    try {
      const { bytesRead } = await this.#handle.read(buffer, 0, length, position);
      return bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead);
    } finally {
      this.release();
    }
  }

  /** Keeps the file open for a read that spans several calls (a streamed download). */
  retain(): void {
    this.#readers++;
  }

  release(): void {
    this.#readers--;
    if (this.#retired && this.#readers === 0) void this.#handle.close().catch(() => {});
  }

  /** The file was replaced (compaction): close it once the reads still using it are done. */
  retire(): void {
    this.#retired = true;
    this.#readers++;
    this.release();
  }

  /**
   * A small read done on the calling thread. Handing a few kilobytes to libuv's thread pool costs
   * more than reading them from the page cache (two thread switches, and on one core a context
   * switch each way), so small needles are read the way nginx reads files by default: blocking.
   * The cost is that a read the page cache misses holds the event loop for one disk read.
   * The bytes go into `target` (at least `length` long) when given, else into a slab slice.
   */
  readNow(position: number, length: number, target?: Buffer): Buffer {
    const buffer = target ?? readBuffer(length);
    const bytesRead = readSync(this.#handle.fd, buffer, 0, length, position);
    return bytesRead === buffer.byteLength ? buffer : buffer.subarray(0, bytesRead);
  }

  /** Reads into a caller's buffer (scans reuse one); returns the bytes read. */
  async readInto(target: Buffer, position: number, length = target.byteLength): Promise<number> {
    const { bytesRead } = await this.#handle.read(target, 0, length, position);
    return bytesRead;
  }

  /** Writes all of `buffers` at `position` (positioned, so concurrent appends may overlap). */
  async write(buffers: readonly Buffer[], position: number): Promise<void> {
    let at = position;
    let pending = buffers.filter((b) => b.byteLength > 0);
    const end = position + pending.reduce((total, b) => total + b.byteLength, 0);
    if (end > this.#issuedEnd) this.#issuedEnd = end;
    // Zeros landing after these bytes would erase them.
    const zeroing = this.#zeroing;
    if (zeroing && position < zeroing.to && end > zeroing.from) await zeroing.done;
    while (pending.length > 0) {
      const { bytesWritten } = await this.#handle.writev(pending, at);
      at += bytesWritten;
      pending = skipBytes(pending, bytesWritten);
    }
    if (at > this.size) this.size = at;
  }

  /** Bytes free for this process on the volume's filesystem. */
  async freeBytes(): Promise<number> {
    const { bavail, bsize } = await statfs(this.#dir);
    return bavail * bsize;
  }

  /** Where the bytes written or being written end: past it only zeros written ahead. */
  get writtenEnd(): number {
    return this.#issuedEnd;
  }

  /** Whether a write of [start, end) has to wait for zeros being written (`write` waits). */
  zeroingOverlaps(start: number, end: number): boolean {
    const zeroing = this.#zeroing;
    return zeroing !== undefined && start < zeroing.to && end > zeroing.from;
  }

  /**
   * `write` on the calling thread, for small batches that only reach the page cache. The caller
   * checks `zeroingOverlaps` first: this cannot wait.
   */
  writeNow(buffers: readonly Buffer[], position: number): void {
    let at = position;
    let pending = buffers.filter((b) => b.byteLength > 0);
    while (pending.length > 0) {
      const bytesWritten = writevSync(this.#handle.fd, pending, at);
      at += bytesWritten;
      pending = skipBytes(pending, bytesWritten);
    }
    if (at > this.size) this.size = at;
    if (at > this.#issuedEnd) this.#issuedEnd = at;
  }

  /**
   * Writes zeros from the end of everything written or being written towards `to`, at most
   * `ZERO_PIECE` bytes, and returns how many it wrote (0: nothing left below `to`). The caller
   * flushes after each piece: that flush commits the file's new size, and later flushes of data
   * written over the zeros commit data only.
   */
  async extendWithZeros(to: number): Promise<number> {
    const from = Math.max(this.size, this.#issuedEnd);
    const end = Math.min(to, from + ZERO_PIECE);
    if (end <= from) return 0;
    const done = this.#handle.write(ZEROS, 0, end - from, from);
    this.#zeroing = { from, to: end, done: done.catch(() => {}) };
    let written: number;
    try {
      // Short on a filesystem that is nearly full; the next call meets ENOSPC.
      written = (await done).bytesWritten;
    } finally {
      this.#zeroing = undefined;
    }
    if (from + written > this.size) this.size = from + written;
    return written;
  }

  async datasync(): Promise<void> {
    await this.#handle.datasync();
  }

  /** Cuts the file (a torn tail found at start-up) and makes the cut durable. */
  async truncate(length: number): Promise<void> {
    await this.cut(length);
    await this.#handle.datasync();
  }

  /**
   * Cuts the zeros written ahead off a volume that takes no more appends. Not flushed: zeros
   * past the last needle are the end of the volume whether the cut reaches the disk or not.
   */
  async cut(length: number): Promise<void> {
    await this.#handle.truncate(length);
    this.size = length;
    this.#issuedEnd = length;
  }

  async close(): Promise<void> {
    await this.#handle.close();
  }
}

function checkSuperblock(block: Buffer, bytesRead: number, id: number): string | undefined {
  if (bytesRead < SUPERBLOCK_SIZE) return `shorter than its ${SUPERBLOCK_SIZE}-byte superblock`;
  if (!block.subarray(0, 8).equals(MAGIC)) return 'not a volume file (bad magic)';
  if (block.readUInt32LE(24) !== crc32(block.subarray(0, 24))) return 'damaged superblock';
  const version = block.readUInt32LE(8);
  if (version !== FORMAT_VERSION) return `unknown format version ${version}`;
  const storedId = block.readUInt32LE(12);
  if (storedId !== id) return `superblock says volume ${storedId}, file name says ${id}`;
  return undefined;
}

/** What is left of `buffers` after the first `count` bytes were written. */
function skipBytes(buffers: Buffer[], count: number): Buffer[] {
  let left = count;
  let index = 0;
  while (index < buffers.length) {
    const buffer = buffers[index] as Buffer;
    if (left < buffer.byteLength) break;
    left -= buffer.byteLength;
    index++;
  }
  const rest = buffers.slice(index);
  if (left > 0 && rest[0]) rest[0] = rest[0].subarray(left);
  return rest;
}
