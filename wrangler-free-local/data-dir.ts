import { stat } from 'node:fs/promises';
import { describeError } from './errors.ts';

/**
 * Why `dir` cannot be the data directory of a command that works on existing data (reload,
 * compact, verify), or undefined if it can. The store would create a missing directory, but a
 * reload of nothing is a typo, not a success.
 */
export async function existingDataDirProblem(dir: string): Promise<string | undefined> {
  try {
    return (await stat(dir)).isDirectory() ? undefined : 'not a directory';
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'no such directory'
      : describeError(err);
  }
}
