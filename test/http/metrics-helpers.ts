import { spawn } from 'node:child_process';
import type { BlobStore, CacheStats, StoreObserver, StoreTelemetry } from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';

/** One sample of the Prometheus text format. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The samples of a scrape (comments skipped). Label values here never hold `"` or `,`. */
export function parseSamples(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const pair of (match[2] ?? '').split(',').filter(Boolean)) {
      const [key, quoted] = pair.split('=') as [string, string];
      labels[key] = JSON.parse(quoted) as string;
    }
    samples.push({ name: match[1] as string, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample named `name` whose labels are exactly `labels`; 0 if none. */
export function sampleValue(
  samples: Sample[],
  name: string,
  labels: Record<string, string> = {},
): number {
  const wanted = JSON.stringify(Object.entries(labels).sort());
  const found = samples.filter(
    (s) => s.name === name && JSON.stringify(Object.entries(s.labels).sort()) === wanted,
  );
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} ${wanted}`);
  return found[0]?.value ?? 0;
}

/** Every sample of a family (for histograms: `_bucket`, `_sum`, `_count` too). */
export function samplesOf(samples: Sample[], family: string): Sample[] {
  return samples.filter(
    (s) =>
      s.name === family ||
      s.name === `${family}_bucket` ||
      s.name === `${family}_sum` ||
      s.name === `${family}_count`,
  );
}

/** Every `# TYPE` family of a scrape. */
export function familiesOf(text: string): string[] {
  return [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1] as string);
}

/** `promtool check metrics` on `text`: its exit code and what it said. */
export function promtoolCheck(text: string): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/promtool', ['check', 'metrics'], { stdio: 'pipe' });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.stderr.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
    child.stdin.end(text);
  });
}

/** A store's telemetry driven by the test: it fires events and sets the cache figures. */
export class FakeTelemetry implements StoreTelemetry {
  readonly observers = new Set<StoreObserver>();
  cache: CacheStats = { hits: 0, misses: 0, bytes: 0, entries: 0, maxBytes: 0 };

  observe(observer: StoreObserver): () => void {
    this.observers.add(observer);
    return () => this.observers.delete(observer);
  }

  cacheStats(): CacheStats {
    return { ...this.cache };
  }

  flushed(writes: number, seconds: number): void {
    for (const o of this.observers) o.flushed?.(writes, seconds);
  }

  corruptRead(volume: number): void {
    for (const o of this.observers) o.corruptRead?.(volume);
  }

  compacted(reclaimedBytes: number): void {
    for (const o of this.observers) {
      o.compacted?.({
        volume: 1,
        bytesBefore: reclaimedBytes + 100,
        bytesAfter: 100,
        reclaimedBytes,
        needles: 1,
        inPlace: false,
        durationMs: 1,
      });
    }
  }
}

/** `inner`, offering `telemetry` as its telemetry capability (the rest forwarded). */
export function withTelemetry(inner: BlobStore, telemetry: StoreTelemetry): BlobStore {
  const store = new DelegatingStore(inner);
  Object.defineProperty(store, 'capabilities', { value: { ...store.capabilities, telemetry } });
  return store;
}
