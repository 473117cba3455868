import { type Handler, Hono, type MiddlewareHandler } from 'hono';
import type { Registry } from 'prom-client';
import type { BlobStore } from '../storage/index.ts';
import { compactVolumes, markVolumeReadOnly, requireAdminToken } from './admin-routes.ts';
import { checkBearerToken } from './bearer-token.ts';
import { byMethod } from './by-method.ts';
import type { AppEnv, AppSettings } from './env.ts';
import { createErrorHandler, logUnexpected, noRoute } from './errors.ts';
import { fileRoutes } from './file-routes.ts';
import type { Logger } from './logger.ts';
import { appMetrics } from './metrics/index.ts';
import { ownRegistry, startProcessMetrics } from './metrics/own-registry.ts';
import { requestObserver } from './observe.ts';
import { openApiRoute } from './openapi.ts';
import { healthRoutes, metricsRoute } from './operating-routes.ts';
import { statusPage } from './status-page.ts';
import { storeRoutes } from './store-routes.ts';
import { DEFAULT_DISCARD_BOUNDS, type DiscardBounds } from './upload.ts';

export interface CreateAppOptions {
  store: BlobStore;
  /** Largest upload accepted, in bytes; larger ones get 413 and nothing is stored. */
  maxBody: number;
  /**
   * Told about every error answered with a 5xx: bugs (the client sees only a generic 500) and
   * disk trouble such as a corrupt needle or a failing disk. Default: none when there is a
   * `logger` (the request's log line carries the error), else a process warning
   * (`process.emitWarning`).
   */
  onUnexpectedError?: (err: unknown) => void;
  /**
   * The Prometheus registry `/metrics` answers from and the app's `haystack_*` metrics go to,
   * for a parent that has one. Default: the app makes its own, with prom-client's default
   * process metrics (`process_*`, `nodejs_*`, started on the first scrape); a registry given here
   * never gets those from the app. Without a registry and with `operatingRoutes: false`, nothing
   * could read metrics, so none are kept.
   */
  registry?: Registry | undefined;
  /**
   * Names this app's store in metrics: its samples carry `store="<name>"`. Needed when more
   * than one app shares a `registry` (each its own name; a second app with a name already used,
   * or a second without one, is refused when made).
   */
  metricsName?: string | undefined;
  /**
   * Where the app logs: one line per request (`info`, or `error` with the cause for a 5xx), a
   * pino-shaped logger (pino's own will do), so a parent passes its own. Default: none.
   */
  logger?: Logger | undefined;
  /**
   * Serve `/metrics`, `/healthz` and `/readyz` (and `/openapi.json` and `/ui`). Default true;
   * false leaves them all out (404 `no_route`), for an app mounted in a parent with its own.
   */
  operatingRoutes?: boolean | undefined;
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
    onUnexpectedError,
    logger,
    registry: givenRegistry,
    metricsName,
    operatingRoutes: withOperatingRoutes = true,
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
  if (metricsName !== undefined && metricsName.length === 0) {
    throw new RangeError('metricsName must not be empty');
  }

  // What the store offers is read once, here: no route asks it again per request.
  const { volumes, telemetry } = store.capabilities;
  // Without the operating routes nothing could read a registry of the app's own.
  const registry = givenRegistry ?? (withOperatingRoutes ? ownRegistry() : undefined);
  const metrics = registry && appMetrics(registry, store, telemetry, metricsName, logger);
  // With a logger, the request's log line is where a 5xx's cause goes (once); Hono's onError,
  // which only an error outside every route could reach, still tells someone.
  const report = onUnexpectedError ?? (logger ? undefined : logUnexpected);
  const observe = requestObserver({
    metrics,
    logger,
    onError: createErrorHandler(report ?? (() => {})),
  });

  const app = new Hono<AppEnv>();
  app.onError(
    createErrorHandler(
      report ??
        ((err) =>
          logger?.error({ err }, 'unexpected error outside a route while serving a request')),
    ),
  );
  const unmatched = observe('unmatched', noRoute as Handler<AppEnv>);
  app.notFound((c) => unmatched(c, async () => {}));
  // The settings are closed over by the handlers: nothing is set on the context per request.
  const settings: AppSettings = { store, maxBody, requireCookie, inlineActive, discardBounds };
  const { createFile, readFile, replaceFile, deleteFile } = fileRoutes(settings);
  const { syncStore, storeStatus } = storeRoutes(store);

  // One route per path, which picks the handler by method and answers any other with 405: a
  // request matches a single handler, which Hono runs without composing a chain, inside the one
  // wrapper that observes it (observe.ts). HEAD is answered by the GET handler (see readFile).
  app.all('/file', observe('/file', byMethod([['POST', createFile]])));
  // `:key` is the file id: `{key}` or `{key},{cookie}`.
  app.all(
    '/file/:key',
    observe(
      '/file/{id}',
      byMethod([
        ['GET', readFile],
        ['HEAD', readFile],
        ['PUT', replaceFile],
        ['DELETE', deleteFile],
      ]),
    ),
  );
  app.all('/sync', observe('/sync', byMethod([['DELETE', syncStore]])));
  app.all(
    '/status',
    observe(
      '/status',
      byMethod([
        ['GET', storeStatus],
        ['HEAD', storeStatus],
      ]),
    ),
  );
  if (withOperatingRoutes) {
    // GET and HEAD only, like every operating route.
    const getRoute = (route: string, handler: Handler<AppEnv>) =>
      app.all(
        route,
        observe(
          route,
          byMethod([
            ['GET', handler],
            ['HEAD', handler],
          ]),
        ),
      );
    const { healthz, readyz } = healthRoutes(store);
    getRoute('/healthz', healthz);
    getRoute('/readyz', readyz);
    // No registry only where prom-client cannot be loaded (a fetch host) and none was given.
    if (registry !== undefined) {
      // Process metrics only on a registry of the app's own, started when first scraped: an
      // app nobody scrapes (most in tests) sets up no GC observer or event-loop monitor.
      const beforeFirstScrape =
        givenRegistry === undefined ? () => startProcessMetrics(registry) : undefined;
      getRoute('/metrics', metricsRoute(registry, beforeFirstScrape));
    }
    getRoute('/openapi.json', openApiRoute({ admin: adminToken !== undefined }));
    getRoute('/ui', statusPage({ store, registry, now: options.now }));
  }

  if (adminToken !== undefined) {
    // Every /admin path asks for the token first, even one that does not exist: the check runs
    // inside each route's one handler (so the wrapper sees its 401), and a catch-all answers
    // the paths no route has once the token is right.
    const guarded = adminGuard(requireAdminToken(adminToken));
    const adminRoute = (path: string, route: string, handler: Handler<AppEnv>) =>
      app.all(path, observe(route, guarded(byMethod([['POST', handler]]))));
    adminRoute('/admin/compact', '/admin/compact', compactVolumes(volumes));
    adminRoute(
      '/admin/volumes/:id/readonly',
      '/admin/volumes/{id}/readonly',
      markVolumeReadOnly(volumes),
    );
    app.all('/admin/*', observe('unmatched', guarded(noRoute)));
  }

  return app;
}

/** Runs `check` (a middleware that throws to refuse) before `handler`, as a single handler. */
function adminGuard(check: MiddlewareHandler) {
  return (handler: Handler<AppEnv>): Handler<AppEnv> =>
    async (c, next) => {
      let res: Response | undefined;
      await check(c, async () => {
        res = (await handler(c, next)) as Response;
      });
      return res as Response;
    };
}
