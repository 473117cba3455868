import type { BlobStore, CacheStats, StoreStatus, StoreTelemetry } from '../../storage/index.ts';
import type { Logger } from '../logger.ts';
import { RouteTally } from './route-tally.ts';
import { TelemetryTally } from './telemetry-tally.ts';

/**
 * One app's part of a registry's metrics: its const labels (`store`, when named), its routes'
 * tallies and its store, which is asked for its status once per scrape.
 */
export class MetricsSource {
  readonly labels: Readonly<Record<string, string>>;
  readonly store: BlobStore;
  readonly routes = new Map<string, RouteTally>();
  /** The store's events, added up; none when it has no telemetry. */
  readonly events: TelemetryTally | undefined;
  readonly cacheStats: (() => CacheStats) | undefined;
  /** Scrapes whose status call failed (their store gauges had no samples). */
  statusFailures = 0;
  readonly #logger: Logger | undefined;
  #pending: Promise<StoreStatus | undefined> | undefined;

  /** `telemetry` is the store's capability, read once by the app (never per request or scrape). */
  constructor(
    store: BlobStore,
    telemetry: StoreTelemetry | undefined,
    name: string | undefined,
    logger: Logger | undefined,
  ) {
    this.labels = name === undefined ? {} : { store: name };
    this.store = store;
    this.#logger = logger;
    this.events = telemetry && new TelemetryTally(telemetry);
    this.cacheStats = telemetry?.cacheStats?.bind(telemetry);
  }

  /** The tally of a route pattern, made on first use (two registrations may share a pattern). */
  route(pattern: string): RouteTally {
    let tally = this.routes.get(pattern);
    if (tally === undefined) {
      tally = new RouteTally(pattern);
      this.routes.set(pattern, tally);
    }
    return tally;
  }

  /**
   * The store's status for the scrape under way: every family collected in one scrape starts its
   * collect in the same tick, so they all share the one call; the next scrape makes a new one.
   * A failing call answers undefined (that store's gauges are left out; the rest of the scrape
   * is answered) and is counted and logged.
   */
  status(): Promise<StoreStatus | undefined> {
    this.#pending ??= this.store
      .status()
      .catch((err: unknown) => {
        this.statusFailures++;
        this.#logger?.warn({ err }, 'the store status for a metrics scrape failed');
        return undefined;
      })
      .finally(() => {
        this.#pending = undefined;
      });
    return this.#pending;
  }
}
