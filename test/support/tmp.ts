import { constants } from 'node:fs';
import { access, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** A fresh empty directory under the OS temp dir. */
export function makeTempDir(prefix = 'haystack-test-'): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), prefix));
}

export function removeTempDir(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true, maxRetries: 3 });
}

/** Paths, relative to `dir`, of every file below it whose name ends with `suffix`. */
export async function filesEndingWith(dir: string, suffix: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * A fresh empty directory in memory (`/dev/shm`) when the machine has one, else under the OS
 * temp dir: for tests that open and close a store hundreds of times, where each fsync on a disk
 * would cost milliseconds. Nothing they check depends on the filesystem.
 */
export async function makeMemoryTempDir(prefix = 'haystack-test-'): Promise<string> {
  const shm = '/dev/shm';
  try {
    await access(shm, constants.W_OK);
    return await mkdtemp(path.join(shm, prefix));
  } catch {
    return makeTempDir(prefix);
  }
}
