/**
 * `npm run bench:where [-- options]`: where each phase's time goes, the store against hono-bare
 * (issue 13). For every phase of the shared benchmark where the store is behind (1 KiB durable
 * write, read, mixed 90/10; the same at 64 KiB), the store's built CLI (`node
 * dist/wrangler-free-local/cli.js start`, its defaults: durable, cache off) and the shared
 * benchmark's hono-bare (`servers/hono-bare.mjs`) are each run under `--cpu-prof`, pinned to
 * CPU 1, and driven by wrk on CPU 0 (`-t1 -c32`) with the shared Lua script, configured through
 * its BENCH_* environment as the shared `bench.mjs` does: the write phase fills keys and records
 * the paths the answers name; read and mixed read those paths.
 *
 * For every phase and server: req/s; the server's CPU time per request from /proc over the timed
 * window (user and system apart; all threads, and the main thread alone from its task's stat);
 * and from the profile, cut to the same window by the monotonic clock both processes share, the
 * main thread's time split into idle, GC, (program), the system-call natives (writev, read,
 * fdatasync, ...; an fs one named "sync" or "to the pool"), other natives, node:zlib's crc32
 * (the store's checksums), and JavaScript by module (node:*, hono, @hono/node-server, the
 * store's handlers/, adapters/, wrangler-free-local/, storage/, pino/prom-client, other), plus
 * the top 12 self-time functions. Beside them: the main thread's wait for a CPU (schedstat),
 * the CPU's busy and stolen share, wrk's own CPU share (a client-bound phase is flagged), and
 * the store's group-commit flushes from its /metrics read around each window. The profile's time is wall time, which a busy machine
 * inflates (the thread waits for its CPU), so each bucket is shown twice: its share of the main
 * thread's non-idle samples times that thread's CPU time per request (these and the other
 * threads' CPU add up to the process's), and its profile (wall) time per request, idle apart.
 * A stretch the main thread waited for its core is charged to the code it was in: most often a
 * native that has just woken a thread of libuv's pool (the pool runs on the same pinned core).
 * The difference, store minus hono-bare, per bucket is what the store's extra time goes to.
 *
 * Per round and size both servers are started fresh (empty data directory in a temp dir under
 * os.tmpdir(): durable writes need the real disk), then each phase runs on the store and then on
 * hono-bare (`--warmup` seconds untimed, `--duration` timed); the servers are stopped, their
 * profiles written to bench/results/where-<time>/ (git-ignored) with where.json and summary.txt.
 * Tables give medians over the rounds; a difference is the median of the rounds' differences.
 *
 * Read and mixed pick their files from the last ones written, as many as the shared benchmark
 * writes (21,000 at 1 KiB, 6,000 at 64 KiB: the size of its read set; `--read-set 1k:N,64k:N`).
 *
 * Options: --duration 6 --warmup 2 --reps 2 --phases 1k-write,1k-read,1k-mixed,64k-write,
 * 64k-read,64k-mixed (also `read`, `64k`, ...) --cache-size 0 (e.g. 64M) --no-pin
 * --connections 32 --read-set 1k:21000,64k:6000 --interval 1000 (the profiler's sampling
 * interval, us) --out DIR.
 * Everything is on 127.0.0.1; children run in their own process groups and are killed, and the
 * temp dir removed, on error, Ctrl-C or SIGTERM. While another session's wrk runs (it would share
 * both pinned cores), each phase waits for it to end, and a window it overlapped is flagged.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  CLOCK_TICKS,
  fmt,
  loadLine,
  machineLine,
  median,
  parseArgs,
  ROOT,
  type StatTimes,
  sharedBenchDir,
  sizeLabel,
  statTimes,
  table,
} from './lib.ts';

const CONTENT_TYPE = 'image/jpeg';
const SERVERS = ['store', 'hono-bare'] as const;
type ServerName = (typeof SERVERS)[number];
const MODES = ['write', 'read', 'mixed'] as const;
type Mode = (typeof MODES)[number];
const SIZES = [
  { id: '1k', bytes: 1024 },
  { id: '64k', bytes: 65536 },
] as const;

/** Natives that are (mostly) one system call: socket and file reads and writes, flushes. */
const SYSCALL_NATIVES = new Set([
  'writev',
  'writeBuffer',
  'writeBuffers',
  'writeString',
  'writeUtf8String',
  'writeLatin1String',
  'writeAsciiString',
  'writeUcs2String',
  'read',
  'readBuffers',
  'fdatasync',
  'fsync',
  'open',
  'openFileHandle',
  'close',
  'fstat',
  'stat',
  'lstat',
  'ftruncate',
  'rename',
  'unlink',
  'readStart',
  'readStop',
  'shutdown',
]);
const PINO_FAMILY = new Set([
  'pino',
  'sonic-boom',
  'thread-stream',
  'pino-std-serializers',
  'fast-redact',
  '@pinojs/redact',
  'quick-format-unescaped',
  'atomic-sleep',
  'on-exit-leak-free',
  'safe-stable-stringify',
  'pino-abstract-transport',
  'real-require',
  'process-warning',
  'prom-client',
  'tdigest',
  'bintrees',
]);
/** The buckets in the order the tables show them; system-call natives go after (program). */
const FIXED_BUCKETS = {
  before: ['GC', '(program)'],
  after: [
    'other natives',
    'crc32 (node:zlib)',
    'node:*',
    'hono',
    '@hono/node-server',
    'handlers/',
    'adapters/',
    'wrangler-free-local/',
    'storage/',
    'pino/prom-client',
    'other',
  ],
};

interface Options {
  duration: number;
  warmup: number;
  reps: number;
  connections: number;
  interval: number;
  cacheSize: string;
  pin: boolean;
  phases: Map<string, Set<Mode>>;
  /** Files read and mixed pick from, by size id: the last ones written. */
  readSet: Map<string, number>;
  out: string;
}

