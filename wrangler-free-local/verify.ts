import path from 'node:path';
import { type VerifyReport, verifyDataDir } from '../adapters/volume/index.ts';
import { existingDataDirProblem } from './data-dir.ts';
import { describeError } from './errors.ts';
import type { Config } from './options.ts';
import { formatBytes } from './reload.ts';

/**
 * `haystack verify`: reads every needle of every volume, checks every checksum and compares the
 * index files with the volumes, changing nothing (it may run while a server owns the directory).
 * The summary goes to stdout. Exit status: 0 clean (notes such as a lagging index are fine),
 * 1 problems found or the check could not run.
 */
export async function runVerify(config: Pick<Config, 'data'>): Promise<void> {
  const dir = path.resolve(config.data);
  const fail = (message: string) => {
    process.stderr.write(`haystack: cannot verify ${dir}: ${message}\n`);
    process.exitCode = 1;
  };

  const problem = await existingDataDirProblem(dir);
  if (problem) return fail(problem);
  let report: VerifyReport;
  try {
    report = await verifyDataDir({ dir });
  } catch (err) {
    return fail(describeError(err));
  }
  process.stdout.write(formatVerifyReport(dir, report));
  if (report.problems.length > 0) process.exitCode = 1;
}

export function formatVerifyReport(dir: string, r: VerifyReport): string {
  const rows: Array<[string, string]> = [
    ['volumes', String(r.volumes)],
    ['needles', String(r.needles)],
    ['live', String(r.live)],
    ['deleted', String(r.deleted)],
    ['index entries', String(r.indexEntries)],
    ['bytes', `${r.bytes} (${formatBytes(r.bytes)})`],
    ['time', `${(r.durationMs / 1000).toFixed(2)} s`],
    ['problems', String(r.problems.length)],
  ];
  const lines = [`haystack verify: checked ${dir} (nothing was changed)`];
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(16)} ${value}`);
  const where = (p: VerifyReport['problems'][number]) =>
    `volume ${p.volume}, offset ${p.offset}${p.key === undefined ? '' : `, key ${p.key}`}`;
  for (const p of r.problems) lines.push(`    ${where(p)}: ${p.message}`);
  if (r.notes.length > 0) {
    lines.push(`  notes            ${r.notes.length}`);
    for (const n of r.notes) lines.push(`    ${where(n)}: ${n.message}`);
  }
  lines.push(
    r.problems.length === 0
      ? 'haystack verify: OK'
      : `haystack verify: ${r.problems.length} problem(s) found`,
  );
  return `${lines.join('\n')}\n`;
}
