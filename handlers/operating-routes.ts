import type { Handler } from 'hono';
import type { Registry } from 'prom-client';
import type { BlobStore } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { errorResponse, errorsAsErrors } from './errors.ts';
import { stampHeaders } from './exchange.ts';
import { jsonAnswer } from './json-answer.ts';

const encoder = new TextEncoder();

/** GET /metrics, /healthz and /readyz: for Prometheus, and for probes of load balancers. */
export function operatingRoutes(
  store: BlobStore,
  registry: Registry,
  /** Called before the first scrape is answered (the app's own process metrics start then). */
  beforeFirstScrape: (() => void) | undefined,
): { metrics: Handler<AppEnv>; healthz: Handler<AppEnv>; readyz: Handler<AppEnv> } {
  let starting = beforeFirstScrape;
  return {
    metrics: errorsAsErrors(async (c) => {
      starting?.();
      starting = undefined;
      const body = encoder.encode(await registry.metrics());
      const headers = {
        'Content-Type': registry.contentType,
        'Content-Length': String(body.byteLength),
        // A scrape is always fresh: no proxy may answer one from its cache.
        'Cache-Control': 'no-store',
      };
      return new Response(body, {
        status: 200,
        headers: stampHeaders(c, headers, body.byteLength),
      });
    }),
    // The process answers: nothing is asked of the store.
    healthz: async (c) => jsonAnswer(c, { status: 'ok' }, 200, { 'Cache-Control': 'no-store' }),
    readyz: errorsAsErrors(async (c) => {
      const readiness = await store.readiness();
      if (readiness.ready) {
        return jsonAnswer(c, { status: 'ready' }, 200, { 'Cache-Control': 'no-store' });
      }
      return errorResponse(c, 'unavailable', readiness.reason, { 'Cache-Control': 'no-store' });
    }),
  };
}