function options(): Options {
  const args = parseArgs(process.argv.slice(2));
  const known = new Set([
    'duration',
    'warmup',
    'reps',
    'phases',
    'cache-size',
    'pin',
    'connections',
    'interval',
    'read-set',
    'out',
  ]);
  for (const name of args.keys()) if (!known.has(name)) throw new Error(`unknown option --${name}`);
  const num = (name: string, fallback: number, least: number): number => {
    const value = args.get(name);
    const n = value === undefined ? fallback : Number(value);
    if (!Number.isFinite(n) || n < least) throw new Error(`--${name} must be a number >= ${least}`);
    return n;
  };
  const phases = new Map<string, Set<Mode>>();
  const list = args.get('phases');
  const tokens =
    typeof list === 'string' ? list.split(',').map((t) => t.trim().toLowerCase()) : ['1k', '64k'];
  for (const token of tokens) {
    const [a, b] = token.split('-') as [string, string | undefined];
    const size = SIZES.find((s) => s.id === a);
    const sizes = size ? [size] : b === undefined ? SIZES : [];
    const mode = b ?? (size ? undefined : a);
    const modes = mode === undefined ? MODES : MODES.filter((m) => m === mode);
    if (sizes.length === 0 || modes.length === 0) {
      throw new Error(`--phases: ${token}? (1k-write, 64k-read, read, 64k, ...)`);
    }
    for (const s of sizes) {
      const set = phases.get(s.id) ?? new Set<Mode>();
      for (const m of modes) set.add(m);
      phases.set(s.id, set);
    }
  }
  // As many files as the shared benchmark writes (its 1,000 warm-up writes and 20,000 at 1 KiB,
  // 5,000 at 64 KiB), so that the read set has its size, whatever the write phase wrote.
  const readSet = new Map<string, number>([
    ['1k', 21_000],
    ['64k', 6_000],
  ]);
  const setArg = args.get('read-set');
  if (typeof setArg === 'string') {
    for (const part of setArg.split(',')) {
      const [id, count] = part.split(':') as [string, string | undefined];
      const n = Number(count);
      if (!readSet.has(id) || !Number.isInteger(n) || n < 1) {
        throw new Error(`--read-set: ${part}? (1k:21000,64k:6000)`);
      }
      readSet.set(id, n);
    }
  }
  const cache = args.get('cache-size');
  const out = args.get('out');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  return {
    duration: num('duration', 6, 1),
    warmup: num('warmup', 2, 0),
    reps: Math.round(num('reps', 2, 1)),
    connections: Math.round(num('connections', 32, 1)),
    interval: Math.round(num('interval', 1000, 50)),
    cacheSize: typeof cache === 'string' ? cache : '0',
    pin: args.get('pin') !== false,
    phases,
    readSet,
    out: path.resolve(
      typeof out === 'string' ? out : path.join(ROOT, 'bench', 'results', `where-${stamp}`),
    ),
  };
}

// ---- processes: each child in its own group, killed by its id on the way out ----

