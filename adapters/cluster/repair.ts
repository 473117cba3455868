import { Readable } from 'node:stream';
import type { ReadableStream as NodeWebStream } from 'node:stream/web';
import { isStoreError, type Key } from '../../storage/index.ts';
import { nodesById, replicaState, type ViewCache } from './cluster-view.ts';
import type { Directory, VolumeId } from './directory/types.ts';
import type { ReplicaApi } from './replica-api-client.ts';

export interface RepairContext {
  directory: Directory;
  api: ReplicaApi;
  views: ViewCache;
  log: (line: string) => void;
}

/**
 * Rewrites a file on a replica that answered `corrupt` for it, from a replica that serves it
 * right: under the key's cluster-wide lock (so no delete or replace of the key runs meanwhile),
 * the bad copy is deleted on that replica and the good bytes stored again under the same key and
 * cookie, streamed from the good replica. Skipped when the key's delete is owed to the bad
 * replica, or no other replica serves it. Answers whether it was repaired.
 *
 * Between the two steps the bad replica answers 404 for the key, which reads fail over.
 */
export async function repairReplica(
  context: RepairContext,
  volumeId: VolumeId,
  key: Key,
  badNode: string,
): Promise<boolean> {
  const { directory, api, views, log } = context;
  return directory.withKeyLock(key, async () => {
    const place = await directory.placeKey(key);
    if (place.owedBy.includes(badNode)) return false;
    const view = await views.current();
    const volume = view.volumes.find((v) => v.id === volumeId);
    const nodes = nodesById(view);
    const bad = nodes.get(badNode);
    if (!volume || !bad) return false;
    const sources = volume.replicas.filter(
      (replica) =>
        replica.node !== badNode &&
        !place.owedBy.includes(replica.node) &&
        replicaState(replica, nodes) === 'ok',
    );
    for (const source of sources) {
      const url = nodes.get(source.node)?.url;
      if (!url) continue;
      let read: Awaited<ReturnType<ReplicaApi['get']>>;
      try {
        read = await api.get(url, volumeId, key, { bufferUpTo: 0 });
      } catch {
        continue;
      }
      const { info, body } = read;
      const open = () =>
        body instanceof Uint8Array
          ? Readable.from([body])
          : Readable.fromWeb(body as NodeWebStream<Uint8Array>);
      try {
        await api.delete(bad.url, volumeId, key).catch((err: unknown) => {
          if (!isStoreError(err, 'not_found')) throw err;
        });
        await api.put(bad.url, volumeId, key, info.cookie, {
          size: info.size,
          contentType: info.contentType,
          open,
        });
        log(`repaired key ${key} of logical volume ${volumeId} on node ${badNode}`);
        return true;
      } catch (err) {
        if (!(body instanceof Uint8Array)) await body.cancel().catch(() => {});
        log(
          `could not repair key ${key} of logical volume ${volumeId} on node ${badNode}: ${
            err instanceof Error ? err.message : String(err)
          }`,
        );
        return false;
      }
    }
    return false;
  });
}
