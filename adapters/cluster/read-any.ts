import { isStoreError, type Key, StoreError } from '../../storage/index.ts';
import { nodesById, replicaState, type ViewCache } from './cluster-view.ts';
import type { Directory, NodeRow, VolumeRow } from './directory/types.ts';
import { NodeUnreachable } from './replica-api-client.ts';
import type { Suspects } from './suspects.ts';

export interface ReadContext {
  directory: Directory;
  views: ViewCache;
  suspects: Suspects;
  onCorrupt: (node: string, volume: number, key: Key) => void;
}

/** Where a key lives now: its volume, and the nodes that may serve it (best first). */
export interface KeyHolders {
  volume: VolumeRow;
  nodes: ReadonlyMap<string, NodeRow>;
  /** Replicas' nodes that owe no delete of this key: `ok` on up nodes first, shuffled. */
  order: string[];
}

/**
 * The replicas that may serve `key`: of its lease's volume, minus every node that still owes a
 * delete of it (read through from the Directory on each call; the view only orders them).
 */
export async function holdersOf(context: ReadContext, key: Key): Promise<KeyHolders> {
  const place = await context.directory.placeKey(key);
  if (!place.lease) throw notFound(key);
  const volumeId = place.lease.volume;
  let view = await context.views.current();
  let volume = view.volumes.find((v) => v.id === volumeId);
  if (!volume) {
    // A volume made since the view was read.
    view = await context.views.fresh();
    volume = view.volumes.find((v) => v.id === volumeId);
  }
  if (!volume) throw notFound(key);
  const nodes = nodesById(view);
  context.suspects.forgiveRestarted(view.nodes);
  const owed = new Set(place.owedBy);
  const candidates = volume.replicas.filter((replica) => !owed.has(replica.node));
  // Every replica owes a delete of it: the key is deleted (its delete is journaled, and each
  // node applies it on its next tick), not out of reach. A gateway killed between journaling a
  // delete and sending it leaves exactly this.
  if (candidates.length === 0 && volume.replicas.length > 0) throw notFound(key);
  const good: string[] = [];
  const rest: string[] = [];
  for (const replica of shuffled(candidates)) {
    const healthy = replicaState(replica, nodes) === 'ok' && !context.suspects.has(replica.node);
    (healthy ? good : rest).push(replica.node);
  }
  return { volume, nodes, order: [...good, ...rest] };
}

/**
 * Runs `attempt` on the replicas in order until one answers: a refused or reset connection, a
 * timeout, a 5xx or `corrupt` moves on to the next, and so does a 404 (a replica may have lost
 * a needle to disk damage); `not_found` only when every replica reached said so, `unavailable`
 * when none could be reached. Refusals of the request itself (a bad range) pass through.
 */
export async function readAny<T>(
  context: ReadContext,
  key: Key,
  attempt: (nodeUrl: string, volume: number) => Promise<T>,
): Promise<T> {
  const { volume, nodes, order } = await holdersOf(context, key);
  let missing = false;
  let lastFailure: unknown;
  for (const id of order) {
    const node = nodes.get(id);
    if (!node) continue;
    try {
      const result = await attempt(node.url, volume.id);
      context.suspects.clear(id);
      return result;
    } catch (err) {
      if (isStoreError(err, 'not_found')) {
        missing = true;
        continue;
      }
      if (isStoreError(err, 'corrupt')) {
        context.onCorrupt(id, volume.id, key);
      } else if (err instanceof NodeUnreachable || isStoreError(err)) {
        if (isStoreError(err) && ['bad_request', 'bad_key'].includes(err.code)) throw err;
        context.suspects.add(id, node.registeredAt);
      } else {
        throw err;
      }
      lastFailure = err;
    }
  }
  if (missing) throw notFound(key);
  throw new StoreError(
    'unavailable',
    `no replica of logical volume ${volume.id} could serve key ${key}`,
    lastFailure === undefined ? undefined : { cause: lastFailure },
  );
}

function notFound(key: Key): StoreError {
  return new StoreError('not_found', `no file under key ${key}`);
}

function shuffled<T>(items: readonly T[]): T[] {
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}
