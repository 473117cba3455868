/**
 * `npm run bench [-- options]`: the shared HTTP benchmark (wrk against the store and reference
 * servers, see its README) on the built CLI with default settings (durable writes), then the
 * store's ratios to hono-bare and nginx-dav next to the targets of issue 5.
 *
 * The benchmark folder is $BENCH_DIR, else `../shared/bench` or `../bench` from the repository
 * root (where development and CI lay it). Options are passed to its run.sh; without --targets it
 * runs haystack,hono-bare,node-bare,nginx-dav, and without --out its results go to
 * bench/results/<time>/. `npm run bench -- --quick` is a one-minute smoke test.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fmt, loadLine, machineLine, ROOT, table } from './lib.ts';

interface Median {
  target: string;
  size: number;
  size_label: string;
  phase: string;
  rps: number;
  runs: number;
  errors: number;
  flagged: boolean;
  cpu_client_busy?: number;
  cpu_server_busy?: number;
}

interface Results {
  machine: Record<string, unknown>;
  config: { targets: string[]; reps: number; duration: number };
  medians: Median[];
  flagged: unknown[];
  wall_s: number;
}

/** Issue 5's targets: the store's req/s over the reference's, by size (bytes) and phase. */
const TARGETS: Array<{ size?: number; phase: string; versus: string; atLeast: number }> = [
  { size: 1024, phase: 'read', versus: 'hono-bare', atLeast: 0.9 },
  { size: 65536, phase: 'read', versus: 'hono-bare', atLeast: 0.9 },
  { phase: 'mixed', versus: 'hono-bare', atLeast: 0.85 },
  { size: 1024, phase: 'write', versus: 'hono-bare', atLeast: 0.7 },
  { size: 1024, phase: 'write', versus: 'nginx-dav', atLeast: 1.5 },
];

function findBenchDir(): string {
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

function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: ROOT, env, stdio: 'inherit' });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal ? 128 : 1));
    });
  });
}

function ratioTable(results: Results): string {
  const find = (target: string, size: number, phase: string) =>
    results.medians.find((m) => m.target === target && m.size === size && m.phase === phase);
  const sizes = [...new Set(results.medians.map((m) => m.size))].sort((a, b) => a - b);
  const phases = ['write', 'read', 'mixed'];
  const rows: string[][] = [
    [
      'size',
      'phase',
      'haystack req/s',
      'hono-bare',
      'x hono',
      'target',
      'nginx-dav',
      'x nginx',
      'target',
    ],
  ];
  const notes = new Set<string>();
  for (const size of sizes) {
    for (const phase of phases) {
      const store = find('haystack', size, phase);
      if (!store) continue;
      const label = store.size_label;
      const cells = [label, phase, fmt(store.rps)];
      for (const versus of ['hono-bare', 'nginx-dav']) {
        const reference = find(versus, size, phase);
        const ratio = reference ? store.rps / reference.rps : undefined;
        const target = TARGETS.find(
          (t) => t.versus === versus && t.phase === phase && (t.size ?? size) === size,
        );
        let verdict = '';
        if (target && ratio !== undefined) {
          verdict = `>= ${target.atLeast} ${ratio >= target.atLeast ? 'met' : 'NOT MET'}`;
        } else if (target) verdict = `>= ${target.atLeast} (not run)`;
        const bound =
          reference !== undefined && [store, reference].some((m) => (m.cpu_client_busy ?? 0) >= 95);
        if (bound)
          notes.add('* wrk was >= 95% busy on its core: a floor for that server, not its limit');
        cells.push(
          reference ? fmt(reference.rps) : '-',
          ratio === undefined ? '-' : `${fmt(ratio, 2)}${bound ? '*' : ''}`,
          verdict,
        );
      }
      rows.push(cells);
      if (store.flagged)
        notes.add(`haystack ${label} ${phase}: FLAGGED (errors), see results.json`);
    }
  }
  return [table(rows), ...notes].join('\n');
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const benchDir = findBenchDir();
  const cli = path.join(ROOT, 'dist', 'wrangler-free-local', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build first`);
  const passed = [...args];
  if (!args.some((a) => a === '--targets' || a.startsWith('--targets='))) {
    passed.push('--targets', 'haystack,hono-bare,node-bare,nginx-dav');
  }
  let out: string;
  const outAt = args.findIndex((a) => a === '--out' || a.startsWith('--out='));
  if (outAt >= 0) {
    const arg = args[outAt] as string;
    out = path.resolve(arg.includes('=') ? arg.slice(6) : (args[outAt + 1] ?? '.'));
  } else {
    const stamp = new Date()
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\..*/, '')
      .replace('T', '-');
    out = path.join(ROOT, 'bench', 'results', stamp);
    passed.push('--out', out);
  }
  await mkdir(out, { recursive: true });

  console.log(`bench (HTTP)  ${new Date().toISOString()}`);
  console.log(machineLine());
  console.log(`shared benchmark: ${benchDir}; store: ${path.relative(ROOT, cli)} (default flags)`);
  console.log(`bash run.sh ${passed.join(' ')}\n`);
  const env = {
    ...process.env,
    // run.sh substitutes $DATA and $PORT under bash -c.
    HAYSTACK_START: `node ${JSON.stringify(cli)} start --data "$DATA" --port "$PORT"`,
    HAYSTACK_CWD: ROOT,
  };
  const code = await run('bash', [path.join(benchDir, 'run.sh'), ...passed], env);
  if (args.includes('--help') || args.includes('-h')) {
    process.exitCode = code;
    return;
  }
  const file = path.join(out, 'results.json');
  if (!existsSync(file)) {
    console.error(`no ${file}: the benchmark failed (exit ${code})`);
    process.exitCode = code || 1;
    return;
  }
  const results = JSON.parse(await readFile(file, 'utf8')) as Results;
  console.log('\nhaystack against the references (median req/s over median req/s, same run):');
  console.log(ratioTable(results));
  console.log(`\nresults: ${file}; ${loadLine()}`);
  process.exitCode = code;
}

await main();
