import type { Handler } from 'hono';
import { html, raw } from 'hono/html';
import type { HtmlEscapedString } from 'hono/utils/html';
import type { Registry } from 'prom-client';
import type { BlobStore, ClusterStatus, StoreStatus, VolumeStatus } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { errorsAsErrors } from './errors.ts';
import { packageVersion } from './package-version.ts';

export interface StatusPageOptions {
  store: BlobStore;
  /**
   * Where the HTTP counters are (`TRAFFIC_METRICS`). Without it, or without one of them, its
   * figures show "—".
   */
  registry?: Registry | undefined;
  /** Milliseconds since the epoch, as `Date.now`; uptime counts from the factory's call. */
  now?: (() => number) | undefined;
}

/** The counters the page's traffic figures are read from, summed over their labels. */
export const TRAFFIC_METRICS = {
  requests: 'haystack_http_requests_total',
  receivedBytes: 'haystack_http_received_bytes_total',
  sentBytes: 'haystack_http_sent_bytes_total',
} as const;

/** Totals since start, `undefined` where the registry has no such metric. */
export type Traffic = Record<keyof typeof TRAFFIC_METRICS, number | undefined>;

/** Everything the page shows, gathered before any of it is rendered. */
export interface StatusPageFigures {
  status: StoreStatus | ClusterStatus;
  traffic: Traffic;
  version: string;
  uptimeMs: number;
  /** When the figures were read, in milliseconds since the epoch. */
  at: number;
}

const encoder = new TextEncoder();

// Nothing outside the page is loaded, and nothing on it runs: a stored name or a node's error
// text that slipped through escaping still could not fetch or execute anything.
const PAGE_HEADERS = {
  'Content-Type': 'text/html; charset=utf-8',
  'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'",
  'Cache-Control': 'no-store',
};

/**
 * `GET /ui` (and HEAD): the store's status as a page for people. A failing `status()` reaches
 * the app's error handler, as on `GET /status`, so the answer is the usual JSON error.
 */
export function statusPage(options: StatusPageOptions): Handler<AppEnv> {
  const { store, registry, now = Date.now } = options;
  const startedAt = now();
  return errorsAsErrors(async (c) => {
    const [status, traffic, version] = await Promise.all([
      store.status(),
      trafficSinceStart(registry),
      appVersion(),
    ]);
    const at = now();
    const page = encoder.encode(
      renderStatusPage({ status, traffic, version, uptimeMs: at - startedAt, at }),
    );
    // A declared length: what the request's log line and the sent-bytes counter read.
    const headers = { ...PAGE_HEADERS, 'Content-Length': String(page.byteLength) };
    return new Response(c.req.method === 'HEAD' ? null : page, { status: 200, headers });
  });
}

// The version cannot change while the process runs: read package.json once.
let version: Promise<string> | undefined;
function appVersion(): Promise<string> {
  version ??= packageVersion().catch(() => 'unknown');
  return version;
}

export async function trafficSinceStart(registry: Registry | undefined): Promise<Traffic> {
  const [requests, receivedBytes, sentBytes] = await Promise.all([
    counterTotal(registry, TRAFFIC_METRICS.requests),
    counterTotal(registry, TRAFFIC_METRICS.receivedBytes),
    counterTotal(registry, TRAFFIC_METRICS.sentBytes),
  ]);
  return { requests, receivedBytes, sentBytes };
}

async function counterTotal(
  registry: Registry | undefined,
  name: string,
): Promise<number | undefined> {
  const metric = registry?.getSingleMetric(name);
  if (metric === undefined) return undefined;
  const { values } = await metric.get();
  return values.reduce((total, { value }) => total + value, 0);
}

/**
 * `html` from hono/html, which escapes every interpolated string and inlines the fragments it
 * made. It answers a promise only when one is interpolated, and none ever is here.
 */
const h = html as (strings: TemplateStringsArray, ...values: unknown[]) => HtmlEscapedString;

/** The whole page, as a string. */
export function renderStatusPage(figures: StatusPageFigures): string {
  const { status, traffic, version, uptimeMs, at } = figures;
  const uptimeSeconds = Math.max(0, uptimeMs) / 1000;
  const page = h`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Haystack store status</title>
<style>${raw(STYLE)}</style>
</head>
<body>
<h1>Haystack store</h1>
<p class="meta">version <span id="version" data-figure="version" data-value="${version}">${version}</span>
 · up <span id="uptime" data-figure="uptime" data-value="${uptimeSeconds}">${duration(uptimeSeconds)}</span>
 · as of <time datetime="${isoTime(at)}">${isoTime(at)}</time></p>
${totalsTable(status)}
${trafficTable(traffic, uptimeSeconds)}
${volumesTable(status)}
${isClusterStatus(status) ? clusterTables(status) : ''}
</body>
</html>
`;
  return String(page);
}

