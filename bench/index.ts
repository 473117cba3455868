/**
 * `npm run bench:index [-- options]`: the in-memory needle map and start-up at Haystack scale.
 *
 * For each size (default 1M, 10M, 50M needles), in a fresh child process each:
 * - map: builds the packed needle map (the store's) and a JS Map of objects (the old
 *   MapNeedleMap, where a Map can hold the size: at most 2^24 entries), and prints the bytes of
 *   heap + array buffers per needle after GC, the build time and the rate of random gets;
 * - start-up: writes a data directory with one volume of N small needles (zero-byte files, by the
 *   needle codec, in big sequential writes) and its matching `.idx`, then times
 *   `openVolumeStore` on it, from the call until it resolves, ready to serve (and the same load
 *   with a JS Map, where it fits). The files are in the page cache, as after a restart.
 * - RSS of a real server: for each of two or more fill levels (default 1M and 4M needles), the
 *   same kind of data directory, then `haystack start` on it in a child process (the CLI as
 *   `npm start` runs it, plus bench/rss-probe.ts, which runs a GC on SIGUSR2); once it listens,
 *   its VmRSS from /proc/<pid>/status before and after that GC, and the heap figures the probe
 *   prints. The slope between fill levels (bytes of RSS per added needle) is what a needle
 *   really costs the process, fixed start-up costs cancelled out; printed next to the heap's.
 *
 * Options: --sizes 1M,10M,50M   --startup-sizes (default: --sizes; `none` to skip)
 *          --rss-sizes 1M,4M (at least two; `none` to skip)
 *          --lookups 2M (random gets timed per map)   --tmpdir DIR (default: the OS temp dir)
 *          --keep-data (keep the start-up data dirs and print how to profile their loading)
 */
