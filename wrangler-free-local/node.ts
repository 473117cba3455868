import { mkdir, statfs } from 'node:fs/promises';
import path from 'node:path';
import { openDirectory } from '../adapters/cluster/directory/index.ts';
import { NodeAgent } from '../adapters/cluster/node-agent.ts';
import { loadOrCreateNodeId } from '../adapters/cluster/node-id.ts';
import { ReplicaSet } from '../adapters/cluster/replica-set.ts';
import { openVolumeStore } from '../adapters/volume/index.ts';
import { lockDirectory } from '../adapters/volume/lock.ts';
import { createReplicaApp } from '../handlers/index.ts';
import { optionsOf } from './commands.ts';
import { errorLog, UserError } from './errors.ts';
import { componentLog, createLogger } from './logger.ts';
import { type Config, loggableConfig } from './options.ts';
import { runServer } from './run-server.ts';
import { listenOn } from './serve.ts';

/** What `haystack node` takes (commands.ts); `directory` and `clusterToken` are required there. */
export type NodeConfig = Pick<
  Config,
  | 'data'
  | 'port'
  | 'host'
  | 'advertise'
  | 'directory'
  | 'clusterToken'
  | 'nodeTimeout'
  | 'maxBody'
  | 'fsync'
  | 'volumeSize'
  | 'compactAt'
  | 'cacheSize'
  | 'maxConnections'
  | 'maxPipeline'
  | 'headersTimeout'
  | 'idleTimeout'
  | 'logLevel'
>;

/**
 * `haystack node`: a store node. Its replicas (one volume store per logical volume, under
 * `DIR/volumes/`), its id (`DIR/node-id`), the internal replica API for gateways only, and its
 * life in the Directory: registered, heartbeating, applying the deletes it owes.
 */
export async function runNode(config: NodeConfig): Promise<void> {
  const { directory: url, clusterToken: token } = config;
  if (url === undefined || token === undefined) {
    throw new UserError('node needs --directory and --cluster-token');
  }
  const dir = path.resolve(config.data);
  const logger = createLogger({ level: config.logLevel }).child({ role: 'node' });
  logger.debug({ options: loggableConfig(config, optionsOf('node')) }, 'options in effect');
  await runServer({
    logger,
    async start() {
      await mkdir(dir, { recursive: true });
      // One node per data directory; each replica also locks its own folder.
      const lock = await lockDirectory(dir);
      const undo: (() => Promise<void>)[] = [() => lock.release()];
      const undoAll = async () => {
        for (const step of undo.reverse()) await step().catch(() => {});
      };
      try {
        const id = await loadOrCreateNodeId(dir);
        const directory = await openDirectory(url);
        undo.push(() => directory.close());
        const replicas = new ReplicaSet({
          dir,
          open: (replicaDir) =>
            openVolumeStore({
              dir: replicaDir,
              fsync: config.fsync,
              volumeSize: config.volumeSize,
              cacheSize: config.cacheSize,
              ...(config.compactAt === undefined ? {} : { compactAt: config.compactAt }),
              log: componentLog(logger, 'store'),
            }),
          mayCreate: (volume) => directory.holdsReplica(id, volume),
        });
        undo.push(() => replicas.close());
        await replicas.openAll();
        const app = createReplicaApp({
          replicas,
          token,
          node: id,
          maxBody: config.maxBody,
          onUnexpectedError: (err: unknown) =>
            logger.error(...errorLog(err, 'error while answering a request')),
        });
        const listening = await listenOn(app.fetch, config, logger);
        undo.push(async () => {
          await listening.drain();
        });
        const advertised = config.advertise ?? listening.url;
        const agent = new NodeAgent({
          id,
          url: advertised,
          directory,
          replicas: {
            open: (volume) => replicas.replica(volume, { create: true }),
            volumes: () => replicas.volumes(),
          },
          nodeTimeoutMs: config.nodeTimeout,
          bytesFree: async () => {
            const fs = await statfs(dir);
            return fs.bavail * fs.bsize;
          },
          log: componentLog(logger, 'agent'),
        });
        await agent.start();
        const { url: listeningUrl } = listening;
        return {
          listening: {
            line: `haystack listening on ${listeningUrl} (data ${dir})`,
            fields: { url: listeningUrl, dataDir: dir, node: id, advertised },
          },
          async stop() {
            await agent.stop();
            const result = await listening.drain();
            await replicas.close();
            await directory.close();
            await lock.release();
            return result;
          },
        };
      } catch (err) {
        await undoAll();
        throw err;
      }
    },
    stoppedLine: 'haystack stopped (data synced)',
  });
}
