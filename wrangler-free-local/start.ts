import path from 'node:path';
import { startDataDir, undoFailedStart } from './data-dir.ts';
import type { Config } from './options.ts';
import { runServer } from './run-server.ts';
import { startServer } from './serve.ts';

const log = (line: string) => process.stderr.write(`haystack: ${line}\n`);

/**
 * `haystack start`: open, serve, print where, and stop gracefully on the first SIGINT or
 * SIGTERM. The process exits 0 after a clean stop, 1 when it cannot start or stop cleanly.
 */
export async function runStart(config: Config): Promise<void> {
  const dir = path.resolve(config.data);
  const found = await startDataDir(dir);
  if ('problem' in found) {
    log(`cannot start ${dir}: ${found.problem}`);
    process.exitCode = 1;
    return;
  }
  await runServer({
    log,
    async start() {
      const running = await startServer(config, log);
      return {
        // Tests and scripts read the actual port from this line; keep its shape.
        listeningLine: `haystack listening on ${running.url} (data ${running.dataDir})`,
        stop: () => running.stop(),
      };
    },
    // A start that failed (port in use, bad host) leaves nothing behind.
    undoFailedStart: () => undoFailedStart(dir, found),
    stoppedLine: 'haystack stopped (data synced)',
  });
}
