import { readdir, rm, rmdir, stat } from 'node:fs/promises';
import path from 'node:path';
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

/** What `start` finds at its data directory, to undo what it made there if it fails. */
export type StartDataDir =
  | { problem: string }
  /** `created`: the outermost directory on the way to it that this start creates. */
  | { state: 'missing'; created: string }
  | { state: 'empty' | 'in use' };

/**
 * For `start`, which creates a missing data directory: why `dir` cannot be one, or whether it
 * (or a parent) is missing, empty, or holds something already.
 */
export async function startDataDir(dir: string): Promise<StartDataDir> {
  let created: string | undefined;
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      if (!(await stat(at)).isDirectory()) {
        return { problem: at === dir ? 'not a directory' : `${at} is not a directory` };
      }
      if (created !== undefined) return { state: 'missing', created };
      return { state: (await readdir(dir)).length === 0 ? 'empty' : 'in use' };
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // ENOTDIR: a parent further up is a file, which the next round names.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') return { problem: describeError(err) };
      if (code === 'ENOENT') created = at;
      if (path.dirname(at) === at) return { problem: describeError(err) };
    }
  }
}

/**
 * Undoes a start that failed (port in use, bad host): what it made in a data directory that was
 * missing or empty goes again. Called only once the store is closed without having served a
 * request, so the files there are the empty volume its opening made; a directory that holds
 * anything else stays.
 */
export async function undoFailedStart(dir: string, found: StartDataDir): Promise<void> {
  if (!('state' in found) || found.state === 'in use') return;
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile()) await rm(path.join(dir, entry.name), { force: true });
  }
  if (found.state !== 'missing') return;
  for (let at = dir; ; at = path.dirname(at)) {
    // Not recursive: a directory something else put files into meanwhile is left alone.
    if (
      !(await rmdir(at).then(
        () => true,
        () => false,
      ))
    )
      return;
    if (at === found.created || path.dirname(at) === at) return;
  }
}
