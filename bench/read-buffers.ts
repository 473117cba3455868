/**
 * `npm run bench:read-buffers [-- options]`: 64 KiB reads over HTTP, and what their read buffers
 * cost the collector (issue 13, item 4). Every variant serves the same files through the store's
 * app (`createApp`) on plain `@hono/node-server`, each in its own server process:
 *
 * - `store`: the volume store as it is (whole reads into slab slices, read-slab.ts).
 * - `slab`: the store's whole-file read path rebuilt here (one positioned read, `decodeNeedle`
 *   with both checksums, a FileInfo), its buffer cut from the same slabs: the reference that
 *   `pool` differs from in one thing only.
 * - `pool`: the same path reading into buffers from a free list, each given back once Node's
 *   `ServerResponse` has emitted `close` (after `finish`: the socket took the last byte; or after
 *   the connection died: libuv let go of it), the earliest moment reuse is safe. That signal is
 *   the host's, which a host-agnostic handler cannot see: this variant is the best case for a
 *   pool, what any pool behind a release hook could gain at most.
 *
 * Each server runs on CPU 1 (`taskset`), wrk on CPU 0 (`-t1 -c32`, random keys), rounds
 * interleaved with the order rotated each round so that a busy machine hits all alike. Per
 * measurement: req/s, the server's CPU time per answer (/proc), and its collections (a
 * `PerformanceObserver` of `gc` entries in the server: scavenges, mark-compacts, their time).
 * After every measurement 64 random files are read back concurrently and compared byte for byte.
 *
 * Options: --files 512, --duration 4, --warmup 1, --reps 5, --connections 32, --no-pin,
 * --variants store,slab,pool.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import type { Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { type Http2Bindings, type HttpBindings, serve } from '@hono/node-server';
import { fileInfo } from '../adapters/file-info.ts';
import { decodeNeedle, needleLength } from '../adapters/volume/needle.ts';
import { readBuffer } from '../adapters/volume/read-slab.ts';
import { openVolumeStore, type VolumeStore } from '../adapters/volume/volume-store.ts';
import { createApp } from '../handlers/index.ts';
import { type BlobStore, type FileRead, StoreError } from '../storage/index.ts';
import { fmt, loadLine, machineLine, median, parseArgs, ROOT, table } from './lib.ts';

const SIZE = 64 * 1024;
const CONTENT_TYPE = 'application/octet-stream';
const CLOCK_TICKS = 100;
const VARIANTS = ['store', 'slab', 'pool'] as const;
type VariantName = (typeof VARIANTS)[number];

/** File `key`'s bytes: a pattern of the key, so any byte from another file shows. */
function contentOf(key: number): Buffer {
  const bytes = Buffer.allocUnsafe(SIZE);
  let x = key * 2654435761;
  for (let i = 0; i < SIZE; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes.writeUInt32LE(x, i);
  }
  return bytes;
}

// ---- the server side: `bench/read-buffers.ts --serve <variant> --dir <dir>` ----

interface GcCounts {
  minor: number;
  major: number;
  incremental: number;
  gcMs: number;
}

function watchGc(): { take(): GcCounts } {
  let counts: GcCounts = { minor: 0, major: 0, incremental: 0, gcMs: 0 };
  const observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const kind = (entry as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) counts.minor++;
      else if (kind === constants.NODE_PERFORMANCE_GC_MAJOR) counts.major++;
      else if (kind === constants.NODE_PERFORMANCE_GC_INCREMENTAL) counts.incremental++;
      counts.gcMs += entry.duration;
    }
  });
  observer.observe({ entryTypes: ['gc'] });
  return {
    take() {
      const taken = counts;
      counts = { minor: 0, major: 0, incremental: 0, gcMs: 0 };
      return taken;
    },
  };
}

/** Buffers for the `pool` variant: one size, a free list, given back by the response's `close`. */
class ReadPool {
  readonly #free: Buffer[] = [];
  readonly #capacity: number;
  allocated = 0;

  constructor(capacity: number) {
    this.#capacity = capacity;
  }

