/**
 * `npm run bench:reload [-- options]`: `reload` against the disk's sequential read speed (issue 5:
 * reload runs at >= 50 % of it).
 *
 * Builds a data directory holding one volume of about SIZE bytes through the store's API,
 * in-process (fsync never, one sync at the end). With `--files mixed` (default) each file is, by
 * a coin toss, small (100 B to 16 KiB) or large (64 KiB to 1 MiB), sizes uniform in between
 * (about 98 % of the bytes are in the large ones); with `--files 1k` (any size) every file has
 * that size. Then one file in 20 is deleted (a tombstone each). The content is random bytes.
 *
 * Then, --reps times, back to back (which goes first alternates), on that volume file:
 *   read    the .dat start to end in 8 MiB blocks through one reused buffer (FileHandle.read, the
 *           block size the scan uses): the disk's sequential read speed as Node sees it
 *   reload  rebuildIndexes (what `reload` runs: scan and checksum every needle, rebuild the live
 *           set, write and sync the .idx) in a fresh child process, timed there, with its CPU time
 *   dd      `dd bs=8M` of the same file, a cross-check of the read; cold, also `dd iflag=direct`
 *           (O_DIRECT: the device without the page cache, one 8 MiB request at a time)
 * with the page cache in three states:
 *   cold     the .dat's pages dropped just before, by the process about to read (`dd
 *            iflag=nocache count=0`: only that file's pages, other processes' cache is left alone;
 *            else `echo 1 > /proc/sys/vm/drop_caches`); `fincore` checks that none is left
 *   cold+5s  the same, then 5 s of waiting: on a VM whose balloon has free page reporting, the
 *            freed memory is handed back to the host meanwhile, and whoever reads next pays for
 *            every page the host has to give back (see docs/PERFORMANCE.md)
 *   warm     the whole file in the page cache
 * Then the `reload` command itself, once, with its summary.
 *
 *   npm run bench:reload -- [--size 2G] [--files mixed|1k] [--reps 5] [--dir /on/the/disk]
 *                           [--data DIR (reuse a directory built before)] [--keep]
 *                           [--profile (one more cold reload child under --cpu-prof: top functions)]
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openVolumeStore, rebuildIndexes } from '../adapters/volume/index.ts';
import { fmt, loadLine, machineLine, median, parseArgs, parseSize, ROOT, table } from './lib.ts';

const MiB = 1024 * 1024;
const BLOCK = 8 * MiB;

const args = parseArgs(process.argv.slice(2));
const size = parseSize(String(args.get('size') ?? '2G'));
const files = String(args.get('files') ?? 'mixed');
const reps = Number(args.get('reps') ?? 5);
const parent = String(args.get('dir') ?? os.tmpdir());
const reuse = args.get('data');
const keep = args.get('keep') === true || typeof reuse === 'string';
const profile = args.get('profile') === true;

/** A file size drawn for the chosen mix. */
function drawSize(): number {
  if (files !== 'mixed') return parseSize(files);
  const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
  return Math.random() < 0.5 ? between(100, 16 * 1024) : between(64 * 1024, MiB);
}

interface Built {
  files: number;
  deleted: number;
  seconds: number;
}

async function build(dir: string): Promise<Built> {
  const started = performance.now();
  const store = await openVolumeStore({ dir, fsync: 'never', volumeSize: 32 * 1024 ** 3 - 1 });
  const pool = randomBytes(2 * MiB);
  const keys: number[] = [];
  let bytes = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (bytes < size) {
        const n = drawSize();
        bytes += n + 40; // the needle's header and footer, roughly
        const at = Math.floor(Math.random() * (pool.byteLength - n));
        const info = await store.put({ body: pool.subarray(at, at + n) });
        keys.push(info.key);
      }
    }),
  );
  let deleted = 0;
  for (let i = 0; i < keys.length; i += 20) {
    await store.delete(keys[i] as number);
    deleted++;
  }
  await store.close(); // syncs
  return { files: keys.length, deleted, seconds: (performance.now() - started) / 1000 };
}

/**
 * Drops the file's pages from the page cache. Returns whether it could, and what fincore says is
 * left resident (when fincore is there).
 */
