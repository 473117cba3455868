import type { ReplicaApi } from '../../../adapters/cluster/replica-api-client.ts';

/** The calls on a replica's files, which a test's fake nodes answer as the test needs. */
export type FileCalls = Pick<ReplicaApi, 'put' | 'get' | 'head' | 'delete'>;

/**
 * A `ReplicaApi` of fake nodes in this process: `files` answers the calls on files; the rest
 * answers as nodes that list no keys, have nothing to sync and report no replicas.
 */
export function replicaApiOf(files: FileCalls): ReplicaApi {
  return {
    ...files,
    async listKeys() {
      return { keys: [], next: null };
    },
    async sync() {
      return { volumes: 0, durationMs: 0 };
    },
    async status(node) {
      return { node, replicas: [] };
    },
    async close() {},
  };
}
