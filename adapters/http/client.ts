import type { Readiness, StoreStatus, SyncReport } from '../../storage/index.ts';
import { boundedText } from './bounded-text.ts';
import { type ByteSpan, checkedBody, fileOfAnswer, type RemoteFile } from './file-answer.ts';
import { type FileRef, type ParsedRef, parseFileRef } from './file-ref.ts';
import {
  clip,
  errorOfAnswer,
  errorOfHeadAnswer,
  HaystackError,
  isRecord,
  networkError,
} from './haystack-error.ts';

export type { ByteSpan, RemoteFile } from './file-answer.ts';
export type { FileRef } from './file-ref.ts';
export {
  type ClientErrorCode,
  HaystackError,
  type HaystackErrorCode,
  type HttpOnlyErrorCode,
} from './haystack-error.ts';

export interface ClientOptions {
  /** Default: `globalThis.fetch`. Any fetch-compatible function (a test double, `app.fetch`...). */
  fetch?: typeof globalThis.fetch;
  /** Sent with every request (say, `Authorization` for a gateway in front). */
  headers?: Record<string, string>;
}

/** A file's bytes as `put` and `replace` take them; a stream is sent as it is read. */
export type UploadBody = Uint8Array | string | Blob | ReadableStream<Uint8Array> | null;

export interface UploadOptions {
  /** Stored and sent back on reads; none gives the type fetch infers (none for bytes and streams). */
  contentType?: string;
  /** The body's length, sent as `Content-Length`: the server then refuses too large a body at once. */
  length?: number;
  signal?: AbortSignal;
}

export interface ReadOptions {
  /** Bytes `start` to `end`, inclusive, or a `Range` header value such as `bytes=-100`. */
  range?: ByteSpan | string;
  signal?: AbortSignal;
}

/** What `put` and `replace` answer: the server's JSON (handlers/file-response.ts, StoredFileJson). */
export interface StoredFile {
  key: number;
  /** The file id `{key},{cookie}`: pass it (or this whole object) to name the file. */
  fid: string;
  size: number;
  /** Where the needle starts in its volume file (0 for stores without volumes, and clusters). */
  offset: number;
  flag: true;
  volume: number;
  cookie: number;
  contentType: string;
  etag: string;
}

/** What `get` answers: the file's info, and its bytes (or the range's) as they arrive. */
export interface Download {
  /** 200 for the whole file; 206 for a range (the server may answer 200 to a range it ignores). */
  status: 200 | 206;
  info: RemoteFile;
  /** The part the body holds, for a 206. */
  range: ByteSpan | undefined;
  /** Bytes in `body`. */
  length: number;
  /** Exactly `length` bytes, or it errors with a HaystackError. Read it or cancel it. */
  body: ReadableStream<Uint8Array>;
}

export interface SyncAnswer extends SyncReport {
  synced: true;
}

export interface HaystackClient {
  put(body: UploadBody, options?: UploadOptions): Promise<StoredFile>;
  get(file: FileRef, options?: ReadOptions): Promise<Download>;
  head(file: FileRef, options?: { signal?: AbortSignal }): Promise<RemoteFile>;
  /** New content under a new key; the old key is gone for good. */
  replace(file: FileRef, body: UploadBody, options?: UploadOptions): Promise<StoredFile>;
  delete(file: FileRef, options?: { signal?: AbortSignal }): Promise<void>;
  /** Answers once the server's volumes and indexes are on disk. */
  sync(): Promise<SyncAnswer>;
  status(): Promise<StoreStatus>;
  /** `GET /readyz`: ready on 200, otherwise not, with the server's reason (never rejects). */
  readiness(): Promise<Readiness>;
}

/**
 * A client of a Haystack server's public API (SPEC.md "HTTP API"), at `baseUrl` (the server's
 * root, or where a parent app mounts it: `http://host/media`). Every failure rejects with a
 * `HaystackError`; an aborted call rejects with its signal's reason, as fetch does.
 */
