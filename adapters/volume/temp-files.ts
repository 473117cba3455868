import { randomBytes } from 'node:crypto';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The names of every temporary file made in a data directory, and the start-up clean-up of the
 * ones a crash or a failed command left behind. The volumes in use never depend on them.
 */

/** A volume file being created: its superblock is written and synced here, then linked. */
const CREATING = '.new';
/** A compaction's copy of a volume file or index, renamed over it once synced. */
const COMPACTING = '.compact';
/** An index `reload` is writing, renamed over `N.idx` once synced; then the writer's pid. */
const REBUILDING = '.rebuild-';

export function creationPath(path: string): string {
  return `${path}${CREATING}`;
}

export function compactionPath(path: string): string {
  return `${path}${COMPACTING}`;
}

export function rebuildPath(indexPath: string): string {
  return `${indexPath}${REBUILDING}${process.pid}`;
}

/** A chunked upload on its way in (spool.ts); named at random, so uploads never collide. */
export function newSpoolPath(dir: string): string {
  return join(dir, `upload-${randomBytes(8).toString('hex')}.spool`);
}

const VOLUME_ID = '[1-9][0-9]{0,8}';
const literal = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** What the functions above name, and nothing else (`notes.spool` is not ours). */
const LEFTOVERS = [
  `${VOLUME_ID}\\.dat${literal(CREATING)}`,
  `${VOLUME_ID}\\.(dat|idx)${literal(COMPACTING)}`,
  // A compaction's copy is itself a volume file being created.
  `${VOLUME_ID}\\.dat${literal(COMPACTING + CREATING)}`,
  `${VOLUME_ID}\\.idx${literal(REBUILDING)}[0-9]+`,
  'upload-[0-9a-f]{16}\\.spool',
].map((pattern) => new RegExp(`^${pattern}$`));

/**
 * Removes the temporary files of the data directory: volumes being created, compactions' copies,
 * indexes `reload` was writing, chunked uploads spooled to disk. Only the owner of the directory's
 * lock may call it: another process's files in progress would go too. Returns the names removed.
 */
export async function removeLeftovers(dir: string): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(dir)) {
    if (!LEFTOVERS.some((pattern) => pattern.test(name))) continue;
    await rm(join(dir, name), { force: true });
    removed.push(name);
  }
  return removed;
}
