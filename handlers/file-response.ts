import type { InferOutput } from 'valibot';
import type { BlobStore, FileInfo, FileRead, Key } from '../storage/index.ts';
import { releaseAfterSend } from './after-send.ts';
import type { storedFileSchema } from './answer-schemas.ts';
import { HttpError } from './errors.ts';
import { contentRange, type RangePlan, unsatisfiedRange } from './range.ts';
import { requestPath } from './request-path.ts';

/** Content under a key never changes, so caches may keep it for good (a year is HTTP's "forever"). */
export const IMMUTABLE = 'public, max-age=31536000, immutable';

/**
 * What POST and PUT answer: where the file is (`fid`, the id `/file/{id}` takes), and what the
 * store made of it. Made from the schema `/openapi.json` documents, so the two cannot drift.
 */
export type StoredFileJson = InferOutput<typeof storedFileSchema>;

export function storedFileJson(info: FileInfo): StoredFileJson {
  const { key, size, offset, volume, cookie, contentType, etag } = info;
  return { key, fid: fileId(info), size, offset, flag: true, volume, cookie, contentType, etag };
}

/** The cookie as a file id writes it: 8 lowercase hex digits. */
export function cookieHex(cookie: number): string {
  return cookie.toString(16).padStart(8, '0');
}

/** `{key},{cookie}`: the id that names the file and proves the caller was told about it. */
export function fileId(info: Pick<FileInfo, 'key' | 'cookie'>): string {
  return `${info.key},${cookieHex(info.cookie)}`;
}

/**
 * A stored file is whatever its uploader sent, so a browser must never run it as a page of this
 * origin: no script, plugin, form or fetch of its own (`sandbox`, `default-src 'none'`), as the
 * big user-content hosts answer. An image, a video or plain text still displays.
 */
export const FILE_CSP = "sandbox; default-src 'none'";

/**
 * Types a browser renders as a document that could act (markup, which may carry script; PDF,
 * which opens a plugin that the sandbox blocks anyway): offered as a download unless the app
 * serves them inline. The essence is compared, lower case, without parameters.
 */
const ACTIVE_TYPES = new Set([
  'text/html',
  'application/xhtml+xml',
  'image/svg+xml',
  'text/xml',
  'application/xml',
  'text/xsl',
  'application/pdf',
]);

export function isActiveType(contentType: string): boolean {
  const semicolon = contentType.indexOf(';');
  const essence = (semicolon === -1 ? contentType : contentType.slice(0, semicolon))
    .trim()
    .toLowerCase();
  return ACTIVE_TYPES.has(essence) || essence.endsWith('+xml');
}

/**
 * Headers every successful read carries, for the whole file or `length` bytes of it. With
 * `inlineActive` false, an active type (see `isActiveType`) is sent as an attachment.
 */
export function fileHeaders(
  info: FileInfo,
  length: number,
  inlineActive: boolean,
): Record<string, string> {
  const headers: Record<string, string> = {
    'Content-Type': info.contentType,
    'Content-Length': String(length),
    ETag: info.etag,
    'Cache-Control': IMMUTABLE,
    'Accept-Ranges': 'bytes',
    // The type is whatever the uploader said: stop browsers from guessing a riskier one.
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': FILE_CSP,
  };
  if (!inlineActive && isActiveType(info.contentType))
    headers['Content-Disposition'] = 'attachment';
  return headers;
}

/** A 304 repeats the validator and caching headers a 200 would have sent (RFC 9110 15.4.5). */
export function notModifiedHeaders(info: FileInfo): Record<string, string> {
  return { ETag: info.etag, 'Cache-Control': IMMUTABLE };
}

/**
 * Where the new file lives, from the URL the request came in on, so that an app mounted under
 * `/media` answers `/media/file/7`. POST comes in on `.../file`; PUT on `.../file/{old id}`.
 * The URL's own (still percent-encoded) path is used, not the decoded routing path. `id` is the
 * key, or the file id `{key},{cookie}` when the app requires cookies.
 */
export function locationOf(requestUrl: string, id: Key | string, replacing: boolean): string {
  const path = requestPath(requestUrl);
  const collection = replacing ? path.slice(0, path.lastIndexOf('/')) : path;
  return `${collection}/${id}`;
}

/**
 * The store's bytes as a response body. Response bodies must not be views of shared memory, so a
 * view of a SharedArrayBuffer (which no adapter should hand out) is copied rather than cast.
 */
export function responseBody(
  body: FileRead['body'],
): Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> {
  if (!(body instanceof Uint8Array)) return body;
  return hasPlainBuffer(body) ? body : body.slice();
}

function hasPlainBuffer(bytes: Uint8Array): bytes is Uint8Array<ArrayBuffer> {
  return bytes.buffer instanceof ArrayBuffer;
}

/**
 * The answer carrying a read's bytes, with the read's `release` left for the host to call once
 * it has been sent (after-send.ts). An answer that does not carry the store's own bytes (a
 * copy), or that cannot be made, gives them back at once. A read whose answer is never made
 * (its headers failed) is simply never given back, which is always safe.
 */
export function lentAnswer(
  read: FileRead,
  status: number,
  headers: Record<string, string>,
): Response {
  const { release } = read;
  if (release === undefined) return new Response(responseBody(read.body), { status, headers });
  try {
    const body = responseBody(read.body);
    const response = new Response(body, { status, headers });
    if (body === read.body) return releaseAfterSend(response, release);
    release();
    return response;
  } catch (err) {
    release();
    throw err;
  }
}

/**
 * The answer to a GET with a Range once it is planned against the file's info: 416 with the
 * file's size, the whole file (200, the range was ignored), or the part (206, `Content-Range`).
 * Shared by the public file routes and a store node's replica routes; `headersFor` gives each
 * its own headers for a body of `length` bytes.
 */
export async function rangedAnswer(
  store: BlobStore,
  key: Key,
  cookie: number | undefined,
  /** The Range header, for the 416's message. */
  range: string | undefined,
  plan: RangePlan,
  size: number,
  headersFor: (info: FileInfo, length: number) => Record<string, string>,
): Promise<Response> {
  if (plan.kind === 'unsatisfiable') {
    throw new HttpError(
      'range_not_satisfiable',
      `the range ${range} is outside the file's ${size} bytes`,
      {
        headers: { 'Content-Range': unsatisfiedRange(size) },
      },
    );
  }
  if (plan.kind === 'full') {
    const whole = await store.get(key, undefined, cookie);
    return lentAnswer(whole, 200, headersFor(whole.info, whole.info.size));
  }
  const { start, end } = plan;
  const part = await store.get(key, { start, end }, cookie);
  return lentAnswer(part, 206, {
    ...headersFor(part.info, end - start + 1),
    'Content-Range': contentRange(start, end, part.info.size),
  });
}
