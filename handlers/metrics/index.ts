import type { Registry } from 'prom-client';
import type { BlobStore, StoreTelemetry } from '../../storage/index.ts';
import type { Logger } from '../logger.ts';
import { registerHttpFamilies } from './http-families.ts';
import { MetricsSource } from './metrics-source.ts';
import { registerStoreFamilies, type TelemetryFamilies } from './store-families.ts';

export type { MetricsSource } from './metrics-source.ts';
export type { RouteTally } from './route-tally.ts';

/** A registry's haystack families, registered once, and the apps (sources) that feed them. */
interface RegistryMetrics {
  sources: MetricsSource[];
  telemetry: TelemetryFamilies;
}

const byRegistry = new WeakMap<Registry, RegistryMetrics>();

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
  let metrics = byRegistry.get(registry);
  if (metrics === undefined) {
    const sources: MetricsSource[] = [];
    registerHttpFamilies(registry, sources);
    metrics = { sources, telemetry: registerStoreFamilies(registry, sources) };
    byRegistry.set(registry, metrics);
  }
  if (metrics.sources.some((source) => source.labels.store === name)) {
    throw new Error(
      name === undefined
        ? 'another app already reports metrics on this registry without a metricsName: give each app sharing a registry its own metricsName'
        : `another app already reports metrics on this registry as metricsName "${name}"`,
    );
  }
  const source = new MetricsSource(store, telemetry, name, logger);
  metrics.sources.push(source);
  metrics.telemetry.observe(source);
  return source;
}
