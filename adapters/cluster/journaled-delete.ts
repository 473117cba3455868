import { isStoreError, type Key, StoreError } from '../../storage/index.ts';
import type { Directory, NodeRow, VolumeRow } from './directory/types.ts';
import { NodeUnreachable, type ReplicaApi } from './replica-api-client.ts';

export type DeleteOutcome = 'deleted' | 'not_found';

/**
 * A delete of `key` on every replica of `volume`, journaled: first one owed-delete row per
 * replica in the Directory, then the deletes, then the rows of the replicas that applied it
 * (answered 200 or 404) are removed. A replica that did not is marked `catching-up` and keeps its
 * row until its node applies it. So at every moment the Directory names every replica that may
 * still hold the key, and reads (which read those rows through) never serve it from one of them.
 *
 * `deleted` if a replica had the file; `not_found` if every replica that answered said 404 (none
 * had it, or the cookie was wrong: then nothing is deleted anywhere, as each replica checks it).
 * No replica reachable: `unavailable` (the rows stay: the delete will still be applied).
 */
export async function deleteEverywhere(
  directory: Directory,
  api: ReplicaApi,
  volume: VolumeRow,
  nodes: ReadonlyMap<string, NodeRow>,
  key: Key,
  cookie: number | undefined,
  onReplicaFailure: (node: string, error: unknown) => void,
): Promise<DeleteOutcome> {
  const holders = volume.replicas.map((replica) => replica.node);
  const rows = await directory.oweDeletes(volume.id, key, holders, cookie ?? null);
  const results = await Promise.allSettled(
    holders.map((id) => {
      const node = nodes.get(id);
      if (!node) return Promise.reject(new NodeUnreachable(id, 'the Directory has no such node'));
      return api.delete(node.url, volume.id, key, cookie);
    }),
  );
  const applied: number[] = [];
  const failed: string[] = [];
  let deleted = 0;
  let notFound = 0;
  results.forEach((result, i) => {
    const id = holders[i] as string;
    const row = rows[i] as number;
    if (result.status === 'fulfilled') {
      deleted++;
      applied.push(row);
    } else if (isStoreError(result.reason, 'not_found')) {
      notFound++;
      applied.push(row);
    } else {
      failed.push(id);
      onReplicaFailure(id, result.reason);
    }
  });
  // Before the answer: a replica that may still hold the key is never read from for it (its row
  // stays), and it catches up (its node applies the row) before its volume takes writes again.
  await Promise.all(failed.map((node) => directory.markReplicaCatchingUp(volume.id, node)));
  if (applied.length > 0) await directory.settleDeletes(applied);
  if (deleted > 0) return 'deleted';
  if (notFound > 0) return 'not_found';
  throw new StoreError(
    'unavailable',
    `no replica of logical volume ${volume.id} could be reached; the delete of ${key} is recorded and will be applied`,
  );
}
