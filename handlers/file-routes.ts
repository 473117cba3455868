import { createFactory } from 'hono/factory';
import { validator } from 'hono/validator';
import type { AppEnv } from './env.ts';
import { errorResponse } from './errors.ts';
import {
  fileHeaders,
  locationOf,
  notModifiedHeaders,
  responseBody,
  storedFileJson,
} from './file-response.ts';
import { contentRange, noneMatchHits, planRangedRead, unsatisfiedRange } from './range.ts';
import { parseKey } from './schemas.ts';
import { uploadInput } from './upload.ts';

const factory = createFactory<AppEnv>();

/** Checks `:key` before the handler runs; a bad key is a 400 whatever else the request holds. */
const keyParam = validator('param', (params: Record<string, string>) => ({
  key: parseKey(params.key),
}));

/** POST /file */
export const createFile = factory.createHandlers(async (c) => {
  const info = await c.var.store.put(uploadInput(c));
  const location = locationOf(c.req.url, info.key, false);
  return c.json(storedFileJson(info), 201, { Location: location });
});

/**
 * GET and HEAD /file/{key}. Hono has no HEAD routes: it runs the GET route with the HEAD request
 * (so `c.req.method` is `HEAD`) and drops the body. HEAD therefore asks the store for `head`
 * only, so no bytes are read for a response that will not carry them.
 */
export const readFile = factory.createHandlers(keyParam, async (c) => {
  const { key } = c.req.valid('param');
  const store = c.var.store;
  const isHead = c.req.method === 'HEAD';
  const ifNoneMatch = c.req.header('if-none-match');
  // Range is defined for GET only (RFC 9110 14.2): HEAD describes the whole file.
  const range = isHead ? undefined : c.req.header('range');

  if (!isHead && ifNoneMatch === undefined && range === undefined) {
    const { info, body } = await store.get(key);
    return plainResponse(responseBody(body), 200, fileHeaders(info));
  }

  const info = await store.head(key);
  if (noneMatchHits(ifNoneMatch, info.etag)) return c.body(null, 304, notModifiedHeaders(info));
  if (isHead) return c.body(null, 200, fileHeaders(info));

  const plan = planRangedRead(range, c.req.header('if-range'), info);
  if (plan.kind === 'unsatisfiable') {
    return errorResponse(
      c,
      'range_not_satisfiable',
      `the range ${range} is outside the file's ${info.size} bytes`,
      { 'Content-Range': unsatisfiedRange(info.size) },
    );
  }
  if (plan.kind === 'full') {
    const whole = await store.get(key);
    return c.body(responseBody(whole.body), 200, fileHeaders(whole.info));
  }
  const { start, end } = plan;
  const part = await store.get(key, { start, end });
  return c.body(responseBody(part.body), 206, {
    ...fileHeaders(part.info, end - start + 1),
    'Content-Range': contentRange(start, end, part.info.size),
  });
});

/** PUT /file/{key}: the content moves to a new key, and the old key is gone for good. */
export const replaceFile = factory.createHandlers(keyParam, async (c) => {
  const { key } = c.req.valid('param');
  const info = await c.var.store.replace(key, uploadInput(c));
  const location = locationOf(c.req.url, info.key, true);
  return c.json(storedFileJson(info), 200, { Location: location });
});

/** DELETE /file/{key} */
export const deleteFile = factory.createHandlers(keyParam, async (c) => {
  const { key } = c.req.valid('param');
  await c.var.store.delete(key);
  return c.json({ key, flag: false as const }, 200);
});

/**
 * A Response with plain-object headers. Hono's `c.body` turns more than one header into a
 * `Headers` object, which @hono/node-server must convert back header by header; a plain record
 * goes straight to `writeHead`. This is the hot path of every read.
 */
function plainResponse(
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array>,
  status: number,
  headers: Record<string, string>,
): Response {
  return new Response(body, { status, headers });
}
