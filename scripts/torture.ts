import { randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { killAll } from './support/cli-process.ts';
import { scriptArgs } from './support/script-args.ts';
import {
  failed,
  formatResult,
  runTorture,
  TORTURE_MODES,
  type TortureMode,
} from './torture/harness.ts';

/**
 * `npm run torture -- --cycles N [--mode kill|lost-cache|compact|mixed] [--seed S]
 * [--fsync always|never] [--clients N] [--max-size BYTES] [--volume-size SIZE] [--data DIR]
 * [--quiet]`
 *
 * Crash loop: see torture/harness.ts (and torture/compaction.ts for `compact`). Prints the seed
 * first (run again with --seed to repeat the same choices), a line per cycle, then `cycles,
 * acknowledged writes, lost, wrong bytes, duplicate keys` (and, with compactions, how many kills
 * landed mid-compaction). Exits 1 on any loss or broken expectation, 2 on a bad command line.
 */
const usage = `Usage: npm run torture -- --cycles N [--mode kill|lost-cache|compact|mixed] [--seed S]
       [--fsync always|never] [--clients N] [--max-size BYTES] [--volume-size SIZE] [--data DIR] [--quiet]

  compact: online compactions (POST /admin/compact) run while clients write, and the kill lands
  mid-compaction in most cycles. Give it a small --volume-size (such as 8M) so that there are
  many volumes with garbage.
`;

const args = scriptArgs('torture', usage);
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
      mode: { type: 'string' },
      seed: { type: 'string' },
      fsync: { type: 'string' },
      clients: { type: 'string' },
      'max-size': { type: 'string' },
      'volume-size': { type: 'string' },
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

const mode = (values.mode ?? 'mixed') as TortureMode;
if (!TORTURE_MODES.includes(mode)) fail(`unknown --mode ${values.mode}`);
const fsync = values.fsync ?? 'always';
if (fsync !== 'always' && fsync !== 'never') fail(`--fsync must be always or never`);
if (fsync === 'never' && mode !== 'kill' && mode !== 'compact') {
  fail(
    '--fsync never only with --mode kill or compact: a lost page cache loses what was never synced',
  );
}
const cycles = integer(values.cycles, 'cycles', { fallback: 10, min: 1 });
const seed = integer(values.seed, 'seed', { fallback: randomInt(2 ** 31) });
const log = values.quiet ? () => {} : (line: string) => process.stdout.write(`${line}\n`);

// The data directory: the one given (kept), or a temp one, removed unless something failed.
const dir = values.data ?? (await mkdtemp(path.join(os.tmpdir(), 'haystack-torture-')));
const removeTemp = () =>
  values.data ? Promise.resolve() : rm(dir, { recursive: true, force: true });

// Ctrl+C: no server child may outlive the harness, nor its temp dir.
process.once('SIGINT', () => {
  void killAll()
    .then(removeTemp)
    .then(() => process.exit(130));
});

process.stdout.write(
  `torture: seed ${seed}, mode ${mode}, ${cycles} cycles, --fsync ${fsync} (repeat with --seed ${seed})\n`,
);
const result = await runTorture({
  cycles,
  mode,
  seed,
  fsync,
  clients: integer(values.clients, 'clients', { fallback: 4, min: 1 }),
  maxFileSize: integer(values['max-size'], 'max-size', { fallback: 1024 * 1024 }),
  ...(values['volume-size'] ? { volumeSize: values['volume-size'] } : {}),
  dir,
  log,
});
if (failed(result) && !values.data) log(`data directory kept for inspection: ${dir}`);
else await removeTemp();
if (result.failures.length > 0) {
  process.stdout.write(`failures (first ${result.failures.length}):\n`);
  for (const line of result.failures) process.stdout.write(`  ${line}\n`);
}
process.stdout.write(`${formatResult(result)}\n`);
process.exitCode = failed(result) ? 1 : 0;