import { randomInt } from 'node:crypto';
import { mkdtemp, open, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { crc32 } from 'node:zlib';
import { TelemetryHub } from '../adapters/telemetry-hub.ts';
import { LiveSet } from '../adapters/volume/accounting.ts';
import { indexPath, volumePath } from '../adapters/volume/data-dir.ts';
import { INDEX_ENTRY_SIZE, indexHeader, writeEntry } from '../adapters/volume/index-file.ts';
import { loadVolume } from '../adapters/volume/load.ts';
import { HEADER_SIZE, NeedleKind, needleLength, writeHeader } from '../adapters/volume/needle.ts';
import { MapNeedleMap, type NeedleMap } from '../adapters/volume/needle-map.ts';
import { PackedNeedleMap } from '../adapters/volume/packed-needle-map.ts';
import { VolumeFile } from '../adapters/volume/volume-file.ts';
import { openVolumeStore } from '../adapters/volume/volume-store.ts';
import { listening, spawnCli, stop } from '../scripts/support/cli-process.ts';
import {
  countLabel,
  fmt,
  loadLine,
  machineLine,
  parseArgs,
  parseCount,
  runChild,
  table,
  usedMemory,
} from './lib.ts';

const SCRIPT = fileURLToPath(import.meta.url);
const MAP_LIMIT = 2 ** 24;
/** A 1 KiB photo with a 10-byte content type, in volumes of the store's default 4 GiB. */
const PHOTO_NEEDLE = needleLength(10, 1024);
const VOLUME_BYTES = 4 * 2 ** 30;
const PER_VOLUME = Math.floor((VOLUME_BYTES - 32) / PHOTO_NEEDLE);
/** Every this many keys, two neighbours are set in reverse order (writes published late). */
const OUT_OF_ORDER_EVERY = 64;

type MapKind = 'packed' | 'map';

interface MapJob {
  type: 'map';
  kind: MapKind;
  count: number;
  lookups: number;
}

interface MapResult {
  bytesPerNeedle: number;
  buildMs: number;
  lookupsPerSecond: number;
}

interface StartupJob {
  type: 'startup';
  kind: MapKind;
  dir: string;
  count: number;
}

interface StartupResult {
  ms: number;
  bytesPerNeedle: number;
}

function makeMap(kind: MapKind): NeedleMap {
  return kind === 'packed' ? new PackedNeedleMap() : new MapNeedleMap();
}

function locationOf(key: number) {
  const index = key - 1;
  return {
    volume: 1 + Math.floor(index / PER_VOLUME),
    offset: 32 + (index % PER_VOLUME) * PHOTO_NEEDLE,
    length: PHOTO_NEEDLE,
  };
}

async function mapJob(job: MapJob): Promise<MapResult> {
  const keys = new Float64Array(job.lookups);
  for (let i = 0; i < keys.length; i++) keys[i] = 1 + randomInt(job.count);
  const before = usedMemory();
  const started = performance.now();
  const map = makeMap(job.kind);
  for (let key = 1; key <= job.count; key++) {
    if (key % OUT_OF_ORDER_EVERY === 0 && key < job.count) {
      map.set(key + 1, locationOf(key + 1));
      map.set(key, locationOf(key));
      key++;
    } else {
      map.set(key, locationOf(key));
    }
  }
  const buildMs = performance.now() - started;
  const bytes = usedMemory() - before;
  if (map.size !== job.count) throw new Error(`built ${map.size} of ${job.count}`);

  const lookupStart = performance.now();
  let found = 0;
  for (let i = 0; i < keys.length; i++) {
    const location = map.get(keys[i] as number);
    if (location) found += location.length;
  }
  const lookupMs = performance.now() - lookupStart;
  if (found !== keys.length * PHOTO_NEEDLE) throw new Error('a lookup missed');
  return {
    bytesPerNeedle: bytes / job.count,
    buildMs,
    lookupsPerSecond: keys.length / (lookupMs / 1000),
  };
}

async function startupJob(job: StartupJob): Promise<StartupResult> {
  const before = usedMemory();
  let ms: number;
  if (job.kind === 'packed') {
    const started = performance.now();
    const store = await openVolumeStore({ dir: job.dir });
    ms = performance.now() - started;
    const status = await store.status();
    if (status.liveNeedles !== job.count) {
      throw new Error(`the store sees ${status.liveNeedles} live needles, not ${job.count}`);
    }
    for (let i = 0; i < 1000; i++) {
      const { info } = await store.get(1 + randomInt(job.count));
      if (info.size !== 0) throw new Error('read the wrong needle');
    }
    const bytes = usedMemory() - before;
    await store.close();
    return { ms, bytesPerNeedle: bytes / job.count };
  }
  // The JS Map alternative, by the same loading code the store uses (without the store around).
  const started = performance.now();
  const file = await VolumeFile.open(volumePath(job.dir, 1), 1);
  const live = new LiveSet(new MapNeedleMap());
  const { volume } = await loadVolume(job.dir, file, live, new TelemetryHub());
  ms = performance.now() - started;
  const bytes = usedMemory() - before;
  if (live.map.size !== job.count) throw new Error(`loaded ${live.map.size} of ${job.count}`);
  await volume.index.close();
  await file.close();
  return { ms, bytesPerNeedle: bytes / job.count };
}

/**
 * A data directory with volume 1 holding `count` zero-byte files of type image/jpeg (keys 1 to
 * count, 48 bytes each) and the index describing all of them.
 */
async function writeDataDir(dir: string, count: number): Promise<void> {
  const created = await VolumeFile.create(volumePath(dir, 1), 1);
  const nonce = created.nonce;
  await created.close();
  const contentType = 'image/jpeg';
  const length = needleLength(contentType.length, 0);
  const perBlock = 65536;
  const volume = await open(volumePath(dir, 1), 'r+');
  const index = await open(indexPath(dir, 1), 'w');
  try {
    await index.write(indexHeader(nonce), 0, undefined, 0);
    const needles = Buffer.alloc(perBlock * length);
    const entries = Buffer.alloc(perBlock * INDEX_ENTRY_SIZE);
    let offset = 32;
    let indexAt = indexHeader(nonce).byteLength;
    for (let first = 1; first <= count; first += perBlock) {
      const n = Math.min(perBlock, count - first + 1);
      for (let i = 0; i < n; i++) {
        const at = i * length;
        const key = first + i;
        writeHeader(needles, at, {
          kind: NeedleKind.file,
          key,
          cookie: key % 2 ** 32,
          contentTypeLength: contentType.length,
          dataSize: 0,
        });
        needles.write(contentType, at + HEADER_SIZE, 'latin1');
        const end = at + HEADER_SIZE + contentType.length;
        needles.writeUInt32LE(crc32(needles.subarray(at, end)), end);
        writeEntry(entries, i * INDEX_ENTRY_SIZE, { key, offset: offset + at, length });
      }
      await volume.write(needles, 0, n * length, offset);
      await index.write(entries, 0, n * INDEX_ENTRY_SIZE, indexAt);
      offset += n * length;
      indexAt += n * INDEX_ENTRY_SIZE;
    }
    await volume.sync();
    await index.sync();
  } finally {
    await volume.close();
    await index.close();
  }
}

/** What a restarted server's process holds, read from outside, and its heap after a GC. */
interface RssSample {
  /** VmRSS once it listens, and again after the GC the probe ran (bytes). */
  rssBefore: number;
  rss: number;
  /** RssAnon after the GC: RSS without the mapped binary and libraries. */
  rssAnon: number;
  /** Of that, resident bytes of the brk heap (glibc malloc's main arena: array buffers). */
  brkHeap: number;
  /** From the probe, after the GC: heap used + array buffers, and the heap V8 reserved. */
  heapUsed: number;
  heapTotal: number;
  arrayBuffers: number;
  startS: number;
}

async function procStatus(pid: number): Promise<Map<string, number>> {
  const fields = new Map<string, number>();
  for (const line of (await readFile(`/proc/${pid}/status`, 'utf8')).split('\n')) {
    const match = /^(\w+):\s+(\d+) kB$/.exec(line);
    if (match) fields.set(match[1] as string, Number(match[2]) * 1024);
  }
  return fields;
}

/** Resident bytes of the `[heap]` mapping (brk), from /proc/<pid>/smaps. */
async function brkHeapRss(pid: number): Promise<number> {
  const smaps = await readFile(`/proc/${pid}/smaps`, 'utf8');
  let inHeap = false;
  let rss = 0;
  for (const line of smaps.split('\n')) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) inHeap = line.endsWith('[heap]');
    else if (inHeap && line.startsWith('Rss:')) rss += Number(/(\d+)/.exec(line)?.[1]) * 1024;
  }
  return rss;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Starts `haystack start` on `dir` (the CLI from source, as `npm start` runs it, plus the GC
 * probe), waits until it listens, checks it serves `count` needles, and samples its memory.
 */
