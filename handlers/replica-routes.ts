import { type Context, Hono } from 'hono';
import {
  type BlobStore,
  type FileInfo,
  KEY_PAGE_DEFAULT,
  KEY_PAGE_MAX,
  type KeyPage,
  MAX_KEY,
  REPLICA_HEADERS,
  type ReplicaVolumes,
  type ReplicaWriter,
} from '../storage/index.ts';
import { checkBearerToken, requireBearerToken } from './bearer-token.ts';
import { byMethod } from './by-method.ts';
import type { AppEnv } from './env.ts';
import { createErrorHandler, errorsAsErrors, HttpError, logUnexpected, noRoute } from './errors.ts';
import { lentAnswer, rangedAnswer } from './file-response.ts';
import { planRange } from './range.ts';
import { parseDecimalCookie, parseKey, parseQueryInteger, parseVolume } from './schemas.ts';
import { DEFAULT_DISCARD_BOUNDS, type DiscardBounds, uploadInput } from './upload.ts';

export interface CreateReplicaAppOptions {
  /** The node's replicas, one store per logical volume. */
  replicas: ReplicaVolumes;
  /** The cluster token: every request needs `Authorization: Bearer <token>`. */
  token: string;
  /** Largest file accepted, in bytes; larger ones get 413 and nothing is stored. */
  maxBody: number;
  /** The node's id, answered by `GET /status`. Default: the empty string. */
  node?: string | undefined;
  /** Told about every error answered with a 5xx (see `createApp`). Default: a process warning. */
  onUnexpectedError?: ((err: unknown) => void) | undefined;
  /** How much of a refused upload is read and dropped (see `createApp`). */
  discardBounds?: DiscardBounds | undefined;
}

/**
 * A store node's internal replica API (docs/CLUSTER-DESIGN.md), for gateways and other nodes
 * only: every request, whatever its path, is refused with 401 `unauthorized` without the cluster
 * token, before a byte of its body is read and before anything is looked up. Errors are the
 * public app's JSON errors, under the same statuses.
 */
export function createReplicaApp(options: CreateReplicaAppOptions): Hono<AppEnv> {
  const {
    replicas,
    token,
    maxBody,
    node = '',
    onUnexpectedError = logUnexpected,
    discardBounds = DEFAULT_DISCARD_BOUNDS,
  } = options;
  if (!Number.isSafeInteger(maxBody) || maxBody < 0) {
    throw new RangeError(`maxBody must be a non-negative integer, got ${maxBody}`);
  }
  checkBearerToken('token', token);

  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(onUnexpectedError));
  app.notFound(noRoute);
  app.use(
    '*',
    requireBearerToken(token, {
      realm: 'haystack cluster',
      routes: 'replica routes',
      what: 'cluster token',
    }),
  );

  /** The volume's replica, which must exist. */
  const replicaOf = (c: Context<AppEnv>): Promise<BlobStore> =>
    replicas.replica(parseVolume(c.req.param('volume')));

  const putFile = errorsAsErrors<AppEnv>(async (c) => {
    const volume = parseVolume(c.req.param('volume'));
    const key = parseKey(c.req.param('key'));
    const cookie = parseDecimalCookie(c.req.header(REPLICA_HEADERS.cookie));
    if (cookie === undefined) {
      throw new HttpError(
        'bad_request',
        `a replica write needs the ${REPLICA_HEADERS.cookie} header`,
      );
    }
    // Headers and a declared length over the limit are refused before a replica is made.
    const input = await uploadInput(c, { maxBody, discardBounds });
    const store = await replicas.replica(volume, { create: true });
    const info = await writerOf(store).putReplica(key, cookie, input);
    return c.json(fileInfoJson(info, volume), 201);
  });

  /** GET and HEAD (Hono runs this route for HEAD and drops the body; HEAD reads no bytes). */
  const readFile = errorsAsErrors<AppEnv>(async (c) => {
    const store = await replicaOf(c);
    const key = parseKey(c.req.param('key'));
    const cookie = parseDecimalCookie(c.req.header(REPLICA_HEADERS.cookie));
    if (c.req.method === 'HEAD') {
      const info = await store.head(key, cookie);
      return c.body(null, 200, fileHeaders(info, info.size));
    }
    const range = c.req.header('range');
    if (range === undefined) {
      const read = await store.get(key, undefined, cookie);
      return lentAnswer(read, 200, fileHeaders(read.info, read.info.size));
    }
    const info = await store.head(key, cookie);
    return rangedAnswer(
      store,
      key,
      cookie,
      range,
      planRange(range, info.size),
      info.size,
      fileHeaders,
    );
  });

  const deleteFile = errorsAsErrors<AppEnv>(async (c) => {
    const store = await replicaOf(c);
    const key = parseKey(c.req.param('key'));
    await store.delete(key, parseDecimalCookie(c.req.header(REPLICA_HEADERS.cookie)));
    return c.json({ key, flag: false as const }, 200);
  });

  const listKeys = errorsAsErrors<AppEnv>(async (c) => {
    const volume = parseVolume(c.req.param('volume'));
    const after = parseQueryInteger('after', c.req.query('after'), {
      min: 0,
      max: MAX_KEY,
      fallback: 0,
    });
    const limit = parseQueryInteger('limit', c.req.query('limit'), {
      min: 1,
      max: KEY_PAGE_MAX,
      fallback: KEY_PAGE_DEFAULT,
    });
    const keys = await writerOf(await replicas.replica(volume)).listKeys(after, limit);
    const page: KeyPage = { keys, next: keys.length < limit ? null : (keys.at(-1) ?? null) };
    return c.json(page, 200);
  });

  const syncAll = errorsAsErrors<AppEnv>(async (c) =>
    c.json({ synced: true as const, ...(await replicas.sync()) }, 200),
  );
  const nodeStatus = errorsAsErrors<AppEnv>(async (c) =>
    c.json({ node, replicas: await replicas.status() }, 200),
  );

  // `keys` first: it is no key, so `/replicas/{volume}/keys` is this route's alone.
  app.all('/replicas/:volume/keys', byMethod<AppEnv>([['GET', listKeys]]));
  app.all(
    '/replicas/:volume/:key',
    byMethod<AppEnv>([
      ['GET', readFile],
      ['HEAD', readFile],
      ['PUT', putFile],
      ['DELETE', deleteFile],
    ]),
  );
  app.all('/sync', byMethod<AppEnv>([['DELETE', syncAll]]));
  app.all('/status', byMethod<AppEnv>([['GET', nodeStatus]]));
  return app;
}

/** The replica capability a node's stores must offer. */
function writerOf(store: BlobStore): ReplicaWriter {
  const writer = store.capabilities.replicas;
  if (writer === undefined) {
    throw new HttpError(
      'not_supported',
      'this node stores its replicas in a store without replica writes',
    );
  }
  return writer;
}

/** A stored file as the cluster names it: in its logical volume, not the replica's own. */
function fileInfoJson(info: FileInfo, volume: number): FileInfo {
  const { key, size, offset, cookie, contentType, etag } = info;
  return { key, size, volume, offset, cookie, contentType, etag };
}

/** What a read answers with, for the whole file or `length` bytes of it. */
function fileHeaders(info: FileInfo, length: number): Record<string, string> {
  return {
    'Content-Type': info.contentType,
    'Content-Length': String(length),
    ETag: info.etag,
    [REPLICA_HEADERS.cookie]: String(info.cookie),
    [REPLICA_HEADERS.size]: String(info.size),
    [REPLICA_HEADERS.offset]: String(info.offset),
  };
}
