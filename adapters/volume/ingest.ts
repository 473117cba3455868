import { crc32 } from 'node:zlib';
import {
  DEFAULT_CONTENT_TYPE,
  type FileInfo,
  isStoreError,
  type Key,
  MAX_CONTENT_TYPE_LENGTH,
  type PutInput,
  StoreError,
} from '../../storage/index.ts';
import { fileInfo, randomCookie } from '../file-info.ts';
import { readBody, tooLarge } from '../read-body.ts';
import { lengthMismatch, readChunks } from './body-chunks.ts';
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
import { GATHER_MAX, spoolBody } from './spool.ts';
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

/**
 * Stores a new file; with `retire`, also retires that key in the same append (replace). Small
 * bodies are gathered in memory and appended in one call; a large one of declared length
 * streams into space reserved for it, within the streaming cap; the rest (unknown length, or
 * past the cap) are spooled first and copied in once complete.
 */
export async function ingest(
  state: StoreState,
  input: PutInput,
  retire: Key | undefined,
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
  const { body, length } = input;
  const limit = input.limit ?? Number.POSITIVE_INFINITY;
  let data: Uint8Array;
  const streamed = body !== null && !(body instanceof Uint8Array);
  if (streamed && (length === undefined || length > GATHER_MAX)) {
    if (length !== undefined) {
      if (length > limit) throw tooLarge(input.limit ?? 0);
      const reserved = reserveStreaming(state, needleLength(contentTypeLength, length), retire);
      if (reserved) return streamFile(state, body, length, contentType, retire, reserved);
    }
    // Of unknown length, or no room for one more upload in flight: the bytes the client really
    // sends go to memory or a spool file first, and into the volume once they are all in.
    const spooled = await spoolBody(body, length ?? limit, state.settings.dir).catch(
      (err: unknown) => {
        if (length !== undefined && isStoreError(err, 'too_large')) {
          throw lengthMismatch(length, length + 1);
        }
        throw diskError(err);
      },
    );
    const size = spooled.kind === 'file' ? spooled.size : spooled.data.byteLength;
    if (length !== undefined && size !== length) {
      if (spooled.kind === 'file') await spooled.remove();
      throw lengthMismatch(length, size);
    }
    if (spooled.kind === 'file') {
      try {
        return await streamFile(state, spooled.body, size, contentType, retire, undefined);
      } finally {
        await spooled.remove();
      }
    }
    data = spooled.data;
  } else {
    data = await readBody(input);
  }
  state.durability.assertHealthy();
  const key = state.nextKey++;
  const cookie = randomCookie();
  const needle = encodeNeedleParts({ kind: NeedleKind.file, key, cookie, contentType, data });
  const needleBytes = needleLength(contentTypeLength, data.byteLength);
  if (retire !== undefined) needle.push(tombstone(retire));
  const { volume, offset } = await append(state, needle, (at) =>
    entriesFor(key, at, needleBytes, retire),
  );
  return fileInfo({ key, size: data.byteLength, volume: volume.id, offset, cookie, contentType });
}

/**
 * Space for an upload still arriving from a client, or undefined if it must be spooled first:
 * the uploads in flight would hold more than `maxStreamingBytes`, or it does not fit in the
 * writable volume as it is. So a client that never sends its body holds a bounded share of
 * one volume, and never makes the store start a new one.
 */
function reserveStreaming(
  state: StoreState,
  needleBytes: number,
  retire: Key | undefined,
): Reserved | undefined {
  const length = slotLength(needleBytes, retire);
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
  contentType: string,
  retire: Key | undefined,
  reserved: Reserved | undefined,
): Promise<FileInfo> {
  const contentTypeLength = Buffer.byteLength(contentType, 'latin1');
  const length = needleLength(contentTypeLength, size);
  // Without space reserved by the caller, the body is on this machine: it cannot stall.
  const { volume, slot } = reserved ?? (await reserve(state, slotLength(length, retire)));
  try {
    return await streamInto(state, volume, slot, body, size, contentType, retire);
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
  contentType: string,
  retire: Key | undefined,
): Promise<FileInfo> {
  const contentTypeLength = Buffer.byteLength(contentType, 'latin1');
  const length = needleLength(contentTypeLength, size);
  const key = state.nextKey++;
  const cookie = randomCookie();
  try {
    const head = needleHead({ kind: NeedleKind.file, key, cookie, contentType }, size);
    let checksum = crc32(head);
    let pending: Buffer[] = [head];
    let pendingBytes = head.byteLength;
    let position = slot.offset;
    let received = 0;
    for await (const chunk of readChunks(body)) {
      received += chunk.byteLength;
      if (received > size) throw lengthMismatch(size, received);
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
    if (received !== size) throw lengthMismatch(size, received);
    pending.push(footer(checksum, contentTypeLength, size));
    if (retire !== undefined) pending.push(tombstone(retire));
    state.durability.assertHealthy();
    await writeTo(volume, pending, position);
    await state.durability.durable(volume);
  } catch (err) {
    await abandon(state, volume, slot);
    throw err;
  }
  publish(state, volume, slot, entriesFor(key, slot.offset, length, retire));
  return fileInfo({ key, size, volume: volume.id, offset: slot.offset, cookie, contentType });
}

/** A file needle's slot, with room for the tombstone of the key it replaces. */
function slotLength(needleBytes: number, retire: Key | undefined): number {
  return needleBytes + (retire === undefined ? 0 : TOMBSTONE_LENGTH);
}

function entriesFor(
  key: Key,
  offset: number,
  length: number,
  retire: Key | undefined,
): IndexEntry[] {
  const entries = [{ key, offset, length }];
  if (retire !== undefined) entries.push({ key: retire, offset: offset + length, length: 0 });
  return entries;
}
