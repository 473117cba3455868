import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { postFile, randomBody } from '../support/http.ts';
import { rss, watchTransfer } from '../support/transfer.ts';

const MiB = 1024 * 1024;

/** Debian's `slowhttptest`, which .ci/run installs; looked up on PATH like a shell would. */
const slowhttptest = (process.env.PATH ?? '')
  .split(path.delimiter)
  .map((dir) => path.join(dir, 'slowhttptest'))
  .find((file) => existsSync(file));
const skipReason = 'slowhttptest is not installed (apt-get install slowhttptest; CI installs it)';

/** Each answer is one 3 MiB buffer (under the store's 4 MiB one-buffer read size). */
const FILE_SIZE = 3 * MiB;
const SECONDS = 10;
/**
 * Above the RSS before the attack. The slow readers are at most 40 connections with one answer
 * of 3 MiB each being made at a time (the others wait unanswered): 120 MiB.
 */
const RSS_GROWTH_BOUND = 256 * MiB;
/** A failure bound for one probe, not a measure of speed. */
const PROBE_LIMIT_MS = 15_000;

const modes = {
  slowloris: ['-H', '-c', '100', '-r', '50', '-i', '1'],
  'slow read': ['-X', '-c', '40', '-r', '40', '-k', '8', '-n', '1', '-w', '10', '-y', '20'],
} as const;

/** The terminal colours of its report. */
const COLOURS = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g');

/** Runs slowhttptest against `url` to its end; rejects on a non-zero exit. */
function attack(url: string, args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      slowhttptest ?? 'slowhttptest',
      [...args, '-l', String(SECONDS), '-p', '5', '-u', url],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    child.once('error', reject);
    child.once('close', (code) => {
      const text = output.replace(COLOURS, '');
      if (code === 0) resolve(text);
      else reject(new Error(`slowhttptest exited ${code}\n${text}`));
    });
  });
}

describe('haystack start under slowhttptest (127.0.0.1 only)', () => {
  const cli = useCli();

  for (const [mode, args] of Object.entries(modes)) {
    it.skipIf(slowhttptest === undefined)(
      `${mode} (${args.join(' ')}, ${SECONDS} s): a probe is served byte-exact throughout, RSS growth under ${RSS_GROWTH_BOUND / MiB} MiB${slowhttptest === undefined ? ` (skipped: ${skipReason})` : ''}`,
      async () => {
        const dir = await cli.tempDir();
        // Short timeouts, so the attack's connections are dropped while it runs.
        const server = await cli.start(dir, ['--headers-timeout', '2s', '--idle-timeout', '3s']);
        const file = await postFile(server.url, randomBody(FILE_SIZE), 'video/mp4');
        const target = `${server.url}/file/${file.key}`;
        const before = rss(server.pid);

        let probes = 0;
        const { result: output, peakRss } = await watchTransfer(server.pid, async () => {
          let attacking = true;
          const attacked = attack(target, args).finally(() => {
            attacking = false;
          });
          // Sequential probes for as long as the attack runs, and one after it.
          do {
            const res = await fetch(target, { signal: AbortSignal.timeout(PROBE_LIMIT_MS) });
            expect(res.status).toBe(200);
            expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.from(file.bytes))).toBe(true);
            probes++;
          } while (attacking);
          return attacked;
        });

        expect(output).toMatch(/connected:/); // it did run
        expect(probes).toBeGreaterThan(1);
        expect(peakRss - before, `RSS ${before / MiB} -> peak ${peakRss / MiB} MiB`).toBeLessThan(
          RSS_GROWTH_BOUND,
        );
        expect(server.running()).toBe(true);
      },
    );
  }
});
