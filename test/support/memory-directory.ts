import type {
  ClusterView,
  Directory,
  KeyLease,
  KeyPlace,
  NodeId,
  NodeRow,
  OwedDelete,
  ReadOnlyReason,
  ReplicaFigures,
  ReplicaRow,
  VolumeId,
  VolumeRow,
} from '../../adapters/cluster/directory/types.ts';
import type { Key } from '../../storage/index.ts';

interface StoredNode {
  id: NodeId;
  url: string;
  bytesFree: number;
  lastHeartbeat: number;
  registeredAt: number;
}

interface StoredVolume {
  id: VolumeId;
  state: 'writable' | 'read-only';
  reasonCode: ReadOnlyReason | null;
  reason: string | null;
}

interface StoredLease extends KeyLease {
  gateway: string;
}

const ZERO_FIGURES: ReplicaFigures = {
  bytes: 0,
  liveNeedles: 0,
  deletedNeedles: 0,
  liveBytes: 0,
  garbageBytes: 0,
};

/**
 * The Directory held in Maps, for unit tests only: each call does what the PostgreSQL one does
 * (docs/CLUSTER-DESIGN.md), one call at a time, with a clock the test moves (`now`, in ms).
 * `calls` records every call's name; `before` runs ahead of each call: a throw there makes the
 * call reject and change nothing (as an unreachable database would), a promise holds it.
 */
export class MemoryDirectory implements Directory {
  /** The database's clock, in milliseconds. */
  now = 0;
  /** Every call, by name, in order. */
  readonly calls: (keyof Directory)[] = [];
  /** Runs ahead of every call (after it is recorded): throw to fail it, answer a promise to hold it. */
  before: ((call: keyof Directory) => void | Promise<void>) | undefined;

  readonly #nodes = new Map<NodeId, StoredNode>();
  readonly #volumes = new Map<VolumeId, StoredVolume>();
  /** Replicas by volume, in the order they were placed. */
  readonly #replicas = new Map<VolumeId, ReplicaRow[]>();
  readonly #leases: StoredLease[] = [];
  readonly #owed = new Map<number, OwedDelete>();
  #nextKey = 1;
  #nextVolume = 1;
  #nextOwed = 1;
  #closed = false;
  readonly #keyLocks = new Map<number, Promise<void>>();

  // --- nodes --------------------------------------------------------------------------------

  async registerNode(id: NodeId, url: string, bytesFree: number): Promise<VolumeId[]> {
    await this.#enter('registerNode');
    this.#nodes.set(id, { id, url, bytesFree, lastHeartbeat: this.now, registeredAt: this.now });
    const volumes: VolumeId[] = [];
    for (const row of this.#replicasOf(id)) {
      row.state = 'catching-up';
      volumes.push(row.volume);
    }
    return volumes.sort((a, b) => a - b);
  }

  async heartbeat(
    id: NodeId,
    bytesFree: number,
    figures: ReadonlyMap<VolumeId, ReplicaFigures>,
    nodeTimeoutMs: number,
  ): Promise<ReplicaRow[]> {
    await this.#enter('heartbeat');
    const node = this.#nodes.get(id);
    if (!node) throw new Error(`no node ${id} is registered`);
    const wasDown = this.now - node.lastHeartbeat > nodeTimeoutMs;
    node.bytesFree = bytesFree;
    node.lastHeartbeat = this.now;
    const rows = this.#replicasOf(id);
    for (const row of rows) {
      if (wasDown) row.state = 'catching-up';
      const reported = figures.get(row.volume);
      if (reported) Object.assign(row, pickFigures(reported));
    }
    return rows.map((row) => ({ ...row }));
  }

  async holdsReplica(node: NodeId, volume: VolumeId): Promise<boolean> {
    await this.#enter('holdsReplica');
    return this.#replica(volume, node) !== undefined;
  }

  // --- the view -----------------------------------------------------------------------------

