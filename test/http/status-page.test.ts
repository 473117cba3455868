import { readFile } from 'node:fs/promises';
import { Counter, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/index.ts';
import { createApp } from '../../handlers/index.ts';
import {
  duration,
  humanBytes,
  renderStatusPage,
  type StatusPageFigures,
  statusPage,
  TRAFFIC_METRICS,
  trafficSinceStart,
} from '../../handlers/status-page.ts';
import {
  type ClusterStatus,
  StoreError,
  type StoreStatus,
  type VolumeStatus,
} from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { MAX_BODY } from './helpers.ts';

function volume(overrides: Partial<VolumeStatus> & Pick<VolumeStatus, 'id'>): VolumeStatus {
  return {
    bytes: 0,
    liveNeedles: 0,
    deletedNeedles: 0,
    liveBytes: 0,
    garbageBytes: 0,
    garbageRatio: 0,
    sealed: false,
    readOnly: false,
    ...overrides,
  };
}

function storeStatus(volumes: VolumeStatus[], extra: Partial<StoreStatus> = {}): StoreStatus {
  const sum = (field: 'bytes' | 'liveNeedles' | 'deletedNeedles' | 'liveBytes' | 'garbageBytes') =>
    volumes.reduce((total, v) => total + v[field], 0);
  const bytes = sum('bytes');
  return {
    volumes,
    liveNeedles: sum('liveNeedles'),
    deletedNeedles: sum('deletedNeedles'),
    bytes,
    liveBytes: sum('liveBytes'),
    garbageBytes: sum('garbageBytes'),
    garbageRatio: bytes === 0 ? 0 : sum('garbageBytes') / bytes,
    nextKey: 1,
    ...extra,
  };
}

const NO_TRAFFIC = { requests: undefined, receivedBytes: undefined, sentBytes: undefined };

function render(figures: Partial<StatusPageFigures> & Pick<StatusPageFigures, 'status'>): string {
  return renderStatusPage({
    traffic: NO_TRAFFIC,
    version: '1.2.3',
    uptimeMs: 0,
    at: Date.UTC(2026, 11, 2),
    ...figures,
  });
}

/** The part of the page from the element that starts with `opening` to its closing tag. */
function section(page: string, opening: string, tag: 'table' | 'tr'): string {
  const start = page.indexOf(opening);
  expect(start, `${opening} on the page`).toBeGreaterThanOrEqual(0);
  return page.slice(start, page.indexOf(`</${tag}>`, start));
}

/** The cell of `name` in `part`: its `data-value` (undefined if none) and its text. */
function figure(part: string, name: string): { value: string | undefined; text: string } {
  const cell = new RegExp(
    `<(?:td|span)[^>]* data-figure="${name}"(?: data-value="([^"]*)")?[^>]*>(.*?)</(?:td|span)>`,
    's',
  ).exec(part);
  expect(cell, `figure ${name}`).not.toBeNull();
  return { value: cell?.[1], text: (cell?.[2] ?? '').replace(/<[^>]*>/g, '') };
}

describe('GET /ui', () => {
  it('answers HTML that loads nothing and runs nothing, never cached; HEAD too; others 405', async () => {
    const app = createApp({ store: createMemoryStore(), maxBody: MAX_BODY });
    for (const method of ['GET', 'HEAD']) {
      const res = await app.request('/ui', { method });
      expect(res.status, method).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
      expect(res.headers.get('content-security-policy')).toBe(
        "default-src 'none'; style-src 'unsafe-inline'",
      );
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = await res.text();
      if (method === 'HEAD') expect(body).toBe('');
      else expect(body).toMatch(/^<!doctype html>/);
    }
    const post = await app.request('/ui', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    expect(await post.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
  });

  it('shows the store status figures and the version of package.json', async () => {
    const store = createMemoryStore();
    const app = createApp({ store, maxBody: MAX_BODY });
    for (const body of ['hello', 'a longer file', '']) {
      expect((await app.request('/file', { method: 'POST', body })).status).toBe(201);
    }
    expect((await app.request('/file/1', { method: 'DELETE' })).status).toBe(200);
    const status = await store.status();
    // Memory has no volumes to fill: no bound to fill them against.
    expect(status).not.toHaveProperty('volumeSize');
    const page = await (await app.request('/ui')).text();
    const totals = section(page, '<table id="totals">', 'table');
    for (const name of ['liveNeedles', 'deletedNeedles', 'nextKey'] as const) {
      expect(figure(totals, name)).toEqual({
        value: String(status[name]),
        text: String(status[name]),
      });
    }
    expect(figure(totals, 'liveBytes').value).toBe(String(status.liveBytes));
    const { version } = JSON.parse(
      await readFile(new URL('../../package.json', import.meta.url), 'utf8'),
    );
    expect(figure(page, 'version').value).toBe(version);
  });

  it('answers a failing status() with the JSON error, as GET /status does', async () => {
    const store = new DelegatingStore(createMemoryStore(), {
      status: () => Promise.reject(new StoreError('unavailable', 'the Directory is away')),
    });
    const reported: unknown[] = [];
    const app = createApp({
      store,
      maxBody: MAX_BODY,
      onUnexpectedError: (err) => reported.push(err),
    });
    const res = await app.request('/ui');
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      error: { code: 'unavailable', message: 'the Directory is away' },
    });
    // A 5xx is news for the operator too, as on every route.
    expect(reported).toHaveLength(1);

    // Something that is not a StoreError is a bug: a generic 500, its text kept from the client.
    const broken = new DelegatingStore(createMemoryStore(), {
      status: () => Promise.reject(new Error('secret detail')),
    });
    const bug = await createApp({
      store: broken,
      maxBody: MAX_BODY,
      onUnexpectedError: () => {},
    }).request('/ui');
    expect(bug.status).toBe(500);
    expect(await bug.text()).not.toContain('secret detail');
  });

  it('counts uptime from createApp on the clock it is given', async () => {
    let now = 1_000_000;
    const app = createApp({ store: createMemoryStore(), maxBody: MAX_BODY, now: () => now });
    now += 90_061_500; // 1 d 1 h 1 min 1.5 s
    const page = await (await app.request('/ui')).text();
    expect(figure(page, 'uptime')).toEqual({ value: '90061.5', text: '1 d 1 h 1 min 1 s' });
    expect(page).toContain(`<time datetime="${new Date(now).toISOString()}">`);
  });
});

describe('the status page, rendered', () => {
  it('escapes everything it shows: nothing a client stores reaches the page as markup', async () => {
    const store = createMemoryStore();
    const app = createApp({ store, maxBody: MAX_BODY });
    const hostile = 'text/html; x="<script>alert(1)</script>"';
    const put = await app.request('/file', {
      method: 'POST',
      body: '<img src=x onerror=alert(1)>',
      headers: { 'content-type': hostile },
    });
    expect(put.status).toBe(201);
    const page = await (await app.request('/ui')).text();
    expect(page).not.toContain('<script');
    expect(page).not.toContain('alert(1)');
    expect(page).not.toContain('<img');
  });

  it("escapes a cluster's node urls, ids and reasons, and shows its nodes and logical volumes", () => {
    const status: ClusterStatus = {
      ...storeStatus([volume({ id: 1, bytes: 200, liveNeedles: 2, sealed: true, readOnly: true })]),
      nodes: [
        {
          id: 'node-"a"',
          url: 'http://x/"><script>alert(1)</script>',
          state: 'down',
          lastHeartbeat: '2026-12-01T23:18:41.227Z',
          bytesFree: 3 * 1024 ** 3,
        },
        {
          id: 'b',
          url: 'http://127.0.0.1:1',
          state: 'up',
          lastHeartbeat: '2026-12-01T23:18:45.365Z',
          bytesFree: 0,
        },
      ],
      logicalVolumes: [
        {
          id: 1,
          state: 'read-only',
          reason: "a write failed: <b onmouseover='x'>&amp;</b>",
          replicas: [
            { node: 'node-"a"', state: 'down' },
            { node: '<i>b</i>', state: 'ok' },
          ],
        },
        { id: 2, state: 'writable', reason: null, replicas: [{ node: 'b', state: 'ok' }] },
      ],
    };
    const page = render({ status });
    expect(page).not.toMatch(/<script|<b |<i>/);
    expect(page).toContain('http://x/&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).toContain('&lt;b onmouseover=&#39;x&#39;&gt;&amp;amp;&lt;/b&gt;');
    expect(page).toContain('data-node="node-&quot;a&quot;"');

    const down = section(page, '<tr data-node="node-&quot;a&quot;">', 'tr');
    expect(figure(down, 'state').value).toBe('down');
    expect(figure(down, 'bytesFree')).toEqual({
      value: String(3 * 1024 ** 3),
      text: `3.00 GiB (${3 * 1024 ** 3} B)`,
    });
    const readOnly = section(page, '<tr data-logical-volume="1">', 'tr');
    expect(figure(readOnly, 'replicas').text).toBe(
      'node-&quot;a&quot; (down), &lt;i&gt;b&lt;/i&gt; (ok)',
    );
    const writable = section(page, '<tr data-logical-volume="2">', 'tr');
    expect(figure(writable, 'state').value).toBe('writable');
    expect(figure(writable, 'reason').text).toBe('');
  });

  it('a store without volumeSize: fill and volume size are unknown; an empty volume is 0% garbage', () => {
    const page = render({ status: storeStatus([volume({ id: 1 })]) });
    const row = section(page, '<tr data-volume="1">', 'tr');
    expect(figure(row, 'fill')).toEqual({ value: undefined, text: '—' });
    expect(figure(row, 'bytes')).toEqual({ value: '0', text: '0 B' });
    expect(figure(row, 'garbageRatio')).toEqual({ value: '0', text: '0.0%' });
    expect(figure(row, 'state').value).toBe('writable');
    expect(figure(page, 'volumeSize')).toEqual({ value: undefined, text: '—' });
  });

  it('fills volumes against volumeSize, above 100% for an oversized one, and names each state', () => {
    const volumeSize = 4096;
    const status = storeStatus(
      [
        volume({ id: 1, bytes: 1024, garbageBytes: 256, garbageRatio: 0.25, sealed: true }),
        volume({ id: 2, bytes: 10_240, sealed: true, readOnly: true }),
        volume({ id: 3, bytes: 8 }),
      ],
      { volumeSize },
    );
    const page = render({ status });
    const rows = [1, 2, 3].map((id) => section(page, `<tr data-volume="${id}">`, 'tr'));
    expect(rows.map((row) => figure(row, 'fill').value)).toEqual(['0.25', '2.5', String(8 / 4096)]);
    expect(rows.map((row) => figure(row, 'fill').text.trim())).toEqual(['25.0%', '250.0%', '0.2%']);
    expect(rows[1]).toContain('<meter min="0" max="1" value="1">');
    expect(rows.map((row) => figure(row, 'state').value)).toEqual([
      'sealed',
      'read-only',
      'writable',
    ]);
    expect(figure(rows[0] ?? '', 'garbageRatio').text).toBe('25.0%');
    expect(figure(page, 'volumeSize')).toEqual({ value: '4096', text: '4.00 KiB (4096 B)' });
    expect(figure(section(page, '<table id="totals">', 'table'), 'volumes').value).toBe('3');
  });

  it('reads traffic from the registry, summed over labels, as totals and rates since start', async () => {
    const registry = new Registry();
    const requests = new Counter({
      name: TRAFFIC_METRICS.requests,
      help: 'requests',
      labelNames: ['route', 'method', 'status'],
      registers: [registry],
    });
    const received = new Counter({
      name: TRAFFIC_METRICS.receivedBytes,
      help: 'received',
      labelNames: ['route', 'method'],
      registers: [registry],
    });
    requests.inc({ route: '/file', method: 'POST', status: '201' }, 30);
    requests.inc({ route: '/file/{id}', method: 'GET', status: '200' }, 10);
    received.inc({ route: '/file', method: 'POST' }, 3 * 1024 * 1024);
    // No sent-bytes counter: that figure is unknown, not 0.
    const traffic = await trafficSinceStart(registry);
    expect(traffic).toEqual({ requests: 40, receivedBytes: 3 * 1024 * 1024, sentBytes: undefined });

    const page = render({ status: storeStatus([]), traffic, uptimeMs: 8000 });
    const table = section(page, '<table id="traffic">', 'table');
    expect(figure(table, 'requests')).toEqual({ value: '40', text: '40' });
    expect(figure(table, 'requestsPerSecond')).toEqual({ value: '5', text: '5.00/s' });
    expect(figure(table, 'receivedBytesPerSecond')).toEqual({
      value: String((3 * 1024 * 1024) / 8),
      text: '384 KiB/s',
    });
    expect(figure(table, 'sentBytes')).toEqual({ value: undefined, text: '—' });
    expect(figure(table, 'sentBytesPerSecond')).toEqual({ value: undefined, text: '—' });

    // No time has passed: a rate would be a division by zero.
    const atStart = render({ status: storeStatus([]), traffic, uptimeMs: 0 });
    expect(figure(atStart, 'requestsPerSecond')).toEqual({ value: undefined, text: '—' });
    expect(await trafficSinceStart(undefined)).toEqual(NO_TRAFFIC);
  });

  it('the page factory reads the registry it is given on each request', async () => {
    const registry = new Registry();
    const sent = new Counter({
      name: TRAFFIC_METRICS.sentBytes,
      help: 'sent',
      registers: [registry],
    });
    let now = 0;
    const store = createMemoryStore();
    const app = createApp({ store, maxBody: MAX_BODY });
    app.get('/page', statusPage({ store, registry, now: () => now }));
    now = 2000;
    sent.inc(4096);
    const first = await (await app.request('/page')).text();
    expect(figure(first, 'sentBytes').value).toBe('4096');
    sent.inc(4096);
    const second = await (await app.request('/page')).text();
    expect(figure(second, 'sentBytes').value).toBe('8192');
    expect(figure(second, 'sentBytesPerSecond').text).toBe('4.00 KiB/s');
  });
});

describe('figures for people', () => {
  it('bytes in binary units to three figures', () => {
    expect([0, 1023, 1024, 1536, 10 * 1024 ** 2, 5.5 * 1024 ** 4].map(humanBytes)).toEqual([
      '0 B',
      '1023 B',
      '1.00 KiB',
      '1.50 KiB',
      '10.0 MiB',
      '5.50 TiB',
    ]);
  });

  it('durations from seconds up to days, leaving out leading zeros', () => {
    expect([0, 59.9, 60, 3600, 3661, 86_400 * 3 + 5].map(duration)).toEqual([
      '0 s',
      '59 s',
      '1 min 0 s',
      '1 h 0 min 0 s',
      '1 h 1 min 1 s',
      '3 d 0 h 0 min 5 s',
    ]);
  });
});
