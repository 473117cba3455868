import { Counter, type Registry } from 'prom-client';
import type { MetricsSource } from './metrics-source.ts';
import type { MethodTally } from './route-tally.ts';
import { DURATION_BUCKETS } from './route-tally.ts';
import { type HistogramSeries, SnapshotHistogram } from './snapshot-histogram.ts';

type Sources = readonly MetricsSource[];

/** Each route and method tallied by every source, with its labels. */
function* tallies(sources: Sources): Generator<[Record<string, string>, MethodTally]> {
  for (const source of sources) {
    for (const route of source.routes.values()) {
      for (const [method, tally] of route.methods()) {
        yield [{ ...source.labels, route: route.route, method }, tally];
      }
    }
  }
}

/** A counter read from the tallies when scraped: set whole from their running totals. */
function talliedCounter(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  fill: (counter: Counter) => void,
): void {
  new Counter({
    name,
    help,
    labelNames,
    registers: [registry],
    collect() {
      this.reset();
      fill(this);
    },
  });
}

/** The HTTP families of the common rules, read from the sources' route tallies. */
export function registerHttpFamilies(registry: Registry, sources: Sources): void {
  talliedCounter(
    registry,
    'haystack_http_requests_total',
    'HTTP requests answered, by route pattern, method and status.',
    ['route', 'method', 'status', 'store'],
    (counter) => {
      for (const [labels, tally] of tallies(sources)) {
        for (const [status, count] of tally.byStatus) {
          counter.inc({ ...labels, status: String(status) }, count);
        }
      }
    },
  );
  new SnapshotHistogram(
    {
      name: 'haystack_http_request_duration_seconds',
      help: 'Time from routing a request to having its answer (headers and any buffered body), by route pattern and method.',
      labelNames: ['route', 'method', 'store'],
      buckets: DURATION_BUCKETS,
      registers: [registry],
    },
    function* (): Generator<HistogramSeries> {
      for (const [labels, tally] of tallies(sources)) {
        yield { labels, buckets: tally.buckets, count: tally.count, sum: tally.sum };
      }
    },
  );
  talliedCounter(
    registry,
    'haystack_http_received_bytes_total',
    'Request body bytes read (stored, or read and dropped before the answer), by route pattern and method.',
    ['route', 'method', 'store'],
    (counter) => {
      for (const [labels, tally] of tallies(sources)) counter.inc(labels, tally.receivedBytes);
    },
  );
  talliedCounter(
    registry,
    'haystack_http_sent_bytes_total',
    'Response body bytes sent, as declared by Content-Length (none for HEAD), by route pattern and method.',
    ['route', 'method', 'store'],
    (counter) => {
      for (const [labels, tally] of tallies(sources)) counter.inc(labels, tally.sentBytes);
    },
  );
}
