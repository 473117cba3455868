import { open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Makes a file's creation, rename or removal durable: fsync the directory that holds it. */
export async function syncDirectory(path: string): Promise<void> {
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** Writes a new file whole and fsyncs it (a crash before the fsync may leave any part of it). */
export async function writeFileSynced(path: string, chunks: readonly Buffer[]): Promise<void> {
  const handle = await open(path, 'w');
  try {
    // writeFile on a handle writes from the current position and loops until all is written.
    for (const chunk of chunks) await handle.writeFile(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Replaces `path` whole through `temp`: written, fsynced, renamed over it, directory fsynced, so
 * a crash leaves the old file or the new one. A failed write removes `temp`; a crash leaves it to
 * the start-up clean-up (temp-files.ts).
 */
export async function writeFileAtomic(
  path: string,
  temp: string,
  chunks: readonly Buffer[],
): Promise<void> {
  try {
    await writeFileSynced(temp, chunks);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => {});
    throw err;
  }
  await rename(temp, path);
  await syncDirectory(path);
}
