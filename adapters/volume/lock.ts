import { open, readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StoreError } from '../../storage/index.ts';
import { isAlive } from '../process-alive.ts';

export const LOCK_FILE = 'LOCK';

/** Paths this process holds, so that a second store in the same process is refused too. */
const held = new Set<string>();

export interface DirectoryLock {
  release(): Promise<void>;
}

/**
 * Takes ownership of a data directory: a `LOCK` file holding the owner's pid. A lock left by a
 * process that is gone (kill -9, power cut) is taken over; a live owner's is refused.
 */
export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  const path = join(dir, LOCK_FILE);
  if (held.has(path)) throw locked(path, process.pid);
  for (let attempt = 0; ; attempt++) {
    try {
      const handle = await open(path, 'wx');
      try {
        await handle.writeFile(`${process.pid}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      held.add(path);
      return {
        async release() {
          held.delete(path);
          await unlink(path).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number.parseInt(await readFile(path, 'latin1').catch(() => ''), 10);
    // A second EEXIST means another process took the stale lock between our two tries.
    if (attempt > 0 || (Number.isInteger(owner) && owner !== process.pid && isAlive(owner))) {
      throw locked(path, owner);
    }
    await unlink(path).catch(() => {}); // stale: its owner is gone
  }
}

function locked(path: string, pid: number): StoreError {
  return new StoreError(
    'locked',
    `the data directory is in use by process ${pid} (lock file ${path}); ` +
      'only one server may own a data directory. If no such process runs, delete the lock file.',
  );
}
