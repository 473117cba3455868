/**
 * `npm run bench:cluster [-- options]`: what the cluster costs next to one store, in one run on
 * one machine. Two targets run side by side for the whole run:
 *
 * - single: one `haystack start` (default flags: durable writes);
 * - cluster: a PostgreSQL (the Directory, fsync on), 3 `haystack node`s and one
 *   `haystack gateway` with R = 3: every write goes to the 3 nodes, each syncing it.
 *
 * The same load generator drives both: wrk (a C program, 1 thread) with the shared benchmark's
 * script (`../shared/bench/lua/bench.lua`: POST /file of random bytes with a unique marker, the
 * keys taken from the answers; GETs of random keys written before). For each round, size and
 * target (the targets' order alternating by round): untimed writes (warm-up), timed writes,
 * untimed reads, timed reads. CPU time per request is the user + system time (from
 * /proc/<pid>/stat, before and after the timed part) of every process of the target: the store;
 * or the gateway, the nodes, the postmaster and all its backends, over the requests answered.
 *
 * On 2 or more cores every process of both targets is pinned to CPU 1 and wrk to CPU 0, so both
 * get the same CPU budget and the load generator never competes with them (`--no-pin`: none).
 *
 * Options: --sizes 1k,64k, --duration 5 (seconds per timed phase), --warmup 2 (seconds per
 * untimed phase), --rounds 2, --connections 32, --no-pin, --json (also write
 * bench/results/cluster-<time>.json). The default run takes about 2.5 minutes.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import {
  appendFile,
  chmod,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  crash,
  killAll,
  type ServerRun,
  startServer,
  stop,
} from '../scripts/support/cli-process.ts';
import { LocalCluster } from '../scripts/support/local-cluster.ts';
import { type LocalPostgres, postgresBinDir, startPostgres } from '../scripts/support/postgres.ts';
import {
  fmt,
  loadLine,
  machineLine,
  median,
  parseArgs,
  parseSize,
  ROOT,
  sizeLabel,
  table,
} from './lib.ts';

const args = parseArgs(process.argv.slice(2));
const SIZES = String(args.get('sizes') ?? '1k,64k')
  .split(',')
  .map(parseSize);
const DURATION = Number(args.get('duration') ?? 5);
const WARMUP = Number(args.get('warmup') ?? 2);
const ROUNDS = Number(args.get('rounds') ?? 2);
const CONNECTIONS = Number(args.get('connections') ?? 32);
const PIN = args.get('pin') !== false && os.cpus().length >= 2;
const JSON_OUT = args.get('json') === true;
const REPLICAS = 3;
const NODES = 3;
const TOKEN = 'bench-cluster-token-0123456789';
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100;
const SERVER_CPU = '1';
const CLIENT_CPU = '0';

type TargetName = 'single' | 'cluster';

/** A target's processes, by role, found afresh at each sample (PostgreSQL forks backends). */
interface Target {
  name: TargetName;
  url: string;
  pids(): Promise<Record<string, number[]>>;
}

/** What wrk's script (bench.lua) writes to BENCH_RESULT. */
interface WrkResult {
  requests: number;
  duration_us: number;
  errors: { connect: number; read: number; write: number; status_ge_400: number; timeout: number };
  non2xx: number;
  latency_us: { p50: string; p99: string };
}

interface Phase {
  rate: number;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the target's processes per request, microseconds, in total and by role. */
  cpuUs: number;
  cpuUsByRole: Record<string, number>;
  /** Share of one core wrk used: near 100 %, the load generator was the limit. */
  clientBusy: number;
}

interface Measurement {
  round: number;
  size: number;
  target: TargetName;
  write: Phase;
  read: Phase;
}

function findLua(): string {
  const dirs = process.env.BENCH_DIR
    ? [path.resolve(process.env.BENCH_DIR)]
    : [path.resolve(ROOT, '..', 'shared', 'bench'), path.resolve(ROOT, '..', 'bench')];
  for (const dir of dirs) {
    const lua = path.join(dir, 'lua', 'bench.lua');
    if (existsSync(lua)) return lua;
  }
  throw new Error(
    `the shared benchmark's lua/bench.lua is not in ${dirs.join(' or ')}; set BENCH_DIR`,
  );
}

/** utime + stime (+ the same of reaped children) of one process, in microseconds; 0 if gone. */
function cpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    return (ticks / CLOCK_TICKS) * 1e6;
  } catch {
    return 0;
  }
}

/** Every process whose parent is `pid`. */
async function childrenOf(pid: number): Promise<number[]> {
  const found: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, 'utf8').catch(() => '');
    if (stat === '') continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    if (ppid === pid) found.push(Number(entry));
  }
  return found;
}

