/**
 * `npm run bench [-- options]`: the shared HTTP benchmark (wrk against the store and reference
 * servers, see its README) on the built CLI with default settings (durable writes), twice: the
 * store with its cache on (64M) beside every peer, then with the cache off beside hono-bare; then
 * the store's ratio to each peer with the cache on and off, next to the targets of issue 13.
 *
 * The benchmark folder is $BENCH_DIR, else `../shared/bench` or `../bench` from the repository
 * root (where development and CI lay it). Options are passed to its run.sh; without --targets it
 * runs haystack and every peer, and without --out its results go to bench/results/<time>/
 * (a folder per pass). `npm run bench -- --quick` is a quick smoke test. `--cli DIR` measures
 * the built CLI of another checkout instead (its `dist/`), e.g. an older commit's, for a before
 * and after.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fmt, loadLine, machineLine, ROOT, sharedBenchDir, sizeLabel, table } from './lib.ts';

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

/** Issue 13's targets: the store's req/s over a peer's, by size (bytes) and phase. */
const TARGETS: Array<{ size?: number; phase: string; versus: string; atLeast: number }> = [
  { phase: 'read', versus: 'hono-bare', atLeast: 0.9 },
  { phase: 'mixed', versus: 'hono-bare', atLeast: 0.85 },
  { size: 1024, phase: 'write', versus: 'hono-bare', atLeast: 0.7 },
  { size: 1024, phase: 'write', versus: 'nginx-dav', atLeast: 1.5 },
  { size: 65536, phase: 'write', versus: 'hono-bare', atLeast: 0.8 },
];

/** Every peer the store is compared with, in the order the table shows them. */
const PEERS = ['hono-bare', 'node-bare', 'nginx-dav', 'hono-fs', 'hono-sqlite'];

/**
 * The store runs twice, once per cache setting: the shared harness has one `haystack` target.
 * The first pass runs every peer; the second runs hono-bare again beside the store, so each
 * pass has its own ceiling and the drift between the passes shows.
 */
const PASSES = [
  { label: 'cache on', cacheSize: '64M' },
  { label: 'cache off', cacheSize: '0' },
];

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

type Find = (target: string, size: number, phase: string) => Median | undefined;

function finder(results: Results): Find {
  return (target, size, phase) =>
    results.medians.find((m) => m.target === target && m.size === size && m.phase === phase);
}

/**
 * One row per size and phase: the store's req/s with the cache on and off, then for each peer its
 * req/s and the store's ratio to it with the cache on and off. A pass's ratio to hono-bare uses
 * that pass's own hono-bare; the other peers ran in the first pass only.
 */
function ratioTable(passes: readonly Results[]): string {
  const finds = passes.map(finder);
  const first = finds[0] as Find;
  const all = passes.flatMap((p) => p.medians);
  const sizes = [...new Set(all.map((m) => m.size))].sort((a, b) => a - b);
  const peers = PEERS.filter((peer) => all.some((m) => m.target === peer));
  const header = ['size', 'phase', ...PASSES.map((p) => `haystack ${p.label}`)];
  for (const peer of peers) header.push(peer, ...PASSES.map((p) => `x ${p.label}`));
  const rows: string[][] = [header];
  const notes = new Set<string>();
  const verdicts: string[] = [];
  for (const size of sizes) {
    for (const phase of ['write', 'read', 'mixed']) {
      const stores = finds.map((find) => find('haystack', size, phase));
      const label = stores.find(Boolean)?.size_label;
      if (!label) continue;
      const cells = [label, phase, ...stores.map((m) => (m ? fmt(m.rps) : '-'))];
      for (const peer of peers) {
        const reference = first(peer, size, phase);
        cells.push(reference ? fmt(reference.rps) : '-');
        stores.forEach((store, i) => {
          // hono-bare is measured again in every pass: each pass is divided by its own.
          const ref =
            (peer === 'hono-bare' ? finds[i]?.(peer, size, phase) : reference) ?? reference;
          const ratio = store && ref ? store.rps / ref.rps : undefined;
          const bound =
            !!store && !!ref && [store, ref].some((m) => (m.cpu_client_busy ?? 0) >= 95);
          if (bound) notes.add('* wrk was >= 95% busy on its core: a floor for that server');
          cells.push(ratio === undefined ? '-' : `${fmt(ratio, 2)}${bound ? '*' : ''}`);
          const target = TARGETS.find(
            (t) => t.versus === peer && t.phase === phase && (t.size ?? size) === size,
          );
          if (target && ratio !== undefined) {
            const met = ratio >= target.atLeast ? 'met' : 'NOT MET';
            verdicts.push(
              `${label} ${phase}, ${PASSES[i]?.label}: ${fmt(ratio, 2)} of ${peer} (target >= ${target.atLeast}) ${met}`,
            );
          }
        });
      }
      rows.push(cells);
      stores.forEach((store, i) => {
        if (store?.flagged) notes.add(`haystack ${label} ${phase} ${PASSES[i]?.label}: FLAGGED`);
      });
    }
  }
  const drift = sizes.flatMap((size) =>
    ['write', 'read', 'mixed'].flatMap((phase) => {
      const bare = finds.map((find) => find('hono-bare', size, phase)?.rps);
      if (bare.some((rps) => rps === undefined)) return [];
      const [a, b] = bare as [number, number];
      return [`${sizeLabel(size)} ${phase} ${fmt(b / a, 2)}`];
    }),
  );
  return [
    table(rows),
    ...notes,
    '',
    "issue 13's targets:",
    ...verdicts.map((line) => `  ${line}`),
    ...(drift.length > 0
      ? ['', `hono-bare, second pass over first (the machine's drift): ${drift.join('; ')}`]
      : []),
  ].join('\n');
}

