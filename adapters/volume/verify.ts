import { readFile } from 'node:fs/promises';
import { StoreError } from '../../storage/index.ts';
import { indexPath, unfinishedVolume, volumeIds, volumePath } from './data-dir.ts';
import { INDEX_ENTRY_SIZE, INDEX_HEADER_SIZE, indexHeader, readEntry } from './index-file.ts';
import {
  FOOTER_SIZE,
  HEADER_SIZE,
  NeedleKind,
  type NeedleProblem,
  readHeader,
  TOMBSTONE_LENGTH,
} from './needle.ts';
import { scanVolume } from './scan.ts';
import { compactionPath } from './temp-files.ts';
import { VolumeFile } from './volume-file.ts';

/**
 * `verify`: checks a data directory without changing anything. Every needle of every volume is
 * read and its checksums checked (the scan that start-up and `reload` use), and each index file
 * is compared with what its volume holds.
 *
 * Read-only by construction: volumes are opened with `r`, index files are read whole with
 * `readFile`, the directory is listed but never created, and the lock is not taken, so it may run
 * while a server owns the directory. It reads each index before its volume: the server writes an
 * index entry only after the needle it describes, so everything the index read describes is in the
 * volume read after it.
 *
 * What counts as a problem (exit status 1 in the CLI) and what is only noted:
 * - Problems: a needle whose checksum fails or bytes that are not a needle, unless they are an
 *   unfinished write (below); an index entry that points past the end of its volume, out of
 *   volume order, or at anything but a valid needle of its key, kind and length; a valid needle
 *   inside what the index covers without an entry; an index of another volume; a key stored twice;
 *   a volume whose superblock is damaged.
 * - Notes: an index that lags behind its volume (normal: it is synced at stop and on
 *   `DELETE /sync`), a missing or cut-short index file, a torn tail (an append cut short by a
 *   crash, cut off at the next start), and unfinished writes: space that was reserved but never
 *   written (all zero), or a needle whose trailing checksum was never written (zero). Writes in
 *   progress on a running server look like that too. An index entry pointing into any of them is
 *   a problem all the same: with `--fsync always` an entry is written only once its needle is on
 *   disk.
 */
export interface VerifyProblem {
  volume: number;
  /** Where in the volume file; 0 for a problem of the whole volume or its index. */
  offset: number;
  /** The key concerned, when it is known (from a needle header or an index entry). */
  key?: number;
  message: string;
}

export type VerifyNote = VerifyProblem;

export interface VerifyProgress {
  volume: number;
  scannedBytes: number;
  totalBytes: number;
}

export interface VerifyReport {
  volumes: number;
  /** Valid needles read (files and tombstones). */
  needles: number;
  /** Files live after replaying every volume in order. */
  live: number;
  /** Keys deleted or replaced (tombstones). */
  deleted: number;
  /** Entries read from the index files. */
  indexEntries: number;
  /** Bytes of volume files read. */
  bytes: number;
  durationMs: number;
  problems: VerifyProblem[];
  notes: VerifyNote[];
}

interface FoundNeedle {
  key: number;
  kind: NeedleKind;
  length: number;
}

interface Region {
  type: 'corrupt' | 'torn';
  offset: number;
  length: number;
  problem: NeedleProblem;
  key?: number;
}

/** Bytes read at a time when checking whether a damaged region was never written. */
const ZERO_CHECK_CHUNK = 1024 * 1024;

export async function verifyDataDir(options: {
  dir: string;
  onProgress?: (progress: VerifyProgress) => void;
}): Promise<VerifyReport> {
  const { dir, onProgress } = options;
  const started = performance.now();
  const ids = await volumeIds(dir);
  const report: VerifyReport = {
    volumes: ids.length,
    needles: 0,
    live: 0,
    deleted: 0,
    indexEntries: 0,
    bytes: 0,
    durationMs: 0,
    problems: [],
    notes: [],
  };
  const live = new Set<number>();
  /** Where each key's file needle was found, to catch a key stored twice. */
  const stored = new Map<number, { volume: number; offset: number }>();

  // A newest volume shorter than a superblock is a creation a crash cut short: start-up drops it.
  const unfinished = await unfinishedVolume(dir, ids);
  for (const id of ids) {
    if (id === unfinished) {
      report.notes.push({
        volume: id,
        offset: 0,
        message:
          'shorter than its superblock: a volume whose creation a crash cut short, holding nothing; the next start removes it',
      });
      continue;
    }
    const index = await readIndexBytes(indexPath(dir, id));
    const compactionIndex = await readIndexBytes(compactionPath(indexPath(dir, id)));
    let file: VolumeFile;
    try {
      file = await VolumeFile.open(volumePath(dir, id), id, 'r');
    } catch (err) {
      const message = err instanceof StoreError ? err.message : `cannot read: ${String(err)}`;
      report.problems.push({ volume: id, offset: 0, message });
      continue;
    }
    try {
      const checker = new VolumeCheck(id, file, report);
      const bytesRead = await checker.scan(onProgress);
      checker.compareIndex(index, compactionIndex);
      await checker.judgeRegions();
      for (const [offset, needle] of checker.needles) {
        report.needles++;
        if (needle.kind === NeedleKind.tombstone) {
          report.deleted++;
          live.delete(needle.key);
          continue;
        }
        const earlier = stored.get(needle.key);
        if (earlier) {
          report.problems.push({
            volume: id,
            offset,
            key: needle.key,
            message: `key ${needle.key} is stored twice: also in volume ${earlier.volume} at offset ${earlier.offset}`,
          });
        } else {
          stored.set(needle.key, { volume: id, offset });
        }
        live.add(needle.key);
      }
      report.bytes += bytesRead;
    } finally {
      await file.close();
    }
  }
  report.live = live.size;
  report.durationMs = performance.now() - started;
  return report;
}