function dropCache(file: string): { dropped: boolean; left: string } {
  spawnSync('sync', [file]);
  const dd = spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
  if (dd.status !== 0) {
    try {
      writeFileSync('/proc/sys/vm/drop_caches', '1');
    } catch (err) {
      const why = `dd: ${dd.stderr?.toString().trim() ?? dd.error}; drop_caches: ${err}`;
      return { dropped: false, left: why };
    }
  }
  const left = resident(file);
  return { dropped: left === undefined || left === 0, left: describeResident(left) };
}

type Cache = 'cold' | 'cold+5s' | 'warm';
const CACHES: readonly Cache[] = ['cold', 'cold+5s', 'warm'];

/** Puts the file's pages in the page cache state `cache`. */
async function prepare(file: string, cache: Cache): Promise<void> {
  if (cache === 'warm') return;
  const { dropped, left } = dropCache(file);
  if (!dropped) throw new Error(`could not drop ${file} from the page cache: ${left}`);
  if (cache === 'cold+5s') await new Promise((resolve) => setTimeout(resolve, 5000));
}

/** Whether this is a VM whose virtio balloon reports free pages to the host. */
function freePageReporting(): boolean {
  try {
    const root = '/sys/bus/virtio/devices';
    return readdirSync(root).some((name) => {
      const device = readFileSync(path.join(root, name, 'device'), 'utf8').trim();
      const features = readFileSync(path.join(root, name, 'features'), 'utf8');
      return device === '0x0005' && features[5] === '1'; // balloon, VIRTIO_BALLOON_F_REPORTING
    });
  } catch {
    return false;
  }
}

function describeResident(fraction: number | undefined): string {
  return fraction === undefined ? 'unknown (no fincore)' : `${fmt(100 * fraction, 1)} % resident`;
}

/** The fraction of the file in the page cache, per fincore. */
function resident(file: string): number | undefined {
  const out = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', file]);
  if (out.status !== 0) return undefined;
  const [res = 0, total = 1] = out.stdout.toString().trim().split(/\s+/).map(Number);
  return res / total;
}

interface Read {
  seconds: number;
  /** This process's CPU seconds during the read (the thread pool's included). */
  user: number;
  system: number;
}

/** Sequential read of the whole file in 8 MiB blocks through one buffer. */
async function readAll(file: string, cache: Cache): Promise<Read> {
  const buffer = Buffer.allocUnsafe(BLOCK);
  buffer.fill(0); // touch it before the clock starts
  await prepare(file, cache);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const handle = await open(file, 'r');
  try {
    let position = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, BLOCK, position);
      if (bytesRead === 0) break;
      position += bytesRead;
    }
  } finally {
    await handle.close();
  }
  const used = process.cpuUsage(cpu);
  return {
    seconds: (performance.now() - started) / 1000,
    user: used.user / 1e6,
    system: used.system / 1e6,
  };
}

/** `dd bs=8M` of the file (through the page cache, or with O_DIRECT around it); seconds. */
function ddRead(file: string, direct = false): number {
  const started = performance.now();
  const flags = direct ? ['iflag=direct'] : [];
  const dd = spawnSync('dd', [`if=${file}`, 'of=/dev/null', 'bs=8M', ...flags, 'status=none']);
  if (dd.status !== 0) return Number.NaN;
  return (performance.now() - started) / 1000;
}

interface Reloaded {
  /** rebuildIndexes, timed in the child. */
  seconds: number;
  /** The child's CPU seconds during it, user and system (all its threads). */
  user: number;
  system: number;
  live: number;
}

/**
 * rebuildIndexes in a fresh child process (this script with `--child-reload DIR`), which first
 * puts the page cache in the `cache` state itself, so that its own start-up does not stand between.
 */
function reload(dir: string, cache: Cache, nodeArgs: string[] = []): Promise<Reloaded> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...nodeArgs, '--import', 'tsx', 'bench/reload.ts', '--child-reload', dir, '--cache', cache],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const last = out.trim().split('\n').at(-1);
      if (code !== 0 || !last) reject(new Error(`reload child exited ${code}:\n${out}`));
      else resolve(JSON.parse(last) as Reloaded);
    });
  });
}

async function childReload(dir: string, cache: Cache): Promise<void> {
  await prepare(path.join(dir, '1.dat'), cache);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const report = await rebuildIndexes({ dir });
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  const result: Reloaded = {
    seconds,
    user: used.user / 1e6,
    system: used.system / 1e6,
    live: report.live,
  };
  console.log(JSON.stringify(result));
}

