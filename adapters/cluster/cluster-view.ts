import type { ClusterView, Directory, NodeRow, ReplicaRow, VolumeRow } from './directory/types.ts';

/**
 * A gateway's picture of the cluster (nodes, logical volumes, replicas), read from the Directory
 * at most every `maxAgeMs` and at once after `invalidate()`. It only steers: which volume to
 * write to, which replica to read first. What must be exact per key (which replicas still owe a
 * delete) is read through on every read, never taken from here.
 */
export class ViewCache {
  readonly #directory: Directory;
  readonly #nodeTimeoutMs: number;
  readonly #maxAgeMs: number;
  readonly #now: () => number;
  #view: ClusterView | undefined;
  #readAt = 0;
  #reading: Promise<ClusterView> | undefined;

  constructor(options: {
    directory: Directory;
    nodeTimeoutMs: number;
    maxAgeMs: number;
    now?: () => number;
  }) {
    this.#directory = options.directory;
    this.#nodeTimeoutMs = options.nodeTimeoutMs;
    this.#maxAgeMs = options.maxAgeMs;
    this.#now = options.now ?? Date.now;
  }

  /** The cached view if fresh enough; else one read shared by every caller waiting for it. */
  current(): Promise<ClusterView> {
    if (this.#view && this.#now() - this.#readAt < this.#maxAgeMs) {
      return Promise.resolve(this.#view);
    }
    return this.fresh();
  }

  /** A view read now (or by a read that started after the last `invalidate`). */
  fresh(): Promise<ClusterView> {
    this.#reading ??= this.#directory
      .view(this.#nodeTimeoutMs)
      .then((view) => {
        this.#view = view;
        this.#readAt = this.#now();
        return view;
      })
      .finally(() => {
        this.#reading = undefined;
      });
    return this.#reading;
  }

  /** The next `current()` reads the Directory again. */
  invalidate(): void {
    this.#readAt = Number.NEGATIVE_INFINITY;
  }
}

export function nodesById(view: ClusterView): Map<string, NodeRow> {
  return new Map(view.nodes.map((node) => [node.id, node]));
}

/** A replica as clients see it: `down` when its node is. */
export function replicaState(
  replica: ReplicaRow,
  nodes: ReadonlyMap<string, NodeRow>,
): 'ok' | 'down' | 'catching-up' {
  return nodes.get(replica.node)?.up ? replica.state : 'down';
}

/** Takes writes now: stored writable, with replicas, every one `ok` on an up node. */
export function isWritable(volume: VolumeRow, nodes: ReadonlyMap<string, NodeRow>): boolean {
  return (
    volume.state === 'writable' &&
    volume.replicas.length > 0 &&
    volume.replicas.every((replica) => replicaState(replica, nodes) === 'ok')
  );
}

/** Why a volume takes no writes now, for `GET /status`; null when it does. */
export function readOnlyReason(
  volume: VolumeRow,
  nodes: ReadonlyMap<string, NodeRow>,
): string | null {
  if (volume.state === 'read-only') return volume.reason ?? volume.reasonCode ?? 'read-only';
  if (volume.replicas.length === 0) return 'no replicas';
  const unhealthy = volume.replicas
    .map((replica) => ({ node: replica.node, state: replicaState(replica, nodes) }))
    .filter(({ state }) => state !== 'ok');
  if (unhealthy.length === 0) return null;
  return unhealthy.map(({ node, state }) => `replica on node ${node} is ${state}`).join('; ');
}
