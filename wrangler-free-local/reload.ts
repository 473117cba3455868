import path from 'node:path';
import {
  type RebuildProgress,
  type RebuildReport,
  rebuildIndexes,
} from '../adapters/volume/index.ts';
import { isStoreError } from '../storage/index.ts';
import { existingDataDirProblem } from './data-dir.ts';
import { describeError } from './errors.ts';
import type { Config } from './options.ts';

/** How often the progress line is rewritten, at most. */
const PROGRESS_EVERY_MS = 100;

/**
 * `haystack reload`: rebuilds every index file from the volume files. Progress goes to stderr,
 * rewritten in place, only when stderr is a terminal; the summary goes to stdout. Exits 0 when the
 * rebuild is done, even with corrupt needles skipped (they are listed), 1 when it failed.
 */
export async function runReload(config: Pick<Config, 'data'>): Promise<void> {
  const dir = path.resolve(config.data);
  const fail = (message: string) => {
    process.stderr.write(`haystack: cannot reload ${dir}: ${message}\n`);
    process.exitCode = 1;
  };

  const problem = await existingDataDirProblem(dir);
  if (problem) return fail(problem);

  const progress = process.stderr.isTTY ? progressLine(process.stderr) : undefined;
  let report: RebuildReport;
  try {
    report = await rebuildIndexes(
      progress ? { dir, onProgress: (p) => progress.update(p) } : { dir },
    );
  } catch (err) {
    const hint = isStoreError(err, 'locked')
      ? '\nStop the server first: reload rewrites the index files it uses.'
      : '';
    return fail(`${describeError(err)}${hint}`);
  } finally {
    progress?.clear();
  }
  process.stdout.write(formatReport(dir, report));
}

function progressLine(stream: NodeJS.WriteStream) {
  let last = 0;
  let shown = false;
  return {
    update(p: RebuildProgress) {
      const now = Date.now();
      if (now - last < PROGRESS_EVERY_MS && p.scannedBytes < p.totalBytes) return;
      last = now;
      const percent = p.totalBytes > 0 ? Math.floor((p.scannedBytes / p.totalBytes) * 100) : 100;
      const text = `reload: volume ${p.volume}: ${percent}% (${formatBytes(p.scannedBytes)} of ${formatBytes(p.totalBytes)})`;
      // \r back to the start of the line, ESC[K erases what a longer earlier line left.
      stream.write(`\r${text}\x1b[K`);
      shown = true;
    },
    clear() {
      if (shown) stream.write('\r\x1b[K');
      shown = false;
    },
  };
}

export function formatReport(dir: string, r: RebuildReport): string {
  const rows: Array<[string, string]> = [
    ['volumes', String(r.volumes)],
    ['needles scanned', String(r.needles)],
    ['live', String(r.live)],
    ['deleted', String(r.deleted)],
    ['corrupt skipped', String(r.corrupt)],
    ['bytes', `${r.bytes} (${formatBytes(r.bytes)})`],
    ['time', `${(r.durationMs / 1000).toFixed(2)} s`],
    ['problems', String(r.problems.length)],
  ];
  const lines = [`haystack reload: rebuilt the index files of ${dir}`];
  for (const [label, value] of rows) lines.push(`  ${label.padEnd(16)} ${value}`);
  for (const p of r.problems)
    lines.push(`    volume ${p.volume}, offset ${p.offset}: ${p.message}`);
  return `${lines.join('\n')}\n`;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${n} B` : `${value.toFixed(1)} ${units[unit]}`;
}