  take(): Buffer {
    const buffer = this.#free.pop();
    if (buffer) return buffer;
    this.allocated++;
    return Buffer.allocUnsafeSlow(this.#capacity);
  }

  give(buffer: Buffer): void {
    this.#free.push(buffer);
  }
}

/**
 * The store's whole-file read path for these files, rebuilt: where each key is comes from the
 * store itself (`head`), then one positioned read, `decodeNeedle` and a FileInfo per get.
 */
async function rebuiltStore(
  store: VolumeStore,
  dir: string,
  files: number,
  buffers: (length: number) => Buffer,
): Promise<BlobStore> {
  const fd = openSync(path.join(dir, '1.dat'), 'r');
  const offsets: number[] = [];
  for (let key = 1; key <= files; key++) offsets[key] = (await store.head(key)).offset;
  const length = needleLength(CONTENT_TYPE.length, SIZE);
  return {
    head: (key, cookie) => store.head(key, cookie),
    put: (input) => store.put(input),
    replace: (key, input, cookie) => store.replace(key, input, cookie),
    delete: (key, cookie) => store.delete(key, cookie),
    sync: () => store.sync(),
    status: () => store.status(),
    readiness: () => store.readiness(),
    capabilities: {},
    get: async (key): Promise<FileRead> => {
      const offset = offsets[key];
      if (offset === undefined) throw new StoreError('not_found', `no file under key ${key}`);
      const buffer = buffers(length);
      const read = readSync(fd, buffer, 0, length, offset);
      const needle = decodeNeedle(read === length ? buffer : buffer.subarray(0, read));
      if (typeof needle === 'string') throw new StoreError('corrupt', needle);
      const { cookie } = needle;
      const info = fileInfo({
        key,
        size: SIZE,
        volume: 1,
        offset,
        cookie,
        contentType: CONTENT_TYPE,
      });
      return { info, body: needle.data };
    },
    close: async () => {
      closeSync(fd);
      await store.close();
    },
  };
}

async function serveVariant(name: VariantName, dir: string, files: number): Promise<void> {
  const gc = watchGc();
  const volumes = await openVolumeStore({ dir, fsync: 'never' });
  let server: Server;
  let pool: ReadPool | undefined;
  if (name === 'store') {
    const app = createApp({ store: volumes, maxBody: 1 << 20 });
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  } else if (name === 'slab') {
    const app = createApp({
      store: await rebuiltStore(volumes, dir, files, readBuffer),
      maxBody: 1 << 20,
    });
    server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  } else {
    const readPool = new ReadPool(needleLength(CONTENT_TYPE.length, SIZE));
    pool = readPool;
    // The response of the request being dispatched: the app calls `store.get` synchronously
    // from `fetch`, so the get knows whose `close` gives its buffer back.
    let dispatching: ServerResponse | undefined;
    const buffers = (length: number) => {
      const response = dispatching;
      if (!response) throw new Error('a read outside a dispatch: the pool cannot tell its owner');
      const buffer = readPool.take();
      response.once('close', () => readPool.give(buffer));
      return buffer.subarray(0, length);
    };
    const app = createApp({
      store: await rebuiltStore(volumes, dir, files, buffers),
      maxBody: 1 << 20,
    });
    const fetch = (request: Request, env: HttpBindings | Http2Bindings) => {
      dispatching = env.outgoing as ServerResponse;
      try {
        return app.fetch(request, env);
      } finally {
        dispatching = undefined;
      }
    };
    server = serve({ fetch, port: 0, hostname: '127.0.0.1' }) as Server;
  }
  server.keepAliveTimeout = 60_000;
  if (!server.listening) await once(server, 'listening');
  process.on('message', (message) => {
    if (message === 'stats') process.send?.({ ...gc.take(), poolBuffers: pool?.allocated ?? 0 });
  });
  console.log(`port ${(server.address() as AddressInfo).port}`);
  process.on('SIGTERM', () => process.exit(0));
}

// ---- the driver ----

interface Running {
  name: VariantName;
  child: ChildProcess;
  port: number;
  dir: string;
}

interface Stats extends GcCounts {
  poolBuffers: number;
}

function stats(running: Running): Promise<Stats> {
  return new Promise((resolve) => {
    running.child.once('message', (message) => resolve(message as Stats));
    running.child.send('stats');
  });
}

async function startChild(
  name: VariantName,
  dir: string,
  files: number,
  pin: boolean,
): Promise<Running> {
  const node = [process.execPath, '--import', 'tsx', 'bench/read-buffers.ts'];
  node.push('--serve', name, '--dir', dir, '--files', String(files));
  const [command, ...args] = pin ? ['taskset', '-c', '1', ...node] : node;
  const child = spawn(command as string, args, {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const port = /port (\d+)/.exec(out)?.[1];
      if (port) resolve({ name, child, port: Number(port), dir });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

/** 64 random files read back at once, byte for byte: a pool that reuses too early fails here. */
async function verify(running: Running, files: number): Promise<void> {
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      const key = 1 + Math.floor(Math.random() * files);
      const res = await fetch(`http://127.0.0.1:${running.port}/file/${key}`);
      const body = Buffer.from(await res.arrayBuffer());
      if (res.status !== 200 || !body.equals(contentOf(key))) {
        throw new Error(`${running.name}: key ${key} answered ${res.status} with other bytes`);
      }
    }),
  );
}

function cpuMicros(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS) * 1e6;
}

