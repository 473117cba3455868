import { randomUUID } from 'node:crypto';
import { link, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDirectory, writeFileSynced } from '../volume/fs-util.ts';

/** The file, in a node's data directory, that holds its id. */
export const NODE_ID_FILE = 'node-id';
/** A node id being made: written and synced here, then linked to `node-id`; then pid and a tag. */
const CREATING = `${NODE_ID_FILE}.new-`;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The node's id, kept in `dir/node-id`: read when it is there, made (a random UUID) when it is
 * not. Made crash-safe: written to a temp file, fsynced, linked to its name (which fails if
 * another process made it meanwhile: that one's id is answered) and the directory fsynced, so a
 * crash leaves no file or a whole one. A file that is there but does not hold an id is an
 * error, never replaced: a new id would make this a new node and orphan its replicas.
 */
export async function loadOrCreateNodeId(dir: string): Promise<string> {
  const path = join(dir, NODE_ID_FILE);
  const existing = await readNodeId(path);
  if (existing !== undefined) return existing;

  await mkdir(dir, { recursive: true });
  const id = randomUUID();
  const temp = join(dir, `${CREATING}${process.pid}-${randomUUID().slice(0, 8)}`);
  try {
    await writeFileSynced(temp, [Buffer.from(`${id}\n`)]);
    await linkOrRename(temp, path);
  } catch (err) {
    // Another start that made it meanwhile may have cleared our temp file as a leftover.
    if ((await readNodeId(path)) === undefined) throw err;
  } finally {
    await rm(temp, { force: true });
  }
  await syncDirectory(path);
  // Another process may have made it first (link refused): the file's id is the one.
  const stored = await readNodeId(path);
  if (stored === undefined) throw new Error(`${path} vanished right after it was made`);
  await removeLeftovers(dir);
  return stored;
}

/** The id in `path`, or undefined when there is no such file. */
async function readNodeId(path: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const id = text.trim();
  if (id === '') {
    throw new Error(
      `${path} is empty: it should hold this node's id (a UUID). Restore it from a backup, or ` +
        'remove it to make this a new node (its replicas would then belong to no one)',
    );
  }
  if (!UUID.test(id)) {
    throw new Error(
      `${path} does not hold a node id (a UUID) but ${JSON.stringify(id.slice(0, 60))}. ` +
        'Restore it from a backup, or remove it to make this a new node (its replicas would ' +
        'then belong to no one)',
    );
  }
  return id.toLowerCase();
}

/**
 * Gives `temp` the name `path` unless `path` exists (link: atomic create-if-absent); where the
 * filesystem has no hard links, a rename (which would replace a file made meanwhile).
 */
async function linkOrRename(temp: string, path: string): Promise<void> {
  try {
    await link(temp, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'ENOSYS' || code === 'EOPNOTSUPP') {
      await rename(temp, path);
      return;
    }
    throw err;
  }
}

/**
 * Temp files of earlier attempts that crashed before they were removed (once the id exists, so
 * another process making it at the same time is past needing its own).
 */
async function removeLeftovers(dir: string): Promise<void> {
  for (const name of await readdir(dir)) {
    if (name.startsWith(CREATING)) await rm(join(dir, name), { force: true });
  }
}
