import path from 'node:path';
import { openVolumeStore } from '../adapters/volume/index.ts';
import { isStoreError } from '../storage/index.ts';
import { existingDataDirProblem } from './data-dir.ts';
import { describeError } from './errors.ts';
import type { Config } from './options.ts';

/**
 * `haystack compact`: rewrites every volume that holds deleted or replaced needles, with the
 * server stopped (a running server compacts online through `POST /admin/compact`). Prints one line
 * per volume; exits 0 when done, 1 when it failed.
 */
export async function runCompact(
  config: Pick<Config, 'data' | 'fsync' | 'volumeSize'>,
): Promise<void> {
  const dir = path.resolve(config.data);
  const fail = (message: string) => {
    process.stderr.write(`haystack: cannot compact ${dir}: ${message}\n`);
    process.exitCode = 1;
  };
  const problem = await existingDataDirProblem(dir);
  if (problem) return fail(problem);

  let store: Awaited<ReturnType<typeof openVolumeStore>>;
  try {
    store = await openVolumeStore({ dir, fsync: config.fsync, volumeSize: config.volumeSize });
  } catch (err) {
    const hint = isStoreError(err, 'locked')
      ? '\nThe server is running: compact online with POST /admin/compact instead.'
      : '';
    return fail(`${describeError(err)}${hint}`);
  }
  try {
    const reports = await store.compact();
    for (const r of reports) {
      process.stdout.write(
        `volume ${r.volume}: ${r.bytesBefore} -> ${r.bytesAfter} bytes, reclaimed ` +
          `${r.reclaimedBytes}, ${r.needles} needles kept, ${(r.durationMs / 1000).toFixed(2)} s\n`,
      );
    }
    if (reports.length === 0) process.stdout.write('nothing to compact: no volume holds garbage\n');
  } catch (err) {
    fail(describeError(err));
  } finally {
    await store.close();
  }
}
