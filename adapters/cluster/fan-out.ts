import { type FileInfo, isStoreError, type Key, type StoreError } from '../../storage/index.ts';
import type { NodeRow, VolumeRow } from './directory/types.ts';
import { NodeUnreachable, type ReplicaApi, type ReplicaBody } from './replica-api-client.ts';

/**
 * A failure of the replica rather than of the request: the volume must stop taking writes, the
 * node is suspect. A refusal of the request itself (too large for the node, a bad request) is
 * the client's and changes nothing of the cluster.
 */
export function isReplicaFailure(err: unknown): boolean {
  if (err instanceof NodeUnreachable) return true;
  if (!isStoreError(err)) return true; // a bug or a surprise: do not trust that replica
  return !['bad_request', 'too_large', 'bad_key'].includes(err.code);
}

export type WriteOutcome =
  | { ok: true; info: FileInfo }
  | { ok: false; failed: { node: string; error: unknown }[]; clientError?: StoreError };

/** Sends the file to every replica of `volume` at once; acknowledged only if every one has it. */
export async function writeEverywhere(
  api: ReplicaApi,
  volume: VolumeRow,
  nodes: ReadonlyMap<string, NodeRow>,
  key: Key,
  cookie: number,
  body: ReplicaBody,
): Promise<WriteOutcome> {
  const results = await Promise.allSettled(
    volume.replicas.map((replica) => {
      const node = nodes.get(replica.node);
      if (!node) {
        return Promise.reject(new NodeUnreachable(replica.node, 'the Directory has no such node'));
      }
      return api.put(node.url, volume.id, key, cookie, body);
    }),
  );
  const failed: { node: string; error: unknown }[] = [];
  let info: FileInfo | undefined;
  results.forEach((result, i) => {
    const node = volume.replicas[i]?.node as string;
    if (result.status === 'fulfilled') info ??= result.value;
    else failed.push({ node, error: result.reason });
  });
  if (failed.length === 0 && info) {
    return { ok: true, info: { ...info, volume: volume.id, offset: 0 } };
  }
  const clientError = failed
    .map(({ error }) => error)
    .find((error): error is StoreError => isStoreError(error) && !isReplicaFailure(error));
  return clientError ? { ok: false, failed, clientError } : { ok: false, failed };
}

/** The code a write failure reports to the Directory: a full disk is for good, the rest is not. */
export function failureReason(failed: { node: string; error: unknown }[]): {
  code: 'full' | 'replica-failed';
  reason: string;
} {
  const full = failed.find(({ error }) => isStoreError(error, 'no_space'));
  if (full) return { code: 'full', reason: `replica on node ${full.node} is full` };
  const [first] = failed;
  const message = first?.error instanceof Error ? first.error.message : String(first?.error);
  return {
    code: 'replica-failed',
    reason: `a write failed on node ${first?.node}: ${message}`.slice(0, 500),
  };
}