async function serverRss(dir: string, count: number): Promise<RssSample> {
  const started = performance.now();
  const run = spawnCli(['start', '--data', dir, '--port', '0'], {}, [
    '--expose-gc',
    '--import',
    './bench/rss-probe.ts',
  ]);
  try {
    const { url, pid } = await listening(run, 10 * 60_000);
    const startS = (performance.now() - started) / 1000;
    const status = (await (await fetch(`${url}/status`)).json()) as { liveNeedles: number };
    if (status.liveNeedles !== count) {
      throw new Error(`the server sees ${status.liveNeedles} live needles, not ${count}`);
    }
    for (const key of [1, count, 1 + randomInt(count)]) {
      const response = await fetch(`${url}/file/${key}`);
      await response.arrayBuffer();
      if (response.status !== 200) throw new Error(`GET /file/${key}: ${response.status}`);
    }
    await sleep(1000);
    const rssBefore = (await procStatus(pid)).get('VmRSS') ?? 0;
    run.child.kill('SIGUSR2');
    const [, probe = '{}'] = await run.waitForLine(/rss-probe (\{.*\})/, 'stderr');
    const heap = JSON.parse(probe) as { heapUsed: number; heapTotal: number; arrayBuffers: number };
    await sleep(500);
    const after = await procStatus(pid);
    return {
      rssBefore,
      rss: after.get('VmRSS') ?? 0,
      rssAnon: after.get('RssAnon') ?? 0,
      brkHeap: await brkHeapRss(pid),
      heapUsed: heap.heapUsed,
      heapTotal: heap.heapTotal,
      arrayBuffers: heap.arrayBuffers,
      startS,
    };
  } finally {
    await stop(run);
  }
}

