import { rename } from 'node:fs/promises';
import type { CompactReport } from '../../storage/index.ts';
import { mostlyGarbage } from './accounting.ts';
import { copyLiveNeedles } from './compact.ts';
import { indexPath, volumePath } from './data-dir.ts';
import { syncDirectory } from './fs-util.ts';
import { deferred } from './group-commit.ts';
import { IndexWriter } from './index-file.ts';
import { rollOver } from './store-append.ts';
import { diskError } from './store-errors.ts';
import { assertWritable, type StoreState, volumeById } from './store-state.ts';
import type { Volume } from './volume.ts';

/**
 * Rewrites volumes without their dead needles and holes, one at a time, while reads and writes
 * go on: every volume with garbage, or the one named. The caller runs one compaction at a time.
 */
export async function compactVolumes(state: StoreState, id?: number): Promise<CompactReport[]> {
  assertWritable(state);
  const targets =
    id === undefined
      ? [...state.volumes.values()].filter((v) => v.counts.garbageBytes > 0)
      : [volumeById(state, id)];
  const reports: CompactReport[] = [];
  for (const volume of targets) {
    const report = await compactVolume(state, volume);
    state.telemetry.compacted(report);
    reports.push(report);
  }
  return reports;
}

/**
 * The writable volume is first closed to appends (a new one takes them), unless it is mostly
 * garbage: then it is compacted in place, appends waiting for the copy, which is short (at most
 * half the volume). The copy is synced under a temp name and renamed over the volume; a crash
 * before the rename leaves the old volume (the temp files are removed at start-up), after it
 * the new one (its old index no longer matches and is rebuilt by scanning).
 */
async function compactVolume(state: StoreState, volume: Volume): Promise<CompactReport> {
  const started = performance.now();
  if (volume === state.writable && mostlyGarbage(volume, state.streaming.pendingIn(volume))) {
    const resume = deferred();
    state.appendsPaused = resume.promise;
    try {
      return await copyWithoutGarbage(state, volume, started, true);
    } finally {
      state.appendsPaused = undefined;
      resume.resolve();
    }
  }
  if (volume === state.writable) await rollOver(state);
  return copyWithoutGarbage(state, volume, started, false);
}

/** The copy and swap of a volume that takes no appends; writes in progress are waited for. */
async function copyWithoutGarbage(
  state: StoreState,
  volume: Volume,
  started: number,
  inPlace: boolean,
): Promise<CompactReport> {
  const { dir } = state.settings;
  await volume.settled();
  const bytesBefore = volume.tail; // not the zeros written ahead of it
  const { live } = state;
  const copy = await copyLiveNeedles(dir, volume.file, (key, offset) =>
    live.holds(key, volume.id, offset),
  );
  let index: IndexWriter;
  try {
    await rename(copy.tempVolume, volumePath(dir, volume.id));
    await rename(copy.tempIndex, indexPath(dir, volume.id));
    await syncDirectory(copy.tempVolume);
    index = await IndexWriter.open(indexPath(dir, volume.id), copy.file.nonce, copy.needles, false);
  } catch (err) {
    await copy.file.close();
    throw diskError(err);
  }
  // From here to the swap nothing awaits: a read sees the old location with the old file, or
  // the new location with the new file. Keys deleted during the copy keep their tombstone
  // elsewhere; their copied needle is garbage in the new volume.
  live.recount(volume.id, copy.moves);
  const old = volume.replaceFile(copy.file, index);
  await old.index.close().catch(() => {});
  old.file.retire();
  return {
    volume: volume.id,
    bytesBefore,
    bytesAfter: copy.file.size,
    reclaimedBytes: bytesBefore - copy.file.size,
    needles: copy.needles,
    inPlace,
    durationMs: performance.now() - started,
  };
}