/** The value of `--name value` or `--name=value` in `args`, and `args` without it. */
function takeOption(args: string[], name: string): [string | undefined, string[]] {
  const at = args.findIndex((a) => a === name || a.startsWith(`${name}=`));
  if (at < 0) return [undefined, args];
  const arg = args[at] as string;
  const inline = arg.includes('=');
  const value = inline ? arg.slice(name.length + 1) : args[at + 1];
  return [value, args.filter((_, i) => i !== at && (inline || i !== at + 1))];
}

async function runPass(
  benchDir: string,
  cli: string,
  args: string[],
  out: string,
  cacheSize: string,
): Promise<{ code: number; results?: Results }> {
  await mkdir(out, { recursive: true });
  const passed = [...args, '--out', out];
  console.log(`\nbash run.sh ${passed.join(' ')}   (haystack --cache-size ${cacheSize})\n`);
  const env = {
    ...process.env,
    // run.sh substitutes $DATA and $PORT under bash -c.
    HAYSTACK_START: `node ${JSON.stringify(cli)} start --data "$DATA" --port "$PORT" --cache-size ${cacheSize}`,
    HAYSTACK_CWD: ROOT,
  };
  const code = await run('bash', [path.join(benchDir, 'run.sh'), ...passed], env);
  const file = path.join(out, 'results.json');
  if (!existsSync(file)) {
    console.error(`no ${file}: the benchmark failed (exit ${code})`);
    return { code: code || 1 };
  }
  return { code, results: JSON.parse(await readFile(file, 'utf8')) as Results };
}

async function main(): Promise<void> {
  const benchDir = sharedBenchDir();
  const [cliArg, raw] = takeOption(process.argv.slice(2), '--cli');
  const cli = path.join(path.resolve(cliArg ?? ROOT), 'dist', 'wrangler-free-local', 'cli.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build there first`);
  if (raw.includes('--help') || raw.includes('-h')) {
    process.exitCode = await run('bash', [path.join(benchDir, 'run.sh'), '--help'], process.env);
    return;
  }
  const [targetsArg, withoutTargets] = takeOption(raw, '--targets');
  const [outArg, args] = takeOption(withoutTargets, '--out');
  const targets = (targetsArg ?? ['haystack', ...PEERS].join(',')).split(',');
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const out = path.resolve(outArg ?? path.join(ROOT, 'bench', 'results', stamp));

  console.log(`bench (HTTP)  ${new Date().toISOString()}`);
  console.log(machineLine());
  console.log(`shared benchmark: ${benchDir}; store: ${path.relative(ROOT, cli)} (default flags)`);
  const passes: Results[] = [];
  let exitCode = 0;
  for (const [i, pass] of PASSES.entries()) {
    // The second pass: the store again, with hono-bare beside it as that pass's ceiling.
    const passTargets =
      i === 0 ? targets : targets.filter((t) => t === 'haystack' || t === 'hono-bare');
    if (!passTargets.includes('haystack')) break;
    const { code, results } = await runPass(
      benchDir,
      cli,
      [...args, '--targets', passTargets.join(',')],
      path.join(out, pass.label.replace(' ', '-')),
      pass.cacheSize,
    );
    exitCode ||= code;
    if (!results) break;
    passes.push(results);
  }
  if (passes.length > 0) {
    console.log('\nhaystack against every peer (median req/s over median req/s):');
    console.log(ratioTable(passes));
  }
  console.log(`\nresults: ${out}; ${loadLine()}`);
  process.exitCode = exitCode;
}

await main();
