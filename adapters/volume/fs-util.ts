import { open, rename } from 'node:fs/promises';
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

/** Replaces `path` whole: temp file, fsync, rename, directory fsync (a crash leaves old or new). */
export async function writeFileAtomic(path: string, chunks: readonly Buffer[]): Promise<void> {
  const temp = `${path}.tmp-${process.pid}`;
  const handle = await open(temp, 'w');
  try {
    // writeFile on a handle writes from the current position and loops until all is written.
    for (const chunk of chunks) await handle.writeFile(chunk);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, path);
  await syncDirectory(path);
}