/** An index file's bytes as they are on disk, for comparison with its volume. */
type IndexBytes =
  | { state: 'missing' }
  | { state: 'short'; bytes: number }
  | { state: 'present'; header: Buffer; entries: Buffer; tornBytes: number };

async function readIndexBytes(path: string): Promise<IndexBytes> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: 'missing' };
    throw err;
  }
  if (bytes.byteLength < INDEX_HEADER_SIZE) return { state: 'short', bytes: bytes.byteLength };
  const body = bytes.byteLength - INDEX_HEADER_SIZE;
  const whole = body - (body % INDEX_ENTRY_SIZE);
  return {
    state: 'present',
    header: bytes.subarray(0, INDEX_HEADER_SIZE),
    entries: bytes.subarray(INDEX_HEADER_SIZE, INDEX_HEADER_SIZE + whole),
    tornBytes: body - whole,
  };
}

/** The checks of one volume and its index. */
class VolumeCheck {
  readonly #id: number;
  readonly #file: VolumeFile;
  readonly #report: VerifyReport;
  /** Valid needles by offset, in volume order. */
  readonly needles = new Map<number, FoundNeedle>();
  readonly #regions: Region[] = [];
  /** Offsets of damaged regions an index entry points at (already reported as a problem). */
  readonly #indexedRegions = new Set<number>();

  constructor(id: number, file: VolumeFile, report: VerifyReport) {
    this.#id = id;
    this.#file = file;
    this.#report = report;
  }