const STYLE = `
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d1d1f; background: #fafafa; }
h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 .5rem; }
.meta { color: #555; margin: 0 0 1rem; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #ddd; padding: .25rem .6rem; text-align: right; white-space: nowrap; }
th { background: #f0f0f3; font-weight: 600; }
td.text, th.text { text-align: left; white-space: normal; }
.exact { color: #777; font-size: .85em; }
.state-writable { color: #176f2c; }
.state-sealed { color: #555; }
.state-read-only, .state-down { color: #a4161a; }
meter { width: 6rem; vertical-align: middle; }
`;

function totalsTable(status: StoreStatus): HtmlEscapedString {
  const { volumeSize } = status;
  return h`<h2>Totals</h2>
<table id="totals">
<tr><th class="text">volumes</th>${countCell('volumes', status.volumes.length)}</tr>
<tr><th class="text">bytes</th>${bytesCell('bytes', status.bytes)}</tr>
<tr><th class="text">live needles</th>${countCell('liveNeedles', status.liveNeedles)}</tr>
<tr><th class="text">deleted needles</th>${countCell('deletedNeedles', status.deletedNeedles)}</tr>
<tr><th class="text">live bytes</th>${bytesCell('liveBytes', status.liveBytes)}</tr>
<tr><th class="text">garbage bytes</th>${bytesCell('garbageBytes', status.garbageBytes)}</tr>
<tr><th class="text">garbage ratio</th>${ratioCell('garbageRatio', status.garbageRatio)}</tr>
<tr><th class="text">next key</th>${countCell('nextKey', status.nextKey)}</tr>
<tr><th class="text">volume size</th>${volumeSize === undefined ? unknownCell('volumeSize') : bytesCell('volumeSize', volumeSize)}</tr>
</table>`;
}

function trafficTable(traffic: Traffic, uptimeSeconds: number): HtmlEscapedString {
  const line = (label: string, name: keyof Traffic, inBytes: boolean) => {
    const total = traffic[name];
    const rate = total === undefined || uptimeSeconds === 0 ? undefined : total / uptimeSeconds;
    return h`<tr><th class="text">${label}</th>${
      total === undefined
        ? unknownCell(name)
        : inBytes
          ? bytesCell(name, total)
          : countCell(name, total)
    }${
      rate === undefined
        ? unknownCell(`${name}PerSecond`)
        : figureCell(`${name}PerSecond`, rate, `${inBytes ? humanBytes(rate) : rate.toFixed(2)}/s`)
    }</tr>`;
  };
  return h`<h2>Traffic since start</h2>
<table id="traffic">
<tr><th class="text"></th><th>total</th><th>per second</th></tr>
${line('requests', 'requests', false)}
${line('bytes received', 'receivedBytes', true)}
${line('bytes sent', 'sentBytes', true)}
</table>`;
}

function volumesTable(status: StoreStatus): HtmlEscapedString {
  const { volumeSize } = status;
  const rows = status.volumes.map(
    (volume) =>
      h`<tr data-volume="${volume.id}">${[
        countCell('id', volume.id),
        bytesCell('bytes', volume.bytes),
        fillCell(volume, volumeSize),
        countCell('liveNeedles', volume.liveNeedles),
        countCell('deletedNeedles', volume.deletedNeedles),
        bytesCell('liveBytes', volume.liveBytes),
        bytesCell('garbageBytes', volume.garbageBytes),
        ratioCell('garbageRatio', volume.garbageRatio),
        stateCell(volumeState(volume)),
      ]}</tr>`,
  );
  return h`<h2>Volumes</h2>
<table id="volumes">
<tr><th>id</th><th>size</th><th>fill</th><th>live needles</th><th>deleted needles</th><th>live bytes</th><th>garbage bytes</th><th>garbage ratio</th><th class="text">state</th></tr>
${rows.length === 0 ? h`<tr><td class="text" colspan="9">no volumes</td></tr>` : rows}
</table>`;
}

