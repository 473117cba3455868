import { rm } from 'node:fs/promises';
import { LiveSet } from './accounting.ts';
import { listVolumes, unfinishedVolume, volumePath } from './data-dir.ts';
import type { FlushObserver } from './group-commit.ts';
import { type LoadReport, loadVolume } from './load.ts';
import { type DirectoryLock, lockDirectory } from './lock.ts';
import { PackedNeedleMap } from './packed-needle-map.ts';
import { isMarkedReadOnly } from './read-only-marker.ts';
import { removeLeftovers } from './temp-files.ts';
import type { Volume } from './volume.ts';
import { VolumeFile } from './volume-file.ts';

/** A data directory opened for serving. */
export interface OpenedDir {
  lock: DirectoryLock;
  live: LiveSet;
  volumes: Map<number, Volume>;
  /** The newest volume, which takes appends. */
  writable: Volume;
}

/**
 * Start-up: takes the directory's lock, clears what a crash left (an unfinished newest volume,
 * compaction and spool temp files), loads every volume in id order (index, then catch-up scan,
 * torn tail cut) and logs what it found. An empty directory gets volume 1. On failure everything
 * opened is closed and the lock released.
 */
export async function openDataDir(
  dir: string,
  log: (line: string) => void,
  flushes: FlushObserver,
): Promise<OpenedDir> {
  const ids = await listVolumes(dir);
  const lock = await lockDirectory(dir);
  const unfinished = await unfinishedVolume(dir, ids).catch(async (err) => {
    await lock.release();
    throw err;
  });
  if (unfinished !== undefined) {
    await rm(volumePath(dir, unfinished));
    ids.pop();
    log(
      `volume ${unfinished}: removed an unfinished, empty volume file (a crash while creating it)`,
    );
  }
  const live = new LiveSet(new PackedNeedleMap());
  const volumes = new Map<number, Volume>();
  try {
    for (const name of await removeLeftovers(dir)) log(`removed ${name}, left by a crash`);
    for (const id of ids) {
      const file = await VolumeFile.open(volumePath(dir, id), id);
      const { volume, report } = await loadVolume(dir, file, live, flushes);
      volumes.set(id, volume);
      volume.readOnly = await isMarkedReadOnly(dir, id);
      logLoad(log, id, report);
    }
    if (volumes.size === 0) {
      const file = await VolumeFile.create(volumePath(dir, 1), 1);
      volumes.set(1, (await loadVolume(dir, file, live, flushes)).volume);
    }
  } catch (err) {
    await Promise.all([...volumes.values()].map((v) => closeVolume(v).catch(() => {})));
    await lock.release();
    throw err;
  }
  const writable = volumes.get(Math.max(...volumes.keys())) as Volume;
  return { lock, live, volumes, writable };
}

export async function closeVolume(volume: Volume): Promise<void> {
  await volume.seal(); // a clean stop leaves no zeros past the last needle
  await volume.index.close();
  await volume.file.close();
}

function logLoad(log: (line: string) => void, id: number, report: LoadReport): void {
  if (report.indexRebuilt) log(`volume ${id}: no usable index, rebuilt it by scanning`);
  if (report.indexCut) {
    log(`volume ${id}: index trusted for ${report.indexed} entries, the rest rebuilt by scanning`);
  }
  for (const { offset, length, problem } of report.damaged) {
    log(`volume ${id}: ${length} damaged bytes at offset ${offset} (${problem}), skipped`);
  }
  if (report.tornBytes > 0) {
    log(`volume ${id}: cut a torn tail of ${report.tornBytes} bytes (an unfinished write)`);
  }
}
