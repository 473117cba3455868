import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isAlive } from '../process-alive.ts';

const PREFIX = 'haystack-gateway-spool-';

/**
 * A gateway's folder for large uploads on their way to the replicas: `haystack-gateway-spool-
 * <pid>-XXXXXX` in the OS's temp dir. A gateway killed mid-upload leaves its folder behind, so
 * each new one first removes the folders of gateways whose process is gone.
 */
export async function makeSpoolDir(): Promise<string> {
  const base = tmpdir();
  const entries = await readdir(base).catch(() => [] as string[]);
  await Promise.all(
    entries.map(async (name) => {
      const pid = Number(/^haystack-gateway-spool-(\d+)-/.exec(name)?.[1]);
      if (!Number.isSafeInteger(pid) || pid === process.pid || isAlive(pid)) return;
      await rm(path.join(base, name), { recursive: true, force: true }).catch(() => {});
    }),
  );
  return mkdtemp(path.join(base, `${PREFIX}${process.pid}-`));
}
