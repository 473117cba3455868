import { HistogramTally } from './family.ts';

/** Request durations, in seconds: 100 us to 10 s. */
export const DURATION_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/**
 * The `method` label's values: the methods HTTP defines for resources like these, and `other`
 * for any other token a client sends, so that a client cannot make new label values.
 */
export const METHOD_LABELS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'other'];

export function methodIndex(method: string): number {
  switch (method) {
    case 'GET':
      return 0;
    case 'HEAD':
      return 1;
    case 'POST':
      return 2;
    case 'PUT':
      return 3;
    case 'DELETE':
      return 4;
    case 'OPTIONS':
      return 5;
    case 'PATCH':
      return 6;
    default:
      return 7;
  }
}

/** What one route saw with one method, since the app was made. */
export class MethodTally {
  /** Requests by status (a Response's status is 200..599, so at most 400 entries). */
  readonly byStatus = new Map<number, number>();
  receivedBytes = 0;
  sentBytes = 0;
  readonly duration = new HistogramTally(DURATION_BUCKETS);
}

/**
 * Plain counters for one route pattern, added to on every request and read when scraped: the
 * per-request cost is a few additions (see ScrapedFamily).
 */
export class RouteTally {
  readonly route: string;
  readonly #methods: Array<MethodTally | undefined> = METHOD_LABELS.map(() => undefined);

  constructor(route: string) {
    this.route = route;
  }

  record(method: number, status: number, seconds: number, received: number, sent: number): void {
    let tally = this.#methods[method];
    if (tally === undefined) {
      tally = new MethodTally();
      this.#methods[method] = tally;
    }
    tally.byStatus.set(status, (tally.byStatus.get(status) ?? 0) + 1);
    tally.receivedBytes += received;
    tally.sentBytes += sent;
    tally.duration.observe(seconds);
  }

  /** Each method seen so far, with its label value. */
  *methods(): Generator<[string, MethodTally]> {
    for (let i = 0; i < METHOD_LABELS.length; i++) {
      const tally = this.#methods[i];
      if (tally !== undefined) yield [METHOD_LABELS[i] as string, tally];
    }
  }
}
