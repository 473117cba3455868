import { ClusterStore } from '../adapters/cluster/cluster-store.ts';
import { openDirectory } from '../adapters/cluster/directory/index.ts';
import { createReplicaClient } from '../adapters/cluster/replica-client.ts';
import { createApp } from '../handlers/index.ts';
import { describeError, UserError } from './errors.ts';
import type { Config } from './options.ts';
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
>;

const log = (line: string) => process.stderr.write(`haystack gateway: ${line}\n`);

/**
 * `haystack gateway`: the public API of SPEC.md for a whole cluster, the same app as `start`
 * over the cluster store. It keeps no state: any number run side by side.
 */
export async function runGateway(config: GatewayConfig): Promise<void> {
  const { directory: url, clusterToken: token } = config;
  if (url === undefined || token === undefined) {
    throw new UserError('gateway needs --directory and --cluster-token');
  }
  await runServer({
    log,
    async start() {
      const directory = await openDirectory(url);
      const store = await ClusterStore.open({
        directory,
        replicas: createReplicaClient({ token }),
        replicaCount: config.replicas,
        nodeTimeoutMs: config.nodeTimeout,
        log,
      }).catch(async (err: unknown) => {
        await directory.close().catch(() => {});
        throw err;
      });
      const app = createApp({
        store,
        maxBody: config.maxBody,
        requireCookie: config.requireCookie,
        inlineActive: config.inlineActive,
        onUnexpectedError: (err: unknown) =>
          log(`error while answering a request: ${describeError(err)}`),
      });
      const listening = await listenOn(app.fetch, config, log).catch(async (err: unknown) => {
        await store.close().catch(() => {});
        throw err;
      });
      log(`R = ${config.replicas}, node timeout ${config.nodeTimeout / 1000} s`);
      return {
        listeningLine: `haystack listening on ${listening.url} (gateway)`,
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
