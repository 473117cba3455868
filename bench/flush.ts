/**
 * What a durable flush costs when it also commits a new file size, against one that does not
 * (issue 13 item 2). Three files are written side by side, one flush each in turn (the order
 * rotates), so a busy moment of the machine lands on all three alike:
 *
 *   append     write N bytes at the end of the file, then fdatasync: the size grows, so on ext4
 *              the flush also commits the inode (a journal commit)
 *   overwrite  write N bytes over a region that was filled with real zeros and fdatasync'd once
 *              beforehand: the flush writes data blocks only
 *   fallocate  the same over a region made by `fallocate -l` (unwritten extents: the first write
 *              of each extent converts it, which is metadata again); left out with --no-fallocate
 *
 * for N = 1 KiB, 64 KiB and a group-commit-like batch of 32 x 1 KiB in one write. Then what
 * pre-sizing itself costs: writing zeros in steps of 4, 16 and 64 MiB plus one fdatasync, and
 * that cost spread over the writes a step holds. Last, the store itself: durable puts into two
 * volume stores side by side, one writing zeros ahead of its tail (`presizeStep`, the default)
 * and one not (`presizeStep: 0`, the store before issue 13 item 2): one caller (each put waits
 * for its own flush), then 32 callers (group commit), the stores taking turns.
 *
 *   npm run bench:flush -- [--rounds 5] [--flushes 200] [--dir /path/on/the/disk/to/measure]
 *                          [--no-store]
 */
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  fdatasyncSync,
  fstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openVolumeStore, type VolumeStore } from '../adapters/volume/index.ts';
import { fmt, loadLine, machineLine, median, parseArgs, parseCount, ROOT, table } from './lib.ts';

const KiB = 1024;
const MiB = 1024 * KiB;
const ZERO_CHUNK = Buffer.alloc(MiB);

const args = parseArgs(process.argv.slice(2));
const rounds = parseCount(String(args.get('rounds') ?? '5'));
const flushes = parseCount(String(args.get('flushes') ?? '200'));
const withFallocate = args.get('fallocate') !== false && hasFallocate();
const presizeRepeats = parseCount(String(args.get('presize-repeats') ?? '3'));
const withStore = args.get('store') !== false;
const CALLERS = 32;

const SIZES = [
  { label: '1 KiB', bytes: KiB, writesPerFlush: 1 },
  { label: '64 KiB', bytes: 64 * KiB, writesPerFlush: 1 },
  { label: '32 x 1 KiB', bytes: 32 * KiB, writesPerFlush: 32 },
] as const;
const STEPS = [4 * MiB, 16 * MiB, 64 * MiB];

type Mode = 'append' | 'overwrite' | 'fallocate';
const MODES: Mode[] = withFallocate
  ? ['append', 'overwrite', 'fallocate']
  : ['append', 'overwrite'];

