/**
 * A process that logs request lines (batched) through the runner's logger to stdout, then ends
 * the way argv[2] says: `exit` (process.exit), `end` (the event loop runs dry), `throw` (a
 * fatal exception). Its stdout must hold every line anyway. test/e2e/logging.test.ts runs it.
 * Usage: node --import tsx test/support/log-exit-child.ts exit|end|throw COUNT
 */
import { createLogger } from '../../wrangler-free-local/logger.ts';

const [how, count] = process.argv.slice(2);
const logger = createLogger({ level: 'info', format: 'json' });
for (let i = 0; i < Number(count); i++) {
  logger.request?.({
    reqId: `line-${i}`,
    method: 'GET',
    route: '/file/{id}',
    path: `/file/${i}`,
    status: 200,
    bytes: 1,
    received: 0,
    durationMs: 0.1,
  });
}
if (how === 'exit') process.exit(3);
if (how === 'throw') throw new Error('a fatal bug');
