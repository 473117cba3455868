import type { Key } from '../../../storage/index.ts';

/** A store node's id: a UUID it made on its first start and keeps in its data directory. */
export type NodeId = string;

/** A logical volume's id (1, 2, ...), the `volume` of a file in a cluster. */
export type VolumeId = number;

export interface NodeRow {
  id: NodeId;
  /** Its `--advertise` URL, without a trailing slash. */
  url: string;
  /** Heartbeat within the caller's node timeout, by the database's clock. */
  up: boolean;
  lastHeartbeat: Date;
  /** When the node last registered (its last start), by the database's clock. */
  registeredAt: Date;
  bytesFree: number;
}

/** What a replica last reported of itself (its store's status), or zeros before it did. */
export interface ReplicaFigures {
  bytes: number;
  liveNeedles: number;
  deletedNeedles: number;
  liveBytes: number;
  garbageBytes: number;
}

/** Stored replica states; `down` is never stored, it is a replica whose node is down. */
export type StoredReplicaState = 'ok' | 'catching-up';

export interface ReplicaRow extends ReplicaFigures {
  volume: VolumeId;
  node: NodeId;
  state: StoredReplicaState;
}

/** Why a logical volume takes no writes: a replica failed a write (undone once all are ok), or full. */
export type ReadOnlyReason = 'replica-failed' | 'full';

export interface VolumeRow {
  id: VolumeId;
  state: 'writable' | 'read-only';
  reasonCode: ReadOnlyReason | null;
  reason: string | null;
  replicas: ReplicaRow[];
}

/** The whole cluster as one read sees it: what a gateway caches and `GET /status` shows. */
export interface ClusterView {
  nodes: NodeRow[];
  volumes: VolumeRow[];
  /** The first key no lease holds yet. */
  nextKey: Key;
}

/** Keys `first..last` (inclusive), handed out by one gateway, all stored in `volume`. */
export interface KeyLease {
  first: Key;
  last: Key;
  volume: VolumeId;
}

/** A delete a replica has not confirmed yet. */
export interface OwedDelete {
  id: number;
  node: NodeId;
  volume: VolumeId;
  key: Key;
  /** The cookie the client named, checked when the delete is applied; null: none named. */
  cookie: number | null;
}

/** What a read of one key needs from the Directory, in one round trip. */
export interface KeyPlace {
  /** The lease holding the key; undefined: no key this high was ever leased. */
  lease: KeyLease | undefined;
  /** Nodes that still owe a delete of this key: they must not serve it. */
  owedBy: NodeId[];
}

/**
 * Every query the cluster makes, typed. Times are the database's; `nodeTimeoutMs` is the
 * caller's `--node-timeout`. Implemented in directory.ts over the `Sql` port.
 */
export interface Directory {
  // --- nodes --------------------------------------------------------------------------------
  /**
   * A node starts: its row is made or its URL updated, its heartbeat set, and every replica it
   * holds marked `catching-up`. Answers the volumes it holds replicas of.
   */
  registerNode(id: NodeId, url: string, bytesFree: number): Promise<VolumeId[]>;
  /**
   * A heartbeat with the node's free bytes and its replicas' figures. When the previous heartbeat
   * is older than `nodeTimeoutMs` (gateways took the node for down), its replicas are marked
   * `catching-up` in the same transaction. Answers its replicas, with their stored states.
   */
  heartbeat(
    id: NodeId,
    bytesFree: number,
    figures: ReadonlyMap<VolumeId, ReplicaFigures>,
    nodeTimeoutMs: number,
  ): Promise<ReplicaRow[]>;
  /** Whether the Directory names `node` a replica of `volume` (a node creates the folder then). */
  holdsReplica(node: NodeId, volume: VolumeId): Promise<boolean>;

  // --- the view -----------------------------------------------------------------------------
  view(nodeTimeoutMs: number): Promise<ClusterView>;

  // --- logical volumes ----------------------------------------------------------------------
  /**
   * A writable logical volume on `replicas` up nodes with the most free bytes, created in a
   * transaction under an advisory lock, unless one that is writable (stored writable, every
   * replica `ok` on an up node) exists by then: that one is answered. Undefined when fewer than
   * `replicas` nodes are up. Nodes in `avoid` (a gateway saw them fail just now, before the
   * Directory counts them down) are neither chosen nor accepted in the writable one answered.
   */
  createVolume(
    replicas: number,
    nodeTimeoutMs: number,
    avoid?: readonly NodeId[],
  ): Promise<VolumeRow | undefined>;
  /** Marks a volume read-only with a reason (a no-op for one already read-only for `full`). */
  markVolumeReadOnly(volume: VolumeId, code: ReadOnlyReason, reason: string): Promise<void>;
  /** Marks one replica `catching-up`: it failed a write or a delete. */
  markReplicaCatchingUp(volume: VolumeId, node: NodeId): Promise<void>;
  /**
   * Marks the replica `ok` if it is `catching-up` and nothing is owed to it for that volume (one
   * statement, so a delete owed meanwhile keeps it catching up); then a volume read-only for
   * `replica-failed` whose replicas are all `ok` turns writable. Answers whether it is `ok` now.
   */
  finishCatchUp(volume: VolumeId, node: NodeId): Promise<boolean>;

  // --- keys ---------------------------------------------------------------------------------
  /** Leases `count` new keys for `volume`; `gateway` is recorded for operators. */
  leaseKeys(volume: VolumeId, count: number, gateway: string): Promise<KeyLease>;
  /** The lease of a key and the nodes that owe a delete of it: one round trip. */
  placeKey(key: Key): Promise<KeyPlace>;

  // --- the delete journal -------------------------------------------------------------------
  /** One row per node; answers the rows' ids in the same order. */
  oweDeletes(
    volume: VolumeId,
    key: Key,
    nodes: readonly NodeId[],
    cookie: number | null,
  ): Promise<number[]>;
  /** Removes rows (their deletes were applied). */
  settleDeletes(ids: readonly number[]): Promise<void>;
  /** Up to `limit` deletes owed by `node`, oldest first. */
  deletesOwedBy(node: NodeId, limit: number): Promise<OwedDelete[]>;

  // --- one key at a time ----------------------------------------------------------------------
  /**
   * Runs `work` holding the cluster-wide lock of `key` (a PostgreSQL advisory lock, held on a
   * connection of its own, so a gateway that dies lets go of it with its connection): deletes
   * and replaces of one key, from any gateway, run one after the other.
   */
  withKeyLock<T>(key: Key, work: () => Promise<T>): Promise<T>;

  close(): Promise<void>;
}
