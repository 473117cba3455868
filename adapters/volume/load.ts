import type { LiveSet } from './accounting.ts';
import { indexPath } from './data-dir.ts';
import type { FlushObserver } from './group-commit.ts';
import { encodeEntries, type IndexEntry, IndexWriter, scanIndex } from './index-file.ts';
import { NeedleKind, TOMBSTONE_LENGTH } from './needle.ts';
import { scanVolume } from './scan.ts';
import { Volume } from './volume.ts';
import { SUPERBLOCK_SIZE, type VolumeFile } from './volume-file.ts';

export interface LoadReport {
  /** Entries taken from the index file. */
  indexed: number;
  /** Needles found by scanning past what the index covered. */
  scanned: number;
  /** The index file was missing or foreign: the whole volume was scanned. */
  indexRebuilt: boolean;
  /**
   * The index held an entry out of volume order or past the volume's end: it was trusted up to
   * there, cut, and the volume scanned from the end of what it covered.
   */
  indexCut: boolean;
  /** Damaged regions stepped over, and a torn tail cut off (bytes), for the log. */
  damaged: Array<{ offset: number; length: number; problem: string }>;
  tornBytes: number;
}

/**
 * Opens a volume for serving: applies its index file up to its first implausible entry, then
 * scans the volume from the end of what the index covers (an index that lags is normal) and
 * appends the missing entries. A torn tail (an append cut short by a crash) is cut off so that
 * new appends follow valid data.
 */
export async function loadVolume(
  dir: string,
  file: VolumeFile,
  live: LiveSet,
  flushes: FlushObserver,
): Promise<{ volume: Volume; report: LoadReport }> {
  const path = indexPath(dir, file.id);
  // Entries must be in volume order and inside the file. Applying them as they are checked is
  // sound: a prefix of the index is an index that lags, which the scan below completes.
  let covered = SUPERBLOCK_SIZE;
  const volumeSize = file.size;
  const read = await scanIndex(path, file.nonce, (key, offset, length) => {
    const end = offset + (length === 0 ? TOMBSTONE_LENGTH : length);
    if (offset < covered || end > volumeSize) return false;
    if (offset > covered) live.hole(file.id, offset - covered);
    covered = end;
    live.apply(file.id, key, offset, length);
    return true;
  });
  const report: LoadReport = {
    indexed: read?.accepted ?? 0,
    scanned: 0,
    indexRebuilt: read === undefined,
    indexCut: read?.complete === false,
    damaged: [],
    tornBytes: 0,
  };

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
        live.apply(file.id, entry.key, entry.offset, entry.length);
        found.push(entry);
      } else if (event.type === 'void') {
        live.hole(file.id, event.length);
      } else {
        if (event.type === 'torn') report.tornBytes = event.length;
        else {
          report.damaged.push(event);
          live.hole(file.id, event.length); // a torn tail is cut off below, a damaged region stays
        }
        // A damaged needle whose header survived still used its key: never hand it out again.
        if (event.key !== undefined) live.sawKey(event.key);
      }
    },
    { from: covered },
  );
  if (validEnd < file.size) await file.truncate(validEnd);
  report.scanned = found.length;
  // Needles the index or the scan found may never have been flushed (their writer died before
  // its answer, and `reload` only reads). Once served they must stay, and their keys must never
  // be handed out again. On a clean volume this flush costs next to nothing.
  await file.datasync();

  const index = await IndexWriter.open(path, file.nonce, report.indexed, report.indexRebuilt);
  if (found.length > 0) index.append(encodeEntries(found));
  return { volume: new Volume(file, index, live.countsOf(file.id), flushes), report };
}