export function createClient(baseUrl: string | URL, options: ClientOptions = {}): HaystackClient {
  const base = String(baseUrl).replace(/\/+$/, '');
  const doFetch = options.fetch ?? globalThis.fetch;
  const extraHeaders = options.headers ?? {};

  const call = async (path: string, init: RequestInit, what: string): Promise<Response> => {
    const headers = { ...extraHeaders, ...(init.headers as Record<string, string> | undefined) };
    try {
      return await doFetch(`${base}${path}`, { ...init, headers });
    } catch (err) {
      if (init.signal?.aborted) throw init.signal.reason;
      throw networkError(err, what);
    }
  };

  const upload = async (
    method: 'POST' | 'PUT',
    path: string,
    body: UploadBody,
    opts: UploadOptions,
  ): Promise<StoredFile> => {
    const what = `${method} ${path}`;
    if (opts.length !== undefined) checkLength(body, opts.length);
    const headers: Record<string, string> = {};
    if (opts.contentType !== undefined) {
      headers['content-type'] = headerValue('Content-Type', opts.contentType);
    }
    if (opts.length !== undefined) headers['content-length'] = String(opts.length);
    const init: RequestInit & { duplex?: 'half' } = { method, headers, body };
    // A stream goes out as it is read (fetch needs `duplex: 'half'` for that): flat memory.
    if (body instanceof ReadableStream) init.duplex = 'half';
    if (opts.signal) init.signal = opts.signal;
    const res = await call(path, init, what);
    return storedFile(await jsonOf(res, what, method === 'POST' ? 201 : 200), res, what);
  };

  const fileCall = async (
    method: string,
    ref: ParsedRef,
    init: RequestInit,
  ): Promise<{ res: Response; what: string }> => {
    const path = `/file/${ref.segment}`;
    const what = `${method} ${path}`;
    return { res: await call(path, { ...init, method }, what), what };
  };

  return {
    put: (body, opts = {}) => upload('POST', '/file', body, opts),

    async get(file, opts = {}) {
      const ref = parseFileRef(file);
      // The stored bytes as they are: a compressing proxy on the way would make Content-Length
      // (the file's, checked while the body streams) disagree with the body fetch decodes.
      const headers: Record<string, string> = { 'accept-encoding': 'identity' };
      if (opts.range !== undefined) headers.range = rangeHeader(opts.range);
      const init: RequestInit = { headers };
      if (opts.signal) init.signal = opts.signal;
      const { res, what } = await fileCall('GET', ref, init);
      if (res.status !== 200 && res.status !== 206) {
        if (res.ok) throw unexpectedStatus(res, what);
        throw await errorOfAnswer(res, what);
      }
      const { file: info, span, length } = fileOfAnswer(res, ref, what);
      return {
        status: res.status,
        info,
        range: span,
        length,
        body: checkedBody(res.body, length, res.status, what),
      };
    },

    async head(file, opts = {}) {
      const ref = parseFileRef(file);
      const { res, what } = await fileCall('HEAD', ref, opts.signal ? { signal: opts.signal } : {});
      if (res.status !== 200) {
        if (res.ok) throw unexpectedStatus(res, what);
        throw errorOfHeadAnswer(res, what);
      }
      return fileOfAnswer(res, ref, what).file;
    },

    async replace(file, body, opts = {}) {
      return upload('PUT', `/file/${parseFileRef(file).segment}`, body, opts);
    },

    async delete(file, opts = {}) {
      const ref = parseFileRef(file);
      const { res, what } = await fileCall(
        'DELETE',
        ref,
        opts.signal ? { signal: opts.signal } : {},
      );
      await jsonOf(res, what, 200);
    },

    async sync() {
      const res = await call('/sync', { method: 'DELETE' }, 'DELETE /sync');
      const json = await jsonOf(res, 'DELETE /sync', 200);
      if (json.synced !== true || !isCount(json.volumes) || typeof json.durationMs !== 'number') {
        throw malformedJson(res, 'DELETE /sync', 'a sync report');
      }
      return { synced: true, volumes: json.volumes, durationMs: json.durationMs };
    },

    async status() {
      const res = await call('/status', { method: 'GET' }, 'GET /status');
      const json = await jsonOf(res, 'GET /status', 200);
      const counts = [
        'liveNeedles',
        'deletedNeedles',
        'bytes',
        'liveBytes',
        'garbageBytes',
        'nextKey',
      ];
      if (!Array.isArray(json.volumes) || !counts.every((name) => isCount(json[name]))) {
        throw malformedJson(res, 'GET /status', 'a store status');
      }
      return json as unknown as StoreStatus;
    },

    async readiness() {
      let res: Response;
      try {
        res = await call('/readyz', { method: 'GET' }, 'GET /readyz');
      } catch (err) {
        return { ready: false, reason: err instanceof Error ? err.message : String(err) };
      }
      if (res.status === 200) {
        void res.body?.cancel().catch(() => {});
        return { ready: true };
      }
      return { ready: false, reason: (await errorOfAnswer(res, 'GET /readyz')).message };
    },
  };
}

