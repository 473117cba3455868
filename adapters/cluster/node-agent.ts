import { type BlobStore, isStoreError } from '../../storage/index.ts';
import type {
  Directory,
  NodeId,
  OwedDelete,
  ReplicaFigures,
  StoredReplicaState,
  VolumeId,
} from './directory/types.ts';

/**
 * A node's replicas as the agent needs them: the node command adapts its `ReplicaSet`
 * (`replica(volume)`, `volumes()`) to this.
 */
export interface NodeReplicas {
  /** The replica of logical volume `volume`, opened on first use, the same store after. */
  open(volume: VolumeId): Promise<BlobStore>;
  /** The logical volumes whose replicas are open. */
  volumes(): VolumeId[];
}

/** How the agent waits between ticks: `setTimeout` by default, a hand-driven one in tests. */
export interface AgentTimer {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface NodeAgentOptions {
  id: NodeId;
  /** The node's `--advertise` URL. */
  url: string;
  directory: Directory;
  replicas: NodeReplicas;
  /** `--node-timeout` in milliseconds; the agent heartbeats every quarter of it. */
  nodeTimeoutMs: number;
  /** Free bytes on the node's disk, reported at registration and with each heartbeat. */
  bytesFree: () => Promise<number>;
  log: (line: string) => void;
  timer?: AgentTimer;
  /** A monotonic clock in milliseconds (`performance.now` by default), to keep the beat. */
  now?: () => number;
  /** Owed deletes read per page (1,000 by default). */
  pageSize?: number;
}

/** A timer that does not keep the process alive by itself (the server does). */
const systemTimer: AgentTimer = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    handle.unref();
    return handle;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * A store node's life in the cluster (docs/CLUSTER-DESIGN.md, "A node"): it registers, opens the
 * replicas the Directory names, applies the deletes it owes and marks its replicas `ok` once
 * nothing is owed to them, and heartbeats every node timeout / 4 with its free bytes and its
 * replicas' figures, catching up again whenever the Directory answers a replica `catching-up`.
 *
 * One tick at a time: the next is scheduled when one ends. A tick that fails (the Directory out
 * of reach) is logged once per outage and tried again on the next; the node serves on meanwhile.
 */
export class NodeAgent {
  readonly #id: NodeId;
  readonly #url: string;
  readonly #directory: Directory;
  readonly #replicas: NodeReplicas;
  readonly #nodeTimeoutMs: number;
  readonly #bytesFree: () => Promise<number>;
  readonly #log: (line: string) => void;
  readonly #timer: AgentTimer;
  readonly #now: () => number;
  readonly #pageSize: number;

  /** Each replica's stored state, as the last registration or heartbeat answered it. */
  #states = new Map<VolumeId, StoredReplicaState>();
  /** Volumes whose replica could not be opened, logged once until it opens. */
  readonly #unopenable = new Set<VolumeId>();
  /** Volumes where an owed delete failed (other than not_found), logged once until one applies. */
  readonly #deleteFailing = new Set<VolumeId>();
  /** Volumes whose status failed for the figures, logged once until it answers. */
  readonly #statusFailing = new Set<VolumeId>();
  /** Ticks failed in a row: an outage is logged when it starts and when it ends. */
  #failedTicks = 0;
  #lastHeartbeat = 0;
  #handle: unknown;
  #tick: Promise<void> = Promise.resolve();
  #started = false;
  #stopped = false;

  constructor(options: NodeAgentOptions) {
    if (!Number.isFinite(options.nodeTimeoutMs) || options.nodeTimeoutMs <= 0) {
      throw new RangeError(
        `the node timeout must be a positive number of ms, not ${options.nodeTimeoutMs}`,
      );
    }
    this.#id = options.id;
    this.#url = options.url;
    this.#directory = options.directory;
    this.#replicas = options.replicas;
    this.#nodeTimeoutMs = options.nodeTimeoutMs;
    this.#bytesFree = options.bytesFree;
    this.#log = options.log;
    this.#timer = options.timer ?? systemTimer;
    this.#now = options.now ?? (() => performance.now());
    this.#pageSize = options.pageSize ?? 1000;
  }

