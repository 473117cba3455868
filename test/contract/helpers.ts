import { randomFillSync } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect } from 'vitest';
import {
  type BlobStore,
  type FileInfo,
  isStoreError,
  type Key,
  type StoreErrorCode,
  type StoreStatus,
} from '../../storage/index.ts';

export const MiB = 1024 * 1024;

/** Random bytes in a plain Uint8Array (not a pooled Buffer), so tests see what callers give. */
export function randomBytes(size: number): Uint8Array {
  return randomFillSync(new Uint8Array(size));
}

/** Every byte value up and down, then the bytes text protocols like to mangle. */
export function everyByteValue(): Uint8Array {
  const bytes = new Uint8Array(512 + 8);
  for (let i = 0; i < 256; i++) {
    bytes[i] = i;
    bytes[511 - i] = i;
  }
  bytes.set([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0xff, 0xef, 0xbb], 512);
  return bytes;
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** Splits bytes into views of `size` bytes (the last may be shorter). */
export function chunksOf(bytes: Uint8Array, size: number): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.byteLength; at += size) chunks.push(bytes.subarray(at, at + size));
  return chunks;
}

export interface StreamOptions {
  /** Wait a macrotask before each chunk, so that concurrent uploads interleave. */
  slow?: boolean;
  /** After the chunks, error the stream (a client that went away) instead of closing it. */
  failWith?: Error;
}

export interface StreamProbe {
  stream: ReadableStream<Uint8Array>;
  /** How many times the store asked the stream for more. */
  pulls: number;
  /** How many bytes the stream handed out. */
  bytesOut: number;
  cancelled: boolean;
}

/**
 * A pull-based stream (high-water mark 0: nothing is produced until the store reads) of the given
 * chunks, recording how much was read.
 */
export function probeStream(
  chunks: readonly Uint8Array[],
  options: StreamOptions = {},
): StreamProbe {
  let next = 0;
  const probe: StreamProbe = {
    pulls: 0,
    bytesOut: 0,
    cancelled: false,
    stream: new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          probe.pulls++;
          if (options.slow) await nextTurn();
          const chunk = chunks[next++];
          if (chunk) {
            probe.bytesOut += chunk.byteLength;
            controller.enqueue(chunk);
          } else if (options.failWith) {
            controller.error(options.failWith);
          } else {
            controller.close();
          }
        },
        cancel() {
          probe.cancelled = true;
        },
      },
      { highWaterMark: 0 },
    ),
  };
  return probe;
}

export function streamOf(
  chunks: readonly Uint8Array[],
  options: StreamOptions = {},
): ReadableStream<Uint8Array> {
  return probeStream(chunks, options).stream;
}

/**
 * A stream that does not end: `chunkSize` bytes per pull for as long as it is read. Past
 * `giveUpAfter` bytes it errors instead, so that a store that ignores its limit fails the test
 * rather than eating all memory.
 */
export function endlessStream(chunkSize: number, giveUpAfter: number): StreamProbe {
  const chunk = randomBytes(chunkSize);
  const probe: StreamProbe = {
    pulls: 0,
    bytesOut: 0,
    cancelled: false,
    stream: new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          probe.pulls++;
          if (probe.bytesOut >= giveUpAfter) {
            controller.error(new Error(`the store read ${probe.bytesOut} bytes and kept going`));
            return;
          }
          probe.bytesOut += chunk.byteLength;
          controller.enqueue(chunk.slice());
        },
        cancel() {
          probe.cancelled = true;
        },
      },
      { highWaterMark: 0 },
    ),
  };
  return probe;
}

/** The whole body of a read, whether the store answered with a buffer or a stream. */
export async function readAll(body: Uint8Array | ReadableStream<Uint8Array>): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return concatBytes(chunks);
}

/** Byte-exact comparison that stays fast on 10 MiB and says where the first difference is. */
export function expectBytes(actual: Uint8Array, expected: Uint8Array, what = 'bytes'): void {
  expect(actual.byteLength, `${what}: length`).toBe(expected.byteLength);
  const a = Buffer.from(actual.buffer, actual.byteOffset, actual.byteLength);
  const b = Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength);
  if (a.equals(b)) return;
  let at = 0;
  while (a[at] === b[at]) at++;
  expect.fail(`${what}: first difference at byte ${at}: got ${a[at]}, expected ${b[at]}`);
}

/** The rejection reason of a promise that must reject. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  return expect.fail('expected the call to reject, but it resolved');
}

/** The call rejects with a `StoreError` of one of the given codes; returns the code. */
export async function expectCode(
  promise: Promise<unknown>,
  ...codes: [StoreErrorCode, ...StoreErrorCode[]]
): Promise<StoreErrorCode> {
  const err = await rejection(promise);
  if (!isStoreError(err)) {
    return expect.fail(`expected a StoreError (${codes.join(' or ')}), got ${String(err)}`);
  }
  expect(codes, `error code of: ${err.message}`).toContain(err.code);
  return err.code;
}

