import { rm } from 'node:fs/promises';
import { indexPath, volumePath } from './data-dir.ts';
import { writeFileSynced } from './fs-util.ts';
import { encodeEntries, type IndexEntry, indexHeader } from './index-file.ts';
import { NeedleKind, tombstone } from './needle.ts';
import { scanVolume } from './scan.ts';
import { compactionPath } from './temp-files.ts';
import { SUPERBLOCK_SIZE, VolumeFile } from './volume-file.ts';

/** Where a kept needle was and where the copy put it. */
export interface Move {
  key: number;
  from: number;
  to: number;
  length: number;
}

export interface CompactCopy {
  /** The compacted volume, open, synced, still under its temp name. */
  file: VolumeFile;
  tempVolume: string;
  tempIndex: string;
  /** File needles copied; the caller re-points the keys that are still live. */
  moves: Move[];
  /** Needles in the copy (files and tombstones). */
  needles: number;
  /** Damaged regions of the source that were left out. */
  damaged: number;
}

const COPY_BLOCK = 4 * 1024 * 1024;

/**
 * Copies a volume without its dead needles into `N.dat.compact` (and its index into
 * `N.idx.compact`), both synced. Kept: file needles `isLive` says are live, and tombstones for
 * keys whose file needle is not in this volume (it may lie in an older one), plus a tombstone for
 * the highest key the volume ever held, so the next key stays above it. The source is only read.
 */
export async function copyLiveNeedles(
  dir: string,
  source: VolumeFile,
  isLive: (key: number, offset: number) => boolean,
): Promise<CompactCopy> {
  const regions: Array<{ offset: number; length: number; key: number; file: boolean }> = [];
  const droppedKeys = new Set<number>();
  let maxKey = 0;
  let damaged = 0;
  await scanVolume(source, (event) => {
    if (event.type === 'corrupt' || event.type === 'torn') damaged++;
    if (event.type !== 'needle') return;
    const { key, kind } = event.header;
    if (key > maxKey) maxKey = key;
    if (kind === NeedleKind.file) {
      if (isLive(key, event.offset)) regions.push({ ...event, key, file: true });
      else droppedKeys.add(key);
    } else if (!droppedKeys.has(key)) {
      regions.push({ ...event, key, file: false });
    }
  });

  const tempVolume = compactionPath(volumePath(dir, source.id));
  const tempIndex = compactionPath(indexPath(dir, source.id));
  await rm(tempVolume, { force: true });
  const file = await VolumeFile.create(tempVolume, source.id);
  try {
    const moves: Move[] = [];
    const entries: IndexEntry[] = [];
    const reader = new BlockCache(source);
    const writer = new BufferedAppender(file, SUPERBLOCK_SIZE);
    let maxKept = 0;
    for (const region of regions) {
      const to = writer.position;
      await writer.append(await reader.slice(region.offset, region.length));
      entries.push({ key: region.key, offset: to, length: region.file ? region.length : 0 });
      if (region.file)
        moves.push({ key: region.key, from: region.offset, to, length: region.length });
      if (region.key > maxKept) maxKept = region.key;
    }
    const at = await writer.flush();
    if (maxKept < maxKey) {
      const marker = tombstone(maxKey);
      await file.write([marker], at);
      entries.push({ key: maxKey, offset: at, length: 0 });
    }
    await file.datasync();
    await writeFileSynced(tempIndex, [indexHeader(file.nonce), encodeEntries(entries)]);
    return { file, tempVolume, tempIndex, moves, needles: entries.length, damaged };
  } catch (err) {
    await file.close();
    await rm(tempVolume, { force: true });
    await rm(tempIndex, { force: true });
    throw err;
  }
}

/** Reads a volume in large blocks, handing out the needles inside them. */
class BlockCache {
  readonly #file: VolumeFile;
  #start = 0;
  #block: Buffer = Buffer.alloc(0);

  constructor(file: VolumeFile) {
    this.#file = file;
  }

  async slice(offset: number, length: number): Promise<Buffer> {
    if (offset < this.#start || offset + length > this.#start + this.#block.byteLength) {
      this.#block = await this.#file.read(offset, Math.max(length, COPY_BLOCK));
      this.#start = offset;
      if (this.#block.byteLength < length)
        throw new Error(`volume ended inside a needle at ${offset}`);
    }
    return this.#block.subarray(offset - this.#start, offset - this.#start + length);
  }
}

/** Appends to a file in large writes. Copies what it is given: sources are reused blocks. */
class BufferedAppender {
  readonly #file: VolumeFile;
  readonly #buffer = Buffer.allocUnsafe(COPY_BLOCK);
  #used = 0;
  #written: number;

  constructor(file: VolumeFile, position: number) {
    this.#file = file;
    this.#written = position;
  }

  get position(): number {
    return this.#written + this.#used;
  }

  async append(bytes: Buffer): Promise<void> {
    if (this.#used + bytes.byteLength > COPY_BLOCK) await this.flush();
    if (bytes.byteLength > COPY_BLOCK) {
      await this.#file.write([bytes], this.#written);
      this.#written += bytes.byteLength;
      return;
    }
    bytes.copy(this.#buffer, this.#used);
    this.#used += bytes.byteLength;
  }

  /** Writes what is buffered; returns the end of the data written. */
  async flush(): Promise<number> {
    if (this.#used > 0) {
      await this.#file.write([this.#buffer.subarray(0, this.#used)], this.#written);
      this.#written += this.#used;
      this.#used = 0;
    }
    return this.#written;
  }
}