  /** Time between heartbeats: a quarter of the node timeout. */
  get intervalMs(): number {
    return Math.max(1, Math.floor(this.#nodeTimeoutMs / 4));
  }

  /** Each replica's stored state as the agent last heard it (for the node's status and tests). */
  get states(): ReadonlyMap<VolumeId, StoredReplicaState> {
    return this.#states;
  }

  /**
   * Registers (which marks this node's replicas `catching-up`) and opens every replica the
   * Directory names; resolves then, so the node may serve. The first catch-up pass runs next, in
   * the background, and the heartbeats after it. Rejects when registration fails.
   */
  async start(): Promise<void> {
    if (this.#started) throw new Error('the node agent was already started');
    this.#started = true;
    let volumes: VolumeId[];
    try {
      volumes = await this.#directory.registerNode(this.#id, this.#url, await this.#bytesFree());
    } catch (err) {
      throw new Error(`node ${this.#id} could not register: ${describeFailure(err)}`);
    }
    this.#lastHeartbeat = this.#now();
    this.#states = new Map(volumes.map((volume) => [volume, 'catching-up']));
    for (const volume of volumes) await this.#open(volume);
    this.#log(
      `registered as node ${this.#id} at ${this.#url}: ${volumes.length} replica(s), catching up`,
    );
    if (this.#stopped) return;
    this.#tick = this.#run(false);
  }

  /** Stops the heartbeats and waits for a tick in progress. The replicas stay open. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#handle !== undefined) {
      this.#timer.clearTimeout(this.#handle);
      this.#handle = undefined;
    }
    await this.#tick;
  }

  /** One tick: a heartbeat (not right after registering), then a catch-up pass; then the next. */
  async #run(heartbeat: boolean): Promise<void> {
    const began = this.#now();
    try {
      if (heartbeat) await this.#heartbeat();
      await this.#catchUp();
      if (this.#failedTicks > 0) {
        this.#log(`the Directory answers again, after ${this.#failedTicks} failed tick(s)`);
        this.#failedTicks = 0;
      }
    } catch (err) {
      if (this.#failedTicks === 0) {
        this.#log(
          `heartbeat failed: ${describeFailure(err)}; serving on, retrying every ${this.intervalMs} ms ` +
            '(logged again once it succeeds)',
        );
      }
      this.#failedTicks++;
    }
    if (this.#stopped) return;
    const wait = Math.max(0, this.intervalMs - (this.#now() - began));
    this.#handle = this.#timer.setTimeout(() => {
      this.#handle = undefined;
      this.#tick = this.#run(true);
    }, wait);
  }

  async #heartbeat(): Promise<void> {
    const figures = new Map<VolumeId, ReplicaFigures>();
    for (const volume of this.#replicas.volumes()) {
      const found = await this.#figures(volume);
      if (found) figures.set(volume, found);
    }
    const rows = await this.#directory.heartbeat(
      this.#id,
      await this.#bytesFree(),
      figures,
      this.#nodeTimeoutMs,
    );
    this.#lastHeartbeat = this.#now();
    const states = new Map<VolumeId, StoredReplicaState>();
    for (const row of rows) {
      if (row.state === 'catching-up' && this.#states.get(row.volume) === 'ok') {
        this.#log(`volume ${row.volume}: the Directory marked this replica catching-up`);
      }
      states.set(row.volume, row.state);
    }
    this.#states = states;
  }

  async #figures(volume: VolumeId): Promise<ReplicaFigures | undefined> {
    try {
      const status = await (await this.#replicas.open(volume)).status();
      this.#statusFailing.delete(volume);
      const { bytes, liveNeedles, deletedNeedles, liveBytes, garbageBytes } = status;
      return { bytes, liveNeedles, deletedNeedles, liveBytes, garbageBytes };
    } catch (err) {
      if (!this.#statusFailing.has(volume)) {
        this.#statusFailing.add(volume);
        this.#log(`volume ${volume}: no figures for the heartbeat: ${describeFailure(err)}`);
      }
      return undefined;
    }
  }