function wrk(
  port: number,
  script: string,
  seconds: number,
  connections: number,
  pin: boolean,
): { rps: number; requests: number } {
  const args = [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '-s',
    script,
    `http://127.0.0.1:${port}`,
  ];
  const [command, ...rest] = pin ? ['taskset', '-c', '0', 'wrk', ...args] : ['wrk', ...args];
  const result = spawnSync(command as string, rest, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`wrk failed: ${result.stderr}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout)?.[1];
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(result.stdout)?.[1];
  if (bad !== undefined) throw new Error(`port ${port}: ${bad} non-2xx answers`);
  const requests = /(\d+) requests in/.exec(result.stdout)?.[1];
  if (rps === undefined || requests === undefined) throw new Error(`no rate: ${result.stdout}`);
  return { rps: Number(rps), requests: Number(requests) };
}

interface Sample {
  rps: number;
  cpuUs: number;
  /** Per 1,000 answers. */
  minor: number;
  major: number;
  gcUs: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const files = Number(args.get('files') ?? 512);
  const serveName = args.get('serve');
  if (typeof serveName === 'string') {
    return serveVariant(serveName as VariantName, String(args.get('dir')), files);
  }
  const duration = Number(args.get('duration') ?? 4);
  const warmup = Number(args.get('warmup') ?? 1);
  const reps = Number(args.get('reps') ?? 5);
  const connections = Number(args.get('connections') ?? 32);
  const pin = args.get('pin') !== false;
  const names = args.get('variants');
  const chosen = VARIANTS.filter((v) => typeof names !== 'string' || names.split(',').includes(v));
  if (spawnSync('wrk', ['--version']).error) throw new Error('wrk is not installed');

  const work = await mkdtemp(path.join(os.tmpdir(), 'haystack-read-buffers-'));
  const running: Running[] = [];
  const stopAll = () => {
    for (const r of running) r.child.kill('SIGTERM');
  };
  try {
    const source = path.join(work, 'source');
    const store = await openVolumeStore({ dir: source, fsync: 'never' });
    for (let key = 1; key <= files; key++) {
      const info = await store.put({ body: contentOf(key), contentType: CONTENT_TYPE });
      if (info.key !== key) throw new Error(`expected key ${key}, got ${info.key}`);
    }
    await store.close();
    const script = path.join(work, 'random.lua');
    writeFileSync(
      script,
      `request = function() return wrk.format("GET", "/file/" .. math.random(1, ${files})) end\n`,
    );

    console.log(machineLine());
    console.log(
      `${files} files of 64 KiB, GET /file/{random}, wrk -t1 -c${connections} -d${duration}s ` +
        `(after ${warmup}s untimed), ${reps} rounds, ${pin ? 'server on CPU 1, wrk on CPU 0' : 'unpinned'}`,
    );
    // Each server has its own copy of the data directory (a store locks its directory).
    for (const name of chosen) {
      const dir = path.join(work, name);
      await cp(source, dir, { recursive: true });
      running.push(await startChild(name, dir, files, pin));
    }
    for (const r of running) await verify(r, files);
    const samples = new Map<VariantName, Sample[]>(chosen.map((v) => [v, []]));
    for (let rep = 0; rep < reps; rep++) {
      const shift = rep % running.length;
      for (const r of [...running.slice(shift), ...running.slice(0, shift)]) {
        if (warmup > 0) wrk(r.port, script, warmup, connections, pin);
        await stats(r);
        const pid = r.child.pid as number;
        const before = cpuMicros(pid);
        const { rps, requests } = wrk(r.port, script, duration, connections, pin);
        const cpuUs = (cpuMicros(pid) - before) / requests;
        const gc = await stats(r);
        await verify(r, files);
        const per1k = 1000 / requests;
        const sample = {
          rps,
          cpuUs,
          minor: gc.minor * per1k,
          major: gc.major * per1k,
          gcUs: (gc.gcMs * 1000) / requests,
        };
        samples.get(r.name)?.push(sample);
        console.log(
          `  round ${rep + 1}  ${r.name.padEnd(6)} ${fmt(rps).padStart(7)} req/s  ${fmt(cpuUs, 1).padStart(6)} us CPU/req  ` +
            `${fmt(sample.minor, 2)} scavenges + ${fmt(sample.major, 2)} mark-compacts /1k req, ` +
            `GC ${fmt(sample.gcUs, 1)} us/req${r.name === 'pool' ? `, ${gc.poolBuffers} buffers in the pool` : ''}`,
        );
      }
    }
    const reference = samples.get('slab') ?? samples.get('store') ?? [];
    const rows = [
      [
        'variant',
        'req/s',
        'min-max',
        'x slab',
        'us CPU/req',
        'x slab (CPU)',
        'scavenges/1k',
        'mark-compacts/1k',
        'GC us/req',
      ],
    ];
    for (const name of chosen) {
      const list = samples.get(name) ?? [];
      const rps = list.map((s) => s.rps);
      rows.push([
        name,
        fmt(median(rps)),
        `${fmt(Math.min(...rps))}-${fmt(Math.max(...rps))}`,
        fmt(median(list.map((s, i) => s.rps / (reference[i] as Sample).rps)), 2),
        fmt(median(list.map((s) => s.cpuUs)), 1),
        fmt(median(list.map((s, i) => (reference[i] as Sample).cpuUs / s.cpuUs)), 2),
        fmt(median(list.map((s) => s.minor)), 2),
        fmt(median(list.map((s) => s.major)), 2),
        fmt(median(list.map((s) => s.gcUs)), 1),
      ]);
    }
    console.log(
      "\nx slab: req/s over slab's in the same round; (CPU): slab's CPU per answer over the " +
        "variant's; medians over the rounds. Every read-back matched.",
    );
    console.log(`\n${table(rows)}`);
    console.log(loadLine());
  } finally {
    stopAll();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