const parent = String(args.get('dir') ?? defaultParent());
mkdirSync(parent, { recursive: true });
const dir = mkdtempSync(path.join(parent, 'haystack-bench-flush-'));
try {
  console.log(machineLine());
  console.log(`directory ${dir}`);
  console.log(execFileSync('df', ['-T', dir], { encoding: 'utf8' }).trimEnd());
  console.log(
    `${rounds} rounds x ${flushes} flushes per file; modes ${MODES.join(', ')} ` +
      '(per-flush figures are write + fdatasync, in microseconds)\n',
  );

  const ratios = new Map<string, { overwrite: number[]; fallocate: number[] }>();
  for (let round = 1; round <= rounds; round++) {
    const rows: string[][] = [
      [`round ${round}`, ...MODES.flatMap((m) => [`${m} p50`, 'p90']), 'b/a'],
    ];
    if (withFallocate) rows[0]?.push('c/a');
    for (const size of SIZES) {
      const timings = measureRound(size.bytes, round);
      const a = median(timings.append);
      const b = median(timings.overwrite);
      const entry = ratios.get(size.label) ?? { overwrite: [], fallocate: [] };
      entry.overwrite.push(b / a);
      const row = [
        size.label,
        ...MODES.flatMap((m) => [fmt(median(timings[m])), fmt(percentile(timings[m], 0.9))]),
        fmt(b / a, 2),
      ];
      if (withFallocate) {
        const c = median(timings.fallocate);
        entry.fallocate.push(c / a);
        row.push(fmt(c / a, 2));
      }
      ratios.set(size.label, entry);
      rows.push(row);
    }
    console.log(table(rows));
    console.log(`${loadLine()}\n`);
  }

  console.log('ratio of medians over rounds (below 1: cheaper than append + fdatasync):');
  const summary = [['', 'overwrite/append min', 'median', 'max']];
  if (withFallocate) summary[0]?.push('fallocate/append min', 'median', 'max');
  for (const [label, entry] of ratios) {
    const row = [label, ...spread(entry.overwrite)];
    if (withFallocate) row.push(...spread(entry.fallocate));
    summary.push(row);
  }
  console.log(table(summary));

  console.log('\npre-sizing: write zeros in 1 MiB writes up to the step, then one fdatasync');
  const presize = [
    ['step', 'ms min', 'median', 'max', ...SIZES.map((s) => `us per ${s.label} flush`)],
  ];
  for (const step of STEPS) {
    const times: number[] = [];
    for (let i = 0; i < presizeRepeats; i++) times.push(timeZeroFill(step) / 1000);
    const m = median(times);
    presize.push([
      `${step / MiB} MiB`,
      fmt(Math.min(...times), 1),
      fmt(m, 1),
      fmt(Math.max(...times), 1),
      // Spread over the flushes the step holds: what each durable write pays towards it.
      ...SIZES.map((s) => fmt((m * 1000) / (step / s.bytes), 1)),
    ]);
  }
  console.log(table(presize));
  console.log(loadLine());
  if (withStore) await measureStores();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** One round for one size: the modes' files written in turn, each flush timed alone. */
function measureRound(bytes: number, round: number): Record<Mode, number[]> {
  const region = bytes * flushes;
  const files = MODES.map((mode) => {
    const file = path.join(dir, `${mode}-${bytes}-${round}`);
    const fd = openSync(file, 'w+');
    if (mode === 'overwrite') zeroFill(fd, region);
    if (mode === 'fallocate') {
      execFileSync('fallocate', ['-l', String(region), file]);
      fdatasyncSync(fd);
    }
    return { mode, fd, file };
  });
  const data = Buffer.alloc(bytes, 0x5a);
  const timings: Record<Mode, number[]> = { append: [], overwrite: [], fallocate: [] };
  try {
    for (let i = 0; i < flushes; i++) {
      for (let k = 0; k < files.length; k++) {
        const { mode, fd } = files[(i + k) % files.length] as (typeof files)[number];
        const start = process.hrtime.bigint();
        writeSync(fd, data, 0, bytes, i * bytes);
        fdatasyncSync(fd);
        timings[mode].push(Number(process.hrtime.bigint() - start) / 1000);
      }
    }
    // Every mode must end with the same file, or the comparison is not like for like.
    for (const { mode, fd } of files) {
      const size = fstatSync(fd).size;
      if (size !== region) throw new Error(`${mode}: ${size} bytes, expected ${region}`);
    }
  } finally {
    for (const { fd, file } of files) {
      closeSync(fd);
      rmSync(file, { force: true });
    }
  }
  return timings;
}

/** Durable puts into a store with zeros ahead and one without, taking turns. */
async function measureStores(): Promise<void> {
  console.log(
    `\nthe store, fsync always: put latency with 1 caller (us), puts/s with ${CALLERS} callers; ` +
      'zeros = presizeStep default, none = presizeStep 0',
  );
  const rows = [
    [
      '',
      'none p50',
      'p90',
      'zeros p50',
      'p90',
      'zeros/none',
      'none puts/s',
      'zeros puts/s',
      'ratio',
    ],
  ];
  const ratios = new Map<string, { latency: number[]; rate: number[] }>();
  for (let round = 1; round <= rounds; round++) {
    for (const size of [KiB, 64 * KiB]) {
      const label = `${size / KiB} KiB, round ${round}`;
      const stores = {
        none: await openVolumeStore({ dir: mkdtempSync(path.join(dir, 'none-')), presizeStep: 0 }),
        zeros: await openVolumeStore({ dir: mkdtempSync(path.join(dir, 'zeros-')) }),
      };
      try {
        const body = Buffer.alloc(size, 0x61);
        // Untimed: the first zeros ahead of a fresh volume (a whole step) are not the steady state.
        for (const store of [stores.none, stores.zeros]) await putsPerSecond(store, body, flushes);
        const latency = { none: [] as number[], zeros: [] as number[] };
        const order = [stores.none, stores.zeros];
        for (let i = 0; i < flushes; i++) {
          for (let k = 0; k < 2; k++) {
            const store = order[(i + k) % 2] as VolumeStore;
            const start = process.hrtime.bigint();
            await store.put({ body });
            const us = Number(process.hrtime.bigint() - start) / 1000;
            (store === stores.none ? latency.none : latency.zeros).push(us);
          }
        }
        const rate = { none: 0, zeros: 0 };
        for (const name of round % 2
          ? (['none', 'zeros'] as const)
          : (['zeros', 'none'] as const)) {
          rate[name] = await putsPerSecond(stores[name], body, flushes * 4);
        }
        const entry = ratios.get(`${size / KiB} KiB`) ?? { latency: [], rate: [] };
        entry.latency.push(median(latency.zeros) / median(latency.none));
        entry.rate.push(rate.zeros / rate.none);
        ratios.set(`${size / KiB} KiB`, entry);
        rows.push([
          label,
          fmt(median(latency.none)),
          fmt(percentile(latency.none, 0.9)),
          fmt(median(latency.zeros)),
          fmt(percentile(latency.zeros, 0.9)),
          fmt(median(latency.zeros) / median(latency.none), 2),
          fmt(rate.none),
          fmt(rate.zeros),
          fmt(rate.zeros / rate.none, 2),
        ]);
      } finally {
        await stores.none.close();
        await stores.zeros.close();
      }
    }
  }
  console.log(table(rows));
  console.log('\nover rounds, min / median / max:');
  const summary = [['', 'latency zeros/none', 'puts/s zeros/none']];
  for (const [label, entry] of ratios) {
    summary.push([label, spread(entry.latency).join(' / '), spread(entry.rate).join(' / ')]);
  }
  console.log(table(summary));
  console.log(loadLine());
}

/** `count` durable puts by CALLERS callers at once. */
async function putsPerSecond(store: VolumeStore, body: Buffer, count: number): Promise<number> {
  let left = count;
  const start = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: CALLERS }, async () => {
      while (left-- > 0) await store.put({ body });
    }),
  );
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

/** Writes real zeros over [0, bytes) and flushes them once. */
function zeroFill(fd: number, bytes: number): void {
  for (let at = 0; at < bytes; at += ZERO_CHUNK.length) {
    writeSync(fd, ZERO_CHUNK, 0, Math.min(ZERO_CHUNK.length, bytes - at), at);
  }
  fdatasyncSync(fd);
}

/** Microseconds to pre-size a fresh file by `bytes` of zeros, as a store would past its tail. */
function timeZeroFill(bytes: number): number {
  const file = path.join(dir, `presize-${bytes}`);
  const fd = openSync(file, 'w+');
  try {
    const start = process.hrtime.bigint();
    zeroFill(fd, bytes);
    return Number(process.hrtime.bigint() - start) / 1000;
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((x, y) => x - y);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

function spread(values: readonly number[]): string[] {
  return [fmt(Math.min(...values), 2), fmt(median(values), 2), fmt(Math.max(...values), 2)];
}

function hasFallocate(): boolean {
  try {
    execFileSync('fallocate', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The system temp directory if it is on the repository's disk (where ./data lives), else the repo. */
function defaultParent(): string {
  return statSync(os.tmpdir()).dev === statSync(ROOT).dev ? os.tmpdir() : ROOT;
}
