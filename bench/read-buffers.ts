/**
 * `npm run bench:read-buffers [-- options]`: 64 KiB reads over HTTP, and what their read buffers
 * cost the collector (issue 13, item 4). Both variants serve the same files through the store's
 * app (`createApp`) on `@hono/node-server` with `releaseAfterClose` (handlers/after-send.ts: lent
 * bytes are given back on the response's `close`), each in its own server process:
 *
 * - `store`: the volume store as it is: whole reads of mid-size needles into buffers from the
 *   read pool (adapters/volume/read-pool.ts), lent to the answer and given back on `close`.
 * - `slab`: the store's whole-file read path as it was before the pool, rebuilt here (one
 *   positioned read, `decodeNeedle` with both checksums, a FileInfo), its buffer cut from the
 *   slabs (read-slab.ts) and never given back: the before.
 *
 * Each server runs on CPU 1 (`taskset`), wrk on CPU 0 (`-t1 -c32`, random keys), rounds
 * interleaved with the order rotated each round so that a busy machine hits both alike (the
 * shared driver, bench/lib.ts). Per measurement: req/s, the server's CPU time per answer (/proc),
 * its collections (a `PerformanceObserver` of `gc` entries in the server: scavenges,
 * mark-compacts, their time) and, for `store`, the share of reads served from a reused buffer.
 * After every measurement 64 random files are read back concurrently and compared byte for byte.
 *
 * Options: --files 512, --duration 4, --warmup 1, --reps 5, --connections 32, --no-pin,
 * --variants store,slab.
 */
import { once } from 'node:events';
import { closeSync, openSync, readSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { serve } from '@hono/node-server';
import { fileInfo } from '../adapters/file-info.ts';
import { decodeNeedle, needleLength } from '../adapters/volume/needle.ts';
import { type ReadPoolStats, readPool } from '../adapters/volume/read-pool.ts';
import { readBuffer } from '../adapters/volume/read-slab.ts';
import { openVolumeStore, type VolumeStore } from '../adapters/volume/volume-store.ts';
import { createApp, releaseAfterClose } from '../handlers/index.ts';
import { type BlobStore, type FileRead, StoreError } from '../storage/index.ts';
import {
  fmt,
  loadLine,
  machineLine,
  measureRounds,
  median,
  parseArgs,
  ratioTable,
  requireWrk,
  type ServerChild,
  startServerChild,
} from './lib.ts';

const SIZE = 64 * 1024;
const CONTENT_TYPE = 'application/octet-stream';
const VARIANTS = ['store', 'slab'] as const;
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

/**
 * The store's whole-file read path for these files as it was before the read pool, rebuilt:
 * where each key is comes from the store itself (`head`), then one positioned read into a slab
 * slice, `decodeNeedle` and a FileInfo per get.
 */
async function rebuiltStore(store: VolumeStore, dir: string, files: number): Promise<BlobStore> {
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
      const buffer = readBuffer(length);
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
  const store = name === 'store' ? volumes : await rebuiltStore(volumes, dir, files);
  const app = createApp({ store, maxBody: 1 << 20 });
  const server = serve({
    fetch: releaseAfterClose(app.fetch),
    port: 0,
    hostname: '127.0.0.1',
  }) as Server;
  server.keepAliveTimeout = 60_000;
  if (!server.listening) await once(server, 'listening');
  process.on('message', (message) => {
    if (message === 'stats') process.send?.({ ...gc.take(), pool: readPool.stats() });
  });
  console.log(`port ${(server.address() as AddressInfo).port}`);
  process.on('SIGTERM', () => process.exit(0));
}

// ---- the driver (bench/lib.ts) ----

interface Stats extends GcCounts {
  pool: ReadPoolStats;
}

function stats(running: ServerChild): Promise<Stats> {
  return new Promise((resolve) => {
    running.child.once('message', (message) => resolve(message as Stats));
    running.child.send('stats');
  });
}

/** 64 random files read back at once, byte for byte: a pool that reuses too early fails here. */
async function verify(running: ServerChild, files: number): Promise<void> {
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
  requireWrk();

  const work = await mkdtemp(path.join(os.tmpdir(), 'haystack-read-buffers-'));
  const running: ServerChild[] = [];
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
      const args = ['--serve', name, '--dir', dir, '--files', String(files)];
      running.push(await startServerChild(name, 'bench/read-buffers.ts', args, { pin, ipc: true }));
    }
    for (const r of running) await verify(r, files);
    const reference = running.find((r) => r.name === 'slab') ?? (running[0] as ServerChild);
    const poolBefore = new Map<string, ReadPoolStats>();
    const samples = await measureRounds(running, {
      target: { script },
      seconds: duration,
      connections,
      pin,
      reps,
      warmup,
      reference,
      referenceFirst: false,
      // The GC counts restart at each `stats`; the pool's are since start, so taken as deltas.
      before: async (r) => void poolBefore.set(r.name, (await stats(r)).pool),
      async after(r, requests) {
        const gc = await stats(r);
        await verify(r, files);
        const per1k = 1000 / requests;
        const leases = gc.pool.leases - (poolBefore.get(r.name)?.leases ?? 0);
        const reused = gc.pool.reused - (poolBefore.get(r.name)?.reused ?? 0);
        return {
          minor: gc.minor * per1k,
          major: gc.major * per1k,
          gcUs: (gc.gcMs * 1000) / requests,
          reusedShare: leases === 0 ? 0 : reused / leases,
          poolFreeMiB: gc.pool.freeBytes / 2 ** 20,
        };
      },
      log: (round, r, { rps, cpuUs, extra }) =>
        console.log(
          `  round ${round}  ${r.name.padEnd(6)} ${fmt(rps).padStart(7)} req/s  ${fmt(cpuUs, 1).padStart(6)} us CPU/req  ` +
            `${fmt(extra.minor ?? 0, 2)} scavenges + ${fmt(extra.major ?? 0, 2)} mark-compacts /1k req, ` +
            `GC ${fmt(extra.gcUs ?? 0, 1)} us/req` +
            (r.name === 'store'
              ? `, ${fmt(100 * (extra.reusedShare ?? 0), 1)} % of reads into a reused buffer, ` +
                `${fmt(extra.poolFreeMiB ?? 0, 1)} MiB free in the pool`
              : ''),
        ),
    });
    console.log(
      `\nx ${reference.name}: req/s over ${reference.name}'s in the same round; (CPU): ` +
        `${reference.name}'s CPU per answer over the variant's; medians over the rounds. ` +
        'Every read-back matched.',
    );
    const rows = ratioTable(
      chosen,
      samples,
      reference.name,
      [
        { label: 'scavenges/1k', key: 'minor', digits: 2 },
        { label: 'mark-compacts/1k', key: 'major', digits: 2 },
        { label: 'GC us/req', key: 'gcUs', digits: 1 },
      ],
      {
        labels: ['reads reused'],
        cells: (name) => {
          const shares = (samples.get(name) ?? []).map((s) => s.extra.reusedShare ?? 0);
          return [name === 'store' ? `${fmt(100 * median(shares), 1)} %` : '-'];
        },
      },
    );
    console.log(`\n${rows}`);
    console.log(loadLine());
  } finally {
    stopAll();
    await rm(work, { recursive: true, force: true });
  }
}

await main();
