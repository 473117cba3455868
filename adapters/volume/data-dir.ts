import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** Volume N lives in `N.dat`, its index in `N.idx`. */
export function volumePath(dir: string, id: number): string {
  return join(dir, `${id}.dat`);
}

export function indexPath(dir: string, id: number): string {
  return join(dir, `${id}.idx`);
}

/** Ids of the volumes in a data directory, ascending (created if missing). */
export async function listVolumes(dir: string): Promise<number[]> {
  await mkdir(dir, { recursive: true });
  const ids: number[] = [];
  for (const name of await readdir(dir)) {
    const match = /^([1-9][0-9]{0,8})\.dat$/.exec(name);
    if (match?.[1]) ids.push(Number(match[1]));
  }
  return ids.sort((a, b) => a - b);
}
