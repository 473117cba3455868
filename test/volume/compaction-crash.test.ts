import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { repoRoot } from '../support/cli.ts';
import { contentOf } from '../support/compaction-content.ts';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

/**
 * Runs the compacting child until it starts compaction number `round`, lets it go on for
 * `delayMs` (0: kill at once), then kill -9. The kill lands somewhere in the compaction (scan,
 * copy, sync, rename, swap) or just after it; what must hold does not depend on where. Returns
 * what the child had acknowledged.
 */
async function runAndKill(dir: string, round: number, delayMs: number) {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/support/compaction-child.ts', dir],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const puts = new Map<number, number>();
  const deleted = new Set<number>();
  let stderr = '';
  child.stderr.on('data', (chunk) => {
    stderr += chunk;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let buffered = '';
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop() ?? '';
      for (const line of lines) {
        const [word, a, b] = line.split(' ');
        if (word === 'put') puts.set(Number(a), Number(b));
        if (word === 'del') deleted.add(Number(a));
        if (word === 'compacting' && Number(a) === round) {
          setTimeout(() => {
            child.kill('SIGKILL');
            resolve();
          }, delayMs);
        }
      }
    });
    child.once('exit', () => reject(new Error(`child exited before the kill: ${stderr}`)));
  });
  await exited;
  return { puts, deleted };
}

describe('kill -9 during compaction', () => {
  it.each([
    [0, 0],
    [1, 2],
    [1, 8],
    [2, 25],
  ])('loses nothing (compaction %i, killed %i ms after it started)', async (round, delayMs) => {
    const dir = await mkdtemp(join(tmpdir(), 'haystack-compact-kill-'));
    dirs.push(dir);
    const { puts, deleted } = await runAndKill(dir, round, delayMs);
    expect(puts.size).toBeGreaterThan(0);

    const store = await openVolumeStore({ dir, volumeSize: 256 * 1024 });
    try {
      for (const [key, n] of puts) {
        if (deleted.has(key)) {
          await expect(store.head(key)).rejects.toMatchObject({ code: 'not_found' });
          continue;
        }
        const { info, body } = await store.get(key);
        expect(info.contentType).toBe(`test/n-${n}`);
        expect(Buffer.from(body as Uint8Array).equals(contentOf(n))).toBe(true);
      }
      const maxKey = Math.max(...puts.keys());
      expect((await store.put({ body: Buffer.from('after') })).key).toBeGreaterThan(maxKey);
    } finally {
      await store.close();
    }
  });
});