  async view(nodeTimeoutMs: number): Promise<ClusterView> {
    await this.#enter('view');
    const nodes: NodeRow[] = [...this.#nodes.values()].map((node) => ({
      id: node.id,
      url: node.url,
      up: this.#up(node, nodeTimeoutMs),
      lastHeartbeat: new Date(node.lastHeartbeat),
      registeredAt: new Date(node.registeredAt),
      bytesFree: node.bytesFree,
    }));
    const volumes = [...this.#volumes.values()].map((volume) => this.#volumeRow(volume));
    return { nodes, volumes, nextKey: this.#nextKey };
  }

  // --- logical volumes ----------------------------------------------------------------------

  async createVolume(replicas: number, nodeTimeoutMs: number): Promise<VolumeRow | undefined> {
    await this.#enter('createVolume');
    for (const volume of this.#volumes.values()) {
      if (volume.state !== 'writable') continue;
      const rows = this.#replicas.get(volume.id) ?? [];
      const healthy = rows.every((row) => {
        const node = this.#nodes.get(row.node);
        return row.state === 'ok' && node !== undefined && this.#up(node, nodeTimeoutMs);
      });
      if (healthy) return this.#volumeRow(volume);
    }
    const up = [...this.#nodes.values()]
      .filter((node) => this.#up(node, nodeTimeoutMs))
      .sort((a, b) => b.bytesFree - a.bytesFree);
    if (up.length < replicas) return undefined;
    return this.addVolume(up.slice(0, replicas).map((node) => node.id));
  }

  async markVolumeReadOnly(volume: VolumeId, code: ReadOnlyReason, reason: string): Promise<void> {
    await this.#enter('markVolumeReadOnly');
    const stored = this.#volumes.get(volume);
    if (!stored) return;
    if (stored.state === 'read-only' && stored.reasonCode === 'full') return;
    Object.assign(stored, { state: 'read-only', reasonCode: code, reason });
  }

  async markReplicaCatchingUp(volume: VolumeId, node: NodeId): Promise<void> {
    await this.#enter('markReplicaCatchingUp');
    const row = this.#replica(volume, node);
    if (row) row.state = 'catching-up';
  }

  async finishCatchUp(volume: VolumeId, node: NodeId): Promise<boolean> {
    await this.#enter('finishCatchUp');
    const row = this.#replica(volume, node);
    if (!row) return false;
    const owes = [...this.#owed.values()].some((d) => d.node === node && d.volume === volume);
    if (row.state === 'catching-up' && !owes) row.state = 'ok';
    const stored = this.#volumes.get(volume);
    const rows = this.#replicas.get(volume) ?? [];
    if (
      stored?.state === 'read-only' &&
      stored.reasonCode === 'replica-failed' &&
      rows.every((r) => r.state === 'ok')
    ) {
      Object.assign(stored, { state: 'writable', reasonCode: null, reason: null });
    }
    return row.state === 'ok';
  }

  // --- keys ---------------------------------------------------------------------------------

  async leaseKeys(volume: VolumeId, count: number, gateway: string): Promise<KeyLease> {
    await this.#enter('leaseKeys');
    const lease = { first: this.#nextKey, last: this.#nextKey + count - 1, volume, gateway };
    this.#nextKey += count;
    this.#leases.push(lease);
    return { first: lease.first, last: lease.last, volume };
  }

  async placeKey(key: Key): Promise<KeyPlace> {
    await this.#enter('placeKey');
    const found = this.#leases.find((lease) => lease.first <= key && key <= lease.last);
    const owedBy = new Set<NodeId>();
    for (const d of this.#owed.values()) if (d.key === key) owedBy.add(d.node);
    return {
      lease: found && { first: found.first, last: found.last, volume: found.volume },
      owedBy: [...owedBy],
    };
  }

  // --- the delete journal -------------------------------------------------------------------

  async oweDeletes(
    volume: VolumeId,
    key: Key,
    nodes: readonly NodeId[],
    cookie: number | null,
  ): Promise<number[]> {
    await this.#enter('oweDeletes');
    return nodes.map((node) => {
      const id = this.#nextOwed++;
      this.#owed.set(id, { id, node, volume, key, cookie });
      return id;
    });
  }

  async settleDeletes(ids: readonly number[]): Promise<void> {
    await this.#enter('settleDeletes');
    for (const id of ids) this.#owed.delete(id);
  }

  async deletesOwedBy(node: NodeId, limit: number): Promise<OwedDelete[]> {
    await this.#enter('deletesOwedBy');
    return [...this.#owed.values()]
      .filter((d) => d.node === node)
      .sort((a, b) => a.id - b.id)
      .slice(0, limit)
      .map((d) => ({ ...d }));
  }

  /** One at a time per key, as PostgreSQL's advisory lock does it. */
  async withKeyLock<T>(key: number, work: () => Promise<T>): Promise<T> {
    const before = this.#keyLocks.get(key) ?? Promise.resolve();
    let release = () => {};
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    this.#keyLocks.set(key, mine);
    await before;
    try {
      return await work();
    } finally {
      release();
      if (this.#keyLocks.get(key) === mine) this.#keyLocks.delete(key);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
  }

  // --- for tests ----------------------------------------------------------------------------

  /** A writable volume with a replica (state `ok`) on each of `nodes`, as createVolume makes. */
  addVolume(nodes: readonly NodeId[]): VolumeRow {
    const volume: StoredVolume = {
      id: this.#nextVolume++,
      state: 'writable',
      reasonCode: null,
      reason: null,
    };
    this.#volumes.set(volume.id, volume);
    this.#replicas.set(
      volume.id,
      nodes.map((node) => ({ volume: volume.id, node, state: 'ok', ...ZERO_FIGURES })),
    );
    return this.#volumeRow(volume);
  }

  /** A replica's row as stored now. */
  replicaRow(volume: VolumeId, node: NodeId): ReplicaRow | undefined {
    const row = this.#replica(volume, node);
    return row && { ...row };
  }

  /** A volume's row as stored now. */
  volumeRow(volume: VolumeId): VolumeRow | undefined {
    const stored = this.#volumes.get(volume);
    return stored && this.#volumeRow(stored);
  }

  /** Every delete still owed, oldest first. */
  owedDeletes(): OwedDelete[] {
    return [...this.#owed.values()].sort((a, b) => a.id - b.id).map((d) => ({ ...d }));
  }

  // --- inside -------------------------------------------------------------------------------

  async #enter(call: keyof Directory): Promise<void> {
    this.calls.push(call);
    if (this.#closed) throw new Error('the directory is closed');
    await this.before?.(call);
  }

  #up(node: StoredNode, nodeTimeoutMs: number): boolean {
    return this.now - node.lastHeartbeat <= nodeTimeoutMs;
  }

  #replica(volume: VolumeId, node: NodeId): ReplicaRow | undefined {
    return this.#replicas.get(volume)?.find((row) => row.node === node);
  }

  #replicasOf(node: NodeId): ReplicaRow[] {
    const rows: ReplicaRow[] = [];
    for (const [, list] of [...this.#replicas].sort(([a], [b]) => a - b)) {
      const row = list.find((r) => r.node === node);
      if (row) rows.push(row);
    }
    return rows;
  }

  #volumeRow(volume: StoredVolume): VolumeRow {
    return {
      ...volume,
      replicas: (this.#replicas.get(volume.id) ?? []).map((row) => ({ ...row })),
    };
  }
}

function pickFigures(figures: ReplicaFigures): ReplicaFigures {
  const { bytes, liveNeedles, deletedNeedles, liveBytes, garbageBytes } = figures;
  return { bytes, liveNeedles, deletedNeedles, liveBytes, garbageBytes };
}
