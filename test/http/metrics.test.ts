import { Hono } from 'hono';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { createApp } from '../../handlers/index.ts';
import type { StoreStatus } from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { useVolumeStores } from '../support/volume-stores.ts';
import { MAX_BODY, setup, upload } from './helpers.ts';
import {
  FakeTelemetry,
  familiesOf,
  parseSamples,
  promtoolCheck,
  type Sample,
  samplesOf,
  sampleValue,
  withTelemetry,
} from './metrics-helpers.ts';

type App = ReturnType<typeof createApp>;

async function scrape(app: App): Promise<{ text: string; samples: Sample[] }> {
  const res = await app.request('/metrics');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  const text = await res.text();
  return { text, samples: parseSamples(text) };
}

const requests = (route: string, method: string, status: number) => ({
  route,
  method,
  status: String(status),
});

/** The route label values a scrape holds, over every HTTP family. */
function routeLabels(samples: Sample[]): Set<string> {
  return new Set(
    samples.filter((s) => s.name.startsWith('haystack_http_')).map((s) => s.labels.route as string),
  );
}

const KNOWN_ROUTES = new Set([
  '/file',
  '/file/{id}',
  '/sync',
  '/status',
  '/metrics',
  '/healthz',
  '/readyz',
  '/admin/compact',
  '/admin/volumes/{id}/readonly',
  'unmatched',
]);

