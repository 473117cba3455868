import { Hono } from 'hono';
import type { BlobStore } from '../storage/index.ts';
import { compactVolumes, markVolumeReadOnly, requireAdminToken } from './admin-routes.ts';
import { checkBearerToken } from './bearer-token.ts';
import { byMethod } from './by-method.ts';
import type { AppEnv, AppSettings } from './env.ts';
import { createErrorHandler, logUnexpected, methodNotAllowed, noRoute } from './errors.ts';
import { fileRoutes } from './file-routes.ts';
import { openApiRoute } from './openapi.ts';
import { statusPage } from './status-page.ts';
import { storeRoutes } from './store-routes.ts';
import { DEFAULT_DISCARD_BOUNDS, type DiscardBounds } from './upload.ts';

export interface CreateAppOptions {
  store: BlobStore;
  /** Largest upload accepted, in bytes; larger ones get 413 and nothing is stored. */
  maxBody: number;
  /**
   * Told about every error answered with a 5xx: bugs (the client sees only a generic 500) and
   * disk trouble such as a corrupt needle or a failing disk. Default: console.error.
   */
  onUnexpectedError?: (err: unknown) => void;
  /**
   * Only `/file/{key},{cookie}` names a file: a bare `/file/{key}` answers 404 `not_found` as a
   * missing file would, and `Location` carries the cookie. Recommended wherever strangers can
   * reach the server, as keys are easy to guess and cookies are not. Default false: the bare key
   * works, as the README's API promises.
   */
  requireCookie?: boolean | undefined;
  /**
   * Turns on the operator routes under `/admin`, which then need `Authorization: Bearer <token>`.
   * Without it they do not exist (404 `no_route`).
   */
  adminToken?: string | undefined;
  /**
   * Serve HTML, SVG, XML and PDF files inline. Default false: they are sent with
   * `Content-Disposition: attachment`, so a browser that follows a link downloads them instead of
   * rendering them as a page of this origin. Every file response carries
   * `Content-Security-Policy: sandbox; default-src 'none'` either way, so scripts never run.
   */
  inlineActive?: boolean | undefined;
  /**
   * A refused upload still being sent is read and dropped up to these bounds (default 64 MiB or
   * 5 s, whichever comes first), so the client reads its answer; then the body is cancelled.
   */
  discardBounds?: DiscardBounds | undefined;
  /** The clock of the status page's uptime, counted from this call (ms, as Date.now, the default). */
  now?: (() => number) | undefined;
}

/**
 * The HTTP face of a store. The app serves `app.fetch(request)` on any fetch-compatible host and
 * can be mounted with `parent.route(prefix, app)`; under a mount, paths this app does not know
 * are left to the parent's `notFound`, as Hono does not lend a sub-app's to its parent.
 */
export function createApp(options: CreateAppOptions): Hono<AppEnv> {
  const {
    store,
    maxBody,
    onUnexpectedError = logUnexpected,
    requireCookie = false,
    adminToken,
    inlineActive = false,
    discardBounds = DEFAULT_DISCARD_BOUNDS,
  } = options;
  if (!Number.isSafeInteger(maxBody) || maxBody < 0) {
    throw new RangeError(`maxBody must be a non-negative integer, got ${maxBody}`);
  }
  // What a bearer token can carry (RFC 6750); an empty token would let anyone in.
  if (adminToken !== undefined) checkBearerToken('adminToken', adminToken);

  const app = new Hono<AppEnv>();
  app.onError(createErrorHandler(onUnexpectedError));
  app.notFound(noRoute);
  // The settings are closed over by the handlers: nothing is set on the context per request.
  const settings: AppSettings = { store, maxBody, requireCookie, inlineActive, discardBounds };
  const { createFile, readFile, replaceFile, deleteFile } = fileRoutes(settings);
  const { syncStore, storeStatus } = storeRoutes(store);

  // One route per path, which picks the handler by method and answers any other with 405: a
  // request matches a single handler, which Hono runs without composing a chain. HEAD is
  // answered by the GET handler (see readFile).
  app.all('/file', byMethod([['POST', createFile]]));
  // `:key` is the file id: `{key}` or `{key},{cookie}`.
  app.all(
    '/file/:key',
    byMethod([
      ['GET', readFile],
      ['HEAD', readFile],
      ['PUT', replaceFile],
      ['DELETE', deleteFile],
    ]),
  );
  app.all('/sync', byMethod([['DELETE', syncStore]]));
  app.all(
    '/status',
    byMethod([
      ['GET', storeStatus],
      ['HEAD', storeStatus],
    ]),
  );
  const ui = statusPage({ store, now: options.now });
  app.all(
    '/ui',
    byMethod([
      ['GET', ui],
      ['HEAD', ui],
    ]),
  );

  const openApi = openApiRoute({ admin: adminToken !== undefined });
  app.all(
    '/openapi.json',
    byMethod([
      ['GET', openApi],
      ['HEAD', openApi],
    ]),
  );

  if (adminToken !== undefined) {
    // Every /admin path asks for the token first, even one that does not exist.
    app.use('/admin/*', requireAdminToken(adminToken));
    // What the store offers is read once, here: no route asks it again per request.
    const { volumes } = store.capabilities;
    app.post('/admin/compact', compactVolumes(volumes));
    app.all('/admin/compact', methodNotAllowed(['POST']));
    app.post('/admin/volumes/:id/readonly', markVolumeReadOnly(volumes));
    app.all('/admin/volumes/:id/readonly', methodNotAllowed(['POST']));
  }

  return app;
}
