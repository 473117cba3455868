import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { CacheStats, StoreObserver, VolumeStatus } from '../../storage/index.ts';
import type { MetricsSource } from './metrics-source.ts';
import { DURATION_BUCKETS } from './route-tally.ts';

type Sources = readonly MetricsSource[];

/** Writes made durable by one flush: 1 to 1024, doubling. */
export const WRITES_PER_FLUSH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

const VOLUME_GAUGES: Array<[string, string, (volume: VolumeStatus) => number]> = [
  ['haystack_volume_size_bytes', 'Bytes in the volume file.', (v) => v.bytes],
  ['haystack_volume_live_needles', 'Live needles (files) in the volume.', (v) => v.liveNeedles],
  [
    'haystack_volume_deleted_needles',
    'Deleted and replaced needles still in the volume.',
    (v) => v.deletedNeedles,
  ],
  ['haystack_volume_live_bytes', 'Bytes of live files in the volume.', (v) => v.liveBytes],
  [
    'haystack_volume_garbage_bytes',
    'Bytes of deleted and replaced files in the volume: what compacting it reclaims, at least.',
    (v) => v.garbageBytes,
  ],
  [
    'haystack_volume_read_only',
    'Whether an operator marked the volume read-only (1) or not (0).',
    (v) => (v.readOnly ? 1 : 0),
  ],
];

/** Per-volume gauges, from one `status()` per store per scrape. */
function registerVolumeGauges(registry: Registry, sources: Sources): void {
  for (const [name, help, pick] of VOLUME_GAUGES) {
    new Gauge({
      name,
      help,
      labelNames: ['volume', 'store'],
      registers: [registry],
      async collect() {
        const statuses = await Promise.all(sources.map((source) => source.status()));
        // Set whole after the one await, so a concurrent scrape never sees half of it.
        this.reset();
        sources.forEach((source, i) => {
          for (const volume of statuses[i]?.volumes ?? []) {
            this.set({ ...source.labels, volume: String(volume.id) }, pick(volume));
          }
        });
      },
    });
  }
  new Counter({
    name: 'haystack_store_status_failures_total',
    help: 'Scrapes whose store status call failed; their volume gauges were left out.',
    labelNames: ['store'],
    registers: [registry],
    async collect() {
      await Promise.all(sources.map((source) => source.status()));
      this.reset();
      for (const source of sources) this.inc(source.labels, source.statusFailures);
    },
  });
}

/** Counters and gauges read from the stores' `cacheStats()` when scraped. */
function registerCacheFamilies(registry: Registry, sources: Sources): void {
  const families: Array<[string, string, keyof CacheStats, typeof Counter | typeof Gauge]> = [
    ['haystack_cache_hits_total', 'Reads answered from the needle cache.', 'hits', Counter],
    ['haystack_cache_misses_total', 'Reads the needle cache could not answer.', 'misses', Counter],
    [
      'haystack_cache_bytes',
      'Bytes counted against the cache limit (data and per-entry overhead).',
      'bytes',
      Gauge,
    ],
    ['haystack_cache_entries', 'Needles in the cache.', 'entries', Gauge],
    ['haystack_cache_max_bytes', 'The cache limit in bytes (0: no cache).', 'maxBytes', Gauge],
  ];
  for (const [name, help, field, Kind] of families) {
    const fill = (metric: Counter | Gauge) => {
      metric.reset();
      for (const source of sources) {
        const stats = source.cacheStats?.();
        if (stats === undefined) continue;
        if (metric instanceof Counter) metric.inc(source.labels, stats[field]);
        else metric.set(source.labels, stats[field]);
      }
    };
    if (Kind === Counter) {
      new Counter({
        name,
        help,
        labelNames: ['store'],
        registers: [registry],
        collect() {
          fill(this);
        },
      });
    } else {
      new Gauge({
        name,
        help,
        labelNames: ['store'],
        registers: [registry],
        collect() {
          fill(this);
        },
      });
    }
  }
}

/** The families a store's telemetry events feed, and how a source subscribes to them. */
export interface TelemetryFamilies {
  observe(source: MetricsSource): void;
}

function registerTelemetryFamilies(registry: Registry): TelemetryFamilies {
  const labelNames = ['store'];
  const registers = [registry];
  const flushes = new Counter({
    name: 'haystack_group_commit_flushes_total',
    help: 'Group-commit flushes (each makes one or more writes durable).',
    labelNames,
    registers,
  });
  const writesPerFlush = new Histogram({
    name: 'haystack_group_commit_writes_per_flush',
    help: 'Writes made durable by one group-commit flush.',
    labelNames,
    buckets: WRITES_PER_FLUSH_BUCKETS,
    registers,
  });
  const flushDuration = new Histogram({
    name: 'haystack_group_commit_flush_duration_seconds',
    help: 'Time one group-commit flush took.',
    labelNames,
    buckets: DURATION_BUCKETS,
    registers,
  });
  const corruptReads = new Counter({
    name: 'haystack_corrupt_reads_total',
    help: 'Reads that found a damaged needle and answered corrupt.',
    labelNames,
    registers,
  });
  const compactions = new Counter({
    name: 'haystack_compactions_total',
    help: 'Volume compactions finished.',
    labelNames,
    registers,
  });
  const reclaimed = new Counter({
    name: 'haystack_compaction_reclaimed_bytes_total',
    help: 'Bytes compactions gave back.',
    labelNames,
    registers,
  });
  return {
    observe(source) {
      const telemetry = source.telemetry;
      if (telemetry === undefined) return;
      const labels = source.labels;
      // Every series exists from the start, at 0, so rate() sees the first event.
      for (const counter of [flushes, corruptReads, compactions, reclaimed]) counter.inc(labels, 0);
      writesPerFlush.zero(labels);
      flushDuration.zero(labels);
      const observer: StoreObserver = {
        flushed(writes, seconds) {
          flushes.inc(labels);
          writesPerFlush.observe(labels, writes);
          flushDuration.observe(labels, seconds);
        },
        corruptRead() {
          corruptReads.inc(labels);
        },
        compacted(report) {
          compactions.inc(labels);
          reclaimed.inc(labels, Math.max(0, report.reclaimedBytes));
        },
      };
      // For the store's lifetime: an app has no close, and the store outlives none of its apps.
      telemetry.observe(observer);
    },
  };
}

/** Every store family of the common rules, on `registry`. */
export function registerStoreFamilies(registry: Registry, sources: Sources): TelemetryFamilies {
  registerVolumeGauges(registry, sources);
  registerCacheFamilies(registry, sources);
  return registerTelemetryFamilies(registry);
}
