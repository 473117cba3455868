import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { Agent, type Dispatcher } from 'undici';
import {
  type ByteRange,
  type FileInfo,
  type Key,
  type KeyPage,
  REPLICA_HEADERS,
  type ReplicaStatus,
  replicaFilePath,
  replicaKeysPath,
  StoreError,
  type StoreErrorCode,
  type SyncReport,
  storeErrorCodes,
} from '../../storage/index.ts';
import { NodeUnreachable, type ReplicaApi, type ReplicaBody } from './replica-api-client.ts';

export interface ReplicaClientOptions {
  /** The cluster token, sent as `Authorization: Bearer <token>`. */
  token: string;
  /**
   * How long a node may take to accept a connection, to start its answer, and between two
   * chunks of a body, in milliseconds; past it the call is `NodeUnreachable`. Default 10 s.
   * undici checks its header and body timeouts on a timer of about half a second, so one fires
   * up to a second late: a deadline for fail-over, not a stopwatch.
   */
  timeoutMs?: number;
  /** Connections kept to each node at most. Default: no limit (undici's). */
  connections?: number;
}

/**
 * A node refused the cluster token (401): this gateway or node was started with another
 * `--cluster-token` than the node. A configuration error, not a node failure: no retry elsewhere
 * will mend it, and the node is not down.
 */
export class ClusterTokenRefused extends Error {
  override readonly name = 'ClusterTokenRefused';
  readonly node: string;

  constructor(node: string, message: string) {
    super(
      `${node} refused the cluster token (${message}): the cluster tokens of this process and that node differ`,
    );
    this.node = node;
  }
}

/** Bodies read whole when no `bufferUpTo` is given. */
const DEFAULT_BUFFER_UP_TO = 1024 * 1024;
/** The most of a JSON answer (success or error) read; more is a malformed answer. */
const MAX_JSON_ANSWER = 16 * 1024 * 1024;
/** An error answer is small; past this it is cut (the code comes first). */
const MAX_ERROR_ANSWER = 64 * 1024;

const STORE_CODES: ReadonlySet<string> = new Set(storeErrorCodes);