  /**
   * Applies every delete owed by this node, page by page, settling each page's applied ones; then
   * asks the Directory to mark `ok` each `catching-up` replica (refused if a delete came
   * meanwhile: tried again next tick). Rows that cannot be applied now stay for the next tick.
   */
  async #catchUp(): Promise<void> {
    const left = new Set<number>();
    const owing = new Set<VolumeId>();
    for (;;) {
      const rows = await this.#directory.deletesOwedBy(this.#id, this.#pageSize);
      const fresh = rows.filter((row) => !left.has(row.id));
      if (fresh.length === 0) break;
      const applied = await this.#apply(fresh);
      const settled = new Set(applied);
      for (const row of fresh) {
        if (!settled.has(row.id)) {
          left.add(row.id);
          owing.add(row.volume);
        }
      }
      if (applied.length > 0) await this.#directory.settleDeletes(applied);
      // A long catch-up must not make the node look down (and its replicas catching-up again).
      if (this.#now() - this.#lastHeartbeat >= this.intervalMs) await this.#heartbeat();
    }
    for (const [volume, state] of this.#states) {
      if (state !== 'catching-up' || owing.has(volume)) continue;
      if ((await this.#open(volume)) === undefined) continue;
      if (await this.#directory.finishCatchUp(volume, this.#id)) {
        this.#states.set(volume, 'ok');
        this.#log(`volume ${volume}: caught up, replica ok`);
      }
    }
  }

  /** Applies owed deletes on their replicas; answers the ids of those applied. */
  async #apply(rows: readonly OwedDelete[]): Promise<number[]> {
    const byVolume = new Map<VolumeId, OwedDelete[]>();
    for (const row of rows) {
      const list = byVolume.get(row.volume);
      if (list) list.push(row);
      else byVolume.set(row.volume, [row]);
    }
    const applied: number[] = [];
    for (const [volume, list] of byVolume) {
      const store = await this.#open(volume);
      if (store === undefined) continue;
      const failures: unknown[] = [];
      await Promise.all(
        list.map(async (row) => {
          try {
            await store.delete(row.key, row.cookie ?? undefined);
            applied.push(row.id);
          } catch (err) {
            // Not there (never stored, deleted already, or another cookie): nothing to remove.
            if (isStoreError(err, 'not_found')) applied.push(row.id);
            else failures.push(err);
          }
        }),
      );
      if (failures.length === 0) {
        this.#deleteFailing.delete(volume);
      } else if (!this.#deleteFailing.has(volume)) {
        this.#deleteFailing.add(volume);
        this.#log(
          `volume ${volume}: ${failures.length} owed delete(s) not applied (${describeFailure(failures[0])}); ` +
            'they stay owed and are retried each tick',
        );
      }
    }
    return applied;
  }

  /** The replica of `volume`, or undefined (logged once) when it cannot be opened now. */
  async #open(volume: VolumeId): Promise<BlobStore | undefined> {
    try {
      const store = await this.#replicas.open(volume);
      if (this.#unopenable.delete(volume)) this.#log(`volume ${volume}: replica opened`);
      return store;
    } catch (err) {
      if (!this.#unopenable.has(volume)) {
        this.#unopenable.add(volume);
        this.#log(
          `volume ${volume}: replica could not be opened (${describeFailure(err)}); ` +
            'it stays catching-up and its owed deletes wait',
        );
      }
      return undefined;
    }
  }
}

/**
 * A failure in one line, without any URL of the Directory's (its password is in it). An
 * AggregateError (a refused connection on every address of a host) has no message of its own.
 */
export function describeFailure(err: unknown): string {
  let text: string;
  if (err instanceof AggregateError && err.message === '') {
    text = err.errors.map((inner) => describeFailure(inner)).join('; ');
  } else if (err instanceof Error) {
    text = err.message;
  } else {
    text = String(err);
  }
  return text.replace(/\b(postgres(?:ql)?):\/\/\S*/gi, '$1://…').replace(/\s*\n\s*/g, ' ');
}
