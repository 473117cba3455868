import type { Registry } from 'prom-client';

type PromClient = typeof import('prom-client');

/**
 * prom-client, loaded when first needed and only on Node: it needs Node's built-ins, and a
 * static import would keep the handlers from bundling for a fetch host (test/portability).
 * There, without a registry given, the app keeps no metrics. `process.getBuiltinModule` is
 * Node's (20.16 on), and a bundler does not follow it.
 */
let promClient: PromClient | null | undefined;

function loadPromClient(): PromClient | null {
  if (promClient !== undefined) return promClient;
  const nodeModule =
    typeof process === 'undefined' ? undefined : process.getBuiltinModule?.('node:module');
  try {
    promClient = nodeModule
      ? (nodeModule.createRequire(import.meta.url)('prom-client') as PromClient)
      : null;
  } catch {
    promClient = null;
  }
  return promClient;
}

/** A registry of the app's own; undefined where prom-client cannot be loaded. */
export function ownRegistry(): Registry | undefined {
  const prom = loadPromClient();
  return prom ? new prom.Registry() : undefined;
}

/**
 * prom-client's default process metrics on `registry`, less the three gauges it names `*_total`
 * (`nodejs_active_handles_total` and the like), which `promtool check metrics` rejects as
 * non-counters with a counter's suffix; their figures stay, by type, in `nodejs_active_handles`,
 * `nodejs_active_requests` and `nodejs_active_resources`.
 */
export function startProcessMetrics(registry: Registry): void {
  const prom = loadPromClient();
  if (!prom) return;
  prom.collectDefaultMetrics({ register: registry });
  for (const name of [
    'nodejs_active_handles_total',
    'nodejs_active_requests_total',
    'nodejs_active_resources_total',
  ]) {
    registry.removeSingleMetric(name);
  }
}