/** The `reload` command itself, as a user runs it: its summary and wall time. */
function reloadCli(dir: string): Promise<{ wall: number; summary: string }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'wrangler-free-local/cli.ts', 'reload', '--data', dir],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) reject(new Error(`reload exited ${code}:\n${out}`));
      else resolve({ wall: (performance.now() - started) / 1000, summary: out });
    });
  });
}

/** Self time by function in a .cpuprofile, largest first. */
async function topFunctions(file: string, count: number): Promise<string[][]> {
  interface Node {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
  }
  const prof = JSON.parse(await readFile(file, 'utf8')) as {
    nodes: Node[];
    samples: number[];
    timeDeltas: number[];
  };
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  prof.samples.forEach((id, i) => {
    const delta = prof.timeDeltas[i] ?? 0;
    const frame = byId.get(id)?.callFrame;
    const where = frame?.url ? ` ${path.basename(frame.url)}:${frame.lineNumber + 1}` : '';
    const name = `${frame?.functionName || '(anonymous)'}${where}`;
    self.set(name, (self.get(name) ?? 0) + delta);
    total += delta;
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, us]) => [name, `${fmt(us / 1000, 0)} ms`, `${fmt((100 * us) / total, 1)} %`]);
}

async function main(): Promise<void> {
  console.log(`bench:reload  ${new Date().toISOString()}`);
  console.log(machineLine());
  let dir: string;
  if (typeof reuse === 'string') {
    dir = path.resolve(reuse);
    console.log(`data directory ${dir} (reused, built before)`);
  } else {
    dir = await mkdtemp(path.join(parent, 'haystack-bench-reload-'));
    const built = await build(dir);
    console.log(
      `built ${dir}: ${fmt(built.files)} files (${files === 'mixed' ? 'each by a coin toss 100 B-16 KiB or 64 KiB-1 MiB' : `${files} each`}), ` +
        `${fmt(built.deleted)} deleted, in ${fmt(built.seconds, 1)} s`,
    );
  }
  try {
    const volumes = (await readdir(dir)).filter((name) => name.endsWith('.dat')).sort();
    if (volumes.length !== 1) throw new Error(`expected one volume in ${dir}, got ${volumes}`);
    const file = path.join(dir, volumes[0] as string);
    const bytes = (await stat(file)).size;
    const gib = bytes / 1024 ** 3;
    const mbs = (seconds: number) => bytes / 1e6 / seconds;
    const cpuPerGib = ({ user, system }: { user: number; system: number }) =>
      `${fmt((user + system) / gib, 2)} (${fmt(user / gib, 2)}+${fmt(system / gib, 2)})`;
    console.log(`volume ${file}: ${fmt(bytes / MiB, 1)} MiB (${fmt(bytes)} bytes)`);
    const probe = dropCache(file);
    const cold = probe.dropped;
    const caches = cold ? CACHES : (['warm'] as const);
    console.log(
      cold
        ? `cold: the .dat's pages dropped (dd iflag=nocache) by the reading process just before; after a drop: ${probe.left}`
        : `cannot drop the file from the page cache (${probe.left}): every figure is warm`,
    );
    if (freePageReporting()) {
      console.log(
        'this VM reports free pages to its host (virtio balloon): memory freed in the guest goes ' +
          'back to the host after about 2 s, see cold+5s',
      );
    }
    console.log(
      `${reps} repetition${reps === 1 ? '' : 's'}; in each, the read and the reload go back to back (which goes first ` +
        `alternates), ${caches.join(', then ')}\n`,
    );

    const rows: string[][] = [
      [
        'rep',
        'cache',
        'read MB/s',
        'reload MB/s',
        'reload / read',
        'read CPU s/GiB (user+sys)',
        'reload CPU s/GiB (user+sys)',
        'dd bs=8M MB/s',
        'dd O_DIRECT',
      ],
    ];
    const ratios = new Map<Cache, number[]>();
    const speeds = new Map<string, number[]>();
    const note = <K>(map: Map<K, number[]>, key: K, value: number) => {
      map.set(key, [...(map.get(key) ?? []), value]);
    };
    for (let rep = 1; rep <= reps; rep++) {
      for (const cache of caches) {
        let read: Read | undefined;
        let done: Reloaded | undefined;
        const steps = [
          async () => {
            read = await readAll(file, cache);
          },
          async () => {
            done = await reload(dir, cache);
          },
        ];
        if (rep % 2 === 0) steps.reverse();
        for (const step of steps) await step();
        if (!read || !done) throw new Error('a step did not run');
        let dd = Number.NaN;
        let direct = Number.NaN;
        if (cache !== 'cold+5s') {
          if (cache === 'cold') dropCache(file);
          dd = ddRead(file);
          if (cache === 'cold') direct = ddRead(file, true);
        }
        const ratio = mbs(done.seconds) / mbs(read.seconds);
        note(ratios, cache, ratio);
        note(speeds, `${cache} read`, mbs(read.seconds));
        note(speeds, `${cache} reload`, mbs(done.seconds));
        note(speeds, `${cache} dd`, mbs(dd));
        note(speeds, `${cache} direct`, mbs(direct));
        const show = (value: number) => (Number.isNaN(value) ? '' : fmt(value, 0));
        rows.push([
          String(rep),
          cache,
          fmt(mbs(read.seconds), 0),
          fmt(mbs(done.seconds), 0),
          fmt(ratio, 2),
          cpuPerGib(read),
          cpuPerGib(done),
          show(mbs(dd)),
          show(mbs(direct)),
        ]);
      }
    }
    for (const cache of caches) {
      const of = (what: string) => median(speeds.get(`${cache} ${what}`) ?? []);
      rows.push([
        'median',
        cache,
        fmt(of('read'), 0),
        fmt(of('reload'), 0),
        fmt(median(ratios.get(cache) ?? []), 2),
        '',
        '',
        Number.isNaN(of('dd')) ? '' : fmt(of('dd'), 0),
        Number.isNaN(of('direct')) ? '' : fmt(of('direct'), 0),
      ]);
    }
    console.log(table(rows));
    console.log(
      'MB/s = volume bytes / 1e6 / seconds. read: the .dat in 8 MiB blocks through one buffer ' +
        '(FileHandle.read); reload: rebuildIndexes in a fresh child process (scan and checksum every ' +
        'needle, live set, write and sync the .idx), timed in the child; dd: a cross-check of the ' +
        "read, through the page cache and, cold, with O_DIRECT (the device without the guest's " +
        'page cache, one 8 MiB request at a time). Medians of each column separately.',
    );
    console.log(
      '\ntarget: reload >= 0.5 x the sequential read (median of the per-repetition ratios):',
    );
    for (const cache of caches) {
      const ratio = median(ratios.get(cache) ?? []);
      console.log(`  ${cache.padEnd(8)} ${fmt(ratio, 2)}  ${ratio >= 0.5 ? 'met' : 'NOT MET'}`);
    }

    if (cold) dropCache(file);
    const cli = await reloadCli(dir);
    console.log(
      `\n\`reload\` from the command line (${cold ? 'cold, dropped before node starts' : 'warm'}; wall ${fmt(cli.wall, 2)} s with ` +
        `node and tsx starting, ${fmt(mbs(cli.wall), 0)} MB/s):\n${cli.summary.trimEnd()}`,
    );

    if (profile) {
      const profileDir = await mkdtemp(path.join(os.tmpdir(), 'haystack-reload-prof-'));
      const done = await reload(dir, cold ? 'cold' : 'warm', [
        '--cpu-prof',
        `--cpu-prof-dir=${profileDir}`,
      ]);
      const [prof] = (await readdir(profileDir)).filter((n) => n.endsWith('.cpuprofile'));
      console.log(
        `\nprofile of a ${cold ? 'cold' : 'warm'} reload child (${fmt(mbs(done.seconds), 0)} MB/s under ` +
          `--cpu-prof; the child's start-up included): ${path.join(profileDir, prof ?? '?')}; self time, top 15:`,
      );
      if (prof) console.log(table(await topFunctions(path.join(profileDir, prof), 15)));
    }
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
    else console.log(`\nkept ${dir}`);
  }
  console.log(loadLine());
}

const child = args.get('child-reload');
if (typeof child === 'string')
  await childReload(child, String(args.get('cache') ?? 'warm') as Cache);
else await main();
