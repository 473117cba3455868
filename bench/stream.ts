/**
 * `npm run bench:stream [-- options]`: large files through the server in flat memory (issue 5:
 * a 2 GiB upload and download keep the server's RSS growth under 100 MiB).
 *
 * Starts the store's server (`node --import tsx wrangler-free-local/cli.ts start`, default
 * settings: durable writes) as a child, warms it up with a 4 MiB file, takes its idle RSS, then
 * over HTTP on 127.0.0.1: uploads SIZE bytes (a generated stream, AES-256-CTR of zeros, with
 * Content-Length), downloads them whole, then downloads a Range (the middle half, from an odd
 * offset). For each transfer: MB/s, the server's CPU time and its peak RSS over the idle RSS
 * (VmRSS sampled every 50 ms and the kernel's VmHWM, reset before each transfer).
 *
 * Baseline in the same run, same client: a bare node:http server (this file, `--serve-bare`, also
 * under tsx) that pipes the request to a file with fs.createWriteStream (then fdatasync, as the
 * store's durable default does) and answers GETs with fs.createReadStream (Node's defaults,
 * 64 KiB reads), Range included: what streaming costs in Node itself.
 *
 *   npm run bench:stream -- [--size 2G] [--range SIZE] [--dir /where/the/data/goes]
 *                           [--fsync always|never] [--no-verify] [--only haystack|node-bare]
 *
 * With --verify (default) every download's sha256 is checked against what was sent.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, open, rm, stat } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import {
  download,
  pattern,
  rss,
  sha256Of,
  upload,
  watchTransfer,
} from '../test/support/transfer.ts';
import { cpuMicros, fmt, loadLine, machineLine, parseArgs, parseSize, ROOT, table } from './lib.ts';

const MiB = 1024 * 1024;
const TARGET_GROWTH = 100 * MiB;
const WARMUP = 4 * MiB;

const mib = (bytes: number, digits = 1) => `${fmt(bytes / MiB, digits)} MiB`;

// ---------------------------------------------------------------------------------------------
// The bare baseline server (run as a child: `--serve-bare DIR`).

async function serveBare(dir: string, fsync: boolean): Promise<void> {
  let next = 1;
  const server = http.createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(err));
    });
  });
  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    if (req.method === 'POST' && req.url === '/file') {
      const key = next++;
      const file = path.join(dir, `${key}.bin`);
      await pipeline(req, createWriteStream(file));
      if (fsync) {
        // fdatasync through a second descriptor flushes the file's data all the same.
        const handle = await open(file, 'r');
        await handle.datasync().finally(() => handle.close());
      }
      const body = JSON.stringify({ key, size: (await stat(file)).size });
      res.writeHead(201, { 'content-type': 'application/json', location: `/file/${key}` });
      res.end(body);
      return;
    }
    const match = /^\/file\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && match) {
      const file = path.join(dir, `${match[1]}.bin`);
      const { size } = await stat(file);
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      const end = range ? Math.min(Number(range[2]), size - 1) : size - 1;
      res.writeHead(range ? 206 : 200, {
        'content-type': 'application/octet-stream',
        'content-length': end - start + 1,
        ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}),
      });
      await pipeline(createReadStream(file, { start, end }), res);
      return;
    }
    res.writeHead(404).end();
  }
  server.listen(0, '127.0.0.1', () => {
    const { port } = server.address() as AddressInfo;
    console.log(`node-bare listening on http://127.0.0.1:${port}`);
  });
}

// ---------------------------------------------------------------------------------------------
// Watching the server process (the client and the RSS watch are in test/support/transfer.ts).

/** User + system CPU seconds the process used so far. */
function cpuSeconds(pid: number): number {
  return cpuMicros(pid) / 1e6;
}

interface Measured {
  seconds: number;
  cpu: number;
  peakRss: number;
}

let hwmResettable = true;

/** One transfer's time, peak RSS and the server's CPU time; notes if VmHWM could not be reset. */
async function measure<T>(
  pid: number,
  transfer: () => Promise<T>,
): Promise<Measured & { result: T }> {
  const cpu = cpuSeconds(pid);
  const { result, seconds, peakRss, hwmReset } = await watchTransfer(pid, transfer);
  if (!hwmReset) hwmResettable = false;
  return { result, seconds, cpu: cpuSeconds(pid) - cpu, peakRss };
}