describe('GET /metrics: HTTP families', () => {
  it('count exactly the requests made, by route pattern, method and status', async () => {
    const { app } = setup();
    const file = await upload(app, 'hello');
    for (let i = 0; i < 5; i++) expect((await app.request(`/file/${file.key}`)).status).toBe(200);
    expect((await app.request(`/file/${file.key}`, { method: 'HEAD' })).status).toBe(200);
    expect((await app.request('/file/999')).status).toBe(404);
    expect((await app.request('/file/not-a-key')).status).toBe(400);
    expect((await app.request('/file/1', { method: 'PATCH' })).status).toBe(405);
    expect((await app.request('/status')).status).toBe(200);

    const { samples } = await scrape(app);
    const total = 'haystack_http_requests_total';
    expect(sampleValue(samples, total, requests('/file', 'POST', 201))).toBe(1);
    expect(sampleValue(samples, total, requests('/file/{id}', 'GET', 200))).toBe(5);
    expect(sampleValue(samples, total, requests('/file/{id}', 'HEAD', 200))).toBe(1);
    expect(sampleValue(samples, total, requests('/file/{id}', 'GET', 404))).toBe(1);
    expect(sampleValue(samples, total, requests('/file/{id}', 'GET', 400))).toBe(1);
    expect(sampleValue(samples, total, requests('/file/{id}', 'PATCH', 405))).toBe(1);
    expect(sampleValue(samples, total, requests('/status', 'GET', 200))).toBe(1);
    // Nothing else was counted; the scrape itself is counted once it is answered.
    const counted = samples.filter((s) => s.name === total).reduce((sum, s) => sum + s.value, 0);
    expect(counted).toBe(11);
    const after = await scrape(app);
    expect(sampleValue(after.samples, total, requests('/metrics', 'GET', 200))).toBe(1);

    // The histogram counts each request of a route and method once, in its buckets too.
    const duration = 'haystack_http_request_duration_seconds';
    const get = { route: '/file/{id}', method: 'GET' };
    expect(sampleValue(samples, `${duration}_count`, get)).toBe(7);
    expect(sampleValue(samples, `${duration}_bucket`, { ...get, le: '+Inf' })).toBe(7);
    expect(sampleValue(samples, `${duration}_sum`, get)).toBeGreaterThan(0);
    const buckets = samples.filter(
      (s) =>
        s.name === `${duration}_bucket` &&
        s.labels.route === '/file/{id}' &&
        s.labels.method === 'GET',
    );
    expect(buckets.map((s) => s.labels.le)).toEqual([
      '0.0001',
      '0.00025',
      '0.0005',
      '0.001',
      '0.0025',
      '0.005',
      '0.01',
      '0.025',
      '0.05',
      '0.1',
      '0.25',
      '0.5',
      '1',
      '2.5',
      '5',
      '10',
      '+Inf',
    ]);
    const counts = buckets.map((s) => s.value);
    expect(counts).toEqual([...counts].sort((a, b) => a - b)); // cumulative
  });

  it('label routes by pattern: hostile and random paths make no new label values', async () => {
    const { app } = setup();
    await upload(app, 'x');
    await app.request('/file/123');
    await app.request('/file/1,deadbeef');
    await app.request('/file/..%2F..%2Fetc%2Fpasswd');
    await app.request('/file/../../etc/passwd');
    await app.request(`/file/${'9'.repeat(5000)}`);
    const first = await scrape(app);
    const seriesBefore = first.samples.filter((s) => s.name.startsWith('haystack_http_')).length;

    for (let i = 0; i < 10_000; i++) {
      const path = `/${Math.random().toString(36).slice(2)}/${i}?q=${i}`;
      expect((await app.request(path, { method: i % 2 ? 'GET' : 'DELETE' })).status).toBe(404);
    }
    const { samples } = await scrape(app);
    for (const route of routeLabels(samples)) expect(KNOWN_ROUTES).toContain(route);
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('unmatched', 'GET', 404)),
    ).toBe(
      5_000 +
        sampleValue(
          first.samples,
          'haystack_http_requests_total',
          requests('unmatched', 'GET', 404),
        ),
    );
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('unmatched', 'DELETE', 404)),
    ).toBe(5_000);
    // A route and method has 22 series: 1 request count (one status), 19 of the histogram
    // (16 bounds, +Inf, sum, count), 2 of bytes. `unmatched` GET was there already (the `..`
    // path was normalized to /etc/passwd); 10,000 paths added `unmatched` DELETE, and the first
    // scrape added `/metrics` GET: nothing more.
    const seriesAfter = samples.filter((s) => s.name.startsWith('haystack_http_')).length;
    expect(seriesAfter - seriesBefore).toBe(2 * 22);
  });

  it('label an unknown method `other`, never with what the client sent', async () => {
    const { app } = setup();
    expect((await app.request('/file/1', { method: 'MKCOLX' })).status).toBe(405);
    expect((await app.request('/nowhere', { method: 'PROPFINDZ' })).status).toBe(404);
    const { samples, text } = await scrape(app);
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('/file/{id}', 'other', 405)),
    ).toBe(1);
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('unmatched', 'other', 404)),
    ).toBe(1);
    expect(text).not.toContain('MKCOLX');
    expect(text).not.toContain('PROPFINDZ');
  });

  it('count bytes sent as the answers declare them, bytes received as read, none sent for HEAD', async () => {
    const { app } = setup();
    const body = new Uint8Array(700).fill(7);
    const post = await app.request('/file', { method: 'POST', body });
    const postText = await post.text();
    const { key } = JSON.parse(postText) as { key: number };
    const get = await app.request(`/file/${key}`);
    expect((await get.arrayBuffer()).byteLength).toBe(700);
    const ranged = await app.request(`/file/${key}`, { headers: { range: 'bytes=0-99' } });
    expect(ranged.status).toBe(206);
    await ranged.arrayBuffer();
    const head = await app.request(`/file/${key}`, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe('700');
    const missing = await app.request('/file/424242');
    const missingText = await missing.text();

    const { samples } = await scrape(app);
    const byRoute = (route: string, method: string) => ({ route, method });
    expect(sampleValue(samples, 'haystack_http_sent_bytes_total', byRoute('/file', 'POST'))).toBe(
      new TextEncoder().encode(postText).byteLength,
    );
    expect(
      sampleValue(samples, 'haystack_http_received_bytes_total', byRoute('/file', 'POST')),
    ).toBe(700);
    expect(
      sampleValue(samples, 'haystack_http_sent_bytes_total', byRoute('/file/{id}', 'GET')),
    ).toBe(700 + 100 + new TextEncoder().encode(missingText).byteLength);
    expect(
      sampleValue(samples, 'haystack_http_sent_bytes_total', byRoute('/file/{id}', 'HEAD')),
    ).toBe(0);
    expect(
      sampleValue(samples, 'haystack_http_received_bytes_total', byRoute('/file/{id}', 'GET')),
    ).toBe(0);
  });

  it('count a request whose upload is refused, and the error answer it got', async () => {
    const { app } = setup();
    const res = await app.request('/file', { method: 'POST', body: new Uint8Array(MAX_BODY + 1) });
    expect(res.status).toBe(413);
    const { samples } = await scrape(app);
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('/file', 'POST', 413)),
    ).toBe(1);
  });
});