interface Proc {
  name: string;
  child: ChildProcess;
  pid: number;
  log: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const live = new Set<Proc>();
let tempDir: string | undefined;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

function cleanup(): void {
  for (const proc of live) killGroup(proc.pid, 'SIGKILL');
  live.clear();
  if (tempDir) fs.rmSync(tempDir, { recursive: true, force: true });
  tempDir = undefined;
}

function startProc(
  name: string,
  command: string[],
  pinTo: string | undefined,
  log: string,
  env: NodeJS.ProcessEnv = process.env,
  cwd = ROOT,
): Proc {
  const full = pinTo === undefined ? command : ['taskset', '-c', pinTo, ...command];
  const fd = fs.openSync(log, 'a');
  fs.writeSync(fd, `$ ${full.join(' ')}\n`);
  const child = spawn(full[0] as string, full.slice(1), {
    cwd,
    env,
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  fs.closeSync(fd);
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
    child.once('error', () => resolve({ code: -1, signal: null }));
  });
  const proc: Proc = { name, child, pid: child.pid, log, exited };
  live.add(proc);
  void exited.then(() => live.delete(proc));
  return proc;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** SIGTERM, then SIGKILL after `graceMs`: a server writes its profile only on a clean exit. */
async function stopProc(proc: Proc, graceMs: number): Promise<boolean> {
  if (proc.child.exitCode === null && proc.child.signalCode === null) {
    proc.child.kill('SIGTERM');
    const done = await Promise.race([proc.exited, sleep(graceMs).then(() => null)]);
    if (!done) {
      killGroup(proc.pid, 'SIGKILL');
      await proc.exited;
      return false;
    }
  }
  killGroup(proc.pid, 'SIGKILL');
  live.delete(proc);
  return true;
}

function tail(file: string, chars = 1500): string {
  try {
    return fs.readFileSync(file, 'utf8').slice(-chars);
  } catch {
    return '';
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

interface Got {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

function get(port: number, urlPath: string): Promise<Got> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      { host: '127.0.0.1', port, path: urlPath, agent: false, timeout: 10_000 },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function waitReady(proc: Proc, port: number, readyPath: string): Promise<void> {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) {
      throw new Error(`${proc.name} exited during start-up; its log:\n${tail(proc.log)}`);
    }
    try {
      await get(port, readyPath);
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`${proc.name} did not answer on port ${port} within 60 s:\n${tail(proc.log)}`);
}

// ---- measurements: /proc and the monotonic clock ----

/** The monotonic clock in microseconds: the clock V8's profiles are stamped with (Linux). */
const nowUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** User and system CPU time of a process (all its threads) and its minor page faults. */
const procCpu = (pid: number): StatTimes => statTimes(`/proc/${pid}/stat`);

interface ThreadCpu {
  cpuUs: number;
  userUs: number;
  sysUs: number;
  /** Time runnable but waiting for a CPU (schedstat), when the kernel keeps it. */
  waitUs?: number;
}

/** CPU time of V8's profiler thread (`v8:ProfEvntProc`): the measurement's, not the server's. */
function profilerThreadUs(pid: number): number {
  let us = 0;
  for (const tid of fs.readdirSync(`/proc/${pid}/task`)) {
    const task = `/proc/${pid}/task/${tid}`;
    try {
      if (fs.readFileSync(`${task}/comm`, 'utf8').trim() !== 'v8:ProfEvntProc') continue;
      const { userUs, sysUs } = statTimes(`${task}/stat`);
      us += userUs + sysUs;
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return us;
}

/** The main thread's own CPU time (its task's stat) and its run-queue wait (schedstat). */
function mainThreadCpu(pid: number): ThreadCpu {
  const task = `/proc/${pid}/task/${pid}`;
  const { userUs, sysUs } = statTimes(`${task}/stat`);
  const cpu: ThreadCpu = { cpuUs: userUs + sysUs, userUs, sysUs };
  try {
    const [, wait] = fs.readFileSync(`${task}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
    if (wait !== undefined && Number.isFinite(wait)) cpu.waitUs = wait / 1000;
  } catch {
    // no schedstat in this kernel
  }
  return cpu;
}

/** One CPU's busy and total ticks from /proc/stat (busy: not idle, not waiting for I/O). */
function coreTicks(cpu: string): { busy: number; total: number; steal: number } | undefined {
  const line = fs
    .readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .find((l) => l.startsWith(`cpu${cpu} `));
  if (!line) return undefined;
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - (v[3] ?? 0) - (v[4] ?? 0), total, steal: v[7] ?? 0 };
}

// ---- wrk with the shared Lua script ----

/** Processes named wrk that this script did not start: another session's benchmark. */
function otherWrk(): number[] {
  const ours = new Set([...live].map((p) => p.pid));
  const pids: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || ours.has(Number(entry))) continue;
    try {
      if (fs.readFileSync(`/proc/${entry}/comm`, 'utf8').trim() === 'wrk') pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/**
 * Waits (up to 15 minutes) while another session's wrk runs: its servers and ours would share
 * CPU 1 and its wrk would share CPU 0 with ours. Returns the seconds waited.
 */
async function waitForOtherWrk(): Promise<number> {
  const start = Date.now();
  let waited = 0;
  while (otherWrk().length > 0 && Date.now() - start < 15 * 60_000) {
    await sleep(2000);
    waited = (Date.now() - start) / 1000;
  }
  return waited;
}

interface WrkResult {
  requests: number;
  duration_us: number;
  bytes: number;
  errors: { connect: number; read: number; write: number; status_ge_400: number; timeout: number };
  write_responses: number;
  non2xx: number;
  nokey: number;
  non2xx_statuses: Record<string, number>;
  /** Added here: wrk's own CPU time over its run, percent of one core. */
  wrkBusy?: number;
}

interface Ctx {
  opts: Options;
  lua: string;
  scratch: string;
  logs: string;
}

let wrkCount = 0;

async function runWrk(
  ctx: Ctx,
  port: number,
  seconds: number,
  env: Record<string, string>,
): Promise<WrkResult> {
  const n = ++wrkCount;
  const resultFile = path.join(ctx.scratch, `wrk-${n}.json`);
  const command = [
    'wrk',
    '-t',
    '1',
    '-c',
    String(ctx.opts.connections),
    '-d',
    `${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    ctx.lua,
    `http://127.0.0.1:${port}`,
  ];
  const proc = startProc(
    'wrk',
    command,
    ctx.opts.pin ? '0' : undefined,
    path.join(ctx.logs, `wrk-${n}.log`),
    { ...process.env, BENCH_THREADS: '1', BENCH_RESULT: resultFile, ...env },
  );
  // wrk's own CPU time, read while it runs (it is gone once it exits): a share near 100 % of its
  // core means the client, not the server, set the pace.
  const startedAt = nowUs();
  let busy: number | undefined;
  const poll = setInterval(() => {
    try {
      const { userUs, sysUs } = procCpu(proc.pid);
      busy = (100 * (userUs + sysUs)) / (nowUs() - startedAt);
    } catch {
      // exited
    }
  }, 250);
  const done = await Promise.race([proc.exited, sleep((seconds + 30) * 1000).then(() => null)]);
  clearInterval(poll);
  if (!done) {
    await stopProc(proc, 2000);
    throw new Error(`wrk did not finish; ${tail(proc.log)}`);
  }
  live.delete(proc);
  if (!fs.existsSync(resultFile)) {
    throw new Error(`wrk exited ${done.code ?? done.signal} without a result:\n${tail(proc.log)}`);
  }
  const result = JSON.parse(fs.readFileSync(resultFile, 'utf8')) as WrkResult;
  if (busy !== undefined) result.wrkBusy = busy;
  return result;
}

/** Every kind of failed answer wrk and the Lua script count, by kind; empty when clean. */
function failures(mode: Mode, res: WrkResult): Record<string, number> {
  const e = res.errors;
  const all: Record<string, number> = {
    non2xx: mode === 'write' ? res.non2xx : e.status_ge_400,
    nokey: mode === 'write' ? res.nokey : 0,
    socket: e.connect + e.read + e.write,
    timeout: e.timeout,
  };
  return Object.fromEntries(Object.entries(all).filter(([, v]) => v > 0));
}

// ---- the store's own account of its flushes (GET /metrics) ----

interface Flushes {
  flushes: number;
  writes: number;
  seconds: number;
}

/** The sum over every series of a Prometheus text family's sample, by exact metric name. */
function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}

/** Group commit's flushes so far, the writes they made durable and the time they took. */
async function storeFlushes(port: number): Promise<Flushes | undefined> {
  try {
    const got = await get(port, '/metrics');
    if (got.status !== 200) return undefined;
    const text = got.body.toString('utf8');
    return {
      flushes: metricSum(text, 'haystack_group_commit_flushes_total'),
      writes: metricSum(text, 'haystack_group_commit_writes_per_flush_sum'),
      seconds: metricSum(text, 'haystack_group_commit_flush_duration_seconds_sum'),
    };
  } catch {
    return undefined;
  }
}

// ---- profiles ----

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface Classified {
  bucket: string;
  fn: string;
}

/** The package a node_modules path belongs to (scoped packages whole). */
function packageOf(url: string): string {
  const rest = url.slice(url.lastIndexOf('/node_modules/') + '/node_modules/'.length);
  const parts = rest.split('/');
  return parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '?');
}

function shortUrl(url: string): string {
  if (url.includes('/node_modules/')) {
    return url.slice(url.lastIndexOf('/node_modules/') + '/node_modules/'.length);
  }
  const root = `file://${ROOT}/`;
  return url.startsWith(root) ? url.slice(root.length) : url;
}

/** Which bucket a node's self time goes to, and the name of its function. */
function classifier(profile: CpuProfile): (id: number) => Classified {
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const dist = `file://${ROOT}/dist/`;
  const cache = new Map<number, Classified>();
  const classify = (node: ProfileNode): Classified => {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName || '(anonymous)';
    if (name === '(idle)') return { bucket: 'idle', fn: name };
    if (name === '(garbage collector)') return { bucket: 'GC', fn: name };
    if (name === '(program)' || name === '(root)') return { bucket: '(program)', fn: name };
    if (url === '') {
      if (SYSCALL_NATIVES.has(name)) {
        // fs and sockets both have writeBuffer and the like: say which, and for fs whether the
        // call does the work (…Sync) or hands it to libuv's pool (promises, callbacks).
        const up = byId.get(parent.get(node.id) ?? -1)?.callFrame;
        const upUrl = up?.url ?? '';
        const label =
          upUrl === 'node:internal/fs/promises'
            ? `${name} (fs, to the pool)`
            : /^node:(internal\/)?fs/.test(upUrl)
              ? `${name} (fs${up?.functionName.endsWith('Sync') ? ', sync' : ', to the pool'})`
              : name;
        return { bucket: label, fn: `${label} (native)` };
      }
      return { bucket: 'other natives', fn: `${name} (native)` };
    }
    const where = `${name} ${shortUrl(url)}:${lineNumber + 1}`;
    // The checksums: node:zlib's crc32 (a fast native call, sampled as this frame).
    if (url === 'node:zlib' && name === 'crc32') return { bucket: 'crc32 (node:zlib)', fn: where };
    if (url.startsWith('node:')) return { bucket: 'node:*', fn: where };
    if (url.includes('/node_modules/')) {
      const pkg = packageOf(url);
      if (pkg === 'hono' || pkg === '@hono/node-server') return { bucket: pkg, fn: where };
      if (PINO_FAMILY.has(pkg)) return { bucket: 'pino/prom-client', fn: where };
      return { bucket: 'other', fn: where };
    }
    if (url.startsWith(dist)) {
      const top = url.slice(dist.length).split('/')[0] ?? '';
      const bucket = `${top}/`;
      if (FIXED_BUCKETS.after.includes(bucket)) return { bucket, fn: where };
    }
    return { bucket: 'other', fn: where };
  };
  return (id) => {
    let hit = cache.get(id);
    if (!hit) {
      const node = byId.get(id);
      hit = node ? classify(node) : { bucket: 'other', fn: '?' };
      cache.set(id, hit);
    }
    return hit;
  };
}

interface Window {
  fromUs: number;
  toUs: number;
}

interface Slice {
  /** Microseconds of the main thread's sampled (wall) time in the window, by bucket. */
  time: Map<string, number>;
  /** Samples in the window, by bucket and by function. */
  buckets: Map<string, number>;
  functions: Map<string, number>;
  totalUs: number;
  samples: number;
}

/**
 * The profile inside each window: its samples by bucket and function, and its time. V8 takes a
 * sample in a signal handler, which runs once the thread runs again: a stretch the thread spent
 * preempted (another process, or its own thread-pool worker, had the CPU) ends in one late
 * sample. So the count of samples stands for the thread's own time (running, or idle in
 * epoll_wait, which a signal interrupts), and the time since the previous sample for its wall
 * time, preemption included, given to the code it was in.
 */
function sliceProfile(profile: CpuProfile, windows: readonly Window[]): Slice[] {
  const classify = classifier(profile);
  const slices = windows.map(
    (): Slice => ({
      time: new Map(),
      buckets: new Map(),
      functions: new Map(),
      totalUs: 0,
      samples: 0,
    }),
  );
  const add = (m: Map<string, number>, key: string, v: number) => m.set(key, (m.get(key) ?? 0) + v);
  let before = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const at = before + (profile.timeDeltas[i] ?? 0);
    windows.forEach((w, k) => {
      if (at < w.fromUs || at >= w.toUs) return;
      const slice = slices[k] as Slice;
      const { bucket, fn } = classify(profile.samples[i] as number);
      const us = at - Math.max(before, w.fromUs);
      add(slice.time, bucket, us);
      add(slice.buckets, bucket, 1);
      add(slice.functions, fn, 1);
      slice.totalUs += us;
      slice.samples++;
    });
    before = at;
  }
  return slices;
}

// ---- one round of one size: both servers, every phase ----

interface Sample {
  rep: number;
  size: string;
  mode: Mode;
  server: ServerName;
  requests: number;
  seconds: number;
  rps: number;
  /** CPU time per request of the whole process (all threads), from /proc. */
  userUs: number;
  sysUs: number;
  /** Of it, the CPU profiler's own thread (left out of the figures compared). */
  profilerUs: number;
  /** The same of the main thread alone (the thread the profile samples). */
  main: ThreadCpu;
  /** The window's wall time per request (1 / req/s with wrk's own clock aside). */
  wallUs: number;
  minflt: number;
  window: Window;
  /** CPU 1's busy share over the window and the server's own share of it, in percent. */
  /** Percent of the window: CPU 1 busy, the server's part of it, stolen by the hypervisor; CPU 0 busy. */
  core?: { busy: number; server: number; steal: number; client: number };
  /** wrk's own CPU time over the window, percent of one core. */
  wrkBusy?: number;
  /** The store's group-commit flushes in the window (from its /metrics, read around it). */
  flushes?: Flushes;
  load1: number;
  failures: Record<string, number>;
  /** Another wrk (another session's benchmark) ran during the window: the figures are suspect. */
  otherWrk: boolean;
  /**
   * Filled from the profile once the server has stopped. `sampled`: the main thread's sampled
   * time per request by bucket (wall time: includes time it was preempted); `idleShare`: the
   * share of that time idle. `buckets` and `functions`: their shares of the non-idle samples
   * times the main thread's CPU time per request, so that they add up to it.
   */
  profile?: {
    sampledUs: number;
    idleShare: number;
    samples: number;
    sampled: Record<string, number>;
    buckets: Record<string, number>;
    functions: Record<string, number>;
  };
}

interface Server {
  name: ServerName;
  proc: Proc;
  port: number;
  profile: string;
  paths: string[];
}

interface Check {
  server: ServerName;
  checked: number;
  bad: number;
  messages: string[];
}

/** Reads back a sample of what a write phase was told is stored: status, length, bytes, type. */
async function verify(server: Server, body: Buffer, n: number): Promise<Check> {
  const check: Check = { server: server.name, checked: 0, bad: 0, messages: [] };
  const expected = body.subarray(16);
  for (let i = 0; i < Math.min(n, server.paths.length); i++) {
    const p = server.paths[Math.floor(Math.random() * server.paths.length)] as string;
    check.checked++;
    let why: string | undefined;
    try {
      const got = await get(server.port, p);
      const type = String(got.headers['content-type'] ?? '').split(';')[0];
      if (got.status !== 200) why = `status ${got.status}`;
      else if (got.body.length !== body.length) why = `${got.body.length} bytes`;
      else if (!/^[0-9a-f]{16}$/.test(got.body.subarray(0, 16).toString('latin1'))) why = 'marker';
      else if (!got.body.subarray(16).equals(expected)) why = 'wrong bytes';
      else if (type !== CONTENT_TYPE) why = `content-type ${type}`;
    } catch (error) {
      why = String(error);
    }
    if (why) {
      check.bad++;
      if (check.messages.length < 3) check.messages.push(`GET ${p}: ${why}`);
    }
  }
  return check;
}

async function startServers(
  ctx: Ctx,
  honoScript: string,
  size: (typeof SIZES)[number],
  rep: number,
  dir: string,
): Promise<Server[]> {
  const pin = ctx.opts.pin ? '1' : undefined;
  const cli = path.join(ROOT, 'dist', 'wrangler-free-local', 'cli.js');
  const servers: Server[] = [];
  for (const name of SERVERS) {
    const port = await freePort();
    const profile = `${sizeLabel(size.bytes)}-r${rep}-${name}.cpuprofile`;
    const prof = [
      '--cpu-prof',
      '--cpu-prof-dir',
      ctx.opts.out,
      '--cpu-prof-name',
      profile,
      '--cpu-prof-interval',
      String(ctx.opts.interval),
    ];
    const log = path.join(ctx.logs, `${sizeLabel(size.bytes)}-r${rep}-${name}.log`);
    let proc: Proc;
    if (name === 'store') {
      const data = path.join(dir, 'data');
      const args = ['start', '--data', data, '--port', String(port), '--host', '127.0.0.1'];
      args.push('--cache-size', ctx.opts.cacheSize);
      proc = startProc(name, [process.execPath, ...prof, cli, ...args], pin, log);
    } else {
      const args = ['--port', String(port), '--size', String(size.bytes), '--host', '127.0.0.1'];
      const command = [process.execPath, ...prof, honoScript, ...args];
      proc = startProc(name, command, pin, log, process.env, path.dirname(honoScript));
    }
    servers.push({ name, proc, port, profile: path.join(ctx.opts.out, profile), paths: [] });
  }
  for (const s of servers) await waitReady(s.proc, s.port, s.name === 'store' ? '/status' : '/');
  await sleep(300);
  return servers;
}

async function runRound(
  ctx: Ctx,
  honoScript: string,
  size: (typeof SIZES)[number],
  rep: number,
): Promise<{ samples: Sample[]; checks: Check[] }> {
  const { opts } = ctx;
  const dir = fs.mkdtempSync(path.join(tempDir as string, `${size.id}-r${rep}-`));
  const body = randomBytes(size.bytes);
  const bodyFile = path.join(dir, 'body.bin');
  fs.writeFileSync(bodyFile, body);
  const common = {
    BENCH_WRITE: 'POST /file',
    BENCH_KEY_PREFIX: '/file/',
    BENCH_BODY_FILE: bodyFile,
    BENCH_CONTENT_TYPE: CONTENT_TYPE,
  };
  let tag = 0;
  /** Write mode as bench.mjs sets it, the count out of reach so that the duration ends it. */
  const writeEnv = (server: Server, offset: number) => {
    const stop = path.join(dir, `stop-${++tag}`);
    fs.mkdirSync(stop);
    const out = path.join(dir, `paths-${server.name}-${tag}.txt`);
    return {
      out,
      env: {
        ...common,
        BENCH_MODE: 'write',
        BENCH_COUNT: '1000000000',
        BENCH_STOP_DIR: stop,
        BENCH_UNIQ_OFFSET: String(offset),
        BENCH_PATHS_OUT: out,
      },
    };
  };
  const readPaths = (file: string) =>
    fs.existsSync(file) ? fs.readFileSync(file, 'utf8').split('\n').filter(Boolean) : [];
  const servers = await startServers(ctx, honoScript, size, rep, dir);
  const samples: Sample[] = [];
  const checks: Check[] = [];
  const chosen = opts.phases.get(size.id) ?? new Set<Mode>();
  try {
    // Write always runs: it makes the objects that read and mixed read.
    for (const mode of MODES) {
      if (mode !== 'write' && !chosen.has(mode)) continue;
      for (const server of servers) {
        const pathsIn = path.join(dir, `paths-${server.name}.txt`);
        const envFor = (timed: boolean): { env: Record<string, string>; out?: string } => {
          if (mode === 'write') return writeEnv(server, timed ? 0 : 90_000_000);
          const env: Record<string, string> = {
            ...common,
            BENCH_MODE: mode,
            BENCH_PATHS_IN: pathsIn,
          };
          if (mode === 'mixed') {
            env.BENCH_UNIQ_OFFSET = timed ? '50000000' : '60000000';
            env.BENCH_WRITE_RATIO = '0.1';
          }
          return { env };
        };
        const waited = await waitForOtherWrk();
        if (waited > 0) console.log(`  waited ${fmt(waited)} s for another session's wrk to end`);
        if (opts.warmup > 0) {
          const warm = envFor(false);
          const res = await runWrk(ctx, server.port, opts.warmup, warm.env);
          if (warm.out) for (const p of readPaths(warm.out)) server.paths.push(p);
          const failed = failures(mode, res);
          if (Object.keys(failed).length > 0) {
            console.log(`  warm-up of ${server.name} ${mode}: ${JSON.stringify(failed)}`);
          }
        }
        const timed = envFor(true);
        const flushes0 = server.name === 'store' ? await storeFlushes(server.port) : undefined;
        const core = opts.pin ? coreTicks('1') : undefined;
        const client = opts.pin ? coreTicks('0') : undefined;
        const cpu0 = procCpu(server.proc.pid);
        const main0 = mainThreadCpu(server.proc.pid);
        const prof0 = profilerThreadUs(server.proc.pid);
        const fromUs = nowUs();
        let otherWrkSeen = false;
        const watch = setInterval(() => {
          otherWrkSeen ||= otherWrk().length > 0;
        }, 1000);
        const res = await runWrk(ctx, server.port, opts.duration, timed.env).finally(() =>
          clearInterval(watch),
        );
        const toUs = nowUs();
        const cpu1 = procCpu(server.proc.pid);
        const main1 = mainThreadCpu(server.proc.pid);
        const prof1 = profilerThreadUs(server.proc.pid);
        const coreAfter = opts.pin ? coreTicks('1') : undefined;
        const clientAfter = opts.pin ? coreTicks('0') : undefined;
        if (timed.out) for (const p of readPaths(timed.out)) server.paths.push(p);
        const requests = res.requests;
        const userUs = (cpu1.userUs - cpu0.userUs) / requests;
        const sysUs = (cpu1.sysUs - cpu0.sysUs) / requests;
        const sample: Sample = {
          rep,
          size: size.id,
          mode,
          server: server.name,
          requests,
          seconds: res.duration_us / 1e6,
          rps: requests / (res.duration_us / 1e6),
          userUs,
          sysUs,
          profilerUs: (prof1 - prof0) / requests,
          main: {
            cpuUs: (main1.cpuUs - main0.cpuUs) / requests,
            userUs: (main1.userUs - main0.userUs) / requests,
            sysUs: (main1.sysUs - main0.sysUs) / requests,
            ...(main0.waitUs !== undefined && main1.waitUs !== undefined
              ? { waitUs: (main1.waitUs - main0.waitUs) / requests }
              : {}),
          },
          wallUs: (toUs - fromUs) / requests,
          minflt: (cpu1.minflt - cpu0.minflt) / requests,
          window: { fromUs, toUs },
          load1: os.loadavg()[0] ?? 0,
          failures: failures(mode, res),
          otherWrk: otherWrk().length > 0 || otherWrkSeen,
        };
        if (res.wrkBusy !== undefined) sample.wrkBusy = res.wrkBusy;
        const flushes1 = flushes0 ? await storeFlushes(server.port) : undefined;
        if (flushes0 && flushes1 && flushes1.flushes > flushes0.flushes) {
          sample.flushes = {
            flushes: flushes1.flushes - flushes0.flushes,
            writes: flushes1.writes - flushes0.writes,
            seconds: flushes1.seconds - flushes0.seconds,
          };
        }
        if (core && coreAfter && client && clientAfter && coreAfter.total > core.total) {
          const ticks = coreAfter.total - core.total;
          const serverTicks =
            ((cpu1.userUs + cpu1.sysUs - cpu0.userUs - cpu0.sysUs) / 1e6) * CLOCK_TICKS;
          sample.core = {
            busy: (100 * (coreAfter.busy - core.busy)) / ticks,
            server: (100 * serverTicks) / ticks,
            steal: (100 * (coreAfter.steal - core.steal)) / ticks,
            client: (100 * (clientAfter.busy - client.busy)) / (clientAfter.total - client.total),
          };
        }
        samples.push(sample);
        const bad =
          Object.keys(sample.failures).length > 0
            ? `  FAILED ${JSON.stringify(sample.failures)}`
            : sample.otherWrk
              ? "  (another session's wrk ran meanwhile)"
              : '';
        console.log(
          `  round ${rep}  ${sizeLabel(size.bytes).padEnd(5)} ${mode.padEnd(5)} ${server.name.padEnd(9)}` +
            ` ${fmt(sample.rps).padStart(7)} req/s  CPU ${fmt(userUs + sysUs, 1).padStart(6)} us/req` +
            ` (user ${fmt(userUs, 1)}, sys ${fmt(sysUs, 1)}, profiler ${fmt(sample.profilerUs, 1)})` +
            (sample.core
              ? `  CPU 1 ${fmt(sample.core.busy)}% busy, server ${fmt(sample.core.server)}%, steal ${fmt(sample.core.steal)}%; CPU 0 ${fmt(sample.core.client)}%, wrk ${fmt(sample.wrkBusy ?? Number.NaN)}%`
              : '') +
            `  load ${fmt(sample.load1, 2)}${bad}`,
        );
        if (mode === 'write') {
          const keep = opts.readSet.get(size.id) ?? server.paths.length;
          fs.writeFileSync(pathsIn, `${server.paths.slice(-keep).join('\n')}\n`);
          if (server.name === 'store') {
            const check = await verify(server, body, 50);
            checks.push(check);
            if (check.bad > 0)
              console.log(
                `  read-back: ${check.bad} of ${check.checked} bad: ${check.messages.join('; ')}`,
              );
          }
        }
      }
    }
  } finally {
    for (const server of servers) {
      const clean = await stopProc(server.proc, 30_000);
      if (!clean) console.log(`  ${server.name} did not stop within 30 s: killed, no profile`);
    }
    fs.rmSync(dir, { recursive: true, force: true });
    // Let the writeback of this round's files and their deletion finish before the next.
    spawnSync('sync');
  }
  for (const server of servers) {
    if (server.proc.child.exitCode !== 0) {
      console.log(
        `  ${server.name} exited ${server.proc.child.exitCode ?? server.proc.child.signalCode}:\n${tail(server.proc.log, 600)}`,
      );
    }
    if (!fs.existsSync(server.profile)) continue;
    const profile = JSON.parse(fs.readFileSync(server.profile, 'utf8')) as CpuProfile;
    const own = samples.filter((s) => s.server === server.name);
    const slices = sliceProfile(
      profile,
      own.map((s) => s.window),
    );
    own.forEach((s, i) => {
      const slice = slices[i] as Slice;
      const idleSamples = slice.buckets.get('idle') ?? 0;
      const busySamples = slice.samples - idleSamples;
      // The non-idle samples' shares, times the main thread's CPU time: so they add up to it.
      const scale = busySamples > 0 ? (s.main.cpuUs * s.requests) / busySamples : 0;
      const per = (m: Map<string, number>, factor: number, skip?: string) =>
        Object.fromEntries(
          [...m].filter(([k]) => k !== skip).map(([k, v]) => [k, (v * factor) / s.requests]),
        );
      s.profile = {
        sampledUs: slice.totalUs / s.requests,
        idleShare: slice.totalUs > 0 ? (slice.time.get('idle') ?? 0) / slice.totalUs : 0,
        samples: slice.samples,
        sampled: per(slice.time, 1),
        buckets: per(slice.buckets, scale, 'idle'),
        functions: per(slice.functions, scale, '(idle)'),
      };
    });
  }
  return { samples, checks };
}

// ---- the report ----

const signed = (v: number, digits = 1) => `${v >= 0 ? '+' : ''}${fmt(v, digits)}`;

/** Medians over the rounds, of each server's figure and of the rounds' differences. */
function figure(
  samples: readonly Sample[],
  pick: (s: Sample) => number | undefined,
): { store: number; bare: number; diff: number } {
  const of = (server: ServerName) => samples.filter((s) => s.server === server);
  const stores = of('store');
  const bares = of('hono-bare');
  const diffs: number[] = [];
  for (const s of stores) {
    const b = bares.find((x) => x.rep === s.rep);
    const a = pick(s);
    const c = b ? pick(b) : undefined;
    if (a !== undefined && c !== undefined) diffs.push(a - c);
  }
  const med = (list: Sample[]) => {
    const values = list.map(pick).filter((v): v is number => v !== undefined);
    return values.length ? median(values) : Number.NaN;
  };
  return { store: med(stores), bare: med(bares), diff: diffs.length ? median(diffs) : Number.NaN };
}

/** The server's CPU time per request: all its threads but the profiler's. */
/** The median over the rounds of the store's figure over hono-bare's in the same round. */
function ratio(samples: readonly Sample[], pick: (s: Sample) => number): number {
  const ratios = samples
    .filter((s) => s.server === 'store')
    .flatMap((s) => {
      const b = samples.find((x) => x.server === 'hono-bare' && x.rep === s.rep);
      return b ? [pick(s) / pick(b)] : [];
    });
  return ratios.length ? median(ratios) : Number.NaN;
}

const cpuOf = (s: Sample) => s.userUs + s.sysUs - s.profilerUs;
/** The process's CPU time per request outside its main thread (libuv's pool, V8 helpers). */
const otherThreadsOf = (s: Sample) => cpuOf(s) - s.main.cpuUs;
const OTHER_THREADS = 'other threads';

function bucketOrder(samples: readonly Sample[]): string[] {
  const seen = new Set<string>();
  for (const s of samples) for (const k of Object.keys(s.profile?.buckets ?? {})) seen.add(k);
  const syscalls = [...seen]
    .filter((k) => !FIXED_BUCKETS.before.includes(k) && !FIXED_BUCKETS.after.includes(k))
    .sort();
  return [...FIXED_BUCKETS.before, ...syscalls, ...FIXED_BUCKETS.after].filter((k) => seen.has(k));
}

interface PhaseReport {
  phase: string;
  text: string;
  summary: string[];
  /** Every bucket's difference, store minus hono-bare, us/req, largest first. */
  differences: Array<{ bucket: string; diff: number }>;
}

function phaseReport(label: string, samples: readonly Sample[]): PhaseReport {
  type Figure = { store: number; bare: number; diff: number };
  const rows: string[][] = [
    [
      'us per request',
      'store',
      'hono-bare',
      'difference',
      'wall: store',
      'hono-bare',
      'difference',
    ],
  ];
  const cells = (f: Figure | undefined, digits: number) =>
    f ? [fmt(f.store, digits), fmt(f.bare, digits), signed(f.diff, digits)] : ['', '', ''];
  const line = (name: string, f: Figure | undefined, wall?: Figure, digits = 1) =>
    rows.push([name, ...cells(f, digits), ...cells(wall, digits)]);
  const bucketOf = (key: 'buckets' | 'sampled', bucket: string) =>
    figure(samples, (s) => (s.profile ? (s.profile[key][bucket] ?? 0) : undefined));
  const rps = figure(samples, (s) => s.rps);
  const cpu = figure(samples, cpuOf);
  line('CPU, user + system (/proc; all threads but the profiler)', cpu);
  line(
    '  user',
    figure(samples, (s) => s.userUs - s.profilerUs),
  );
  line(
    '  system',
    figure(samples, (s) => s.sysUs),
  );
  const others = figure(samples, otherThreadsOf);
  line('  other threads (libuv pool, V8 helpers)', others);
  line(
    '    of which system time',
    figure(samples, (s) => s.sysUs - s.main.sysUs),
  );
  line(
    'main thread: wall time per request (1 / req/s)',
    undefined,
    figure(samples, (s) => s.wallUs),
  );
  line(
    '  waiting for a CPU (schedstat)',
    undefined,
    figure(samples, (s) => s.main.waitUs),
  );
  line('  idle (profile)', undefined, bucketOf('sampled', 'idle'));
  line(
    '  busy: CPU (task stat), profile time',
    figure(samples, (s) => s.main.cpuUs),
    figure(samples, (s) =>
      s.profile ? s.profile.sampledUs - (s.profile.sampled.idle ?? 0) : undefined,
    ),
  );
  const differences: Array<{ bucket: string; diff: number }> = [
    { bucket: OTHER_THREADS, diff: others.diff },
  ];
  for (const bucket of bucketOrder(samples)) {
    const f = bucketOf('buckets', bucket);
    line(`    ${bucket}`, f, bucketOf('sampled', bucket));
    differences.push({ bucket, diff: f.diff });
  }
  line(
    'minor page faults per request',
    figure(samples, (s) => s.minflt),
    undefined,
    2,
  );
  line(
    "the profiler's own thread (left out above)",
    figure(samples, (s) => s.profilerUs),
  );
  differences.sort(
    (x, y) => (Number.isFinite(y.diff) ? y.diff : -1e9) - (Number.isFinite(x.diff) ? x.diff : -1e9),
  );
  const top = differences.slice(0, 3);
  const failed = samples.filter((s) => Object.keys(s.failures).length > 0);
  const crowded = samples.filter((s) => s.otherWrk);
  const clientBound = samples.filter((s) => (s.wrkBusy ?? 0) >= 90);
  const rounds = new Set(samples.map((s) => s.rep)).size;
  const loads = samples.map((s) => s.load1);
  const cores = samples.flatMap((s) => (s.core ? [s.core] : []));
  const range = (values: number[], digits = 0) =>
    `${fmt(Math.min(...values), digits)}-${fmt(Math.max(...values), digits)}`;
  const contention = cores.length
    ? `; CPU 1 busy ${range(cores.map((c) => c.busy))}%, the server's own part ${range(cores.map((c) => c.server))}%, stolen ${range(cores.map((c) => c.steal))}%; CPU 0 ${range(cores.map((c) => c.client))}%, wrk itself ${range(samples.map((s) => s.wrkBusy ?? Number.NaN))}%`
    : '';
  const flushed = samples.flatMap((s) => (s.flushes ? [s.flushes] : []));
  const flushLine = flushed.length
    ? [
        `store's group commit (its /metrics): ${fmt(median(flushed.map((f) => f.writes / f.flushes)), 1)} writes per flush, ` +
          `${fmt(median(flushed.map((f) => (1000 * f.seconds) / f.flushes)), 2)} ms per flush (medians over the rounds)`,
      ]
    : [];
  const who = (list: Sample[]) => list.map((s) => `${s.server} round ${s.rep}`).join(', ');
  const text = [
    `${label}: store ${fmt(rps.store)} req/s, hono-bare ${fmt(rps.bare)} req/s (x ${fmt(rps.store / rps.bare, 2)}); ` +
      `medians of ${rounds} round(s); load ${range(loads, 2)}${contention}`,
    table(rows),
    ...flushLine,
    ...topFunctions(samples),
    ...(clientBound.length
      ? [`wrk itself used >= 90% of its core for ${who(clientBound)}: req/s there is a floor`]
      : []),
    ...(crowded.length
      ? [`another session's wrk ran during ${who(crowded)}: figures suspect`]
      : []),
    ...(failed.length
      ? [
          `FAILED answers: ${failed.map((s) => `${s.server} round ${s.rep} ${JSON.stringify(s.failures)}`).join('; ')}`,
        ]
      : []),
  ].join('\n');
  return {
    phase: label,
    text,
    differences,
    summary: [
      label,
      fmt(rps.store),
      fmt(rps.bare),
      fmt(cpu.store, 1),
      fmt(cpu.bare, 1),
      signed(cpu.diff),
      fmt(
        ratio(samples, (s) => 1 / cpuOf(s)),
        2,
      ),
      top.map((d) => `${d.bucket} ${signed(d.diff)}`).join(', '),
    ],
  };
}

/** Each server's 12 functions with the most self time, per request (medians over the rounds). */
function topFunctions(samples: readonly Sample[]): string[] {
  const out: string[] = [];
  for (const server of SERVERS) {
    const own = samples.filter((s) => s.server === server && s.profile);
    if (own.length === 0) continue;
    const names = new Set(own.flatMap((s) => Object.keys(s.profile?.functions ?? {})));
    const mainCpu = median(own.map((s) => s.main.cpuUs));
    const ranked = [...names]
      .map((n) => ({ n, us: median(own.map((s) => s.profile?.functions[n] ?? 0)) }))
      .sort((a, b) => b.us - a.us)
      .slice(0, 12);
    out.push(`${server}, top 12 self time (us/req of the main thread's CPU, share of it):`);
    for (const r of ranked) {
      out.push(
        `  ${fmt(r.us, 2).padStart(7)}  ${`${fmt((100 * r.us) / mainCpu, 1)}%`.padStart(6)}  ${r.n}`,
      );
    }
  }
  return out;
}

async function main(): Promise<void> {
  const opts = options();
  const bench = sharedBenchDir();
  const lua = path.join(bench, 'lua', 'bench.lua');
  const sharedHono = path.join(bench, 'servers', 'hono-bare.mjs');
  const cli = path.join(ROOT, 'dist', 'wrangler-free-local', 'cli.js');
  for (const file of [lua, sharedHono, cli]) {
    if (!fs.existsSync(file))
      throw new Error(`${file} is missing${file === cli ? ': npm run build' : ''}`);
  }
  const built = fs.statSync(cli).mtimeMs;
  const stale = ['storage', 'adapters', 'handlers', 'wrangler-free-local'].flatMap((dir) =>
    fs
      .readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts') && fs.statSync(path.join(ROOT, dir, f)).mtimeMs > built),
  );
  if (stale.length > 0) {
    console.log(`warning: ${stale.length} source file(s) newer than dist/: npm run build first`);
  }
  if (spawnSync('wrk', ['-v']).error)
    throw new Error('wrk is not installed (apt-get install -y wrk)');
  if (opts.pin && (spawnSync('taskset', ['-V']).error || os.availableParallelism() < 2)) {
    throw new Error('pinning needs taskset and 2 CPUs; --no-pin runs unpinned');
  }
  fs.mkdirSync(opts.out, { recursive: true });
  // The shared folder has no node_modules of its own (run.sh installs them into a copy): a copy
  // of its server inside the repository (bench/results/, git-ignored) resolves hono from here,
  // checked for the versions the shared benchmark pins.
  const servers = path.join(ROOT, 'bench', 'results', 'where-servers');
  fs.mkdirSync(servers, { recursive: true });
  const honoScript = path.join(servers, 'hono-bare.mjs');
  fs.copyFileSync(sharedHono, honoScript);
  const pinned = JSON.parse(fs.readFileSync(path.join(bench, 'package.json'), 'utf8')) as {
    dependencies: Record<string, string>;
  };
  const versions = ['hono', '@hono/node-server'].map((pkg) => {
    const here = (
      JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version;
    const wanted = pinned.dependencies[pkg];
    return `${pkg} ${here}${wanted && wanted !== here ? ` (the shared benchmark pins ${wanted}!)` : ''}`;
  });

  tempDir = fs.mkdtempSync(path.join(os.tmpdir(), 'haystack-where-'));
  const logs = path.join(tempDir, 'logs');
  const scratch = path.join(tempDir, 'scratch');
  fs.mkdirSync(logs);
  fs.mkdirSync(scratch);
  const ctx: Ctx = { opts, lua, scratch, logs };
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  const head: string[] = [
    `bench:where  ${new Date().toISOString()}  code ${commit.stdout.trim()}${dirty.stdout.trim() ? ' (+ uncommitted changes)' : ''}`,
    machineLine(),
    `store: node ${path.relative(ROOT, cli)} start (durable, --cache-size ${opts.cacheSize}); ` +
      `hono-bare: ${sharedHono} (${versions.join(', ')})`,
    `wrk -t1 -c${opts.connections} with ${lua}; ${opts.warmup} s untimed + ${opts.duration} s timed per phase; ` +
      `${opts.reps} round(s); ${opts.pin ? 'servers on CPU 1, wrk on CPU 0' : 'unpinned'}; ` +
      `--cpu-prof-interval ${opts.interval} us; profiles in ${path.relative(ROOT, opts.out) || opts.out}`,
    `read and mixed pick from the last files written: ${SIZES.map((z) => `${fmt(opts.readSet.get(z.id) ?? 0)} at ${sizeLabel(z.bytes)}`).join(', ')}`,
  ];
  console.log(head.join('\n'));

  const all: Sample[] = [];
  const checks: Check[] = [];
  for (let rep = 1; rep <= opts.reps; rep++) {
    for (const size of SIZES) {
      if (!opts.phases.has(size.id)) continue;
      const round = await runRound(ctx, honoScript, size, rep);
      all.push(...round.samples);
      checks.push(...round.checks);
    }
  }

  const reports: PhaseReport[] = [];
  for (const size of SIZES) {
    for (const mode of MODES) {
      if (!opts.phases.get(size.id)?.has(mode)) continue;
      const label = `${sizeLabel(size.bytes)} ${mode}${mode === 'write' ? ' (durable)' : mode === 'mixed' ? ' 90/10' : ''}`;
      reports.push(
        phaseReport(
          label,
          all.filter((s) => s.size === size.id && s.mode === mode),
        ),
      );
    }
  }
  const summary = table([
    [
      'phase',
      'store req/s',
      'hono-bare req/s',
      'store CPU us/req',
      'hono-bare',
      'difference',
      'x (CPU)',
      'biggest differences, us/req',
    ],
    ...reports.map((r) => r.summary),
  ]);
  const bad = checks.filter((c) => c.bad > 0);
  const text = [
    ...head,
    '',
    ...reports.flatMap((r) => [r.text, '']),
    'Summary (CPU: utime + stime from /proc over the timed window, all threads; the buckets: the',
    "main thread's CPU split by the profile's shares, and the other threads' CPU; store minus",
    "hono-bare, us per request, medians of the rounds; x (CPU): hono-bare's CPU per request over",
    "the store's in the same round, the median):",
    summary,
    '',
    bad.length
      ? `READ-BACK FAILED: ${bad.map((c) => c.messages.join('; ')).join(' | ')}`
      : `read-back after each store write phase: ${checks.reduce((a, c) => a + c.checked, 0)} files, all right`,
    loadLine(),
  ].join('\n');
  console.log(
    `\n${text
      .split('\n')
      .slice(head.length + 1)
      .join('\n')}`,
  );
  fs.writeFileSync(path.join(opts.out, 'summary.txt'), `${text}\n`);
  fs.writeFileSync(
    path.join(opts.out, 'where.json'),
    `${JSON.stringify({ head, options: { ...opts, phases: Object.fromEntries([...opts.phases].map(([k, v]) => [k, [...v]])) }, differences: Object.fromEntries(reports.map((r) => [r.phase, r.differences])), samples: all, checks }, null, 1)}\n`,
  );
  console.log(`written: ${path.relative(ROOT, opts.out)}/summary.txt, where.json, *.cpuprofile`);
  if (bad.length || all.some((s) => Object.keys(s.failures).length > 0)) process.exitCode = 3;
}

process.on('exit', cleanup);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(signal, () => {
    console.error(`\n${signal}: stopping`);
    cleanup();
    process.exit(130);
  });
}
try {
  await main();
} catch (error) {
  console.error(`bench:where: ${error instanceof Error ? error.message : String(error)}`);
  cleanup();
  process.exitCode = 1;
}
