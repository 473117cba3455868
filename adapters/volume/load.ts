import { indexPath } from './data-dir.ts';
import {
  encodeEntries,
  INDEX_ENTRY_SIZE,
  type IndexEntry,
  IndexWriter,
  loadIndex,
  readEntry,
} from './index-file.ts';
import { NeedleKind, TOMBSTONE_LENGTH } from './needle.ts';
import type { NeedleMap } from './needle-map.ts';
import { scanVolume } from './scan.ts';
import { Volume, type VolumeCounts } from './volume.ts';
import { SUPERBLOCK_SIZE, type VolumeFile } from './volume-file.ts';

/**
 * The live set being rebuilt, volume after volume: the needle map, each volume's counts, and the
 * highest key seen (the next key must be above every key ever handed out, deleted ones included).
 */
export class LiveSet {
  readonly map: NeedleMap;
  readonly counts = new Map<number, VolumeCounts>();
  maxKey = 0;

  constructor(map: NeedleMap) {
    this.map = map;
  }

  countsOf(volume: number): VolumeCounts {
    let counts = this.counts.get(volume);
    if (!counts) {
      counts = { liveNeedles: 0, liveBytes: 0, deletedNeedles: 0 };
      this.counts.set(volume, counts);
    }
    return counts;
  }

  /** Applies one index entry of `volume` (a file needle, or a tombstone when length is 0). */
  apply(volume: number, entry: IndexEntry): void {
    if (entry.key > this.maxKey) this.maxKey = entry.key;
    if (entry.length === 0) {
      this.retire(entry.key);
      return;
    }
    this.map.set(entry.key, { volume, offset: entry.offset, length: entry.length });
    const counts = this.countsOf(volume);
    counts.liveNeedles++;
    counts.liveBytes += entry.length;
  }

  retire(key: number): void {
    const location = this.map.get(key);
    if (!location) return;
    this.map.delete(key);
    const counts = this.countsOf(location.volume);
    counts.liveNeedles--;
    counts.liveBytes -= location.length;
    counts.deletedNeedles++;
  }
}

export interface LoadReport {
  /** Entries taken from the index file. */
  indexed: number;
  /** Needles found by scanning past what the index covered. */
  scanned: number;
  /** The index file was missing, foreign or inconsistent with the volume. */
  indexRebuilt: boolean;
  /** Damaged regions stepped over, and a torn tail cut off (bytes), for the log. */
  damaged: Array<{ offset: number; length: number; problem: string }>;
  tornBytes: number;
}

/**
 * Opens a volume for serving: applies its index file, then scans the volume from the end of
 * what the index covers (an index that lags is normal) and appends the missing entries. A torn
 * tail (an append cut short by a crash) is cut off so that new appends follow valid data.
 */
export async function loadVolume(
  dir: string,
  file: VolumeFile,
  live: LiveSet,
): Promise<{ volume: Volume; report: LoadReport }> {
  const path = indexPath(dir, file.id);
  const entries = await loadIndex(path, file.nonce);
  const trusted = entries && coveredEnd(entries, file.size);
  const report: LoadReport = {
    indexed: 0,
    scanned: 0,
    indexRebuilt: trusted === undefined,
    damaged: [],
    tornBytes: 0,
  };
  if (entries && trusted !== undefined) {
    for (let at = 0; at < entries.byteLength; at += INDEX_ENTRY_SIZE) {
      live.apply(file.id, readEntry(entries, at));
    }
    report.indexed = entries.byteLength / INDEX_ENTRY_SIZE;
  }

  const found: IndexEntry[] = [];
  const validEnd = await scanVolume(
    file,
    (event) => {
      if (event.type === 'needle') {
        const { key, kind } = event.header;
        const entry = {
          key,
          offset: event.offset,
          length: kind === NeedleKind.file ? event.length : 0,
        };
        live.apply(file.id, entry);
        found.push(entry);
      } else if (event.type === 'corrupt' || event.type === 'torn') {
        if (event.type === 'torn') report.tornBytes = event.length;
        else report.damaged.push(event);
        // A damaged needle whose header survived still used its key: never hand it out again.
        if (event.key !== undefined && event.key > live.maxKey) live.maxKey = event.key;
      }
    },
    { from: trusted ?? SUPERBLOCK_SIZE },
  );
  if (validEnd < file.size) await file.truncate(validEnd);
  report.scanned = found.length;
  // Needles the index or the scan found may never have been flushed (their writer died before
  // its answer, and `reload` only reads). Once served they must stay, and their keys must never
  // be handed out again. On a clean volume this flush costs next to nothing.
  await file.datasync();

  const index = await IndexWriter.open(path, file.nonce, report.indexed, report.indexRebuilt);
  if (found.length > 0) index.append(encodeEntries(found));
  return { volume: new Volume(file, index, live.countsOf(file.id)), report };
}

/**
 * Where the index's coverage of the volume ends, or undefined if the index cannot be trusted:
 * entries must be in volume order and inside the file.
 */
function coveredEnd(entries: Buffer, volumeSize: number): number | undefined {
  let end = SUPERBLOCK_SIZE;
  for (let at = 0; at < entries.byteLength; at += INDEX_ENTRY_SIZE) {
    const { offset, length } = readEntry(entries, at);
    const needleEnd = offset + (length === 0 ? TOMBSTONE_LENGTH : length);
    if (offset < end || needleEnd > volumeSize) return undefined;
    end = needleEnd;
  }
  return end;
}