/** The info is well formed, whatever the adapter. */
export function expectInfoShape(info: FileInfo): void {
  expect(Number.isSafeInteger(info.key) && info.key >= 1, `key ${info.key}`).toBe(true);
  expect(Number.isSafeInteger(info.size) && info.size >= 0, `size ${info.size}`).toBe(true);
  expect(Number.isSafeInteger(info.volume) && info.volume >= 0, `volume ${info.volume}`).toBe(true);
  expect(Number.isSafeInteger(info.offset) && info.offset >= 0, `offset ${info.offset}`).toBe(true);
  expect(
    Number.isInteger(info.cookie) && info.cookie >= 0 && info.cookie < 2 ** 32,
    `cookie ${info.cookie}`,
  ).toBe(true);
  expect(typeof info.contentType).toBe('string');
  // A strong entity tag: quoted, no W/ prefix, only characters HTTP allows inside.
  expect(info.etag).toMatch(/^"[\x21\x23-\x7e]*"$/);
}

/** The file is live under `key` with exactly these bytes and this type; head and get agree. */
export async function expectFile(
  store: BlobStore,
  key: Key,
  bytes: Uint8Array,
  contentType: string,
  expected?: FileInfo,
): Promise<void> {
  const head = await store.head(key);
  expectInfoShape(head);
  expect(head).toMatchObject({ key, size: bytes.byteLength, contentType });
  if (expected) expect(head).toEqual(expected);
  const read = await store.get(key);
  expect(read.info).toEqual(head);
  expectBytes(await readAll(read.body), bytes, `bytes of key ${key}`);
}

export async function expectGone(store: BlobStore, key: Key): Promise<void> {
  await expectCode(store.get(key), 'not_found');
  await expectCode(store.head(key), 'not_found');
}

/** Gone for reads and for writes: deleting or replacing it again is not_found and stores nothing. */
export async function expectGoneForGood(store: BlobStore, key: Key): Promise<void> {
  const before = await store.status();
  await expectGone(store, key);
  await expectCode(store.delete(key), 'not_found');
  await expectCode(store.replace(key, { body: randomBytes(8) }), 'not_found');
  await expectNothingStored(store, before);
}

/** Nothing was stored or retired since `before`, and nothing sits under the key it announced. */
export async function expectNothingStored(store: BlobStore, before: StoreStatus): Promise<void> {
  const after = await store.status();
  expectStatusConsistent(after);
  expect(after).toMatchObject({
    liveNeedles: before.liveNeedles,
    deletedNeedles: before.deletedNeedles,
    liveBytes: before.liveBytes,
  });
  expect(after.nextKey).toBeGreaterThanOrEqual(before.nextKey);
  await expectCode(store.get(before.nextKey), 'not_found');
}

/** After a refused upload, the next one gets a fresh key and reads back. */
export async function expectPutStillWorks(store: BlobStore, before: StoreStatus): Promise<void> {
  const bytes = randomBytes(777);
  const info = await store.put({ body: streamOf(chunksOf(bytes, 100)), contentType: 'x/after' });
  expect(info.key).toBeGreaterThanOrEqual(before.nextKey);
  await expectFile(store, info.key, bytes, 'x/after', info);
  expect((await store.status()).liveNeedles).toBe(before.liveNeedles + 1);
}

export function expectStatusConsistent(status: StoreStatus): void {
  const counts = ['liveNeedles', 'deletedNeedles', 'bytes', 'liveBytes', 'garbageBytes'] as const;
  for (const field of counts) {
    const value = status[field];
    expect(Number.isSafeInteger(value) && value >= 0, `${field} ${value}`).toBe(true);
  }
  expect(Number.isSafeInteger(status.nextKey) && status.nextKey >= 1).toBe(true);
  expect(status.liveBytes + status.garbageBytes).toBeLessThanOrEqual(status.bytes);
  expectRatio(status.garbageRatio, status.garbageBytes, status.bytes);
  if (status.volumes.length === 0) return;
  for (const field of counts) {
    const sum = status.volumes.reduce((total, volume) => total + volume[field], 0);
    expect(sum, `${field} summed over volumes`).toBe(status[field]);
  }
  for (const volume of status.volumes) {
    expect(volume.liveBytes + volume.garbageBytes).toBeLessThanOrEqual(volume.bytes);
    expectRatio(volume.garbageRatio, volume.garbageBytes, volume.bytes);
  }
}

function expectRatio(ratio: number, garbage: number, bytes: number): void {
  expect(ratio).toBeGreaterThanOrEqual(0);
  expect(ratio).toBeLessThanOrEqual(1);
  expect(ratio).toBeCloseTo(bytes === 0 ? 0 : garbage / bytes, 6);
}

export function expectSyncReport(report: { volumes: number; durationMs: number }): void {
  expect(Number.isSafeInteger(report.volumes) && report.volumes >= 0).toBe(true);
  expect(Number.isFinite(report.durationMs) && report.durationMs >= 0).toBe(true);
}

/** Exactly one of two racing calls succeeded and the other was not_found; returns the winner. */
export function expectExactlyOneWins(results: PromiseSettledResult<unknown>[]): number {
  const winners = results.flatMap((result, i) => (result.status === 'fulfilled' ? [i] : []));
  expect(winners, 'calls that succeeded').toHaveLength(1);
  for (const result of results) {
    if (result.status === 'rejected') {
      const reason: unknown = result.reason;
      expect(isStoreError(reason) ? reason.code : reason).toBe('not_found');
    }
  }
  return winners[0] ?? -1;
}
