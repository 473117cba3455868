import { spawn } from 'node:child_process';
import { mkdir, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeSpoolDir } from '../../adapters/cluster/spool-dir.ts';
import { removeTempDir } from '../support/tmp.ts';

describe("a gateway's spool folder", () => {
  it("is its own, and a new one removes those of gateways that are gone, never a live one's", async () => {
    // A process that ran and exited: its pid is free (and not reused this soon).
    const gone = spawn(process.execPath, ['-e', '0']);
    const pid = await new Promise<number>((resolve) =>
      gone.once('exit', () => resolve(gone.pid ?? 0)),
    );
    const left = path.join(tmpdir(), `haystack-gateway-spool-${pid}-test01`);
    const live = path.join(tmpdir(), `haystack-gateway-spool-${process.ppid}-test02`);
    await mkdir(path.join(left, 'inner'), { recursive: true });
    await mkdir(live, { recursive: true });
    const mine = await makeSpoolDir();
    try {
      const names = await readdir(tmpdir());
      expect(names).not.toContain(path.basename(left));
      expect(names).toContain(path.basename(live));
      expect(path.basename(mine)).toMatch(new RegExp(`^haystack-gateway-spool-${process.pid}-`));
    } finally {
      await Promise.all([mine, live, left].map(removeTempDir));
    }
  });
});
