import type { Context } from 'hono';
import type { AppEnv } from './env.ts';
import { HttpError } from './errors.ts';
import { countReceived } from './exchange.ts';
import { parseContentLength } from './schemas.ts';

/**
 * Reads a small request body whole, refused with `too_large` past `limit` bytes. One that declares
 * its length within the limit is read in one call: @hono/node-server then hands it over without
 * building a web stream, which costs several times the store's own work for a small file. Any
 * other is read as a stream and refused as soon as it passes the limit, never held whole.
 */
export async function readSmallBody(c: Context<AppEnv>, limit: number): Promise<Uint8Array> {
  const declared = parseContentLength(c.req.header('content-length'));
  if (declared !== undefined && declared > limit) throw tooLarge(limit, declared);
  if (declared !== undefined) {
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await c.req.arrayBuffer());
    } catch (err) {
      throw aborted(err);
    }
    countReceived(c, bytes.byteLength);
    return bytes;
  }
  const body = c.req.raw.body;
  if (body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  try {
    for (;;) {
      const result = await reader.read().catch((err: unknown) => {
        throw aborted(err);
      });
      if (result.done) break;
      total += result.value.byteLength;
      countReceived(c, result.value.byteLength);
      if (total > limit) throw tooLarge(limit);
      chunks.push(result.value);
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
  return new Uint8Array(await new Blob(chunks).arrayBuffer());
}

/** A body over the limit; `declared` when its Content-Length says so before a byte is read. */
export function tooLarge(limit: number, declared?: number): HttpError {
  const size = declared === undefined ? 'over' : `${declared} bytes, over`;
  return new HttpError('too_large', `the body is ${size} the limit of ${limit} bytes`);
}

function aborted(cause: unknown): HttpError {
  return new HttpError('bad_request', 'the body was cut off before its end', { cause });
}
