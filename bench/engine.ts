/**
 * `npm run bench:engine [-- options]`: the volume adapter in-process, next to a raw baseline
 * measured in the same run, as ratios.
 *
 * The raw baseline is the least a Node program can do to store blobs: append to one file with a
 * FileHandle (positioned writes at a tail reserved in order), remember key -> (offset, length) in
 * a Map, read back with one positioned read. Durable, it adds group commit: callers that arrive
 * while an fdatasync runs share the next one. The store does the same jobs plus its own: needle
 * header, checksums, content type, index entries, the needle map, read verification.
 *
 * For each object size and repetition, both get fresh data in the temp dir, then, each phase
 * timed for --duration seconds (or --max-mib of puts) with --concurrency callers in a loop:
 *   put, fsync never  |  put, fsync always (durable)  |  get of the files written last (as
 *   many as the store's cache holds), cache on  |  the same gets, the store reopened with its
 *   cache off  |  get of random keys written before (cache on, reopened: filled by these reads).
 * Raw and store alternate who goes first. Tables show medians with min-max of the repetitions;
 * below them, the store's cache-on over cache-off ratio of the gets of the last files written.
 *
 * Options: --sizes 1k,64k  --duration 2  --reps 3  --concurrency 32  --max-mib 1024
 *          --cpu 1 (pin every thread of the process to these CPUs, as the HTTP benchmark pins
 *          its servers; default: not pinned)
 *          --warmup 2000 (untimed operations per engine before the first phase)  --tmpdir DIR
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { type FileHandle, mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ENTRY_OVERHEAD } from '../adapters/volume/needle-cache.ts';
import { openVolumeStore, type VolumeStore } from '../adapters/volume/volume-store.ts';
import type { CacheStats } from '../storage/index.ts';
import {
  fmt,
  loadLine,
  machineLine,
  median,
  parseArgs,
  parseCount,
  parseSize,
  sizeLabel,
  table,
} from './lib.ts';

interface Engine {
  put(data: Buffer): Promise<number>;
  get(key: number): Promise<number>;
  close(): Promise<void>;
}

/** Append + Map + positioned read, with optional group-committed fdatasync. */
class RawEngine implements Engine {
  readonly #handle: FileHandle;
  readonly #map = new Map<number, { offset: number; length: number }>();
  #tail = 0;
  #nextKey = 1;
  durable = false;
  #flushing = false;
  #waiting: Array<{ resolve: () => void; reject: (err: unknown) => void }> = [];
  flushes = 0;

  private constructor(handle: FileHandle) {
    this.#handle = handle;
  }

  static async open(file: string): Promise<RawEngine> {
    return new RawEngine(await open(file, 'w+'));
  }

  async put(data: Buffer): Promise<number> {
    const key = this.#nextKey++;
    const offset = this.#tail;
    this.#tail += data.byteLength;
    let written = 0;
    while (written < data.byteLength) {
      const { bytesWritten } = await this.#handle.write(
        data,
        written,
        data.byteLength - written,
        offset + written,
      );
      written += bytesWritten;
    }
    if (this.durable) await this.#sync();
    this.#map.set(key, { offset, length: data.byteLength });
    return key;
  }

  async get(key: number): Promise<number> {
    const location = this.#map.get(key);
    if (!location) throw new Error(`raw: no key ${key}`);
    const buffer = Buffer.allocUnsafe(location.length);
    const { bytesRead } = await this.#handle.read(buffer, 0, location.length, location.offset);
    if (bytesRead !== location.length) throw new Error('raw: short read');
    return bytesRead;
  }

  #sync(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
      if (!this.#flushing) void this.#flush();
    });
  }

  async #flush(): Promise<void> {
    this.#flushing = true;
    while (this.#waiting.length > 0) {
      const batch = this.#waiting;
      this.#waiting = [];
      this.flushes++;
      try {
        await this.#handle.datasync();
        for (const waiter of batch) waiter.resolve();
      } catch (err) {
        for (const waiter of batch) waiter.reject(err);
      }
    }
    this.#flushing = false;
  }

  close(): Promise<void> {
    return this.#handle.close();
  }
}

class StoreEngine implements Engine {
  store: VolumeStore;
  readonly #dir: string;

  private constructor(store: VolumeStore, dir: string) {
    this.store = store;
    this.#dir = dir;
  }

  static async open(dir: string): Promise<StoreEngine> {
    return new StoreEngine(await openVolumeStore({ dir, fsync: 'never' }), dir);
  }

