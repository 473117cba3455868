import type { Registry } from 'prom-client';
import type { CacheStats, VolumeStatus } from '../../storage/index.ts';
import { type FamilyValue, ScrapedFamily } from './family.ts';
import type { MetricsSource } from './metrics-source.ts';
import type { TelemetryTally } from './telemetry-tally.ts';

type Sources = readonly MetricsSource[];

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

/** Per-volume gauges, from one `status()` per store per scrape (see MetricsSource.status). */
function volumeFamilies(sources: Sources): ScrapedFamily[] {
  const families = VOLUME_GAUGES.map(
    ([name, help, pick]) =>
      new ScrapedFamily(name, help, 'gauge', async () => {
        const statuses = await Promise.all(sources.map((source) => source.status()));
        return sources.flatMap((source, i) =>
          (statuses[i]?.volumes ?? []).map((volume) => ({
            labels: { ...source.labels, volume: String(volume.id) },
            value: pick(volume),
          })),
        );
      }),
  );
  families.push(
    new ScrapedFamily(
      'haystack_store_status_failures_total',
      'Scrapes whose store status call failed; their volume gauges were left out.',
      'counter',
      async () => {
        // After this scrape's status call, so that its failure is counted in this scrape.
        await Promise.all(sources.map((source) => source.status()));
        return sources.map((source) => ({ labels: source.labels, value: source.statusFailures }));
      },
    ),
  );
  return families;
}

/** Counters and gauges read from the stores' `cacheStats()` when scraped. */
function cacheFamilies(sources: Sources): ScrapedFamily[] {
  const families: Array<[string, string, keyof CacheStats, 'counter' | 'gauge']> = [
    ['haystack_cache_hits_total', 'Reads answered from the needle cache.', 'hits', 'counter'],
    [
      'haystack_cache_misses_total',
      'Reads the needle cache could not answer.',
      'misses',
      'counter',
    ],
    [
      'haystack_cache_bytes',
      'Bytes counted against the cache limit (data and per-entry overhead).',
      'bytes',
      'gauge',
    ],
    ['haystack_cache_entries', 'Needles in the cache.', 'entries', 'gauge'],
    ['haystack_cache_max_bytes', 'The cache limit in bytes (0: no cache).', 'maxBytes', 'gauge'],
  ];
  return families.map(
    ([name, help, field, type]) =>
      new ScrapedFamily(name, help, type, () => {
        const values: FamilyValue[] = [];
        for (const source of sources) {
          const stats = source.cacheStats?.();
          if (stats !== undefined) values.push({ labels: source.labels, value: stats[field] });
        }
        return values;
      }),
  );
}

/** The families the stores' telemetry events feed. */
function telemetryFamilies(sources: Sources): ScrapedFamily[] {
  const each =
    (pick: (events: TelemetryTally, labels: Record<string, string>) => FamilyValue[]) => () =>
      sources.flatMap((source) => (source.events ? pick(source.events, { ...source.labels }) : []));
  const counter = (name: string, help: string, value: (events: TelemetryTally) => number) =>
    new ScrapedFamily(
      name,
      help,
      'counter',
      each((events, labels) => [{ labels, value: value(events) }]),
    );
  const writes = 'haystack_group_commit_writes_per_flush';
  const duration = 'haystack_group_commit_flush_duration_seconds';
  return [
    counter(
      'haystack_group_commit_flushes_total',
      'Group-commit flushes (each makes one or more writes durable).',
      (events) => events.flushes,
    ),
    new ScrapedFamily(
      writes,
      'Writes made durable by one group-commit flush.',
      'histogram',
      each((events, labels) => events.writesPerFlush.values(writes, labels)),
    ),
    new ScrapedFamily(
      duration,
      'Time one group-commit flush took.',
      'histogram',
      each((events, labels) => events.flushDuration.values(duration, labels)),
    ),
    counter(
      'haystack_corrupt_reads_total',
      'Reads that found a damaged needle and answered corrupt.',
      (events) => events.corruptReads,
    ),
    counter('haystack_compactions_total', 'Volume compactions finished.', (e) => e.compactions),
    counter(
      'haystack_compaction_reclaimed_bytes_total',
      'Bytes compactions gave back.',
      (events) => events.reclaimedBytes,
    ),
  ];
}

/** Every store family of the common rules, on `registry`. */
export function registerStoreFamilies(registry: Registry, sources: Sources): void {
  for (const family of [
    ...volumeFamilies(sources),
    ...cacheFamilies(sources),
    ...telemetryFamilies(sources),
  ]) {
    family.registerOn(registry);
  }
}
