import path from 'node:path';
import { optionsOf } from './commands.ts';
import { startDataDir, undoFailedStart } from './data-dir.ts';
import { createLogger } from './logger.ts';
import { type Config, loggableConfig } from './options.ts';
import { runServer } from './run-server.ts';
import { startServer } from './serve.ts';

/**
 * `haystack start`: open, serve, print where, and stop gracefully on the first SIGINT or
 * SIGTERM. The process exits 0 after a clean stop, 1 when it cannot start or stop cleanly.
 */
export async function runStart(config: Config): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  logger.debug({ options: loggableConfig(config, optionsOf('start')) }, 'options in effect');
  const dir = path.resolve(config.data);
  const found = await startDataDir(dir);
  if ('problem' in found) {
    logger.error({ dataDir: dir }, `cannot start ${dir}: ${found.problem}`);
    process.exitCode = 1;
    return;
  }
  await runServer({
    logger,
    async start() {
      const running = await startServer(config, logger);
      const { url, dataDir } = running;
      return {
        // Tests and scripts read the actual port from this line; keep its shape.
        listening: {
          line: `haystack listening on ${url} (data ${dataDir})`,
          fields: { url, dataDir },
        },
        stop: () => running.stop(),
      };
    },
    // A start that failed (port in use, bad host) leaves nothing behind.
    undoFailedStart: () => undoFailedStart(dir, found),
    stoppedLine: 'haystack stopped (data synced)',
  });
}