/**
 * CPU by role, summed over the processes found now. A backend that exits between two samples
 * is counted in the postmaster's children's time once reaped; the backends here live as long as
 * the pools of the gateway and nodes, so that is rare.
 */
async function sampleCpu(target: Target): Promise<Record<string, number>> {
  const byRole: Record<string, number> = {};
  for (const [role, pids] of Object.entries(await target.pids())) {
    byRole[role] = pids.reduce((sum, pid) => sum + cpuMicros(pid), 0);
  }
  return byRole;
}

function pin(pids: readonly number[]): void {
  if (!PIN) return;
  for (const pid of pids) {
    spawnSync('taskset', ['-a', '-p', '-c', SERVER_CPU, String(pid)], { stdio: 'ignore' });
  }
}

let wrkChild: ChildProcess | undefined;

/** Runs wrk with bench.lua for `seconds`; answers its result and its CPU (last sample). */
async function wrk(
  url: string,
  env: Record<string, string>,
  seconds: number,
  lua: string,
  scratch: string,
): Promise<{ result: WrkResult; cpuUs: number }> {
  const resultFile = path.join(scratch, `result-${Date.now()}-${Math.random()}.json`);
  const wrkArgs = [
    '-t1',
    `-c${CONNECTIONS}`,
    `-d${seconds}s`,
    '--timeout',
    '10s',
    '-s',
    lua,
    `${url}/`,
  ];
  const [command, commandArgs] = PIN
    ? ['taskset', ['-c', CLIENT_CPU, 'wrk', ...wrkArgs]]
    : ['wrk', wrkArgs];
  const child = spawn(command, commandArgs as string[], {
    env: { ...process.env, BENCH_THREADS: '1', BENCH_RESULT: resultFile, ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  wrkChild = child;
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  // taskset execs wrk: the pid is wrk's. Its CPU is sampled until it exits.
  let cpuUs = 0;
  const poll = setInterval(() => {
    const now = cpuMicros(child.pid as number);
    if (now > 0) cpuUs = now;
  }, 100);
  const limit = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  clearInterval(poll);
  clearTimeout(limit);
  wrkChild = undefined;
  if (!existsSync(resultFile)) throw new Error(`wrk exited ${code} without a result:\n${stderr}`);
  const result = JSON.parse(await readFile(resultFile, 'utf8')) as WrkResult;
  return { result, cpuUs };
}

let uniq = 0;

/** Untimed writes, timed writes, untimed reads, timed reads of one size against one target. */
async function measure(
  target: Target,
  size: number,
  bodyFile: string,
  pathsFile: string,
  lua: string,
  scratch: string,
): Promise<{ write: Phase; read: Phase }> {
  const writeEnv = (paths: string) => ({
    BENCH_MODE: 'write',
    BENCH_WRITE: 'POST /file',
    BENCH_KEY_PREFIX: '/file/',
    BENCH_BODY_FILE: bodyFile,
    BENCH_CONTENT_TYPE: 'application/octet-stream',
    // A quota never reached: the phase lasts its duration.
    BENCH_COUNT: String(1e9),
    BENCH_STOP_DIR: scratch,
    BENCH_UNIQ_OFFSET: String(++uniq * 1_000_000),
    BENCH_PATHS_OUT: paths,
  });
  const timed = async (env: Record<string, string>): Promise<Phase> => {
    const before = await sampleCpu(target);
    const { result, cpuUs: clientUs } = await wrk(target.url, env, DURATION, lua, scratch);
    const after = await sampleCpu(target);
    const requests = result.requests;
    const cpuUsByRole: Record<string, number> = {};
    let cpuUs = 0;
    for (const role of Object.keys(after)) {
      const spent = (after[role] ?? 0) - (before[role] ?? 0);
      cpuUsByRole[role] = spent / requests;
      cpuUs += spent / requests;
    }
    const e = result.errors;
    return {
      rate: requests / (result.duration_us / 1e6),
      requests,
      errors: e.connect + e.read + e.write + e.status_ge_400 + e.timeout + (result.non2xx ?? 0),
      p50Ms: Number(result.latency_us.p50) / 1000,
      p99Ms: Number(result.latency_us.p99) / 1000,
      cpuUs,
      cpuUsByRole,
      clientBusy: clientUs / result.duration_us,
    };
  };
  const collect = async (file: string) => {
    if (existsSync(file)) await appendFile(pathsFile, await readFile(file));
  };

  const warm = path.join(scratch, `paths-${uniq}-warm.txt`);
  await wrk(target.url, writeEnv(warm), WARMUP, lua, scratch);
  await collect(warm);
  const timedPaths = path.join(scratch, `paths-${uniq}-timed.txt`);
  const write = await timed(writeEnv(timedPaths));
  await collect(timedPaths);
  await check(target, pathsFile, size);

  const readEnv = { BENCH_MODE: 'read', BENCH_PATHS_IN: pathsFile };
  await wrk(target.url, readEnv, WARMUP, lua, scratch);
  const read = await timed(readEnv);
  return { write, read };
}

/** A few of the files written read back with the right length: the figures are of real work. */
async function check(target: Target, pathsFile: string, size: number): Promise<void> {
  const paths = (await readFile(pathsFile, 'utf8')).split('\n').filter(Boolean);
  if (paths.length === 0) throw new Error(`${target.name}: no file was written`);
  for (let i = 0; i < 5; i++) {
    const p = paths[Math.floor(Math.random() * paths.length)] as string;
    const res = await fetch(`${target.url}${p}`);
    const body = await res.arrayBuffer();
    if (res.status !== 200 || body.byteLength !== size) {
      throw new Error(`${target.name}: GET ${p} answered ${res.status}, ${body.byteLength} bytes`);
    }
  }
}

function us(value: number): string {
  return value >= 100 ? fmt(value) : fmt(value, 1);
}

function report(results: Measurement[]): string {
  const find = (round: number, size: number, target: TargetName) =>
    results.find((r) => r.round === round && r.size === size && r.target === target);
  const rows: string[][] = [['', 'single', 'cluster', 'cluster/single']];
  const figures: Array<[string, (m: Measurement) => number, (v: number) => string]> = [
    ['writes/s', (m) => m.write.rate, (v) => fmt(v)],
    ['write p99 ms', (m) => m.write.p99Ms, (v) => fmt(v, 1)],
    ['reads/s', (m) => m.read.rate, (v) => fmt(v)],
    ['read p99 ms', (m) => m.read.p99Ms, (v) => fmt(v, 1)],
    ['CPU us per write', (m) => m.write.cpuUs, us],
    ['CPU us per read', (m) => m.read.cpuUs, us],
  ];
  const notes: string[] = [];
  const replication: string[] = [];
  const byRole: string[] = [];
  for (const size of SIZES) {
    for (const [name, get, show] of figures) {
      const single: number[] = [];
      const cluster: number[] = [];
      const ratios: number[] = [];
      for (let round = 1; round <= ROUNDS; round++) {
        const s = find(round, size, 'single');
        const c = find(round, size, 'cluster');
        if (!s || !c) continue;
        single.push(get(s));
        cluster.push(get(c));
        ratios.push(get(c) / get(s));
      }
      rows.push([
        `${sizeLabel(size)} ${name}`,
        show(median(single)),
        show(median(cluster)),
        `${fmt(median(ratios), 2)}x`,
      ]);
      if (name === 'CPU us per write') {
        replication.push(`${sizeLabel(size)} ${fmt(median(ratios), 2)}x`);
      }
    }
    const clusterRuns = results.filter((r) => r.size === size && r.target === 'cluster');
    for (const phase of ['write', 'read'] as const) {
      const roles = Object.keys(clusterRuns[0]?.[phase].cpuUsByRole ?? {});
      const each = roles.map(
        (role) => `${role} ${us(median(clusterRuns.map((r) => r[phase].cpuUsByRole[role] ?? 0)))}`,
      );
      byRole.push(`  ${sizeLabel(size)} per ${phase}: ${each.join(', ')} us`);
    }
  }
  for (const r of results) {
    for (const [phase, p] of [
      ['writes', r.write],
      ['reads', r.read],
    ] as const) {
      const where = `${r.target} ${sizeLabel(r.size)} ${phase} (round ${r.round})`;
      if (p.errors > 0) notes.push(`! ${where}: ${p.errors} errors or non-2xx answers`);
      if (p.clientBusy >= 0.95) {
        notes.push(`* ${where}: wrk used ${fmt(p.clientBusy * 100)} % of its core: a floor`);
      }
    }
  }
  return [
    table(rows),
    '',
    `The cost of replication per write (cluster CPU per write / single CPU per write, R = ${REPLICAS}): ${replication.join(', ')}`,
    "The cluster's CPU per request, by process (nodes: the 3 together):",
    ...byRole,
    ...notes,
  ].join('\n');
}

async function main(): Promise<void> {
  const lua = findLua();
  const wrkVersion = spawnSync('wrk', ['-v'], { encoding: 'utf8' });
  if (wrkVersion.error) throw new Error('wrk is not installed (apt-get install wrk)');
  const root = await mkdtemp(path.join(os.tmpdir(), 'haystack-bench-cluster-'));
  const scratch = path.join(root, 'scratch');
  await mkdir(scratch);
  let single: ServerRun | undefined;
  let postgres: LocalPostgres | undefined;
  let cluster: LocalCluster | undefined;
  const cleanUp = async () => {
    wrkChild?.kill('SIGKILL');
    await cluster?.stopAll().catch(() => cluster?.killAll());
    if (single) await stop(single).catch(() => single && crash(single));
    await postgres?.stop().catch(() => {});
    await killAll();
    await rm(root, { recursive: true, force: true });
  };
  const onSignal = () => {
    void cleanUp().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  const started = new Date();
  try {
    console.log(`bench:cluster  ${started.toISOString()}`);
    console.log(machineLine());
    // As root, PostgreSQL runs as the postgres user: it must reach its folder.
    await chmod(root, 0o755);
    await mkdir(path.join(root, 'postgres'));
    postgres = await startPostgres({ dir: path.join(root, 'postgres'), fsync: true });
    const directory = await postgres.createDatabase('haystack_bench');
    cluster = new LocalCluster({
      directory,
      root: path.join(root, 'cluster'),
      token: TOKEN,
      replicas: REPLICAS,
      nodeTimeout: '10',
    });
    for (let i = 0; i < NODES; i++) await cluster.startNode(i);
    const gateway = await cluster.startGateway(0);
    single = await startServer(path.join(root, 'single'));
    const postmaster = await postgres.postmasterPid();
    if (postmaster === undefined) throw new Error('no postmaster.pid');
    const members = cluster;

    const targets: Target[] = [
      {
        name: 'single',
        url: single.url,
        pids: async () => ({ store: [single?.pid as number] }),
      },
      {
        name: 'cluster',
        url: gateway.url,
        pids: async () => ({
          gateway: [gateway.run?.pid as number],
          nodes: members.nodes.map((n) => n.run?.pid as number),
          postgres: [postmaster, ...(await childrenOf(postmaster))],
        }),
      },
    ];
    const allPids = async () =>
      (await Promise.all(targets.map(async (t) => Object.values(await t.pids()).flat()))).flat();
    pin(await allPids());

    console.log(
      `load generator: ${wrkVersion.stdout.split('\n')[0]?.replace(/\s+Copyright.*/, '')}, 1 thread, ${CONNECTIONS} connections, ${lua}`,
    );
    console.log(
      PIN
        ? `pinning: every process of both targets on CPU ${SERVER_CPU} (taskset; PostgreSQL's backends inherit it), wrk on CPU ${CLIENT_CPU}`
        : 'pinning: none',
    );
    console.log(
      `single: haystack start (fsync always); cluster: ${NODES} nodes (fsync always) + 1 gateway, R = ${REPLICAS}, PostgreSQL ${path.basename(path.dirname(await postgresBinDir()))} with fsync on`,
    );
    console.log(
      `per round, size and target: ${WARMUP} s of writes (untimed), ${DURATION} s of POST /file, ${WARMUP} s of reads (untimed), ${DURATION} s of GETs of random keys written so far; ${ROUNDS} rounds, the targets' order alternating\n`,
    );

    const results: Measurement[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      for (const size of SIZES) {
        const body = path.join(scratch, `body-${size}`);
        if (!existsSync(body)) {
          const bytes = new Uint8Array(size);
          for (let i = 0; i < size; i++) bytes[i] = Math.floor(Math.random() * 256);
          await writeFile(body, bytes);
        }
        const order = round % 2 === 1 ? targets : [...targets].reverse();
        for (const target of order) {
          const pathsFile = path.join(scratch, `read-set-${target.name}-${size}.txt`);
          // New backends since the last pinning: pin again.
          pin(await allPids());
          const { write, read } = await measure(target, size, body, pathsFile, lua, scratch);
          results.push({ round, size, target: target.name, write, read });
          console.log(
            `round ${round} ${sizeLabel(size).padEnd(5)} ${target.name.padEnd(7)} writes/s ${fmt(write.rate).padStart(6)} (${us(write.cpuUs)} us CPU each), reads/s ${fmt(read.rate).padStart(6)} (${us(read.cpuUs)} us CPU each)`,
          );
        }
      }
    }
    console.log(`\nMedians over ${ROUNDS} rounds; ratios are medians of each round's ratio:\n`);
    console.log(report(results));
    const minutes = (Date.now() - started.getTime()) / 60_000;
    console.log(`\n${loadLine()}; ${fmt(minutes, 1)} minutes`);
    if (JSON_OUT) {
      const dir = path.join(ROOT, 'bench', 'results');
      await mkdir(dir, { recursive: true });
      const file = path.join(dir, `cluster-${started.toISOString().replace(/[:.]/g, '-')}.json`);
      await writeFile(file, `${JSON.stringify({ started, results }, null, 2)}\n`);
      console.log(`results: ${file}`);
    }
  } finally {
    await cleanUp();
  }
}

await main();