  /** Returns the bytes read, not counting zeros written ahead of the appends. */
  async scan(onProgress?: (progress: VerifyProgress) => void): Promise<number> {
    const totalBytes = this.#file.size;
    const dataEnd = await scanVolume(
      this.#file,
      (event) => {
        if (event.type === 'needle') {
          const { key, kind } = event.header;
          this.needles.set(event.offset, { key, kind, length: event.length });
        } else if (event.type !== 'void') {
          const { type, offset, length, problem, key } = event;
          this.#regions.push({ type, offset, length, problem, ...(key ? { key } : {}) });
        }
      },
      onProgress
        ? {
            onProgress: (offset) =>
              onProgress({ volume: this.#id, scannedBytes: offset, totalBytes }),
          }
        : {},
    );
    return this.#regions.at(-1)?.type === 'torn' ? totalBytes : dataEnd;
  }

  /**
   * `compactionIndex` is `N.idx.compact`: a compaction killed between its two renames leaves the
   * new volume beside the old index, and its own index beside both; start-up rebuilds the index.
   */
  compareIndex(index: IndexBytes, compactionIndex: IndexBytes): void {
    if (index.state === 'missing') {
      this.#note(0, 'no index file: the next start rebuilds it by scanning the volume');
      return;
    }
    if (index.state === 'short') {
      this.#note(
        0,
        `the index file is cut short (${index.bytes} bytes): the next start rebuilds it`,
      );
      return;
    }
    if (!index.header.equals(indexHeader(this.#file.nonce))) {
      const ours = index.header.subarray(0, 8).equals(indexHeader(this.#file.nonce).subarray(0, 8));
      if (
        ours &&
        compactionIndex.state === 'present' &&
        compactionIndex.header.equals(indexHeader(this.#file.nonce))
      ) {
        this.#note(
          0,
          "a compaction stopped between its two renames: the index is the old volume's; the next start rebuilds it and removes the leftover copy",
        );
        return;
      }
      this.#problem(
        0,
        ours
          ? 'the index file belongs to another volume (its nonce differs); the next start ignores it and rebuilds it'
          : 'the index file is not an index file (bad magic); the next start ignores it and rebuilds it',
      );
      return;
    }
    if (index.tornBytes > 0) {
      this.#note(0, `the index ends with a partial entry (${index.tornBytes} bytes), ignored`);
    }

    const { entries } = index;
    const listed = new Set<number>();
    let covered = 0;
    let previousEnd = 0;
    for (let at = 0, n = 0; at < entries.byteLength; at += INDEX_ENTRY_SIZE, n++) {
      this.#report.indexEntries++;
      const { key, offset, length } = readEntry(entries, at);
      listed.add(offset);
      const end = offset + (length === 0 ? TOMBSTONE_LENGTH : length);
      const what = `index entry ${n} (${length === 0 ? 'tombstone' : 'file'} ${key}, ${length === 0 ? TOMBSTONE_LENGTH : length} bytes)`;
      if (offset < previousEnd) {
        this.#problem(
          offset,
          `${what} is out of volume order (the previous entry ends at ${previousEnd})`,
          key,
        );
      }
      previousEnd = Math.max(previousEnd, end);
      if (end > this.#file.size) {
        this.#problem(
          offset,
          `${what} points past the end of the volume (${this.#file.size} bytes)`,
          key,
        );
        continue;
      }
      covered = Math.max(covered, end);
      const needle = this.needles.get(offset);
      if (!needle) {
        const region = this.#regions.find(
          (r) => r.offset <= offset && offset < r.offset + r.length,
        );
        if (region?.offset === offset) this.#indexedRegions.add(offset);
        this.#problem(
          offset,
          region
            ? `${what} points at damaged bytes (${region.type === 'torn' ? 'torn tail' : 'damaged region'} of ${region.length} bytes at offset ${region.offset}: ${region.problem}); reads of this key fail`
            : `${what} points at no needle (no needle starts at this offset)`,
          key,
        );
        continue;
      }
      const kind = length === 0 ? NeedleKind.tombstone : NeedleKind.file;
      if (
        needle.key !== key ||
        needle.kind !== kind ||
        (length !== 0 && needle.length !== length)
      ) {
        const found = `${needle.kind === NeedleKind.file ? 'file' : 'tombstone'} ${needle.key}, ${needle.length} bytes`;
        this.#problem(offset, `${what} does not match the needle there (${found})`, key);
      }
    }

    let lag = 0;
    for (const [offset, needle] of this.needles) {
      if (offset >= covered) lag++;
      else if (!listed.has(offset)) {
        this.#problem(
          offset,
          `the index has no entry for the ${needle.kind === NeedleKind.file ? 'file' : 'tombstone'} of key ${needle.key}, though it covers this offset`,
          needle.key,
        );
      }
    }
    if (lag > 0) {
      this.#note(covered, `index lags by ${lag} entries (the next start appends them)`);
    }
  }

  /** Damaged regions: problems, unless they are what an unfinished write leaves. */
  async judgeRegions(): Promise<void> {
    for (const region of this.#regions) {
      if (this.#indexedRegions.has(region.offset)) continue; // reported with its index entry
      const key = region.key;
      if (region.type === 'torn') {
        this.#note(
          region.offset,
          `torn tail of ${region.length} bytes (${region.problem}): an unfinished write, cut off at the next start`,
          key,
        );
      } else if (await this.#unfinished(region)) {
        this.#note(
          region.offset,
          key === undefined
            ? `${region.length} bytes never written (all zero): space of an unfinished write, skipped`
            : `unfinished write of key ${key} (${region.length} bytes, its checksum was never written), skipped`,
          key,
        );
      } else {
        this.#problem(
          region.offset,
          key === undefined
            ? `${region.length} damaged bytes (${region.problem}): no valid needle starts here`
            : `the needle of key ${key} is damaged (${region.problem}, ${region.length} bytes)`,
          key,
        );
      }
    }
  }

  /**
   * Whether a region is what a write cut short leaves: bytes never written read as zero (a hole,
   * or the tail of a needle whose write stopped early, so its trailing checksum is zero).
   */
  async #unfinished(region: Region): Promise<boolean> {
    if (region.key !== undefined) {
      const header = readHeader(await this.#file.read(region.offset, HEADER_SIZE));
      if (typeof header === 'string') return false;
      const at = region.offset + HEADER_SIZE + header.contentTypeLength + header.dataSize;
      const checksum = await this.#file.read(at, FOOTER_SIZE);
      return checksum.byteLength === FOOTER_SIZE && checksum.readUInt32LE(0) === 0;
    }
    for (let done = 0; done < region.length; done += ZERO_CHECK_CHUNK) {
      const part = await this.#file.read(
        region.offset + done,
        Math.min(ZERO_CHECK_CHUNK, region.length - done),
      );
      if (part.some((byte) => byte !== 0)) return false;
    }
    return true;
  }

  #problem(offset: number, message: string, key?: number): void {
    this.#report.problems.push({ volume: this.#id, offset, ...(key ? { key } : {}), message });
  }

  #note(offset: number, message: string, key?: number): void {
    this.#report.notes.push({ volume: this.#id, offset, ...(key ? { key } : {}), message });
  }
}
