import { mkdir, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { SUPERBLOCK_SIZE } from './volume-file.ts';

/** Volume N lives in `N.dat`, its index in `N.idx`. */
export function volumePath(dir: string, id: number): string {
  return join(dir, `${id}.dat`);
}

export function indexPath(dir: string, id: number): string {
  return join(dir, `${id}.idx`);
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
  return size < SUPERBLOCK_SIZE ? last : undefined;
}
