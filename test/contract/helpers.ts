import { randomFillSync } from 'node:crypto';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { expect } from 'vitest';
import { isStoreError, type StoreErrorCode } from '../../storage/index.ts';

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