describe('GET /metrics: store families', () => {
  const volumes = useVolumeStores('haystack-metrics-');

  it('per-volume gauges equal the /status figures after writes, replaces and deletes', async () => {
    const store = await volumes.open({ volumeSize: 64 * 1024 });
    const app = createApp({ store, maxBody: 1 << 20 });
    const keys: number[] = [];
    for (let i = 0; i < 12; i++)
      keys.push((await upload(app, new Uint8Array(9000 + i).fill(i))).key);
    for (const key of keys.slice(0, 4)) {
      expect((await app.request(`/file/${key}`, { method: 'DELETE' })).status).toBe(200);
    }
    expect((await app.request(`/file/${keys[5]}`, { method: 'PUT', body: 'new' })).status).toBe(
      200,
    );

    const status = (await (await app.request('/status')).json()) as StoreStatus;
    expect(status.volumes.length).toBeGreaterThan(1);
    const { samples } = await scrape(app);
    for (const volume of status.volumes) {
      const labels = { volume: String(volume.id) };
      expect(sampleValue(samples, 'haystack_volume_size_bytes', labels)).toBe(volume.bytes);
      expect(sampleValue(samples, 'haystack_volume_live_needles', labels)).toBe(volume.liveNeedles);
      expect(sampleValue(samples, 'haystack_volume_deleted_needles', labels)).toBe(
        volume.deletedNeedles,
      );
      expect(sampleValue(samples, 'haystack_volume_live_bytes', labels)).toBe(volume.liveBytes);
      expect(sampleValue(samples, 'haystack_volume_garbage_bytes', labels)).toBe(
        volume.garbageBytes,
      );
      expect(sampleValue(samples, 'haystack_volume_read_only', labels)).toBe(
        volume.readOnly ? 1 : 0,
      );
    }
    expect(samplesOf(samples, 'haystack_volume_size_bytes')).toHaveLength(status.volumes.length);
    const deleted = status.volumes.reduce((sum, v) => sum + v.deletedNeedles, 0);
    expect(deleted).toBe(status.deletedNeedles);
    expect(deleted).toBeGreaterThanOrEqual(5);
  });

  it('ask the store for its status once per scrape, shared by every gauge', async () => {
    const inner = createMemoryStore();
    let calls = 0;
    const store = new DelegatingStore(inner, {
      status: () => {
        calls++;
        return inner.status();
      },
    });
    const app = createApp({ store, maxBody: MAX_BODY });
    await scrape(app);
    expect(calls).toBe(1);
    await scrape(app);
    expect(calls).toBe(2);
  });

  it('answer the rest of a scrape when the store status fails, and count the failure', async () => {
    const inner = createMemoryStore();
    const warnings: object[] = [];
    const logger = { debug() {}, info() {}, warn: (obj: object) => warnings.push(obj), error() {} };
    const store = new DelegatingStore(inner, {
      status: () => Promise.reject(new Error('status exploded')),
    });
    const app = createApp({ store, maxBody: MAX_BODY, logger });
    await app.request('/file/1');
    const { samples } = await scrape(app);
    expect(samplesOf(samples, 'haystack_volume_size_bytes')).toEqual([]);
    expect(sampleValue(samples, 'haystack_store_status_failures_total')).toBe(1);
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('/file/{id}', 'GET', 404)),
    ).toBe(1);
    expect(warnings).toEqual([{ err: new Error('status exploded') }]);
  });

  it('feed the telemetry families from the store events and its cache counters', async () => {
    const telemetry = new FakeTelemetry();
    const app = createApp({
      store: withTelemetry(createMemoryStore(), telemetry),
      maxBody: MAX_BODY,
    });
    const before = (await scrape(app)).samples;
    // Every series is there from the start, at zero.
    expect(sampleValue(before, 'haystack_group_commit_flushes_total')).toBe(0);
    expect(samplesOf(before, 'haystack_group_commit_writes_per_flush').length).toBeGreaterThan(0);
    expect(sampleValue(before, 'haystack_corrupt_reads_total')).toBe(0);

    telemetry.flushed(1, 0.0004);
    telemetry.flushed(3, 0.002);
    telemetry.flushed(700, 0.03);
    telemetry.corruptRead(2);
    telemetry.compacted(5000);
    telemetry.compacted(123);
    telemetry.cache = { hits: 40, misses: 9, bytes: 81920, entries: 17, maxBytes: 1 << 20 };
    const { samples } = await scrape(app);
    expect(sampleValue(samples, 'haystack_group_commit_flushes_total')).toBe(3);
    expect(sampleValue(samples, 'haystack_group_commit_writes_per_flush_count')).toBe(3);
    expect(sampleValue(samples, 'haystack_group_commit_writes_per_flush_sum')).toBe(704);
    expect(sampleValue(samples, 'haystack_group_commit_writes_per_flush_bucket', { le: '1' })).toBe(
      1,
    );
    expect(sampleValue(samples, 'haystack_group_commit_writes_per_flush_bucket', { le: '4' })).toBe(
      2,
    );
    expect(
      sampleValue(samples, 'haystack_group_commit_writes_per_flush_bucket', { le: '512' }),
    ).toBe(2);
    expect(
      sampleValue(samples, 'haystack_group_commit_writes_per_flush_bucket', { le: '1024' }),
    ).toBe(3);
    expect(sampleValue(samples, 'haystack_group_commit_flush_duration_seconds_count')).toBe(3);
    expect(
      sampleValue(samples, 'haystack_group_commit_flush_duration_seconds_bucket', { le: '0.0005' }),
    ).toBe(1);
    expect(sampleValue(samples, 'haystack_group_commit_flush_duration_seconds_sum')).toBeCloseTo(
      0.0324,
      6,
    );
    expect(sampleValue(samples, 'haystack_corrupt_reads_total')).toBe(1);
    expect(sampleValue(samples, 'haystack_compactions_total')).toBe(2);
    expect(sampleValue(samples, 'haystack_compaction_reclaimed_bytes_total')).toBe(5123);
    expect(sampleValue(samples, 'haystack_cache_hits_total')).toBe(40);
    expect(sampleValue(samples, 'haystack_cache_misses_total')).toBe(9);
    expect(sampleValue(samples, 'haystack_cache_bytes')).toBe(81920);
    expect(sampleValue(samples, 'haystack_cache_entries')).toBe(17);
    expect(sampleValue(samples, 'haystack_cache_max_bytes')).toBe(1 << 20);
    // A counter read from a snapshot follows the snapshot.
    telemetry.cache = { ...telemetry.cache, hits: 41 };
    expect(sampleValue((await scrape(app)).samples, 'haystack_cache_hits_total')).toBe(41);
  });

  it('pass promtool check metrics, with samples in every family, after traffic, errors and telemetry', async () => {
    const telemetry = new FakeTelemetry();
    const inner = await volumes.open();
    const store = new DelegatingStore(withTelemetry(inner, telemetry), {
      head: () => Promise.reject(new Error('a bug')),
    });
    const app = createApp({ store, maxBody: 1 << 20, onUnexpectedError: () => {} });
    const file = await upload(app, 'some bytes');
    await app.request(`/file/${file.key}`);
    expect((await app.request(`/file/${file.key}`, { method: 'HEAD' })).status).toBe(500);
    await app.request('/nowhere');
    await app.request('/healthz');
    await app.request('/readyz');
    await app.request('/sync', { method: 'DELETE' });
    telemetry.flushed(2, 0.001);
    telemetry.corruptRead(1);
    telemetry.compacted(10);
    telemetry.cache = { hits: 1, misses: 1, bytes: 10, entries: 1, maxBytes: 100 };
    await scrape(app);
    const { text, samples } = await scrape(app);

    const families = familiesOf(text);
    // Every haystack family has samples (prom-client's GC histogram may have none before a GC).
    for (const family of families.filter((name) => name.startsWith('haystack_'))) {
      expect(samplesOf(samples, family), family).not.toEqual([]);
    }
    // The process metrics are there (on the app's own registry), and every name of the rules.
    expect(families).toContain('process_cpu_user_seconds_total');
    expect(families).toContain('nodejs_heap_size_used_bytes');
    for (const name of [
      'haystack_http_requests_total',
      'haystack_http_request_duration_seconds',
      'haystack_http_received_bytes_total',
      'haystack_http_sent_bytes_total',
      'haystack_volume_size_bytes',
      'haystack_volume_live_needles',
      'haystack_volume_deleted_needles',
      'haystack_volume_live_bytes',
      'haystack_volume_garbage_bytes',
      'haystack_volume_read_only',
      'haystack_group_commit_flushes_total',
      'haystack_group_commit_writes_per_flush',
      'haystack_group_commit_flush_duration_seconds',
      'haystack_corrupt_reads_total',
      'haystack_compactions_total',
      'haystack_compaction_reclaimed_bytes_total',
      'haystack_cache_hits_total',
      'haystack_cache_misses_total',
      'haystack_cache_bytes',
      'haystack_cache_entries',
      'haystack_cache_max_bytes',
    ]) {
      expect(families).toContain(name);
    }
    expect(
      sampleValue(samples, 'haystack_http_requests_total', requests('/file/{id}', 'HEAD', 500)),
    ).toBe(1);

    const check = await promtoolCheck(text);
    expect(check.output).toBe('');
    expect(check.code).toBe(0);
  });
});