  /** The store's fsync mode and cache are chosen at open: close and open again (not timed). */
  async reopen(options: { fsync: 'always'; cacheSize?: number }): Promise<void> {
    await this.store.close();
    this.store = await openVolumeStore({ dir: this.#dir, ...options });
  }

  async put(data: Buffer): Promise<number> {
    return (await this.store.put({ body: data, contentType: 'application/octet-stream' })).key;
  }

  async get(key: number): Promise<number> {
    const { body } = await this.store.get(key);
    if (!(body instanceof Uint8Array)) throw new Error('store: expected a buffered body');
    return body.byteLength;
  }

  close(): Promise<void> {
    return this.store.close();
  }
}

/** Hits over lookups between two readings of the counters. */
function cacheHitRatio(before: CacheStats, after: CacheStats): number {
  const hits = after.hits - before.hits;
  const lookups = hits + after.misses - before.misses;
  return lookups === 0 ? 0 : hits / lookups;
}

interface PhaseResult {
  opsPerSecond: number;
  /** Process CPU (user + system, all threads) per operation, microseconds. */
  cpuMicros: number;
}

/** `concurrency` callers run `op` in a loop until the time or the operation budget is spent. */
async function runPhase(
  op: (i: number) => Promise<unknown>,
  concurrency: number,
  durationMs: number,
  maxOps: number,
): Promise<PhaseResult> {
  let started = 0;
  let done = 0;
  const start = performance.now();
  const cpu = process.cpuUsage();
  const end = start + durationMs;
  const caller = async () => {
    while (started < maxOps && performance.now() < end) {
      await op(started++);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, caller));
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  return { opsPerSecond: done / seconds, cpuMicros: (used.user + used.system) / done };
}

type PhaseName =
  | 'put, fsync never'
  | 'put, fsync always'
  | 'get last written, cache on'
  | 'get last written, cache off'
  | 'get random';
const PHASES: PhaseName[] = [
  'put, fsync never',
  'put, fsync always',
  'get last written, cache on',
  'get last written, cache off',
  'get random',
];
const TARGETS: Record<PhaseName, number | undefined> = {
  'put, fsync never': 0.7,
  'put, fsync always': undefined,
  'get last written, cache on': undefined,
  'get last written, cache off': 0.8,
  'get random': 0.8,
};

interface Sample {
  raw: PhaseResult;
  store: PhaseResult;
  rawWritesPerFlush?: number;
  /** The store's cache counters over the phase. */
  hitRatio?: number;
  hotFiles?: number;
}

async function runSize(
  size: number,
  rep: number,
  options: {
    concurrency: number;
    durationMs: number;
    maxBytes: number;
    warmup: number;
    tmp: string;
  },
): Promise<Map<PhaseName, Sample>> {
  const dir = await mkdtemp(path.join(options.tmp, 'haystack-bench-engine-'));
  const samples = new Map<PhaseName, Sample>();
  const raw = await RawEngine.open(path.join(dir, 'raw.dat'));
  const store = await StoreEngine.open(path.join(dir, 'store'));
  try {
    const payloads = Array.from({ length: 64 }, () => randomBytes(size));
    const payload = (i: number) => payloads[i % payloads.length] as Buffer;
    const rawKeys: number[] = [];
    const storeKeys: number[] = [];
    const puts = (engine: Engine, keys: number[]) => async (i: number) => {
      keys.push(await engine.put(payload(i)));
    };
    const maxOps = Math.max(1, Math.floor(options.maxBytes / size));
    const { concurrency, durationMs } = options;
    // Raw and store take turns going first, so a drift in the machine's speed does not favour one.
    const inTurn = async (run: (engine: 'raw' | 'store') => Promise<PhaseResult>) => {
      const order: Array<'raw' | 'store'> = rep % 2 === 0 ? ['raw', 'store'] : ['store', 'raw'];
      const out: Partial<Record<'raw' | 'store', PhaseResult>> = {};
      for (const engine of order) out[engine] = await run(engine);
      return out as Record<'raw' | 'store', PhaseResult>;
    };

    await runPhase(puts(raw, rawKeys), concurrency, 60_000, options.warmup);
    await runPhase(puts(store, storeKeys), concurrency, 60_000, options.warmup);

    samples.set(
      'put, fsync never',
      await inTurn((engine) =>
        engine === 'raw'
          ? runPhase(puts(raw, rawKeys), concurrency, durationMs, maxOps)
          : runPhase(puts(store, storeKeys), concurrency, durationMs, maxOps),
      ),
    );

    raw.durable = true;
    await store.reopen({ fsync: 'always' });
    const flushesBefore = raw.flushes;
    const durableFrom = { raw: rawKeys.length, store: storeKeys.length };
    let rawDurableOps = 0;
    const durable = await inTurn(async (engine) => {
      if (engine === 'store')
        return runPhase(puts(store, storeKeys), concurrency, durationMs, maxOps);
      const before = rawKeys.length;
      const result = await runPhase(puts(raw, rawKeys), concurrency, durationMs, maxOps);
      rawDurableOps = rawKeys.length - before;
      return result;
    });
    samples.set('put, fsync always', {
      ...durable,
      rawWritesPerFlush: rawDurableOps / Math.max(1, raw.flushes - flushesBefore),
    });

    const pick = (keys: number[]) => keys[Math.floor(Math.random() * keys.length)] as number;
    const gets = (engine: Engine, keys: number[]) => () => engine.get(pick(keys));
    const timedGets = (rawSet: number[], storeSet: number[]) =>
      inTurn(async (engine) => {
        const before = store.store.cacheStats();
        const result =
          engine === 'raw'
            ? await runPhase(gets(raw, rawSet), concurrency, durationMs, Number.POSITIVE_INFINITY)
            : await runPhase(
                gets(store, storeSet),
                concurrency,
                durationMs,
                Number.POSITIVE_INFINITY,
              );
        if (engine === 'store') hitRatio = cacheHitRatio(before, store.store.cacheStats());
        return result;
      });
    let hitRatio = 0;

    // The files written last since the store was reopened, as many as the cache holds (it was
    // filled as they were written).
    const { maxBytes } = store.store.cacheStats();
    const hotFiles = Math.min(
      storeKeys.length - durableFrom.store,
      rawKeys.length - durableFrom.raw,
      Math.floor((0.9 * maxBytes) / (size + 'application/octet-stream'.length + ENTRY_OVERHEAD)),
    );
    const rawHot = rawKeys.slice(-hotFiles);
    const storeHot = storeKeys.slice(-hotFiles);
    await runPhase(gets(raw, rawHot), concurrency, 60_000, options.warmup);
    await runPhase(gets(store, storeHot), concurrency, 60_000, options.warmup);
    const cached = await timedGets(rawHot, storeHot);
    samples.set('get last written, cache on', { ...cached, hitRatio, hotFiles });

    await store.reopen({ fsync: 'always', cacheSize: 0 });
    await runPhase(gets(store, storeHot), concurrency, 60_000, options.warmup);
    const uncached = await timedGets(rawHot, storeHot);
    samples.set('get last written, cache off', { ...uncached, hitRatio, hotFiles });

    await store.reopen({ fsync: 'always' });
    await runPhase(gets(raw, rawKeys), concurrency, 60_000, options.warmup);
    await runPhase(gets(store, storeKeys), concurrency, 60_000, options.warmup);
    const random = await timedGets(rawKeys, storeKeys);
    samples.set('get random', { ...random, hitRatio });
  } finally {
    await raw.close().catch(() => {});
    await store.close().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }
  return samples;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sizes = String(args.get('sizes') ?? '1k,64k')
    .split(',')
    .map(parseSize);
  const reps = Number(args.get('reps') ?? 3);
  const cpu = args.get('cpu');
  if (typeof cpu === 'string') {
    // Every thread of this process (event loop, libuv pool, V8 helpers) on these CPUs, as the
    // HTTP benchmark pins its servers: then ops/s reflect what each operation costs.
    const pinned = spawnSync('taskset', ['-a', '-p', '-c', cpu, String(process.pid)]);
    if (pinned.status !== 0) throw new Error(`taskset failed: ${pinned.stderr}`);
  }
  const options = {
    concurrency: Number(args.get('concurrency') ?? 32),
    durationMs: Number(args.get('duration') ?? 2) * 1000,
    maxBytes: Number(args.get('max-mib') ?? 1024) * 2 ** 20,
    warmup: parseCount(String(args.get('warmup') ?? 2000)),
    tmp: String(args.get('tmpdir') ?? os.tmpdir()),
  };

  console.log(`bench:engine  ${new Date().toISOString()}`);
  console.log(machineLine());
  console.log(
    `${options.concurrency} concurrent callers; phases of ${options.durationMs / 1000} s ` +
      `(puts stop at ${options.maxBytes / 2 ** 20} MiB); ${reps} repetitions, medians ` +
      `[min-max]; temp dir ${options.tmp}; ` +
      (typeof cpu === 'string' ? `pinned to CPU ${cpu}` : 'not pinned (--cpu 1 pins)'),
  );
  console.log('');

  const rows: string[][] = [
    [
      'size',
      'operation',
      'raw ops/s',
      'store ops/s',
      'store/raw',
      'target',
      'cpu us/op raw',
      'store',
      'raw/store cpu',
    ],
  ];
  const notes: string[] = [];
  const bySize = new Map<number, Array<Map<PhaseName, Sample>>>();
  for (const size of sizes) {
    const runs: Array<Map<PhaseName, Sample>> = [];
    bySize.set(size, runs);
    for (let rep = 0; rep < reps; rep++) {
      process.stderr.write(
        `[${new Date().toISOString().slice(11, 19)}] ${sizeLabel(size)}, repetition ${rep + 1}\n`,
      );
      runs.push(await runSize(size, rep, options));
    }
    for (const phase of PHASES) {
      const samples = runs.map((run) => run.get(phase) as Sample);
      const rawRates = samples.map((s) => s.raw.opsPerSecond);
      const storeRates = samples.map((s) => s.store.opsPerSecond);
      const ratios = samples.map((s) => s.store.opsPerSecond / s.raw.opsPerSecond);
      const ratio = median(ratios);
      const target = TARGETS[phase];
      const spread = (values: number[]) =>
        values.length > 1 ? ` [${fmt(Math.min(...values), 2)}-${fmt(Math.max(...values), 2)}]` : '';
      rows.push([
        sizeLabel(size),
        phase,
        fmt(median(rawRates)),
        fmt(median(storeRates)),
        `${fmt(ratio, 2)}${spread(ratios)}`,
        target === undefined ? '' : `>= ${target} ${ratio >= target ? 'met' : 'NOT MET'}`,
        fmt(median(samples.map((s) => s.raw.cpuMicros)), 1),
        fmt(median(samples.map((s) => s.store.cpuMicros)), 1),
        fmt(median(samples.map((s) => s.raw.cpuMicros / s.store.cpuMicros)), 2),
      ]);
      if (phase.startsWith('get')) {
        const hits = median(samples.map((s) => s.hitRatio ?? 0));
        const hot = samples[0]?.hotFiles;
        notes.push(
          `${sizeLabel(size)} ${phase}: store cache hit ratio ${fmt(hits, 2)}` +
            (hot === undefined ? '' : ` (${fmt(hot)} files written last)`),
        );
      }
      if (phase === 'put, fsync always') {
        const perFlush = median(samples.map((s) => s.rawWritesPerFlush ?? 0));
        notes.push(
          `${sizeLabel(size)}: raw durable puts shared a flush ${fmt(perFlush, 1)} at a time`,
        );
      }
    }
  }
  console.log(table(rows));
  console.log('');
  const cacheRows: string[][] = [
    ['size', 'store get, cache on ops/s', 'cache off ops/s', 'on/off', 'cpu us/op on', 'off'],
  ];
  for (const [size, runs] of bySize) {
    const on = runs.map((run) => (run.get('get last written, cache on') as Sample).store);
    const off = runs.map((run) => (run.get('get last written, cache off') as Sample).store);
    const ratios = on.map((s, i) => s.opsPerSecond / (off[i] as PhaseResult).opsPerSecond);
    cacheRows.push([
      sizeLabel(size),
      fmt(median(on.map((s) => s.opsPerSecond))),
      fmt(median(off.map((s) => s.opsPerSecond))),
      `${fmt(median(ratios), 2)} [${fmt(Math.min(...ratios), 2)}-${fmt(Math.max(...ratios), 2)}]`,
      fmt(median(on.map((s) => s.cpuMicros)), 1),
      fmt(median(off.map((s) => s.cpuMicros)), 1),
    ]);
  }
  console.log(table(cacheRows));
  console.log('');
  for (const note of notes) console.log(note);
  console.log(
    'store/raw: median of the per-repetition ratios of ops/s (raw and store back to back); ' +
      'raw/store cpu: the same for CPU time per operation (all threads), which a busy machine ' +
      'disturbs less than ops/s.',
  );
  console.log(loadLine());
}

await main();
