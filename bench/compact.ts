/**
 * Online compaction at scale: fills a volume with N small files, deletes half of them, then
 * measures random reads (32 concurrent callers, in-process) before and during a compaction, and
 * the compaction itself: time, bytes reclaimed.
 *
 *   npm run bench:compact -- [--needles 1M] [--size 1k] [--dir /path/on/the/disk/to/measure]
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openVolumeStore, type VolumeStore } from '../adapters/volume/index.ts';
import { fmt, parseArgs, parseCount, parseSize, table } from './lib.ts';

const args = parseArgs(process.argv.slice(2));
const needles = parseCount(String(args.get('needles') ?? '1M'));
const size = parseSize(String(args.get('size') ?? '1k'));
const parent = String(args.get('dir') ?? os.tmpdir());
const READERS = 32;

const dir = await mkdtemp(path.join(parent, 'haystack-bench-compact-'));
try {
  // Filling is not what is measured: let the OS write back, and sync once at the end.
  const store = await openVolumeStore({ dir, fsync: 'never', volumeSize: 32 * 1024 ** 3 - 1 });
  const keys = await fill(store);
  const live: number[] = [];
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as number;
    if (i % 2 === 0) await store.delete(key);
    else live.push(key);
  }
  await store.sync();
  const before = await store.status();

  const idle = await readFor(store, live, () => wait(3000));
  let report: Awaited<ReturnType<VolumeStore['compact']>>[number] | undefined;
  const during = await readFor(store, live, async () => {
    [report] = await store.compact(1);
  });
  const after = await store.status();
  await store.close();

  console.log(
    `compaction of a volume of ${fmt(needles)} needles of ${size} bytes, 50% deleted ` +
      `(${fmt(before.bytes / 1e6, 1)} MB, garbage ratio ${fmt(before.garbageRatio, 2)})`,
  );
  console.log(
    `  time ${fmt((report?.durationMs ?? 0) / 1000, 2)} s, reclaimed ` +
      `${fmt((report?.reclaimedBytes ?? 0) / 1e6, 1)} MB ` +
      `(${fmt(before.bytes / 1e6, 1)} -> ${fmt(after.bytes / 1e6, 1)} MB), ` +
      `${fmt(report?.needles ?? 0)} needles kept`,
  );
  console.log(`random reads, ${READERS} concurrent callers in-process:`);
  console.log(
    table([
      ['', 'reads/s', 'p50 ms', 'p99 ms', 'max ms'],
      ['before compaction', ...row(idle)],
      ['during compaction', ...row(during)],
    ]),
  );
} finally {
  await rm(dir, { recursive: true, force: true });
}

async function fill(store: VolumeStore): Promise<number[]> {
  const keys: number[] = new Array(needles);
  const body = randomBytes(size);
  let next = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      for (let i = next++; i < needles; i = next++) {
        keys[i] = (await store.put({ body, contentType: 'application/octet-stream' })).key;
      }
    }),
  );
  return keys;
}

interface Reads {
  count: number;
  seconds: number;
  latencies: Float64Array;
}

/** Random reads of live keys by READERS callers for as long as `during` runs. */
async function readFor(store: VolumeStore, live: number[], during: () => Promise<void>) {
  const latencies: number[] = [];
  let running = true;
  const started = performance.now();
  const readers = Array.from({ length: READERS }, async () => {
    for (let i = 0; running; i++) {
      // Small reads complete without I/O waits; yield so timers and the compaction's I/O run.
      if (i % 16 === 0) await new Promise(setImmediate);
      const key = live[Math.floor(Math.random() * live.length)] as number;
      const t = performance.now();
      await store.get(key);
      latencies.push(performance.now() - t);
    }
  });
  await during();
  running = false;
  await Promise.all(readers);
  const seconds = (performance.now() - started) / 1000;
  return { count: latencies.length, seconds, latencies: Float64Array.from(latencies).sort() };
}

function row({ count, seconds, latencies }: Reads): string[] {
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return [fmt(count / seconds), fmt(at(0.5), 3), fmt(at(0.99), 3), fmt(at(1), 1)];
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
