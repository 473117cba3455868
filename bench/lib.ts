import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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