function startChild(
  args: string[],
  listening: RegExp,
): Promise<{ child: ChildProcess; url: string }> {
  return new Promise((resolve, reject) => {
    // Its output is shown only if it fails to start; the store's listening line is a log line
    // on stdout (JSON), which the pattern finds inside its msg.
    const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    const collect = (chunk: string) => {
      out += chunk;
      const match = listening.exec(out);
      if (match) resolve({ child, url: match[1] as string });
    };
    child.stdout?.setEncoding('utf8').on('data', collect);
    child.stderr?.setEncoding('utf8').on('data', collect);
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited ${code}:\n${out}`)));
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await exited;
}

// ---------------------------------------------------------------------------------------------
// One server through the three transfers.

interface Run {
  name: string;
  startRss: number;
  idleRss: number;
  endRss: number;
  upload: Measured;
  download: Measured;
  range: Measured;
  verified: string;
}

interface Plan {
  size: number;
  rangeStart: number;
  rangeLength: number;
  verify: boolean;
  fsync: 'always' | 'never';
  parent: string;
}

async function runServer(name: 'haystack' | 'node-bare', plan: Plan): Promise<Run> {
  const dir = await mkdtemp(path.join(plan.parent, `haystack-bench-stream-${name}-`));
  const args =
    name === 'haystack'
      ? [
          'wrangler-free-local/cli.ts',
          'start',
          '--data',
          dir,
          '--port',
          '0',
          '--max-body',
          String(plan.size),
          '--volume-size',
          '32G',
          '--fsync',
          plan.fsync,
        ]
      : ['bench/stream.ts', '--serve-bare', dir, '--fsync', plan.fsync];
  const { child, url } = await startChild(args, /listening on (http:\/\/[\d.:]+)/);
  try {
    const pid = child.pid as number;
    const startRss = rss(pid);

    // Warm-up: the same three requests on a small file, so the idle RSS includes what any
    // request needs (code compiled, pools allocated).
    const warm = await upload(url, WARMUP, pattern(0, WARMUP));
    if (warm.status !== 201) throw new Error(`${name}: warm-up upload got ${warm.status}`);
    const warmKey = (JSON.parse(warm.text) as { key: number }).key;
    await download(url, warmKey, { hash: false });
    await download(url, warmKey, { range: `bytes=12345-${WARMUP - 1000}`, hash: false });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const idleRss = rss(pid);

    const sent = plan.verify ? createHash('sha256') : undefined;
    const { result: stored, ...up } = await measure(pid, () =>
      upload(url, plan.size, pattern(0, plan.size, { hash: sent })),
    );
    if (stored.status !== 201)
      throw new Error(`${name}: upload got ${stored.status}: ${stored.text}`);
    const key = (JSON.parse(stored.text) as { key: number }).key;

    const { result: whole, ...down } = await measure(pid, () =>
      download(url, key, { hash: plan.verify }),
    );
    if (whole.status !== 200 || whole.bytes !== plan.size) {
      throw new Error(`${name}: download got ${whole.status}, ${whole.bytes} bytes`);
    }

    const end = plan.rangeStart + plan.rangeLength - 1;
    const { result: ranged, ...range } = await measure(pid, () =>
      download(url, key, { range: `bytes=${plan.rangeStart}-${end}`, hash: plan.verify }),
    );
    if (ranged.status !== 206 || ranged.bytes !== plan.rangeLength) {
      throw new Error(`${name}: range got ${ranged.status}, ${ranged.bytes} bytes`);
    }

    let verified = 'not checked (--no-verify)';
    if (sent) {
      const ok =
        whole.sha256 === sent.digest('hex') &&
        ranged.sha256 === sha256Of(pattern(plan.rangeStart, plan.rangeLength));
      if (!ok) throw new Error(`${name}: the bytes read back differ from the bytes sent`);
      verified = 'sha256 of the download and of the range match what was sent';
    }
    const endRss = rss(pid);
    return { name, startRss, idleRss, endRss, upload: up, download: down, range, verified };
  } finally {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const fsync = String(args.get('fsync') ?? 'always');
  if (fsync !== 'always' && fsync !== 'never') throw new Error('--fsync is always or never');
  const bare = args.get('serve-bare');
  if (typeof bare === 'string') return serveBare(bare, fsync === 'always');

  const size = parseSize(String(args.get('size') ?? '2G'));
  const rangeLength = Math.min(
    parseSize(String(args.get('range') ?? String(Math.floor(size / 2)))),
    size - 1,
  );
  const plan: Plan = {
    size,
    rangeStart: Math.min(Math.floor(size / 4) + 12_345, size - rangeLength),
    rangeLength,
    verify: args.get('verify') !== false,
    fsync,
    parent: String(args.get('dir') ?? os.tmpdir()),
  };
  const only = args.get('only');
  const names = (['haystack', 'node-bare'] as const).filter((n) => !only || only === n);

  console.log(`bench:stream  ${new Date().toISOString()}`);
  console.log(machineLine());
  console.log(
    `file ${mib(size, 0)} (${fmt(size)} bytes), range bytes=${plan.rangeStart}-${plan.rangeStart + rangeLength - 1} ` +
      `(${mib(rangeLength, 0)}); data under ${plan.parent}; fsync ${fsync}; client: node:http in this ` +
      `process, Content-Length set, body generated on the fly${plan.verify ? ', downloads sha256-checked' : ''}`,
  );
  console.log(
    'servers (one at a time, each a child under tsx): haystack = wrangler-free-local/cli.ts start; ' +
      'node-bare = node:http, fs.createWriteStream / fs.createReadStream (bench/stream.ts --serve-bare)\n',
  );

  const runs: Run[] = [];
  for (const name of names) runs.push(await runServer(name, plan));

  const mbs = (bytes: number, m: Measured) => bytes / 1e6 / m.seconds;
  const phases = [
    { label: 'upload', bytes: size, pick: (r: Run) => r.upload },
    { label: 'download', bytes: size, pick: (r: Run) => r.download },
    { label: 'range download', bytes: rangeLength, pick: (r: Run) => r.range },
  ];
  const [store, reference] = [
    runs.find((r) => r.name === 'haystack'),
    runs.find((r) => r.name === 'node-bare'),
  ];
  const header = ['transfer', 'size'];
  for (const r of runs) header.push(`${r.name} MB/s`);
  if (store && reference) header.push('x bare');
  for (const r of runs) header.push(`${r.name} RSS growth`);
  if (store) header.push('target', '');
  for (const r of runs) header.push(`${r.name} CPU s`);
  const rows: string[][] = [header];
  for (const phase of phases) {
    const row = [phase.label, mib(phase.bytes, 0)];
    for (const r of runs) row.push(fmt(mbs(phase.bytes, phase.pick(r)), 1));
    if (store && reference) {
      row.push(
        fmt(mbs(phase.bytes, phase.pick(store)) / mbs(phase.bytes, phase.pick(reference)), 2),
      );
    }
    for (const r of runs) row.push(mib(phase.pick(r).peakRss - r.idleRss));
    if (store) {
      const growth = phase.pick(store).peakRss - store.idleRss;
      row.push(`< ${mib(TARGET_GROWTH, 0)}`, growth < TARGET_GROWTH ? 'met' : 'NOT MET');
    }
    for (const r of runs) row.push(fmt(phase.pick(r).cpu, 2));
    rows.push(row);
  }
  console.log(table(rows));
  console.log(
    `\nRSS growth: peak RSS during the transfer minus the idle RSS after warm-up (VmRSS every 50 ms` +
      `${hwmResettable ? ', and VmHWM reset before each transfer' : '; VmHWM could not be reset'}).`,
  );
  for (const r of runs) {
    console.log(
      `${r.name}: RSS ${mib(r.startRss)} at start, ${mib(r.idleRss)} idle after warm-up, ` +
        `${mib(r.endRss)} after the transfers; ${r.verified}`,
    );
  }
  console.log(loadLine());
}

await main();
