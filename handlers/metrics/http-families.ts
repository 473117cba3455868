import type { Registry } from 'prom-client';
import { type FamilyValue, ScrapedFamily } from './family.ts';
import type { MetricsSource } from './metrics-source.ts';
import type { MethodTally } from './route-tally.ts';

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

/** The HTTP families of the common rules, read from the sources' route tallies. */
export function registerHttpFamilies(registry: Registry, sources: Sources): void {
  const duration = 'haystack_http_request_duration_seconds';
  const families = [
    new ScrapedFamily(
      'haystack_http_requests_total',
      'HTTP requests answered, by route pattern, method and status.',
      'counter',
      () => {
        const values: FamilyValue[] = [];
        for (const [labels, tally] of tallies(sources)) {
          for (const [status, count] of tally.byStatus) {
            values.push({ labels: { ...labels, status: String(status) }, value: count });
          }
        }
        return values;
      },
    ),
    new ScrapedFamily(
      duration,
      'Time from routing a request to having its answer (headers and any buffered body), by route pattern and method.',
      'histogram',
      () =>
        [...tallies(sources)].flatMap(([labels, tally]) => tally.duration.values(duration, labels)),
    ),
    new ScrapedFamily(
      'haystack_http_received_bytes_total',
      'Request body bytes read (stored, or read and dropped before the answer), by route pattern and method.',
      'counter',
      () =>
        [...tallies(sources)].map(([labels, tally]) => ({ labels, value: tally.receivedBytes })),
    ),
    new ScrapedFamily(
      'haystack_http_sent_bytes_total',
      'Response body bytes sent, as declared by Content-Length (none for HEAD), by route pattern and method.',
      'counter',
      () => [...tallies(sources)].map(([labels, tally]) => ({ labels, value: tally.sentBytes })),
    ),
  ];
  for (const family of families) family.registerOn(registry);
}
