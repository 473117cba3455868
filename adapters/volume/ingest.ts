import { crc32 } from 'node:zlib';
import {
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  type Key,
  MAX_CONTENT_TYPE_LENGTH,
  type PutInput,
  StoreError,
} from '../../storage/index.ts';
import { fileInfo, randomCookie } from '../file-info.ts';
import { readChunks } from '../read-body.ts';
import type { IndexEntry } from './index-file.ts';
import {
  encodeNeedleParts,
  footer,
  NeedleKind,
  needleHead,
  needleLength,
  TOMBSTONE_LENGTH,
  tombstone,
} from './needle.ts';
import { receiveBody } from './receive.ts';
import {
  abandon,
  append,
  appendsSettled,
  publish,
  type Reserved,
  reserve,
  writeTo,
} from './store-append.ts';
import { diskError } from './store-errors.ts';
import { assertWritable, type StoreState } from './store-state.ts';
import type { Slot, Volume } from './volume.ts';

/** Large uploads are written in pieces of about this size. */
const WRITE_CHUNK = 1024 * 1024;

/** The key and cookie a file is stored under. */
export interface FileId {
  key: Key;
  cookie: number;
}

/** What a write stores besides the file. */
export interface WriteTarget {
  /** A key retired in the same append (replace). */
  readonly retire?: Key;
  /** The caller's key and cookie (a replica write); without it the store hands out new ones. */
  readonly id?: FileId;
}

/** A write's needle as far as it is known before its bytes arrive. */
interface Plan extends WriteTarget {
  readonly contentType: string;
  readonly contentTypeLength: number;
}

/**
 * Stores a file under a new key (or the caller's, `target.id`); with `target.retire`, also
 * retires that key in the same append (replace). Small bodies are gathered in memory and
 * appended in one call; a large one of declared length streams into space reserved for it,
 * within the streaming cap; the rest (unknown length, or past the cap) are spooled first and
 * copied in once complete.
 */
export async function ingest(
  state: StoreState,
  input: PutInput,
  target: WriteTarget,
): Promise<FileInfo> {
  assertWritable(state);
  const contentType = input.contentType ?? DEFAULT_CONTENT_TYPE;
  const contentTypeLength = Buffer.byteLength(contentType, 'latin1');
  if (contentTypeLength > MAX_CONTENT_TYPE_LENGTH) {
    throw new StoreError(
      'bad_request',
      `the content type is over ${MAX_CONTENT_TYPE_LENGTH} bytes`,
    );
  }
  const plan: Plan = { ...target, contentType, contentTypeLength };
  const received = await receiveBody(input, state.settings.dir, (size) =>
    reserveStreaming(state, slotLength(plan, size)),
  ).catch((err: unknown) => {
    throw diskError(err);
  });
  if (received.kind === 'reserved') {
    const { body, size, reservation } = received;
    return streamFile(state, body, size, plan, reservation);
  }
  if (received.kind === 'file') {
    try {
      return await streamFile(state, received.read(), received.size, plan, undefined);
    } finally {
      await received.remove();
    }
  }
  const { data } = received;
  state.durability.assertHealthy();
  const { key, cookie } = fileId(state, plan);
  const needle = encodeNeedleParts({ kind: NeedleKind.file, key, cookie, contentType, data });
  if (plan.retire !== undefined) needle.push(tombstone(plan.retire));
  const { volume, offset } = await append(state, needle, (at) =>
    entriesFor(key, at, data.byteLength, plan),
  );
  const info = { key, size: data.byteLength, volume: volume.id, offset, cookie, contentType };
  // The bytes just made durable: the file most likely to be read next (Haystack's Cache).
  if (state.cache.enabled && state.live.holds(key, volume.id, offset)) {
    state.cache.fill(fileInfo(info), data);
  }
  return fileInfo(info);
}

/**
 * Space for an upload still arriving from a client, or undefined if it must be spooled first:
 * the uploads in flight would hold more than `maxStreamingBytes`, or it does not fit in the
 * writable volume as it is. So a client that never sends its body holds a bounded share of
 * one volume, and never makes the store start a new one.
 */
function reserveStreaming(state: StoreState, length: number): Reserved | undefined {
  const volume = state.writable;
  if (!appendsSettled(state)) return undefined;
  if (volume.tail + length > state.settings.volumeSize) return undefined;
  const slot = state.streaming.tryReserve(volume, length);
  return slot && { volume, slot };
}

/**
 * A large upload of known length goes straight to its reserved place in the volume as it
 * arrives, checksummed on the way; writes of other clients carry on around it.
 */
async function streamFile(
  state: StoreState,
  body: ReadableStream<Uint8Array>,
  size: number,
  plan: Plan,
  reserved: Reserved | undefined,
): Promise<FileInfo> {
  // Without space reserved by the caller, the body is on this machine: it cannot stall.
  const { volume, slot } = reserved ?? (await reserve(state, slotLength(plan, size)));
  try {
    return await streamInto(state, volume, slot, body, size, plan);
  } finally {
    state.streaming.release(slot);
  }
}

/** Writes the body into its slot, checksummed on the way; any failure abandons the slot. */
async function streamInto(
  state: StoreState,
  volume: Volume,
  slot: Slot,
  body: ReadableStream<Uint8Array>,
  size: number,
  plan: Plan,
): Promise<FileInfo> {
  const { contentType, contentTypeLength, retire } = plan;
  const { key, cookie } = fileId(state, plan);
  try {
    const head = needleHead({ kind: NeedleKind.file, key, cookie, contentType }, size);
    let checksum = crc32(head);
    let pending: Buffer[] = [head];
    let pendingBytes = head.byteLength;
    let position = slot.offset;
    // The length is enforced as the bytes arrive: a body that runs short or long is refused.
    for await (const chunk of readChunks(body, { length: size })) {
      checksum = crc32(chunk, checksum);
      pending.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
      pendingBytes += chunk.byteLength;
      if (pendingBytes >= WRITE_CHUNK) {
        await writeTo(volume, pending, position);
        position += pendingBytes;
        pending = [];
        pendingBytes = 0;
      }
    }
    pending.push(footer(checksum, contentTypeLength, size));
    if (retire !== undefined) pending.push(tombstone(retire));
    state.durability.assertHealthy();
    await writeTo(volume, pending, position);
    await state.durability.durable(volume);
  } catch (err) {
    await abandon(state, volume, slot);
    throw err;
  }
  publish(state, volume, slot, entriesFor(key, slot.offset, size, plan));
  return fileInfo({ key, size, volume: volume.id, offset: slot.offset, cookie, contentType });
}

/** The caller's key and cookie, or the next key and a random cookie. */
function fileId(state: StoreState, plan: Plan): FileId {
  return plan.id ?? { key: state.nextKey++, cookie: randomCookie() };
}

/** A file needle's slot, with room for the tombstone of the key it replaces. */
function slotLength(plan: Plan, dataSize: number): number {
  const needleBytes = needleLength(plan.contentTypeLength, dataSize);
  return needleBytes + (plan.retire === undefined ? 0 : TOMBSTONE_LENGTH);
}

/** The file's index entry, and the retired key's tombstone right after it. */
function entriesFor(key: Key, offset: number, dataSize: number, plan: Plan): IndexEntry[] {
  const length = needleLength(plan.contentTypeLength, dataSize);
  const entries = [{ key, offset, length }];
  if (plan.retire !== undefined)
    entries.push({ key: plan.retire, offset: offset + length, length: 0 });
  return entries;
}
