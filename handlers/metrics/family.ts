import type { Metric, Registry } from 'prom-client';

/** One sample as prom-client's registry formats it. */
export interface FamilyValue {
  labels: Record<string, string | number>;
  value: number;
  /** `<name>_bucket` and the like; the family's name when absent. */
  metricName?: string;
}

type FamilyType = 'counter' | 'gauge' | 'histogram';

/**
 * A metric family whose samples are computed when scraped, from figures its owner keeps as
 * plain numbers: the per-request path adds to those (tens of nanoseconds) instead of calling a
 * prom-client metric (a label hash and checks per call, about a microsecond). It has the shape
 * prom-client's `Registry` reads (`name`, `help`, `type`, `get()`, `reset()`), so it goes on any
 * registry, the app's own or a parent's, without prom-client's classes, which need Node's `util`
 * and would keep the handlers from bundling for a fetch host.
 */
export class ScrapedFamily {
  readonly name: string;
  readonly help: string;
  readonly type: FamilyType;
  readonly aggregator = 'sum';
  readonly #values: () => FamilyValue[] | Promise<FamilyValue[]>;

  constructor(
    name: string,
    help: string,
    type: FamilyType,
    values: () => FamilyValue[] | Promise<FamilyValue[]>,
  ) {
    this.name = name;
    this.help = help;
    this.type = type;
    this.#values = values;
  }

  async get() {
    const values = await this.#values();
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      values,
      aggregator: this.aggregator,
    };
  }

  /** The figures are their owners', since the app was made: nothing here to reset. */
  reset(): void {}

  registerOn(registry: Registry): void {
    registry.registerMetric(this as unknown as Metric);
  }
}

/** A histogram's figures, kept by its owner: counts per bucket, not cumulative. */
export class HistogramTally {
  readonly bounds: readonly number[];
  /** `buckets[i]` counts values in (bounds[i-1], bounds[i]]; the last one, above every bound. */
  readonly buckets: Float64Array;
  count = 0;
  sum = 0;

  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.buckets = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    let i = 0;
    while (i < this.bounds.length && value > (this.bounds[i] as number)) i++;
    this.buckets[i] = (this.buckets[i] ?? 0) + 1;
    this.count++;
    this.sum += value;
  }

  /** Its samples under `labels`, as Prometheus wants them: cumulative buckets, sum, count. */
  values(name: string, labels: Record<string, string>): FamilyValue[] {
    const values: FamilyValue[] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.buckets[i] ?? 0;
      const le = this.bounds[i] as number;
      values.push({ labels: { ...labels, le }, value: cumulative, metricName: `${name}_bucket` });
    }
    values.push({
      labels: { ...labels, le: '+Inf' },
      value: this.count,
      metricName: `${name}_bucket`,
    });
    values.push({ labels, value: this.sum, metricName: `${name}_sum` });
    values.push({ labels, value: this.count, metricName: `${name}_count` });
    return values;
  }
}
