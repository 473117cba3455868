import type { Config } from './options.ts';

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

/** `haystack gateway`: being written (issue 14). */
export async function runGateway(_config: GatewayConfig): Promise<void> {
  throw new Error('haystack gateway is not built yet');
}