/** The replica API's client (see `ReplicaApi` for what each call and failure means), over undici. */
export function createReplicaClient(options: ReplicaClientOptions): ReplicaApi {
  const { token, timeoutMs = 10_000, connections } = options;
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) {
    throw new RangeError(`timeoutMs must be a positive integer, got ${timeoutMs}`);
  }
  const agent = new Agent({
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: { timeout: timeoutMs },
    ...(connections === undefined ? {} : { connections }),
  });
  const authorization = `Bearer ${token}`;

  /** Sends a request; a transport failure is `NodeUnreachable`. */
  async function send(
    node: string,
    method: Dispatcher.HttpMethod,
    path: string,
    headers: Record<string, string> = {},
    body?: Uint8Array | Readable,
  ): Promise<Dispatcher.ResponseData> {
    try {
      return await agent.request({
        origin: node,
        path,
        method,
        headers: { authorization, ...headers },
        ...(body === undefined ? {} : { body }),
      });
    } catch (err) {
      throw unreachable(node, `${method} ${path} failed: ${describe(err)}`, err);
    }
  }

  /** The JSON of an answer with status `expected`; any other answer is its error. */
  async function jsonOf(
    node: string,
    res: Dispatcher.ResponseData,
    expected: number,
  ): Promise<unknown> {
    if (res.statusCode !== expected) throw await failureOf(node, res);
    const text = await readText(node, res.body, MAX_JSON_ANSWER);
    try {
      return JSON.parse(text);
    } catch (err) {
      throw unreachable(node, 'its answer is not JSON', err);
    }
  }

  return {
    async put(node, volume, key, cookie, file) {
      const path = replicaFilePath(volume, key);
      const headers = {
        'content-type': file.contentType,
        'content-length': String(file.size),
        [REPLICA_HEADERS.cookie]: String(cookie),
      };
      const { body, sourceError, release } = bodyOf(file);
      let res: Dispatcher.ResponseData;
      try {
        res = await send(node, 'PUT', path, headers, body);
      } catch (err) {
        // A spool file that failed to read is this side's trouble, not the node's.
        throw sourceError() ?? err;
      } finally {
        release();
      }
      return fileInfoOf(node, await jsonOf(node, res, 201));
    },

    async get(node, volume, key, { range, cookie, bufferUpTo = DEFAULT_BUFFER_UP_TO } = {}) {
      const headers: Record<string, string> = {};
      if (cookie !== undefined) headers[REPLICA_HEADERS.cookie] = String(cookie);
      if (range !== undefined) headers.range = `bytes=${range.start}-${range.end}`;
      const res = await send(node, 'GET', replicaFilePath(volume, key), headers);
      const expected = range === undefined ? 200 : 206;
      if (res.statusCode !== expected) throw await failureOf(node, res);
      let info: FileInfo;
      let length: number;
      try {
        info = readInfo(node, res.headers, key, volume);
        length = contentLength(node, res.headers);
        checkLength(node, res.headers, info, length, range);
      } catch (err) {
        letGo(res.body);
        throw err;
      }
      if (length <= bufferUpTo) {
        const bytes = await readBytes(node, res.body, length);
        if (bytes.byteLength !== length) {
          throw unreachable(node, `the answer ended after ${bytes.byteLength} of ${length} bytes`);
        }
        return { info, body: bytes };
      }
      return { info, body: webStream(node, res.body, length) };
    },

    async head(node, volume, key, cookie) {
      const headers: Record<string, string> = {};
      if (cookie !== undefined) headers[REPLICA_HEADERS.cookie] = String(cookie);
      const res = await send(node, 'HEAD', replicaFilePath(volume, key), headers);
      if (res.statusCode !== 200) throw await failureOf(node, res, true);
      await res.body.dump().catch(() => {});
      const info = readInfo(node, res.headers, key, volume);
      checkLength(node, res.headers, info, contentLength(node, res.headers), undefined);
      return info;
    },

    async delete(node, volume, key, cookie) {
      const headers: Record<string, string> = {};
      if (cookie !== undefined) headers[REPLICA_HEADERS.cookie] = String(cookie);
      const res = await send(node, 'DELETE', replicaFilePath(volume, key), headers);
      const answer = await jsonOf(node, res, 200);
      if (!isRecord(answer) || answer.key !== key || answer.flag !== false) {
        throw unreachable(node, 'its answer to a delete is not {key, flag: false}');
      }
    },

    async listKeys(node, volume, after, limit) {
      const res = await send(node, 'GET', replicaKeysPath(volume, after, limit));
      const page = await jsonOf(node, res, 200);
      if (
        !isRecord(page) ||
        !Array.isArray(page.keys) ||
        !page.keys.every(isKey) ||
        !(page.next === null || isKey(page.next))
      ) {
        throw unreachable(node, 'its page of keys is not {keys: [...], next}');
      }
      return { keys: page.keys, next: page.next } as KeyPage;
    },

    async sync(node) {
      const report = await jsonOf(node, await send(node, 'DELETE', '/sync'), 200);
      if (!isRecord(report) || !isCount(report.volumes) || typeof report.durationMs !== 'number') {
        throw unreachable(node, 'its sync report is not {synced, volumes, durationMs}');
      }
      return { volumes: report.volumes, durationMs: report.durationMs } satisfies SyncReport;
    },

    async status(node) {
      const status = await jsonOf(node, await send(node, 'GET', '/status'), 200);
      if (
        !isRecord(status) ||
        typeof status.node !== 'string' ||
        !Array.isArray(status.replicas) ||
        !status.replicas.every((replica) => isRecord(replica) && isKey(replica.volume))
      ) {
        throw unreachable(node, 'its status is not {node, replicas: [{volume, ...}]}');
      }
      return { node: status.node, replicas: status.replicas as ReplicaStatus[] };
    },

    close: () => agent.close(),
  };
}

/**
 * What undici sends for a file: its bytes, or a stream opened for this request. The stream's own
 * failure is kept apart from the node's; `release` destroys a stream the request left unread
 * (a node that answered before taking the whole body).
 */
