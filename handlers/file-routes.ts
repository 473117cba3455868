import type { Context, Handler } from 'hono';
import type { FileInfo } from '../storage/index.ts';
import type { AppEnv, AppSettings } from './env.ts';
import { asError, errorsAsErrors, HttpError } from './errors.ts';
import { stampHeaders } from './exchange.ts';
import {
  fileHeaders,
  fileId,
  lentAnswer,
  locationOf,
  notModifiedHeaders,
  rangedAnswer,
  storedFileJson,
} from './file-response.ts';
import { jsonAnswer } from './json-answer.ts';
import { noneMatchHits, planRangedRead } from './range.ts';
import { type FileId, parseFileId } from './schemas.ts';
import { uploadInput } from './upload.ts';

export interface FileRoutes {
  /** POST /file */
  createFile: Handler<AppEnv>;
  /** GET and HEAD /file/{id} */
  readFile: Handler<AppEnv>;
  /** PUT /file/{id} */
  replaceFile: Handler<AppEnv>;
  /** DELETE /file/{id} */
  deleteFile: Handler<AppEnv>;
}

/**
 * The routes of `/file`, built once with the app's settings. Each handler reads and checks
 * `:key` itself (`{key}` or `{key},{cookie}`), first thing, so a bad id is a 400 whatever else
 * the request holds: routing and validation are one step, with no validator middleware between.
 */
export function fileRoutes(settings: AppSettings): FileRoutes {
  const { store, requireCookie, inlineActive } = settings;

  /**
   * The file id of the path. When the app requires cookies, a bare key is answered as a file
   * that does not exist, before the store is asked: the answer is the same whether the key is
   * live or not, so it tells a stranger nothing.
   */
  const fileIdOf = (c: Context<AppEnv>): FileId => {
    const id = parseFileId(c.req.param('key'));
    if (id.cookie === undefined && requireCookie) {
      throw new HttpError(
        'not_found',
        `no file with id ${id.key}: this server names files by key and cookie, /file/{key},{cookie} (the "fid" of the upload's answer)`,
      );
    }
    return id;
  };

  /** Where a stored file is: by file id when cookies are required (a bare key would not work). */
  const locationFor = (c: Context<AppEnv>, info: FileInfo, replacing: boolean): string =>
    locationOf(c.req.url, requireCookie ? fileId(info) : info.key, replacing);

  const createFile = errorsAsErrors<AppEnv>(async (c) => {
    const info = await store.put(await uploadInput(c, settings));
    return jsonAnswer(c, storedFileJson(info), 201, { Location: locationFor(c, info, false) });
  });

  /**
   * GET and HEAD. Hono has no HEAD routes: it runs the GET route with the HEAD request (so
   * `c.req.method` is `HEAD`) and drops the body. HEAD therefore asks the store for `head`
   * only, so no bytes are read for a response that will not carry them. The hot path of every
   * read: no errorsAsErrors wrapper, the try (free while nothing is thrown) is its own; its
   * answers carry their id and length by `stampHeaders`, so the observing wrapper never reads
   * their headers.
   */
  const readFile: Handler<AppEnv> = async (c) => {
    try {
      const { key, cookie } = fileIdOf(c);
      const isHead = c.req.method === 'HEAD';
      const ifNoneMatch = c.req.header('if-none-match');
      // Range is defined for GET only (RFC 9110 14.2): HEAD describes the whole file.
      const range = isHead ? undefined : c.req.header('range');

      if (!isHead && ifNoneMatch === undefined && range === undefined) {
        const read = await store.get(key, undefined, cookie);
        const { info } = read;
        const headers = stampHeaders(c, fileHeaders(info, info.size, inlineActive), info.size);
        return lentAnswer(read, 200, headers);
      }

      const info = await store.head(key, cookie);
      if (noneMatchHits(ifNoneMatch, info.etag)) {
        return plainResponse(null, 304, stampHeaders(c, notModifiedHeaders(info), 0));
      }
      // HEAD declares the file's length and sends none of it.
      if (isHead) {
        return plainResponse(
          null,
          200,
          stampHeaders(c, fileHeaders(info, info.size, inlineActive), 0),
        );
      }

      const plan = planRangedRead(range, c.req.header('if-range'), info);
      return await rangedAnswer(store, key, cookie, range, plan, info.size, (file, length) =>
        stampHeaders(c, fileHeaders(file, length, inlineActive), length),
      );
    } catch (thrown) {
      throw asError(thrown);
    }
  };

  /** The content moves to a new key, and the old key is gone for good. */
  const replaceFile = errorsAsErrors<AppEnv>(async (c) => {
    const { key, cookie } = fileIdOf(c);
    const info = await store.replace(key, await uploadInput(c, settings), cookie);
    return jsonAnswer(c, storedFileJson(info), 200, { Location: locationFor(c, info, true) });
  });

  const deleteFile = errorsAsErrors<AppEnv>(async (c) => {
    const { key, cookie } = fileIdOf(c);
    await store.delete(key, cookie);
    return jsonAnswer(c, { key, flag: false as const }, 200);
  });

  return { createFile, readFile, replaceFile, deleteFile };
}

/**
 * A Response with plain-object headers. Hono's `c.body` turns more than one header into a
 * `Headers` object, which @hono/node-server must convert back header by header; a plain record
 * goes straight to `writeHead`. This is the hot path of every read.
 */
function plainResponse(
  body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null,
  status: number,
  headers: Record<string, string>,
): Response {
  return new Response(body, { status, headers });
}
