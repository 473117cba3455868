import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { killAll } from './support/cli-process.ts';
import { scriptArgs } from './support/script-args.ts';
import {
  type ClusterTortureResult,
  runClusterTorture,
  tortureFailed,
} from './torture/cluster-harness.ts';
import { formatFigures, formatNotes } from './torture/cluster-ledger.ts';

/**
 * `npm run torture:cluster -- --cycles N [--seed S] [--nodes 4] [--gateways 2] [--replicas 3]
 * [--node-timeout 2] [--clients 4] [--data DIR] [--quiet]`
 *
 * The cluster's crash loop (torture/cluster-harness.ts): its own PostgreSQL and cluster of child
 * processes under a temp folder, nodes and gateways killed with `kill -9` under load, the whole
 * ledger read back after each cycle. Prints the seed first, a line per cycle, then the figures:
 * `cycles N, acknowledged writes W, lost 0, wrong bytes 0, failed reads while reachable 0,
 * deleted read back 0, duplicate keys 0, writes failed with R up 0`. Exits 1 if any is not 0,
 * 2 on a bad command line.
 */
const usage = `Usage: npm run torture:cluster -- --cycles N [--seed S] [--nodes 4] [--gateways 2]
       [--replicas 3] [--node-timeout 2] [--clients 4] [--data DIR] [--quiet]
`;

const args = scriptArgs('torture:cluster', usage);
// Typed here: TypeScript narrows after a call only through a declared `never`.
const fail: (message: string) => never = args.fail;
const { integer } = args;

let values: ReturnType<typeof parse>['values'];
function parse() {
  return parseArgs({
    args: process.argv.slice(2),
    strict: true,
    options: {
      cycles: { type: 'string' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      gateways: { type: 'string' },
      replicas: { type: 'string' },
      'node-timeout': { type: 'string' },
      clients: { type: 'string' },
      data: { type: 'string' },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}
try {
  values = parse().values;
} catch (err) {
  fail((err as Error).message);
}
if (values.help) {
  process.stdout.write(usage);
  process.exit(0);
}

const cycles = integer(values.cycles, 'cycles', { fallback: 10, min: 1 });
const seed = integer(values.seed, 'seed', { fallback: randomInt(2 ** 31) });
const nodes = integer(values.nodes, 'nodes', { fallback: 4, min: 1 });
const gateways = integer(values.gateways, 'gateways', { fallback: 2, min: 1 });
const replicas = integer(values.replicas, 'replicas', { fallback: 3, min: 1 });
if (replicas > nodes) fail(`--replicas ${replicas} needs at least as many --nodes`);
const nodeTimeout = values['node-timeout'] ?? '2';
const log = values.quiet ? () => {} : (line: string) => process.stdout.write(`${line}\n`);

const dir = values.data ?? (await mkdtemp(path.join(os.tmpdir(), 'haystack-torture-cluster-')));
const removeTemp = () =>
  values.data ? Promise.resolve() : rm(dir, { recursive: true, force: true });

// Ctrl+C or SIGTERM: no child may outlive the harness, nor its PostgreSQL, nor the temp folder.
let cleanup: () => Promise<void> = () => killAll();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void cleanup()
      .catch(() => {})
      .then(removeTemp)
      .then(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  });
}

process.stdout.write(
  `torture:cluster: seed ${seed}, ${cycles} cycles, ${nodes} nodes, ${gateways} gateways, R = ${replicas}, node timeout ${nodeTimeout} (repeat with --seed ${seed})\n`,
);
const result: ClusterTortureResult = await runClusterTorture({
  cycles,
  seed,
  nodes,
  gateways,
  replicas,
  nodeTimeout,
  clients: integer(values.clients, 'clients', { fallback: 4, min: 1 }),
  dir,
  log,
  onCleanup: (stop) => {
    cleanup = async () => {
      await killAll();
      await stop();
    };
  },
});
const failedRun = tortureFailed(result) || result.cycles < cycles;
if (failedRun && !values.data) log(`data kept for inspection: ${dir}`);
else await removeTemp();
if (result.failureLines.length > 0) {
  process.stdout.write(`failures (first ${result.failureLines.length}):\n`);
  for (const line of result.failureLines) process.stdout.write(`  ${line}\n`);
}
process.stdout.write(`${formatFigures(result.cycles, result.figures)}\n`);
process.stdout.write(
  `  ${formatNotes(result.figures)}; node kills ${result.nodeKills}, gateway kills ${result.gatewayKills}, ` +
    `outages below R ${result.outages} (writes refused 503 as they must ${result.outageRefusals}); ` +
    `${(result.durationMs / 1000).toFixed(1)} s; seed ${result.seed}\n`,
);
process.exitCode = failedRun ? 1 : 0;
