import { describe, expect, it } from 'vitest';
import { closedOf, pipelineWithoutReading } from '../support/attacks.ts';
import { logMessages, STOPPED, useCli } from '../support/cli.ts';
import { expectFile, postFile, randomBody } from '../support/http.ts';
import { rss } from '../support/transfer.ts';

const MiB = 1024 * 1024;

/**
 * A file under the store's one-buffer read size (4 MiB): each answer is one 3 MiB buffer, so a
 * server that keeps the answers queued for a dead connection keeps 3 MiB per request.
 */
const FILE_SIZE = 3 * MiB;
const ROUNDS = 4;
const SOCKETS = 3;
const REQUESTS = 60;
/**
 * What the attack may leave behind, above the RSS before it. Everything it asks for is
 * ROUNDS * SOCKETS * REQUESTS * 3 MiB (2160 MiB); a connection's requests are answered one at a
 * time, and the 17th unanswered one (default --max-pipeline 16) closes it, so at most SOCKETS
 * answers (9 MiB) are in memory at once, garbage once the sockets close.
 */
const RSS_GROWTH_BOUND = 256 * MiB;

const mib = (bytes: number) => `${(bytes / MiB).toFixed(0)} MiB`;

describe('haystack start: pipelined reads on connections that never read', () => {
  const cli = useCli();

  it(`${ROUNDS} rounds of ${SOCKETS} sockets x ${REQUESTS} GETs of ${FILE_SIZE / MiB} MiB leave RSS growth under ${RSS_GROWTH_BOUND / MiB} MiB, and SIGTERM then exits without waiting`, async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const file = await postFile(server.url, randomBody(FILE_SIZE), 'video/mp4');
    await expectFile(server.url, file); // warm the read path before the baseline
    const before = rss(server.pid);

    for (let round = 0; round < ROUNDS; round++) {
      const sockets = await Promise.all(
        Array.from({ length: SOCKETS }, () =>
          pipelineWithoutReading(server.url, `/file/${file.key}`, REQUESTS),
        ),
      );
      for (const socket of sockets) socket.destroy();
      await Promise.all(sockets.map(closedOf));
    }
    // Served after the attack's connections closed: the server has seen them go.
    await expectFile(server.url, file);
    const after = rss(server.pid);
    expect(after - before, `RSS ${mib(before)} -> ${mib(after)}`).toBeLessThan(RSS_GROWTH_BOUND);

    // Nothing is in flight any more: the stop must not wait out the 10 s grace period (the old
    // tracker waited for answers to dead connections, then 5 s more: 15 s).
    const started = performance.now();
    const exit = await cli.stop(server);
    const seconds = (performance.now() - started) / 1000;
    expect(exit.code, exit.stdout).toBe(0);
    const messages = logMessages(exit.stdout);
    expect(messages.at(-1)).toMatch(STOPPED);
    expect(messages).not.toContainEqual(expect.stringMatching(/grace period/));
    expect(seconds, `stopped in ${seconds.toFixed(1)} s`).toBeLessThan(8);
  });
});
