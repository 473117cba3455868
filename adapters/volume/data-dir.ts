import { mkdir, readdir, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SPOOL_FILE } from './spool.ts';

/** Volume N lives in `N.dat`, its index in `N.idx`. */
export function volumePath(dir: string, id: number): string {
  return join(dir, `${id}.dat`);
}

export function indexPath(dir: string, id: number): string {
  return join(dir, `${id}.idx`);
}

/** Where a compaction of volume `id` writes its copy, before renaming it over the volume. */
export function compactionPaths(dir: string, id: number): { volume: string; index: string } {
  return { volume: `${volumePath(dir, id)}.compact`, index: `${indexPath(dir, id)}.compact` };
}

/** An empty file whose presence marks volume N read-only. */
export function readOnlyMarkerPath(dir: string, id: number): string {
  return join(dir, `${id}.readonly`);
}

/** Ids of the volumes in a data directory, ascending (created if missing). */
export async function listVolumes(dir: string): Promise<number[]> {
  await ensureDirectory(dir);
  return volumeIds(dir);
}

/** Ids of the volumes in an existing data directory, ascending; never creates or changes it. */
export async function volumeIds(dir: string): Promise<number[]> {
  const ids: number[] = [];
  for (const name of await readdir(dir)) {
    const match = /^([1-9][0-9]{0,8})\.dat$/.exec(name);
    if (match?.[1]) ids.push(Number(match[1]));
  }
  return ids.sort((a, b) => a - b);
}

/**
 * `mkdir -p`, one level at a time: Node's recursive mkdir spins forever when a parent exists but
 * cannot hold directories (a path under /proc, a dangling mount point).
 */
async function ensureDirectory(dir: string): Promise<void> {
  try {
    if ((await stat(dir)).isDirectory()) return;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const parent = dirname(dir);
    if (parent !== dir) await ensureDirectory(parent);
  }
  // A file in the way, or a parent that refuses children, fails here with a clear errno.
  await mkdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}

/**
 * Removes what a crash can leave half-made: a volume being created (`N.dat.new`) and a
 * compaction's copy (`N.dat.compact`, `N.idx.compact`, and `N.dat.compact.new`, the copy's own
 * temp name while its superblock is written), and chunked uploads spooled to disk
 * (`upload-*.spool`). The volumes in use never depend on them.
 */
export async function removeLeftovers(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if (
      /^[1-9][0-9]{0,8}\.(dat\.new|dat\.compact(\.new)?|idx\.compact)$/.test(name) ||
      SPOOL_FILE.test(name)
    ) {
      await rm(join(dir, name), { force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * The newest volume, if it is shorter than a superblock: a creation that a crash cut short (by
 * an older version, which created volumes in place). It holds nothing and can be dropped.
 */
export async function unfinishedVolume(
  dir: string,
  ids: readonly number[],
): Promise<number | undefined> {
  const last = ids.at(-1);
  if (last === undefined) return undefined;
  const { size } = await stat(volumePath(dir, last));
  return size < UNFINISHED_BELOW ? last : undefined;
}

/** The volume superblock's size (volume-file.ts): a shorter file never held a needle. */
const UNFINISHED_BELOW = 32;
