import { ClusterStore } from '../adapters/cluster/cluster-store.ts';
import { openDirectory } from '../adapters/cluster/directory/index.ts';
import { createReplicaClient } from '../adapters/cluster/replica-client.ts';
import { createApp } from '../handlers/index.ts';
import { optionsOf } from './commands.ts';
import { UserError } from './errors.ts';
import { componentLog, createLogger } from './logger.ts';
import { type Config, loggableConfig } from './options.ts';
import { runServer } from './run-server.ts';
import { listenOn } from './serve.ts';

/** What `haystack gateway` takes (commands.ts); `directory` and `clusterToken` are required there. */
export type GatewayConfig = Pick<
  Config,
  | 'port'
  | 'host'
  | 'directory'
  | 'clusterToken'
  | 'replicas'
  | 'nodeTimeout'
  | 'maxBody'
  | 'requireCookie'
  | 'inlineActive'
  | 'maxConnections'
  | 'maxPipeline'
  | 'headersTimeout'
  | 'idleTimeout'
  | 'logLevel'
>;

/**
 * `haystack gateway`: the public API of SPEC.md for a whole cluster, the same app as `start`
 * over the cluster store. It keeps no state: any number run side by side.
 */
export async function runGateway(config: GatewayConfig): Promise<void> {
  const { directory: url, clusterToken: token } = config;
  if (url === undefined || token === undefined) {
    throw new UserError('gateway needs --directory and --cluster-token');
  }
  const logger = createLogger({ level: config.logLevel }).child({ role: 'gateway' });
  logger.debug({ options: loggableConfig(config, optionsOf('gateway')) }, 'options in effect');
  await runServer({
    logger,
    async start() {
      const directory = await openDirectory(url);
      const store = await ClusterStore.open({
        directory,
        replicas: createReplicaClient({ token }),
        replicaCount: config.replicas,
        nodeTimeoutMs: config.nodeTimeout,
        log: componentLog(logger, 'cluster'),
      }).catch(async (err: unknown) => {
        await directory.close().catch(() => {});
        throw err;
      });
      const app = createApp({
        store,
        maxBody: config.maxBody,
        requireCookie: config.requireCookie,
        inlineActive: config.inlineActive,
        // One line per request, at error with its cause for a 5xx.
        logger,
      });
      const listening = await listenOn(app.fetch, config, logger).catch(async (err: unknown) => {
        await store.close().catch(() => {});
        throw err;
      });
      logger.info(
        { replicas: config.replicas, nodeTimeoutMs: config.nodeTimeout },
        `R = ${config.replicas}, node timeout ${config.nodeTimeout / 1000} s`,
      );
      const { url: listeningUrl } = listening;
      return {
        listening: {
          line: `haystack listening on ${listeningUrl} (gateway)`,
          fields: { url: listeningUrl },
        },
        async stop() {
          const result = await listening.drain();
          await store.close();
          return result;
        },
      };
    },
    stoppedLine: 'haystack stopped (gateway)',
  });
}
