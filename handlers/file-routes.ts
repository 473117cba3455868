import type { Context } from 'hono';
import { createFactory } from 'hono/factory';
import { validator } from 'hono/validator';
import type { FileInfo } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { HttpError } from './errors.ts';
import {
  fileHeaders,
  fileId,
  locationOf,
  notModifiedHeaders,
  responseBody,
  storedFileJson,
} from './file-response.ts';
import { contentRange, noneMatchHits, planRangedRead, unsatisfiedRange } from './range.ts';
import { type FileId, parseFileId } from './schemas.ts';
import { uploadInput } from './upload.ts';

const factory = createFactory<AppEnv>();

/**
 * Checks `:key` (`{key}` or `{key},{cookie}`) before the handler runs; a bad id is a 400 whatever
 * else the request holds. When the app requires cookies, a bare key is answered as a file that
 * does not exist, before the store is asked: the answer is the same whether the key is live or
 * not, so it tells a stranger nothing.
 */
const fileIdParam = validator(
  'param',
  (params: Record<string, string>, c: Context<AppEnv>): FileId => {
    const id = parseFileId(params.key);
    if (id.cookie === undefined && c.get('requireCookie')) {
      throw new HttpError(
        'not_found',
        `no file with id ${id.key}: this server names files by key and cookie, /file/{key},{cookie} (the "fid" of the upload's answer)`,
      );
    }
    return id;
  },
);

/** Where a stored file is: by file id when cookies are required (a bare key would not work). */
function locationFor(c: Context<AppEnv>, info: FileInfo, replacing: boolean): string {
  return locationOf(c.req.url, c.get('requireCookie') ? fileId(info) : info.key, replacing);
}

/** POST /file */
export const createFile = factory.createHandlers(async (c) => {
  const info = await c.get('store').put(await uploadInput(c));
  return jsonResponse(storedFileJson(info), 201, { Location: locationFor(c, info, false) });
});

/**
 * GET and HEAD /file/{key}. Hono has no HEAD routes: it runs the GET route with the HEAD request
 * (so `c.req.method` is `HEAD`) and drops the body. HEAD therefore asks the store for `head`
 * only, so no bytes are read for a response that will not carry them.
 */
export const readFile = factory.createHandlers(fileIdParam, async (c) => {
  const { key, cookie } = c.req.valid('param');
  const store = c.get('store');
  const isHead = c.req.method === 'HEAD';
  const inlineActive = c.get('inlineActive');
  const ifNoneMatch = c.req.header('if-none-match');
  // Range is defined for GET only (RFC 9110 14.2): HEAD describes the whole file.
  const range = isHead ? undefined : c.req.header('range');

  if (!isHead && ifNoneMatch === undefined && range === undefined) {
    const { info, body } = await store.get(key, undefined, cookie);
    return plainResponse(responseBody(body), 200, fileHeaders(info, info.size, inlineActive));
  }

  const info = await store.head(key, cookie);
  if (noneMatchHits(ifNoneMatch, info.etag)) return c.body(null, 304, notModifiedHeaders(info));
  if (isHead) return c.body(null, 200, fileHeaders(info, info.size, inlineActive));

  const plan = planRangedRead(range, c.req.header('if-range'), info);
  if (plan.kind === 'unsatisfiable') {
    throw new HttpError(
      'range_not_satisfiable',
      `the range ${range} is outside the file's ${info.size} bytes`,
      { headers: { 'Content-Range': unsatisfiedRange(info.size) } },
    );
  }
  if (plan.kind === 'full') {
    const whole = await store.get(key, undefined, cookie);
    return c.body(
      responseBody(whole.body),
      200,
      fileHeaders(whole.info, whole.info.size, inlineActive),
    );
  }
  const { start, end } = plan;
  const part = await store.get(key, { start, end }, cookie);
  return c.body(responseBody(part.body), 206, {
    ...fileHeaders(part.info, end - start + 1, inlineActive),
    'Content-Range': contentRange(start, end, part.info.size),
  });
});

/** PUT /file/{key}: the content moves to a new key, and the old key is gone for good. */
export const replaceFile = factory.createHandlers(fileIdParam, async (c) => {
  const { key, cookie } = c.req.valid('param');
  const info = await c.get('store').replace(key, await uploadInput(c), cookie);
  return jsonResponse(storedFileJson(info), 200, { Location: locationFor(c, info, true) });
});

/** DELETE /file/{key} */
export const deleteFile = factory.createHandlers(fileIdParam, async (c) => {
  const { key, cookie } = c.req.valid('param');
  await c.get('store').delete(key, cookie);
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

/** `c.json` with a header, kept on the plain-headers path (see plainResponse): every write. */
function jsonResponse(json: unknown, status: number, headers: Record<string, string>): Response {
  return new Response(JSON.stringify(json), {
    status,
    headers: { 'Content-Type': 'application/json', ...headers },
  });
}