function bodyOf(file: ReplicaBody): {
  body: Uint8Array | Readable;
  sourceError: () => unknown;
  release: () => void;
} {
  if ('bytes' in file) {
    if (file.bytes.byteLength !== file.size) {
      throw new RangeError(
        `the file has ${file.bytes.byteLength} bytes, not its size ${file.size}`,
      );
    }
    return { body: file.bytes, sourceError: () => undefined, release: () => {} };
  }
  const stream = file.open();
  let failure: unknown;
  const onError = (err: unknown) => {
    failure ??= err;
  };
  stream.on('error', onError);
  return {
    body: stream,
    sourceError: () => failure,
    release() {
      if (!stream.destroyed) stream.destroy();
      // A late error of a destroyed stream must not go unhandled.
      stream.on('error', () => {});
      stream.off('error', onError);
    },
  };
}

/** A refused, failed or unexpected answer as the error the caller sees (its body consumed). */
async function failureOf(
  node: string,
  res: Dispatcher.ResponseData,
  bodiless = false,
): Promise<Error> {
  const { statusCode } = res;
  let text: string;
  try {
    text = await readText(node, res.body, MAX_ERROR_ANSWER, true);
  } catch (err) {
    return err instanceof Error ? err : unreachable(node, 'its answer broke off', err);
  }
  // A HEAD answer has no body: its status is all there is to go by.
  const error = errorOf(text) ?? (bodiless ? codeOfStatus(statusCode) : undefined);
  if (statusCode === 401) return new ClusterTokenRefused(node, error?.message ?? 'no message');
  if (statusCode < 400) {
    return unreachable(node, `it answered ${statusCode}, which this call never gets`);
  }
  if (error !== undefined && STORE_CODES.has(error.code)) {
    return new StoreError(error.code as StoreErrorCode, `${node}: ${error.message}`);
  }
  if (statusCode >= 500) {
    const said = error === undefined ? '' : ` (${error.code}: ${error.message})`;
    return new StoreError('io_error', `${node} failed with ${statusCode}${said}`);
  }
  if (error === undefined) {
    return unreachable(node, `it answered ${statusCode} without a JSON error`);
  }
  // An HTTP-only refusal (no_route, method_not_allowed, range_not_satisfiable): the request was
  // wrong for this node, so retrying it elsewhere will not help either.
  return new StoreError(
    'bad_request',
    `${node} refused it with ${statusCode} ${error.code}: ${error.message}`,
  );
}

/** What a bodiless error answer (to a HEAD) means, by its status as the node's table maps codes. */
const CODE_BY_STATUS: Readonly<Record<number, StoreErrorCode>> = {
  400: 'bad_request',
  403: 'read_only',
  404: 'not_found',
  409: 'conflict',
  413: 'too_large',
  503: 'closed',
  507: 'no_space',
};

function codeOfStatus(status: number): { code: string; message: string } | undefined {
  const code = CODE_BY_STATUS[status];
  return code === undefined ? undefined : { code, message: `answered ${status} to a HEAD` };
}

function errorOf(text: string): { code: string; message: string } | undefined {
  try {
    const json: unknown = JSON.parse(text);
    if (!isRecord(json) || !isRecord(json.error)) return undefined;
    const { code, message } = json.error;
    if (typeof code !== 'string') return undefined;
    return { code, message: typeof message === 'string' ? message : code };
  } catch {
    return undefined;
  }
}

/** A body read whole, at most `max` bytes; more is malformed (or, with `cut`, ignored). */
async function readText(node: string, body: Readable, max: number, cut = false): Promise<string> {
  const bytes = await readBytes(node, body, max, cut);
  return new TextDecoder().decode(bytes);
}

/**
 * Reads a body to its end, or its first `max` bytes: with `cut` the rest is dropped, else more
 * than `max` is a malformed answer. A body that breaks off is `NodeUnreachable`.
 */
async function readBytes(
  node: string,
  body: Readable,
  max: number,
  cut = false,
): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      total += chunk.byteLength;
      if (total > max) {
        if (!cut) throw unreachable(node, `its answer is longer than the ${max} bytes expected`);
        chunks.push(chunk.subarray(0, chunk.byteLength - (total - max)));
        break;
      }
      chunks.push(chunk);
    }
  } catch (err) {
    throw err instanceof NodeUnreachable
      ? err
      : unreachable(node, `its answer broke off: ${describe(err)}`, err);
  } finally {
    letGo(body);
  }
  const bytes = Buffer.concat(chunks);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * The body as the web stream `FileRead.body` is: it errors with `NodeUnreachable` when the node's
 * answer breaks off or ends short of `length`; a cancel lets the connection go.
 */
