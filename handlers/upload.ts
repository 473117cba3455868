import type { Context } from 'hono';
import { type PutInput, StoreError } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { parseContentLength, parseContentType } from './schemas.ts';

/**
 * Bodies that declare at most this many bytes (and are within the limit) are read whole here:
 * @hono/node-server hands them over without building a web stream, which costs several times
 * the store's own work for a small file.
 */
const SMALL_UPLOAD = 256 * 1024;

/**
 * What POST and PUT hand the store. A small body of declared length is read whole; any other
 * goes through as the request's stream: the store enforces `limit` and the declared `length`
 * while the bytes arrive, which is the only place a chunked body's size can be known. A declared
 * length over the limit is refused before a byte is read.
 */
export async function uploadInput(c: Context<AppEnv>): Promise<PutInput> {
  const length = parseContentLength(c.req.header('content-length'));
  const contentType = parseContentType(c.req.header('content-type'));
  const limit = c.var.maxBody;
  if (length !== undefined && length > limit) {
    throw new StoreError(
      'too_large',
      `the body is ${length} bytes, over the limit of ${limit} bytes`,
    );
  }
  const body = length !== undefined && length <= SMALL_UPLOAD ? await smallBody(c) : c.req.raw.body;
  return {
    body,
    limit,
    ...(length === undefined ? {} : { length }),
    ...(contentType === undefined ? {} : { contentType }),
  };
}

async function smallBody(c: Context<AppEnv>): Promise<Uint8Array> {
  try {
    return new Uint8Array(await c.req.arrayBuffer());
  } catch (err) {
    throw new StoreError('bad_request', 'the upload was aborted before its end', { cause: err });
  }
}
