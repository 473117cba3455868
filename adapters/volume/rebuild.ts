import { LiveSet } from './accounting.ts';
import { indexPath, listVolumes, unfinishedVolume, volumePath } from './data-dir.ts';
import { writeFileAtomic } from './fs-util.ts';
import { INDEX_ENTRY_SIZE, indexHeader, writeEntry } from './index-file.ts';
import { lockDirectory } from './lock.ts';
import { NeedleKind } from './needle.ts';
import { PackedNeedleMap } from './packed-needle-map.ts';
import { scanVolume } from './scan.ts';
import { rebuildPath } from './temp-files.ts';
import { VolumeFile } from './volume-file.ts';

export interface RebuildProgress {
  volume: number;
  scannedBytes: number;
  totalBytes: number;
}

export interface RebuildProblem {
  volume: number;
  offset: number;
  message: string;
}

export interface RebuildReport {
  volumes: number;
  /** Valid needles read (files and tombstones). */
  needles: number;
  /** Files live at the end: stored and never deleted or replaced. */
  live: number;
  /** Keys deleted or replaced (tombstones). */
  deleted: number;
  /** Damaged regions stepped over, torn tails included. */
  corrupt: number;
  /** Bytes of volume files scanned. */
  bytes: number;
  durationMs: number;
  problems: RebuildProblem[];
}

const ENTRIES_PER_WRITE = 65536;

/**
 * Rebuilds every index file from the volume files alone (the volumes are the truth). Each index
 * is written whole to a temp file, synced and renamed over the old one. Damaged needles are
 * reported and skipped; a torn tail is reported and left for the next start-up to cut.
 */
export async function rebuildIndexes(options: {
  dir: string;
  onProgress?: (progress: RebuildProgress) => void;
}): Promise<RebuildReport> {
  const { dir, onProgress } = options;
  const started = performance.now();
  const ids = await listVolumes(dir);
  const lock = await lockDirectory(dir);
  // An unfinished newest volume holds nothing; start-up removes it, reload leaves it be.
  const unfinished = await unfinishedVolume(dir, ids).catch(async (err) => {
    await lock.release();
    throw err;
  });
  if (unfinished !== undefined) ids.pop();
  const live = new LiveSet(new PackedNeedleMap());
  const report: RebuildReport = {
    volumes: ids.length,
    needles: 0,
    live: 0,
    deleted: 0,
    corrupt: 0,
    bytes: 0,
    durationMs: 0,
    problems: [],
  };
  try {
    for (const id of ids) {
      const file = await VolumeFile.open(volumePath(dir, id), id, 'r');
      try {
        await rebuildIndex(dir, file, live, report, onProgress);
      } finally {
        await file.close();
      }
    }
  } finally {
    await lock.release();
  }
  report.live = live.map.size;
  report.durationMs = performance.now() - started;
  return report;
}

async function rebuildIndex(
  dir: string,
  file: VolumeFile,
  live: LiveSet,
  report: RebuildReport,
  onProgress: ((progress: RebuildProgress) => void) | undefined,
): Promise<void> {
  let batch = Buffer.allocUnsafe(ENTRIES_PER_WRITE * INDEX_ENTRY_SIZE);
  let count = 0;
  const writes: Buffer[] = [indexHeader(file.nonce)];
  let torn = false;
  const dataEnd = await scanVolume(
    file,
    (event) => {
      if (event.type === 'needle') {
        const isFile = event.header.kind === NeedleKind.file;
        const entry = {
          key: event.header.key,
          offset: event.offset,
          length: isFile ? event.length : 0,
        };
        live.apply(file.id, entry.key, entry.offset, entry.length);
        report.needles++;
        if (!isFile) report.deleted++;
        writeEntry(batch, count * INDEX_ENTRY_SIZE, entry);
        if (++count === ENTRIES_PER_WRITE) {
          writes.push(batch);
          batch = Buffer.allocUnsafe(ENTRIES_PER_WRITE * INDEX_ENTRY_SIZE);
          count = 0;
        }
      } else if (event.type !== 'void') {
        report.corrupt++;
        if (event.type === 'torn') torn = true;
        const what =
          event.type === 'torn' ? 'torn tail, cut at the next start' : 'damaged needle, skipped';
        report.problems.push({
          volume: file.id,
          offset: event.offset,
          message: `${what}: ${event.length} bytes (${event.problem}${event.key ? `, key ${event.key}` : ''})`,
        });
      }
    },
    {
      onProgress: (offset) =>
        onProgress?.({ volume: file.id, scannedBytes: offset, totalBytes: file.size }),
    },
  );
  writes.push(batch.subarray(0, count * INDEX_ENTRY_SIZE));
  const path = indexPath(dir, file.id);
  await writeFileAtomic(path, rebuildPath(path), writes);
  // Zeros written ahead of the appends are no data; a torn tail was scanned like the rest.
  report.bytes += torn ? file.size : dataEnd;
}