/** Writable, sealed (no more appends) or read-only (marked by an operator, so also sealed). */
function volumeState(volume: VolumeStatus): 'writable' | 'sealed' | 'read-only' {
  if (volume.readOnly) return 'read-only';
  return volume.sealed ? 'sealed' : 'writable';
}

function fillCell(volume: VolumeStatus, volumeSize: number | undefined): HtmlEscapedString {
  if (volumeSize === undefined) return unknownCell('fill');
  // Above 1 when a single file larger than the volume size got a volume of its own.
  const fill = volume.bytes / volumeSize;
  return h`<td data-figure="fill" data-value="${fill}"><meter min="0" max="1" value="${Math.min(fill, 1)}"></meter> ${percent(fill)}</td>`;
}

function clusterTables(status: ClusterStatus): HtmlEscapedString {
  const nodes = status.nodes.map(
    (node) =>
      h`<tr data-node="${node.id}">${[
        textCell('id', node.id),
        textCell('url', node.url),
        stateCell(node.state),
        textCell('lastHeartbeat', node.lastHeartbeat),
        bytesCell('bytesFree', node.bytesFree),
      ]}</tr>`,
  );
  const logical = status.logicalVolumes.map(
    (volume) =>
      h`<tr data-logical-volume="${volume.id}">${[
        countCell('id', volume.id),
        stateCell(volume.state),
        textCell(
          'replicas',
          volume.replicas.map((replica) => `${replica.node} (${replica.state})`).join(', '),
        ),
        textCell('reason', volume.reason ?? ''),
      ]}</tr>`,
  );
  return h`<h2>Nodes</h2>
<table id="nodes">
<tr><th class="text">id</th><th class="text">url</th><th class="text">state</th><th class="text">last heartbeat</th><th>bytes free</th></tr>
${nodes}
</table>
<h2>Logical volumes</h2>
<table id="logical-volumes">
<tr><th>id</th><th class="text">state</th><th class="text">replicas</th><th class="text">reason</th></tr>
${logical}
</table>`;
}

function isClusterStatus(status: StoreStatus | ClusterStatus): status is ClusterStatus {
  return (
    'nodes' in status &&
    Array.isArray(status.nodes) &&
    'logicalVolumes' in status &&
    Array.isArray(status.logicalVolumes)
  );
}

// Every figure cell carries its name and exact value, so a program (the browser test) reads
// the figure without parsing what is written for people.
function figureCell(name: string, value: number, shown: string): HtmlEscapedString {
  return h`<td data-figure="${name}" data-value="${value}">${shown}</td>`;
}

function countCell(name: string, value: number): HtmlEscapedString {
  return figureCell(name, value, String(value));
}

function bytesCell(name: string, value: number): HtmlEscapedString {
  const shown = humanBytes(value);
  const exact = value < 1024 ? '' : h` <span class="exact">(${value} B)</span>`;
  return h`<td data-figure="${name}" data-value="${value}">${shown}${exact}</td>`;
}

function ratioCell(name: string, value: number): HtmlEscapedString {
  return figureCell(name, value, percent(value));
}

function textCell(name: string, text: string): HtmlEscapedString {
  return h`<td class="text" data-figure="${name}">${text}</td>`;
}

/** A state is a word from a fixed set, so it can name a class for its colour. */
function stateCell(state: string): HtmlEscapedString {
  return h`<td class="text state-${state}" data-figure="state" data-value="${state}">${state}</td>`;
}

function unknownCell(name: string): HtmlEscapedString {
  return h`<td data-figure="${name}">—</td>`;
}

/** Bytes in binary units, to three significant figures: `1.50 MiB`. */
export function humanBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  if (unit === 0) return `${Math.round(value)} B`;
  return `${value.toPrecision(3)} ${units[unit]}`;
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(1)}%`;
}

/** `3 d 4 h 5 min 6 s`, leaving out the larger units while they are 0. */
export function duration(seconds: number): string {
  const whole = Math.floor(seconds);
  const parts = [
    [Math.floor(whole / 86_400), 'd'],
    [Math.floor(whole / 3600) % 24, 'h'],
    [Math.floor(whole / 60) % 60, 'min'],
  ] as const;
  const first = parts.findIndex(([value]) => value > 0);
  const shown = first === -1 ? [] : parts.slice(first).map(([value, unit]) => `${value} ${unit}`);
  return [...shown, `${whole % 60} s`].join(' ');
}

function isoTime(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}
