import { crc32 } from 'node:zlib';
import {
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  type Key,
  type PutInput,
  StoreError,
} from '../../storage/index.ts';
import { checkReplicaId } from '../file-info.ts';
import { readBody, readChunks } from '../read-body.ts';
import { ingest } from './ingest.ts';
import type { KeyLock } from './key-lock.ts';
import { NeedleKind, needleHead } from './needle.ts';
import { storedNeedle } from './store-read.ts';
import { assertWritable, type StoreState } from './store-state.ts';

/**
 * A replica write (`capabilities.replicas.putReplica`): stores the file under the caller's key
 * and cookie through the same path as `put` (gather, stream or spool; the streaming cap; group
 * commit). Under a live key, a retry of the same file answers the stored file and writes
 * nothing; anything else is `conflict`. One at a time per key, with deletes and replaces.
 */
export async function putReplica(
  state: StoreState,
  keys: KeyLock,
  key: Key,
  cookie: number,
  input: PutInput,
): Promise<FileInfo> {
  checkReplicaId(key, cookie);
  assertWritable(state);
  return keys.run(key, async () => {
    if (state.live.map.get(key)) return sameFileOrConflict(state, key, cookie, input);
    // Before the bytes arrive, so that no `put` meanwhile takes this key; a write that fails
    // leaves only a key never handed out.
    if (key >= state.nextKey) state.nextKey = key + 1;
    return ingest(state, input, { id: { key, cookie } });
  });
}

/**
 * The stored file if `input` is the same file: the same cookie, content type and size, and its
 * bytes (read here, never taken on trust) have the checksum the stored needle was written with.
 */
async function sameFileOrConflict(
  state: StoreState,
  key: Key,
  cookie: number,
  input: PutInput,
): Promise<FileInfo> {
  const { info, checksum } = storedNeedle(state, key);
  const contentType = input.contentType ?? DEFAULT_CONTENT_TYPE;
  const sameClaim =
    info.cookie === cookie &&
    info.contentType === contentType &&
    (input.length === undefined || input.length === info.size);
  if (!sameClaim) throw conflict(key);
  // The needle checksum covers header, content type and data: the head is the one the stored
  // needle has if the claims match, so the data decides.
  const head = needleHead({ kind: NeedleKind.file, key, cookie, contentType }, info.size);
  const incoming = await checksumBody(input, crc32(head));
  if (incoming.size !== info.size || incoming.checksum !== checksum) throw conflict(key);
  return info;
}

/** Size and CRC-32 of an upload's bytes, enforcing its limit and declared length. */
async function checksumBody(
  input: PutInput,
  seed: number,
): Promise<{ size: number; checksum: number }> {
  const { body } = input;
  if (body === null || body instanceof Uint8Array) {
    const bytes = await readBody(input);
    return { size: bytes.byteLength, checksum: crc32(bytes, seed) };
  }
  let size = 0;
  let checksum = seed;
  for await (const chunk of readChunks(body, input)) {
    size += chunk.byteLength;
    checksum = crc32(chunk, checksum);
  }
  return { size, checksum };
}

function conflict(key: Key): StoreError {
  return new StoreError('conflict', `key ${key} already holds another file`);
}

/** Up to `limit` live keys above `after`, increasing (the needle map keeps them in order). */
export function listKeys(state: StoreState, after: Key, limit: number): Key[] {
  const keys: Key[] = [];
  if (limit <= 0) return keys;
  for (const [key] of state.live.map.entries(after)) {
    keys.push(key);
    if (keys.length === limit) break;
  }
  return keys;
}