describe('one registry shared by several apps', () => {
  it('refuses a second app without a name of its own, and keeps named apps apart', async () => {
    const registry = new Registry();
    const a = createMemoryStore();
    const b = createMemoryStore();
    createApp({ store: a, maxBody: MAX_BODY, registry, operatingRoutes: false });
    expect(() => createApp({ store: b, maxBody: MAX_BODY, registry })).toThrow(/metricsName/);

    const shared = new Registry();
    const parent = new Hono();
    const options = { maxBody: MAX_BODY, registry: shared, operatingRoutes: false };
    parent.route('/a', createApp({ ...options, store: a, metricsName: 'a' }));
    parent.route('/b', createApp({ ...options, store: b, metricsName: 'b' }));
    expect(() => createApp({ ...options, store: b, metricsName: 'b' })).toThrow(/"b"/);
    parent.get('/metrics', async (c) => c.text(await shared.metrics()));

    expect((await parent.request('/a/file', { method: 'POST', body: 'one' })).status).toBe(201);
    expect((await parent.request('/a/file/1')).status).toBe(200);
    expect((await parent.request('/b/file/1')).status).toBe(404);
    const text = await (await parent.request('/metrics')).text();
    const samples = parseSamples(text);
    const total = 'haystack_http_requests_total';
    expect(sampleValue(samples, total, { ...requests('/file/{id}', 'GET', 200), store: 'a' })).toBe(
      1,
    );
    expect(sampleValue(samples, total, { ...requests('/file/{id}', 'GET', 404), store: 'b' })).toBe(
      1,
    );
    expect(sampleValue(samples, total, { ...requests('/file', 'POST', 201), store: 'a' })).toBe(1);
    expect(sampleValue(samples, total, { ...requests('/file', 'POST', 201), store: 'b' })).toBe(0);
    // A registry the app was given gets no process metrics from it.
    expect(text).not.toMatch(/^process_|^nodejs_/m);
    const check = await promtoolCheck(text);
    expect(check.output).toBe('');
  });
});