async function rssSection(sizes: readonly number[], tmp: string): Promise<void> {
  const samples: Array<{ count: number; sample: RssSample }> = [];
  for (const count of sizes) {
    const dir = await mkdtemp(path.join(tmp, 'haystack-bench-rss-'));
    try {
      progress(`server RSS, ${countLabel(count)} needles: writing the data dir`);
      await writeDataDir(dir, count);
      progress(`server RSS, ${countLabel(count)} needles: haystack start`);
      samples.push({ count, sample: await serverRss(dir, count) });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const MB = 1e6;
  const rows: string[][] = [
    [
      'needles',
      'start s',
      'RSS MB',
      'after GC',
      'anon',
      'brk heap',
      'heap used + AB MB',
      'heap total',
      'array buffers',
    ],
  ];
  for (const { count, sample: s } of samples) {
    rows.push([
      countLabel(count),
      fmt(s.startS, 2),
      fmt(s.rssBefore / MB, 1),
      fmt(s.rss / MB, 1),
      fmt(s.rssAnon / MB, 1),
      fmt(s.brkHeap / MB, 1),
      fmt((s.heapUsed + s.arrayBuffers) / MB, 1),
      fmt(s.heapTotal / MB, 1),
      fmt(s.arrayBuffers / MB, 1),
    ]);
  }
  console.log(
    'server RSS: haystack start (CLI from source, tsx) on a data dir of N zero-byte files; VmRSS ' +
      'once it listens and after a GC (SIGUSR2 to bench/rss-probe.ts), RssAnon and the brk heap ' +
      'after it; heap used + array buffers as the process reports them after the GC',
  );
  console.log(table(rows));
  const slopes: string[][] = [
    ['from', 'to', 'RSS B/needle', 'after GC', 'anon', 'heap + AB B/needle', 'all told at top'],
  ];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1] as { count: number; sample: RssSample };
    const b = samples[i] as { count: number; sample: RssSample };
    const added = b.count - a.count;
    const per = (f: (s: RssSample) => number) => fmt((f(b.sample) - f(a.sample)) / added, 1);
    slopes.push([
      countLabel(a.count),
      countLabel(b.count),
      per((s) => s.rssBefore),
      per((s) => s.rss),
      per((s) => s.rssAnon),
      per((s) => s.heapUsed + s.arrayBuffers),
      fmt(b.sample.rss / b.count, 1),
    ]);
  }
  console.log('slope: bytes per added needle between fill levels (the fixed cost cancels out)');
  console.log(table(slopes));
  console.log('');
}

