import { crc32 } from 'node:zlib';
import {
  FOOTER_SIZE,
  HEADER_SIZE,
  NEEDLE_ALIGNMENT,
  NEEDLE_MAGIC,
  type NeedleHeader,
  NeedleKind,
  type NeedleProblem,
  needleLength,
  readHeader,
} from './needle.ts';
import { SUPERBLOCK_SIZE, type VolumeFile } from './volume-file.ts';

/** What a scan finds, in volume order. Regions are [offset, offset + length). */
export type ScanEvent =
  /** A whole, verified file or tombstone needle. */
  | { type: 'needle'; offset: number; length: number; header: NeedleHeader }
  /** Space of an upload that failed: skipped silently. */
  | { type: 'void'; offset: number; length: number }
  /** Damaged bytes with a valid needle after them: reported and stepped over. */
  | { type: 'corrupt'; offset: number; length: number; problem: NeedleProblem; key?: number }
  /** Damaged or incomplete bytes up to the end of the file: a torn write, to be cut off. */
  | { type: 'torn'; offset: number; length: number; problem: NeedleProblem; key?: number };

export interface ScanOptions {
  /** Where to start (a needle boundary); default: just after the superblock. */
  from?: number;
  /** Called every few megabytes and at the end, with the offset reached. */
  onProgress?: (offset: number) => void;
}

const BLOCK_SIZE = 8 * 1024 * 1024;

/**
 * Reads a volume from `from` to its end, verifying every needle's checksums, and reports each
 * needle and each damaged region to `onEvent`, synchronously and in order (a callback, not an
 * async iterator: start-up scans millions of needles). Returns where the valid data ends: the end
 * of the file, the start of a torn tail, or the start of a zero tail (zeros written ahead of the
 * appends: from a needle boundary where no needle starts, every byte to the end is zero).
 */
export async function scanVolume(
  volume: VolumeFile,
  onEvent: (event: ScanEvent) => void,
  options: ScanOptions = {},
): Promise<number> {
  const reader = new BlockReader(volume);
  const end = volume.size;
  let position = options.from ?? SUPERBLOCK_SIZE;
  let reported = position;
  while (position < end) {
    const found = await readNeedleAt(reader, position, end);
    if (found.type === 'damaged') {
      // A needle's magic is never zero, so zeros to the end hide no needle: the volume ends here.
      if (await allZero(reader, position, end)) {
        options.onProgress?.(end);
        return position;
      }
      const next = await findNextHeader(reader, position + NEEDLE_ALIGNMENT, end);
      if (next === undefined) {
        onEvent({ type: 'torn', offset: position, length: end - position, problem: found.problem });
        return position;
      }
      onEvent({
        type: 'corrupt',
        offset: position,
        length: next - position,
        problem: found.problem,
      });
      position = next;
    } else {
      onEvent(found);
      position += found.length;
    }
    if (position - reported >= BLOCK_SIZE) {
      options.onProgress?.(position);
      reported = position;
    }
  }
  options.onProgress?.(end);
  return end;
}

type Found = Exclude<ScanEvent, { type: 'torn' }> | { type: 'damaged'; problem: NeedleProblem };

async function readNeedleAt(reader: BlockReader, offset: number, end: number): Promise<Found> {
  if (end - offset < HEADER_SIZE) return { type: 'damaged', problem: 'truncated' };
  const header = readHeader(await reader.view(offset, HEADER_SIZE));
  if (typeof header === 'string') return { type: 'damaged', problem: header };
  const length = needleLength(header.contentTypeLength, header.dataSize);
  // The header checksum makes the length trustworthy: a needle past the end is a torn append.
  if (offset + length > end) return { type: 'damaged', problem: 'truncated' };
  if (header.kind === NeedleKind.void) return { type: 'void', offset, length };
  const checked = HEADER_SIZE + header.contentTypeLength + header.dataSize;
  const expected = (await reader.view(offset + checked, FOOTER_SIZE)).readUInt32LE(0);
  if ((await reader.checksum(offset, checked)) !== expected) {
    // Whole but damaged: step over it by its length, the needles after it are unharmed.
    return { type: 'corrupt', offset, length, problem: 'bad_checksum', key: header.key };
  }
  return { type: 'needle', offset, length, header };
}

/** The next 8-byte-aligned offset at which a valid needle header starts, if any. */
async function findNextHeader(
  reader: BlockReader,
  from: number,
  end: number,
): Promise<number | undefined> {
  for (let offset = from; offset + HEADER_SIZE <= end; offset += NEEDLE_ALIGNMENT) {
    const block = await reader.view(offset, HEADER_SIZE);
    if (block.readUInt32LE(0) === NEEDLE_MAGIC && typeof readHeader(block) !== 'string') {
      return offset;
    }
  }
  return undefined;
}

const ZEROS = Buffer.alloc(64 * 1024);

/** Whether every byte of [from, end) is zero. */
async function allZero(reader: BlockReader, from: number, end: number): Promise<boolean> {
  for (let offset = from; offset < end; ) {
    const block = await reader.view(offset, Math.min(end - offset, ZEROS.byteLength));
    if (block.byteLength === 0) return true; // the file shrank under us: nothing more to see
    if (!block.equals(ZEROS.subarray(0, block.byteLength))) return false;
    offset += block.byteLength;
  }
  return true;
}

/** Sequential reads through one reused buffer. */
class BlockReader {
  readonly #volume: VolumeFile;
  readonly #buffer = Buffer.allocUnsafe(BLOCK_SIZE);
  #start = 0;
  #length = 0;

  constructor(volume: VolumeFile) {
    this.#volume = volume;
  }

  /** `length` bytes at `offset` (at most a block), valid until the next call. */
  async view(offset: number, length: number): Promise<Buffer> {
    if (offset < this.#start || offset + length > this.#start + this.#length) {
      this.#length = await this.#volume.readInto(this.#buffer, offset);
      this.#start = offset;
    }
    const at = offset - this.#start;
    return this.#buffer.subarray(at, Math.min(at + length, this.#length));
  }

  /** crc32 of `length` bytes at `offset`, read block by block. */
  async checksum(offset: number, length: number): Promise<number> {
    let crc = 0;
    for (let done = 0; done < length; ) {
      const part = Math.min(length - done, BLOCK_SIZE);
      const block = await this.view(offset + done, part);
      if (block.byteLength === 0) return -1; // the file shrank under us: cannot match
      crc = crc32(block, crc);
      done += block.byteLength;
    }
    return crc;
  }
}