function webStream(node: string, body: Readable, length: number): ReadableStream<Uint8Array> {
  const chunks = (body as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  let received = 0;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<Buffer>;
        try {
          next = await chunks.next();
        } catch (err) {
          letGo(body);
          controller.error(
            unreachable(node, `the file broke off after ${received} bytes: ${describe(err)}`, err),
          );
          return;
        }
        if (next.done) {
          if (received === length) controller.close();
          else
            controller.error(
              unreachable(node, `the file ended after ${received} of ${length} bytes`),
            );
          return;
        }
        received += next.value.byteLength;
        if (received > length) {
          letGo(body);
          controller.error(unreachable(node, `the file runs past its ${length} bytes`));
          return;
        }
        controller.enqueue(
          new Uint8Array(next.value.buffer, next.value.byteOffset, next.value.byteLength),
        );
      },
      cancel() {
        letGo(body);
      },
    },
    { highWaterMark: 0 },
  );
}

/** The file a read describes, from the answer's headers; anything missing is malformed. */
function readInfo(node: string, headers: IncomingHttpHeaders, key: Key, volume: number): FileInfo {
  const cookie = decimalHeader(node, headers, REPLICA_HEADERS.cookie);
  if (cookie > 0xffff_ffff) throw unreachable(node, `its ${REPLICA_HEADERS.cookie} is not 32-bit`);
  return {
    key,
    size: decimalHeader(node, headers, REPLICA_HEADERS.size),
    volume,
    offset: decimalHeader(node, headers, REPLICA_HEADERS.offset),
    cookie,
    contentType: textHeader(node, headers, 'content-type'),
    etag: textHeader(node, headers, 'etag'),
  };
}

function contentLength(node: string, headers: IncomingHttpHeaders): number {
  return decimalHeader(node, headers, 'content-length');
}

/** The body is the whole file, or exactly the range asked for (and says so). */
function checkLength(
  node: string,
  headers: IncomingHttpHeaders,
  info: FileInfo,
  length: number,
  range: ByteRange | undefined,
): void {
  if (range === undefined) {
    if (length !== info.size) {
      throw unreachable(node, `it sent ${length} bytes of a ${info.size}-byte file`);
    }
    return;
  }
  const expected = `bytes ${range.start}-${range.end}/${info.size}`;
  if (length !== range.end - range.start + 1 || headers['content-range'] !== expected) {
    throw unreachable(node, `its answer to a range is not ${expected}`);
  }
}

function textHeader(node: string, headers: IncomingHttpHeaders, name: string): string {
  const value = headers[name];
  if (typeof value !== 'string') throw unreachable(node, `its answer has no single ${name} header`);
  return value;
}

function decimalHeader(node: string, headers: IncomingHttpHeaders, name: string): number {
  const value = textHeader(node, headers, name);
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw unreachable(
      node,
      `its ${name} header is not a decimal integer: ${JSON.stringify(value)}`,
    );
  }
  return Number(value);
}

/** The FileInfo JSON of a write, checked field by field. */
function fileInfoOf(node: string, json: unknown): FileInfo {
  if (
    isRecord(json) &&
    isKey(json.key) &&
    isCount(json.size) &&
    isKey(json.volume) &&
    isCount(json.offset) &&
    isCount(json.cookie) &&
    typeof json.contentType === 'string' &&
    typeof json.etag === 'string'
  ) {
    const { key, size, volume, offset, cookie, contentType, etag } = json;
    return { key, size, volume, offset, cookie, contentType, etag };
  }
  throw unreachable(node, 'its answer to a write is not a file info');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isKey(value: unknown): value is number {
  return isCount(value) && value >= 1;
}

/**
 * Lets an answer's body go, which frees its connection: undici errors a body destroyed unread,
 * and nobody listens for that error any more.
 */
function letGo(body: Readable): void {
  if (body.destroyed) return;
  body.on('error', () => {});
  body.destroy();
}

function unreachable(node: string, message: string, cause?: unknown): NodeUnreachable {
  return new NodeUnreachable(node, message, cause === undefined ? undefined : { cause });
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' ? `${code} ${err.message}` : err.message;
}
