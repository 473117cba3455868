import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (this file is in `bench/`). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** `--name value` and `--flag` arguments; `--no-flag` gives false. */
export function parseArgs(argv: readonly string[]): Map<string, string | boolean> {
  const args = new Map<string, string | boolean>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const [name, inline] = arg.slice(2).split('=', 2) as [string, string | undefined];
    if (inline !== undefined) args.set(name, inline);
    else if (name.startsWith('no-')) args.set(name.slice(3), false);
    else if (argv[i + 1] !== undefined && !(argv[i + 1] as string).startsWith('--')) {
      args.set(name, argv[++i] as string);
    } else args.set(name, true);
  }
  return args;
}

/** `1M`, `10m`, `500k`, `2^24`, `16777216` as a count. */
export function parseCount(text: string): number {
  const power = /^2\^(\d+)$/.exec(text);
  if (power) return 2 ** Number(power[1]);
  const match = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(text);
  if (!match) throw new Error(`not a count: ${text}`);
  const unit = { '': 1, k: 1e3, m: 1e6 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Math.round(Number(match[1]) * unit);
}

/** `1k`, `64KiB`, `1M`, `2G`, `4096` as bytes (powers of 1024). */
export function parseSize(text: string): number {
  const match = /^(\d+)\s*([kKmMgG]?)(?:i?B)?$/.exec(text);
  if (!match) throw new Error(`not a size: ${text}`);
  const unit = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[(match[2] ?? '').toLowerCase()] ?? 1;
  return Number(match[1]) * unit;
}

export function countLabel(n: number): string {
  if (n >= 1e6 && n % 1e5 === 0) return `${n / 1e6}M`;
  if (n >= 1e3 && n % 100 === 0) return `${n / 1e3}k`;
  return String(n);
}

export function sizeLabel(bytes: number): string {
  if (bytes >= 1024 * 1024 && bytes % (1024 * 1024) === 0) return `${bytes / 1024 / 1024}MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024}KiB`;
  return `${bytes}B`;
}

/** 12,345 or 1.23: thousands separated, `digits` decimals. */
export function fmt(value: number, digits = 0): string {
  return value.toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** Left-aligned first column, right-aligned others. */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** What the figures were measured on, and how busy the machine was at the start. */
export function machineLine(): string {
  const cpus = os.cpus();
  const load = os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return [
    `machine: ${cpus.length} x ${cpus[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB,`,
    `${os.type()} ${os.release()}; node ${process.version}; load average ${load} (1/5/15 min)`,
  ].join(' ');
}

export function loadLine(): string {
  return `load average now ${os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`;
}

/**
 * Runs this process's entry script again in a child with `--expose-gc` (and tsx), passing `job`
 * as JSON, and returns the JSON the child prints last. Children keep measurements apart: each
 * starts with an empty heap.
 */
export function runChild<T>(script: string, job: unknown, nodeArgs: string[] = []): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      ['--expose-gc', ...nodeArgs, '--import', 'tsx', script, '--child', JSON.stringify(job)],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      out += chunk;
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const last = out.trim().split('\n').at(-1);
      if (code !== 0 || !last) {
        reject(new Error(`child ${JSON.stringify(job)} exited ${code ?? signal}:\n${out}`));
        return;
      }
      resolve(JSON.parse(last) as T);
    });
  });
}

/** Heap and array-buffer bytes in use after a full collection (needs --expose-gc). */
export function usedMemory(): number {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('run node with --expose-gc');
  gc();
  gc();
  const { heapUsed, arrayBuffers } = process.memoryUsage();
  return heapUsed + arrayBuffers;
}

// ---- the load driver: servers in child processes, wrk, interleaved rounds, ratios ----

/** USER_HZ: /proc's CPU times are in these ticks (100 on every Linux this runs on). */
export const CLOCK_TICKS = 100;

/** What a /proc `stat` file tells: user and system CPU in microseconds, minor page faults. */
export interface StatTimes {
  userUs: number;
  sysUs: number;
  minflt: number;
}

/**
 * Reads a process's `/proc/PID/stat`, or one thread's `/proc/PID/task/TID/stat` (a process's
 * figures cover all its threads; Linux).
 */
