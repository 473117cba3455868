import type { Config } from './options.ts';

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
>;

/** `haystack node`: being written (issue 14). */
export async function runNode(_config: NodeConfig): Promise<void> {
  throw new Error('haystack node is not built yet');
}
