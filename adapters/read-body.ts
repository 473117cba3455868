import { type PutInput, StoreError } from '../storage/index.ts';

/**
 * Reads a whole upload into memory, enforcing the limit and the declared length as bytes arrive,
 * so that an oversized body is refused without being held.
 */
export async function readBody(input: PutInput): Promise<Uint8Array> {
  const { body, length, limit = Number.POSITIVE_INFINITY } = input;
  if (length !== undefined && length > limit) {
    if (body instanceof ReadableStream) await body.cancel().catch(() => {});
    throw tooLarge(limit);
  }
  if (body === null) return checkLength(new Uint8Array(0), length);
  if (body instanceof Uint8Array) {
    if (body.byteLength > limit) throw tooLarge(limit);
    return checkLength(body, length);
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = lockBody(body);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > limit) throw tooLarge(limit);
      if (length !== undefined && total > length) throw lengthMismatch(length, total);
      chunks.push(value);
    }
  } catch (err) {
    await reader.cancel().catch(() => {});
    if (err instanceof StoreError) throw err;
    throw new StoreError('bad_request', 'the upload was aborted before its end', { cause: err });
  } finally {
    reader.releaseLock();
  }
  return checkLength(concat(chunks, total), length);
}

/** Plain Uint8Array work, no Buffer: the memory adapter runs on hosts without Node's APIs. */
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

function lengthMismatch(declared: number, actual: number): StoreError {
  return new StoreError(
    'bad_request',
    `the body has ${actual} bytes or more, but Content-Length said ${declared}`,
  );
}

function checkLength(bytes: Uint8Array, declared: number | undefined): Uint8Array {
  if (declared !== undefined && bytes.byteLength !== declared) {
    throw new StoreError(
      'bad_request',
      `the body has ${bytes.byteLength} bytes, but Content-Length said ${declared}`,
    );
  }
  return bytes;
}