export function statTimes(statFile: string): StatTimes {
  const stat = readFileSync(statFile, 'utf8');
  // The command name, in parentheses, may hold spaces: the fields start after its `)`.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return {
    minflt: Number(fields[7]),
    userUs: (Number(fields[11]) / CLOCK_TICKS) * 1e6,
    sysUs: (Number(fields[12]) / CLOCK_TICKS) * 1e6,
  };
}

/** User + system CPU time of a process, all its threads, in microseconds (Linux). */
export function cpuMicros(pid: number): number {
  const { userUs, sysUs } = statTimes(`/proc/${pid}/stat`);
  return userUs + sysUs;
}

/** A benchmark server: a child process that printed `port N` and serves on it. */
export interface ServerChild {
  name: string;
  child: ChildProcess;
  port: number;
}

/**
 * Starts `node --import tsx <script> ...args` (on CPU 1 when `pin`, with an IPC channel when
 * `ipc`) and resolves once it prints `port N`.
 */
export function startServerChild(
  name: string,
  script: string,
  args: readonly string[],
  { pin, ipc = false }: { pin: boolean; ipc?: boolean },
): Promise<ServerChild> {
  const node = [process.execPath, '--import', 'tsx', script, ...args];
  const [command, ...rest] = pin ? ['taskset', '-c', '1', ...node] : node;
  const child = spawn(command as string, rest, {
    cwd: ROOT,
    stdio: ipc ? ['ignore', 'pipe', 'inherit', 'ipc'] : ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const port = /port (\d+)/.exec(out)?.[1];
      if (port) resolve({ name, child, port: Number(port) });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

/** What wrk asks for: one path, or what a Lua script makes. */
export type WrkTarget = { path: string } | { script: string };

export interface WrkOptions {
  target: WrkTarget;
  seconds: number;
  connections: number;
  /** wrk on CPU 0. */
  pin: boolean;
}

/** One wrk run (`-t1`) against 127.0.0.1:`port`; any non-2xx or 3xx answer fails it. */
export function wrk(port: number, options: WrkOptions): { rps: number; requests: number } {
  const { target, seconds, connections, pin } = options;
  const url = `http://127.0.0.1:${port}${'path' in target ? target.path : ''}`;
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`];
  if ('script' in target) args.push('-s', target.script);
  args.push(url);
  const [command, ...rest] = pin ? ['taskset', '-c', '0', 'wrk', ...args] : ['wrk', ...args];
  const result = spawnSync(command as string, rest, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`wrk failed: ${result.stderr}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(result.stdout)?.[1];
  const bad = /Non-2xx or 3xx responses: (\d+)/.exec(result.stdout)?.[1];
  if (bad !== undefined) throw new Error(`port ${port}: ${bad} non-2xx answers`);
  const requests = /(\d+) requests in/.exec(result.stdout)?.[1];
  if (rps === undefined || requests === undefined) {
    throw new Error(`no rate in wrk's output: ${result.stdout}`);
  }
  return { rps: Number(rps), requests: Number(requests) };
}

export function requireWrk(): void {
  if (spawnSync('wrk', ['--version']).error) {
    throw new Error('wrk is not installed (apt-get install -y wrk)');
  }
}

/** One measurement of one server: req/s, its CPU time per answer, and what the hooks added. */
export interface LoadSample {
  rps: number;
  /** CPU time the server spent per answer: less disturbed by a busy machine than req/s. */
  cpuUs: number;
  extra: Record<string, number>;
}

export interface RoundsOptions<S extends ServerChild> extends WrkOptions {
  reps: number;
  /** Seconds of untimed load before each measurement. */
  warmup: number;
  /**
   * The server every ratio is taken against. With `referenceFirst` it is measured first in every
   * round and the others in an order rotated each round; otherwise all rotate.
   */
  reference: S;
  referenceFirst: boolean;
  /** Runs after the warm-up, just before the measurement. */
  before?(server: S): Promise<void>;
  /** Runs after the measurement; its figures go into the sample's `extra`. */
  after?(server: S, requests: number): Promise<Record<string, number>>;
  /** One line per measurement. */
  log?(round: number, server: S, sample: LoadSample): void;
}

/**
 * Every server measured once per round, `reps` rounds, in an order that changes each round so
 * that the machine's swings hit them alike. Answers each server's samples, by name.
 */
export async function measureRounds<S extends ServerChild>(
  servers: readonly S[],
  options: RoundsOptions<S>,
): Promise<Map<string, LoadSample[]>> {
  const { reps, warmup, reference, referenceFirst } = options;
  const samples = new Map<string, LoadSample[]>(servers.map((s) => [s.name, []]));
  const rotating = referenceFirst ? servers.filter((s) => s !== reference) : [...servers];
  for (let rep = 0; rep < reps; rep++) {
    const shift = rotating.length === 0 ? 0 : rep % rotating.length;
    const rotated = [...rotating.slice(shift), ...rotating.slice(0, shift)];
    for (const server of referenceFirst ? [reference, ...rotated] : rotated) {
      if (warmup > 0) wrk(server.port, { ...options, seconds: warmup });
      await options.before?.(server);
      const pid = server.child.pid as number;
      const cpuBefore = cpuMicros(pid);
      const { rps, requests } = wrk(server.port, options);
      const cpuUs = (cpuMicros(pid) - cpuBefore) / requests;
      const extra = (await options.after?.(server, requests)) ?? {};
      const sample = { rps, cpuUs, extra };
      samples.get(server.name)?.push(sample);
      options.log?.(rep + 1, server, sample);
    }
  }
  return samples;
}

/** A column of figures from each sample's `extra`: its median over the rounds. */
export interface ExtraColumn {
  label: string;
  key: string;
  digits: number;
}

/**
 * The table of medians: req/s (with its range), its ratio to the reference's in the same round,
 * CPU per answer and the reference's over it, then the extra columns and any `trailing` cells.
 * Ratios are taken round by round, then the median.
 */
export function ratioTable(
  names: readonly string[],
  samples: ReadonlyMap<string, readonly LoadSample[]>,
  referenceName: string,
  extras: readonly ExtraColumn[] = [],
  trailing: { labels: readonly string[]; cells(name: string): readonly string[] } = {
    labels: [],
    cells: () => [],
  },
): string {
  const reference = samples.get(referenceName) ?? [];
  const rows = [
    [
      'variant',
      'req/s',
      'min-max',
      `x ${referenceName}`,
      'us CPU/req',
      `x ${referenceName} (CPU)`,
      ...extras.map((e) => e.label),
      ...trailing.labels,
    ],
  ];
  for (const name of names) {
    const list = samples.get(name) ?? [];
    const rps = list.map((s) => s.rps);
    rows.push([
      name,
      fmt(median(rps)),
      `${fmt(Math.min(...rps))}-${fmt(Math.max(...rps))}`,
      fmt(median(list.map((s, i) => s.rps / (reference[i] as LoadSample).rps)), 2),
      fmt(median(list.map((s) => s.cpuUs)), 1),
      fmt(median(list.map((s, i) => (reference[i] as LoadSample).cpuUs / s.cpuUs)), 2),
      ...extras.map((e) => fmt(median(list.map((s) => s.extra[e.key] ?? Number.NaN)), e.digits)),
      ...trailing.cells(name),
    ]);
  }
  return table(rows);
}

/**
 * The shared HTTP benchmark's folder (its `run.sh`, `lua/bench.lua`, `servers/`): $BENCH_DIR,
 * else `../shared/bench` or `../bench` beside the repository, as `bench/http.ts` looks for it.
 */
export function sharedBenchDir(): string {
  const candidates = process.env.BENCH_DIR
    ? [path.resolve(process.env.BENCH_DIR)]
    : [path.resolve(ROOT, '..', 'shared', 'bench'), path.resolve(ROOT, '..', 'bench')];
  const found = candidates.find((dir) => existsSync(path.join(dir, 'run.sh')));
  if (!found) {
    throw new Error(
      `the shared benchmark (run.sh) is not in ${candidates.join(' or ')}; set BENCH_DIR to its folder`,
    );
  }
  return found;
}