/** Lengthy JSON answers are not the API's: its largest (a status of many volumes) stays far below. */
const MAX_JSON = 8 * 1024 * 1024;

/** The JSON object of an answer with status `expected`, or the error the answer stands for. */
async function jsonOf(
  res: Response,
  what: string,
  expected: number,
): Promise<Record<string, unknown>> {
  if (res.status !== expected) {
    if (res.ok) throw unexpectedStatus(res, what);
    throw await errorOfAnswer(res, what);
  }
  const text = await boundedText(res, MAX_JSON);
  if (text === undefined) {
    throw malformedJson(res, what, `whole JSON of at most ${MAX_JSON} bytes`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new HaystackError(res.status, 'bad_response', `${what}: the answer is not JSON`, {
      cause: err,
    });
  }
  if (!isRecord(json)) throw malformedJson(res, what, 'a JSON object');
  return json;
}

/** The upload answer, checked field by field: callers use these to name the file later. */
function storedFile(json: Record<string, unknown>, res: Response, what: string): StoredFile {
  const { key, fid, size, offset, volume, cookie, contentType, etag } = json;
  if (
    !isCount(key) ||
    key < 1 ||
    typeof fid !== 'string' ||
    !isCount(size) ||
    !isCount(offset) ||
    !isCount(volume) ||
    !isCount(cookie) ||
    cookie > 0xffff_ffff ||
    typeof contentType !== 'string' ||
    typeof etag !== 'string' ||
    json.flag !== true
  ) {
    throw malformedJson(res, what, 'a stored file (key, fid, size, offset, volume, cookie, ...)');
  }
  return { key, fid, size, offset, flag: true, volume, cookie, contentType, etag };
}

function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/**
 * A declared length that the body's own size contradicts is refused before sending (fetch would
 * only fail mid-request); a stream's length is the caller's word, and the server checks it.
 */
function checkLength(body: UploadBody, length: number): void {
  if (!isCount(length)) throw new RangeError(`a length is a byte count, got ${length}`);
  if (body instanceof ReadableStream) return;
  const size =
    body === null
      ? 0
      : typeof body === 'string'
        ? new TextEncoder().encode(body).byteLength
        : body instanceof Blob
          ? body.size
          : body.byteLength;
  if (size !== length) {
    throw new HaystackError(
      0,
      'bad_request',
      `the body has ${size} bytes, not the ${length} declared`,
    );
  }
}

/** Longest header value the client sends: the server takes no longer Content-Type. */
const MAX_HEADER_VALUE = 1024;

/**
 * A header value the caller gave, checked here: fetch would refuse a line break with a TypeError
 * that reads like a network failure, and the server refuses a value it cannot store.
 */
function headerValue(name: string, value: string): string {
  if (value.length <= MAX_HEADER_VALUE && /^[\t\x20-\x7e]*$/.test(value)) return value;
  throw new HaystackError(
    0,
    'bad_request',
    `${name} must be at most ${MAX_HEADER_VALUE} printable ASCII characters`,
  );
}

function rangeHeader(range: ByteSpan | string): string {
  if (typeof range === 'string') return headerValue('Range', range);
  const { start, end } = range;
  if (!isCount(start) || !isCount(end) || end < start) {
    throw new RangeError(`a range is two offsets with start <= end, got ${start}-${end}`);
  }
  return `bytes=${start}-${end}`;
}

function unexpectedStatus(res: Response, what: string): HaystackError {
  void res.body?.cancel().catch(() => {});
  return new HaystackError(
    res.status,
    'bad_response',
    `${what} answered ${res.status}, unexpected`,
  );
}

function malformedJson(res: Response, what: string, expected: string): HaystackError {
  return new HaystackError(
    res.status,
    'bad_response',
    `${what}: the answer is not ${clip(expected, 200)}`,
  );
}
