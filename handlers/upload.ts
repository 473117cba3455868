import type { Context } from 'hono';
import { type PutInput, StoreError } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { parseContentLength, parseContentType } from './schemas.ts';

/**
 * What POST and PUT hand the store. The body goes through as the request's stream, never read
 * here: the store enforces `limit` and the declared `length` while the bytes arrive, which is
 * the only place a chunked body's size can be known. A declared length over the limit is
 * refused before a byte is read.
 */
export function uploadInput(c: Context<AppEnv>): PutInput {
  const length = parseContentLength(c.req.header('content-length'));
  const contentType = parseContentType(c.req.header('content-type'));
  const limit = c.var.maxBody;
  if (length !== undefined && length > limit) {
    throw new StoreError(
      'too_large',
      `the body is ${length} bytes, over the limit of ${limit} bytes`,
    );
  }
  return {
    body: c.req.raw.body,
    limit,
    ...(length === undefined ? {} : { length }),
    ...(contentType === undefined ? {} : { contentType }),
  };
}
