import { type PutInput, StoreError } from '../storage/index.ts';

/**
 * Reading an upload body, for every adapter: the one place that enforces the limit and the
 * declared length while the bytes arrive, and words each refusal. Plain Uint8Array work, no
 * Buffer: the memory adapter runs on hosts without Node's APIs.
 */

/** What a body must keep to, as `PutInput` carries it. */
export interface BodyBounds {
  /** The declared length (Content-Length): the body must have exactly this many bytes. */
  length?: number | undefined;
  /** Bytes at most; past it the body is refused with `too_large`. Default: no limit. */
  limit?: number | undefined;
}

/** Reads a whole upload into memory; an oversized body is refused before it is held. */
export async function readBody(input: PutInput): Promise<Uint8Array> {
  const { body } = input;
  if (body === null || body instanceof Uint8Array) {
    const bytes = body ?? new Uint8Array(0);
    refuseDeclaredOverLimit(input);
    refuseOver(bytes.byteLength, input);
    refuseShort(bytes.byteLength, input);
    return bytes;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of readChunks(body, input)) {
    chunks.push(chunk);
    total += chunk.byteLength;
  }
  return concat(chunks, total);
}

/**
 * The chunks of an upload stream as they arrive. It is refused (a `StoreError` thrown by the
 * iterator) when its declared length is over the limit, before a byte is read; when it passes its
 * declared length or the limit; and when it ends short of its declared length. A failing or
 * aborted client stream is `bad_request`; a `StoreError` from the stream itself (a body the store
 * made, such as a spool file read back) passes through. However the iteration ends (done,
 * refused, failed, or the caller stopping early), the source is cancelled and released.
 */
export async function* readChunks(
  body: ReadableStream<Uint8Array>,
  bounds: BodyBounds = {},
): AsyncGenerator<Uint8Array> {
  const reader = lockBody(body);
  try {
    refuseDeclaredOverLimit(bounds);
    let received = 0;
    for (;;) {
      const result = await reader.read().catch((err: unknown) => {
        throw err instanceof StoreError ? err : aborted(err);
      });
      if (result.done) break;
      received += result.value.byteLength;
      refuseOver(received, bounds);
      yield result.value;
    }
    refuseShort(received, bounds);
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}

/** A body stream another reader holds (or that was read already) is the caller's mistake. */
export function lockBody(
  body: ReadableStream<Uint8Array>,
): ReadableStreamDefaultReader<Uint8Array> {
  try {
    return body.getReader();
  } catch (err) {
    throw new StoreError('bad_request', 'the body cannot be read (already read or locked)', {
      cause: err,
    });
  }
}

export function tooLarge(limit: number): StoreError {
  return new StoreError('too_large', `the body is larger than the limit of ${limit} bytes`);
}

/** `received` past `declared` means "more than declared": reading stops at the first byte over. */
export function lengthMismatch(declared: number, received: number): StoreError {
  const has = received > declared ? `more than ${declared}` : `${received}`;
  return new StoreError(
    'bad_request',
    `the body has ${has} bytes, but Content-Length said ${declared}`,
  );
}

export function aborted(cause: unknown): StoreError {
  return new StoreError('bad_request', 'the body was cut off before its end', { cause });
}

function refuseDeclaredOverLimit({ length, limit }: BodyBounds): void {
  if (length !== undefined && limit !== undefined && length > limit) throw tooLarge(limit);
}

/**
 * Bytes received so far that break the bounds. The declared length is checked first: it is at
 * most the limit, so a body that keeps to it keeps to the limit, and one that breaks it gets the
 * same answer however its bytes were cut into chunks.
 */
function refuseOver(received: number, { length, limit }: BodyBounds): void {
  if (length !== undefined && received > length) throw lengthMismatch(length, received);
  if (limit !== undefined && received > limit) throw tooLarge(limit);
}

/** The body ended: it must have its declared length. */
function refuseShort(received: number, { length }: BodyBounds): void {
  if (length !== undefined && received !== length) throw lengthMismatch(length, received);
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1 && chunks[0]) return chunks[0];
  const out = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
