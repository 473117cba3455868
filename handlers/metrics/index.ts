import type { Registry } from 'prom-client';
import type { BlobStore, StoreTelemetry } from '../../storage/index.ts';
import type { Logger } from '../logger.ts';
import { registerHttpFamilies } from './http-families.ts';
import { MetricsSource } from './metrics-source.ts';
import { registerStoreFamilies } from './store-families.ts';

export type { MetricsSource } from './metrics-source.ts';
export type { RouteTally } from './route-tally.ts';

/** A registry's sources: the apps that feed its haystack families, registered once. */
const byRegistry = new WeakMap<Registry, MetricsSource[]>();

/**
 * The metrics of one app on `registry`. Several apps may share a registry (a parent mounting
 * two stores): the families are registered by the first and fed by all, each app's samples
 * carrying `store="<name>"` when it has a name. Two apps with the same name (or both without
 * one) would write the same series, so the second is refused here, when it is made.
 */
export function appMetrics(
  registry: Registry,
  store: BlobStore,
  telemetry: StoreTelemetry | undefined,
  name: string | undefined,
  logger: Logger | undefined,
): MetricsSource {
  let sources = byRegistry.get(registry);
  if (sources === undefined) {
    sources = [];
    registerHttpFamilies(registry, sources);
    registerStoreFamilies(registry, sources);
    byRegistry.set(registry, sources);
  }
  if (sources.some((source) => source.labels.store === name)) {
    throw new Error(
      name === undefined
        ? 'another app already reports metrics on this registry without a metricsName: give each app sharing a registry its own metricsName'
        : `another app already reports metrics on this registry as metricsName "${name}"`,
    );
  }
  const source = new MetricsSource(store, telemetry, name, logger);
  sources.push(source);
  return source;
}
