import type { Handler } from 'hono';
import type { Registry } from 'prom-client';
import type { BlobStore } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { errorResponse, errorsAsErrors } from './errors.ts';
import { stampHeaders } from './exchange.ts';
import { jsonAnswer } from './json-answer.ts';

const encoder = new TextEncoder();

/** Probes and scrapes are always fresh: no proxy may answer one from its cache. */
const NO_STORE = { 'Cache-Control': 'no-store' };

/** GET /healthz (the process serves) and /readyz (the store takes writes), for probes. */
export function healthRoutes(store: BlobStore): {
  healthz: Handler<AppEnv>;
  readyz: Handler<AppEnv>;
} {
  return {
    // Nothing is asked of the store.
    healthz: async (c) => jsonAnswer(c, { status: 'ok' }, 200, NO_STORE),
    readyz: errorsAsErrors(async (c) => {
      const readiness = await store.readiness();
      if (readiness.ready) return jsonAnswer(c, { status: 'ready' }, 200, NO_STORE);
      return errorResponse(c, 'unavailable', readiness.reason, NO_STORE);
    }),
  };
}

/** GET /metrics: the registry in Prometheus text format. */
export function metricsRoute(
  registry: Registry,
  /** Called before the first scrape is answered (the app's own process metrics start then). */
  beforeFirstScrape: (() => void) | undefined,
): Handler<AppEnv> {
  let starting = beforeFirstScrape;
  return errorsAsErrors(async (c) => {
    starting?.();
    starting = undefined;
    const body = encoder.encode(await registry.metrics());
    const headers = {
      'Content-Type': registry.contentType,
      'Content-Length': String(body.byteLength),
      ...NO_STORE,
    };
    return new Response(body, { status: 200, headers: stampHeaders(c, headers, body.byteLength) });
  });
}