function progress(what: string): void {
  process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${what}\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const child = args.get('child');
  if (typeof child === 'string') {
    const job = JSON.parse(child) as MapJob | StartupJob;
    const result = job.type === 'map' ? await mapJob(job) : await startupJob(job);
    process.stdout.write(`${JSON.stringify(result)}\n`);
    return;
  }

  const sizes = String(args.get('sizes') ?? '1M,10M,50M')
    .split(',')
    .map(parseCount);
  const startupArg = args.get('startup-sizes');
  const startupSizes =
    startupArg === false || startupArg === 'none'
      ? []
      : typeof startupArg === 'string'
        ? startupArg.split(',').map(parseCount)
        : sizes;
  const lookups = parseCount(String(args.get('lookups') ?? '2M'));
  const tmp = String(args.get('tmpdir') ?? os.tmpdir());
  const keepData = args.get('keep-data') === true;
  const rssArg = args.get('rss-sizes');
  const rssSizes =
    rssArg === false || rssArg === 'none'
      ? []
      : String(typeof rssArg === 'string' ? rssArg : '1M,4M')
          .split(',')
          .map(parseCount);
  if (rssSizes.length === 1) throw new Error('--rss-sizes needs two fill levels or more');

  console.log(`bench:index  ${new Date().toISOString()}`);
  console.log(machineLine());
  console.log(
    `needles: keys 1..N (every ${OUT_OF_ORDER_EVERY}th pair set in reverse order), 1 KiB photos ` +
      `(${PHOTO_NEEDLE}-byte needles) in 4 GiB volumes; ${countLabel(lookups)} random gets; ` +
      'memory = heap used + array buffers after GC, minus before',
  );
  console.log('');

  const mapRows: string[][] = [
    [
      'needles',
      'map',
      'bytes/needle',
      'build s',
      'build M sets/s',
      'gets M/s',
      'vs Map: bytes',
      'gets',
    ],
  ];
  for (const count of sizes) {
    progress(`map, ${countLabel(count)} needles`);
    const packed = await runChild<MapResult>(SCRIPT, {
      type: 'map',
      kind: 'packed',
      count,
      lookups,
    } satisfies MapJob);
    const map =
      count <= MAP_LIMIT
        ? await runChild<MapResult>(
            SCRIPT,
            { type: 'map', kind: 'map', count, lookups } satisfies MapJob,
            ['--max-old-space-size=16384'],
          )
        : undefined;
    const row = (name: string, r: MapResult, vs: string[]) => [
      countLabel(count),
      name,
      fmt(r.bytesPerNeedle, 1),
      fmt(r.buildMs / 1000, 2),
      fmt(count / r.buildMs / 1000, 1),
      fmt(r.lookupsPerSecond / 1e6, 2),
      ...vs,
    ];
    mapRows.push(
      row(
        'packed',
        packed,
        map
          ? [
              `${fmt(packed.bytesPerNeedle / map.bytesPerNeedle, 2)}x`,
              `${fmt(packed.lookupsPerSecond / map.lookupsPerSecond, 2)}x`,
            ]
          : ['', ''],
      ),
    );
    if (map) mapRows.push(row('JS Map', map, ['', '']));
    else mapRows.push([countLabel(count), 'JS Map', 'cannot', '', '', '', '', '']);
  }
  console.log(table(mapRows));
  if (sizes.some((count) => count > MAP_LIMIT)) {
    console.log('cannot: a JS Map holds at most 2^24 (16,777,216) entries');
  }
  console.log('');

  if (startupSizes.length > 0) {
    const rows: string[][] = [
      ['needles', '.idx MiB', 'write s', 'store open s', 'bytes/needle', 'with a JS Map s'],
    ];
    for (const count of startupSizes) {
      const dir = await mkdtemp(path.join(tmp, 'haystack-bench-index-'));
      try {
        progress(`start-up, ${countLabel(count)} needles: writing the data dir`);
        const writeStart = performance.now();
        await writeDataDir(dir, count);
        const writeS = (performance.now() - writeStart) / 1000;
        const store = await runChild<StartupResult>(SCRIPT, {
          type: 'startup',
          kind: 'packed',
          dir,
          count,
        } satisfies StartupJob);
        const map =
          count <= MAP_LIMIT
            ? await runChild<StartupResult>(
                SCRIPT,
                { type: 'startup', kind: 'map', dir, count } satisfies StartupJob,
                ['--max-old-space-size=16384'],
              )
            : undefined;
        rows.push([
          countLabel(count),
          fmt((count * INDEX_ENTRY_SIZE) / 2 ** 20, 0),
          fmt(writeS, 1),
          fmt(store.ms / 1000, 2),
          fmt(store.bytesPerNeedle, 1),
          map ? fmt(map.ms / 1000, 2) : 'cannot',
        ]);
      } finally {
        if (keepData) {
          const job = JSON.stringify({ type: 'startup', kind: 'packed', dir, count });
          console.error(`kept ${dir}; to profile its start-up:`);
          console.error(
            `  node --expose-gc --cpu-prof --import tsx bench/index.ts --child '${job}'`,
          );
        } else await rm(dir, { recursive: true, force: true });
      }
    }
    console.log(
      'start-up: openVolumeStore on a data dir whose .idx covers N needles (page cache warm), ' +
        'from the call until it resolves; bytes/needle of the open store after GC',
    );
    console.log(table(rows));
    console.log('');
  }
  if (rssSizes.length > 0) await rssSection(rssSizes, tmp);
  console.log(loadLine());
}

await main();
