import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import {
  type BlobStore,
  type ByteRange,
  type ClusterStatus,
  type FileInfo,
  type FileRead,
  type Key,
  type PutInput,
  type Readiness,
  type StoreCapabilities,
  StoreError,
  type SyncReport,
} from '../../storage/index.ts';
import { checkKey, isCookie, randomCookie } from '../file-info.ts';
import { TelemetryHub } from '../telemetry-hub.ts';
import { clusterStatus, withLiveFigures } from './cluster-status.ts';
import { nodesById, ViewCache } from './cluster-view.ts';
import type { Directory, VolumeId } from './directory/types.ts';
import { guardDirectory } from './directory-guard.ts';
import { failureReason, isReplicaFailure, writeEverywhere } from './fan-out.ts';
import { deleteEverywhere } from './journaled-delete.ts';
import { KeyLeases } from './key-leases.ts';
import { holdersOf, type ReadContext, readAny } from './read-any.ts';
import { repairReplica } from './repair.ts';
import type { ReplicaApi, ReplicaBody } from './replica-api-client.ts';
import { makeSpoolDir } from './spool-dir.ts';
import { Suspects } from './suspects.ts';
import { type HeldBody, holdBody } from './upload-body.ts';

export interface ClusterStoreOptions {
  /** The Directory; the store closes it on `close`. */
  directory: Directory;
  /** The client of the nodes' replica API; the store closes it on `close`. */
  replicas: ReplicaApi;
  /** Replicas of each new logical volume (`--replicas`). */
  replicaCount: number;
  /** How long a node may miss heartbeats before it counts as down (`--node-timeout`). */
  nodeTimeoutMs: number;
  /** Keys per lease; default 1,000. */
  leaseSize?: number;
  /** How old the cached view of the cluster may be; default min(1 s, node timeout / 4). */
  viewMaxAgeMs?: number;
  /** Attempts at a write on different logical volumes before `unavailable`; default 4. */
  writeAttempts?: number;
  /** Where large uploads are spooled; default a new folder in the OS's temp dir. */
  spoolDir?: string;
  log?: (line: string) => void;
  /** Told of every replica that answered `corrupt` (for a metric). */
  onCorrupt?: (node: string, volume: number, key: Key) => void;
}

/**
 * The storage port over a cluster (CLUSTER.md, docs/CLUSTER-DESIGN.md): what a gateway serves.
 * It keeps no state that matters: keys come from leases in the Directory, files live on the
 * nodes, and which replicas may still hold a deleted key is in the Directory's journal.
 *
 * Writes go to every replica of a logical volume (W = R) and are acknowledged once all have them
 * on disk; a replica's failure turns the volume read-only and the write is retried on another
 * volume under a new key, the failed key retired. Reads go to one replica and fail over.
 */
export class ClusterStore implements BlobStore {
  /**
   * No operator calls of volumes and no replica writes: a cluster is reached through gateways.
   * Telemetry: replicas that answered corrupt (flushes and caches are the nodes' own).
   */
  readonly capabilities: StoreCapabilities = {
    telemetry: { observe: (observer) => this.#telemetry.observe(observer) },
  };
  readonly #telemetry = new TelemetryHub();
  readonly #directory: Directory;
  readonly #api: ReplicaApi;
  readonly #views: ViewCache;
  readonly #suspects: Suspects;
  readonly #leases: KeyLeases;
  readonly #read: ReadContext;
  readonly #spoolDir: string;
  readonly #ownsSpoolDir: boolean;
  readonly #writeAttempts: number;
  readonly #replicaCount: number;
  readonly #log: (line: string) => void;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #repairing = new Set<string>();
  #spools = 0;
  #closing: Promise<void> | undefined;

  private constructor(options: ClusterStoreOptions, spoolDir: string, ownsSpoolDir: boolean) {
    const { nodeTimeoutMs } = options;
    const directory = guardDirectory(options.directory);
    this.#directory = directory;
    this.#api = options.replicas;
    this.#log = options.log ?? (() => {});
    this.#views = new ViewCache({
      directory,
      nodeTimeoutMs,
      maxAgeMs: options.viewMaxAgeMs ?? Math.min(1000, nodeTimeoutMs / 4),
    });
    this.#suspects = new Suspects(nodeTimeoutMs);
    this.#leases = new KeyLeases({
      directory,
      views: this.#views,
      suspects: this.#suspects,
      replicas: options.replicaCount,
      nodeTimeoutMs,
      leaseSize: options.leaseSize ?? 1000,
      gateway: `${process.pid}-${randomUUID()}`,
    });
    const onCorrupt = options.onCorrupt;
    this.#read = {
      directory,
      views: this.#views,
      suspects: this.#suspects,
      onCorrupt: (node, volume, key) => {
        this.#log(
          `replica on node ${node} answered corrupt for key ${key} (logical volume ${volume}): repairing it`,
        );
        onCorrupt?.(node, volume, key);
        this.#telemetry.corruptRead(volume);
        this.#repair(node, volume, key);
      },
    };
    this.#spoolDir = spoolDir;
    this.#ownsSpoolDir = ownsSpoolDir;
    this.#writeAttempts = options.writeAttempts ?? 4;
    this.#replicaCount = options.replicaCount;
  }

  static async open(options: ClusterStoreOptions): Promise<ClusterStore> {
    const spoolDir = options.spoolDir ?? (await makeSpoolDir());
    const store = new ClusterStore(options, spoolDir, options.spoolDir === undefined);
    // Fails now, not on the first request, when the Directory cannot be read.
    await store.#views.fresh();
    return store;
  }

  put(input: PutInput): Promise<FileInfo> {
    return this.#track(async () => {
      const held = await this.#hold(input);
      try {
        return await this.#store(held.body);
      } finally {
        await held.release();
      }
    });
  }

  replace(key: Key, input: PutInput, cookie?: number): Promise<FileInfo> {
    return this.#track(async () => {
      // The old file must be there (with that cookie) before a byte of the new one is taken.
      await this.#head(key, cookie);
      const held = await this.#hold(input);
      try {
        // One delete or replace of a key at a time, cluster-wide: of two, the second finds the
        // key gone and stores nothing.
        return await this.#directory.withKeyLock(key, async () => {
          await this.#head(key, cookie);
          const info = await this.#store(held.body);
          await this.#retire(key, cookie);
          return info;
        });
      } finally {
        await held.release();
      }
    });
  }

  delete(key: Key, cookie?: number): Promise<void> {
    return this.#track(async () => {
      checkId(key, cookie);
      // One delete or replace of a key at a time, cluster-wide: of two deletes, the second finds
      // the file gone (404).
      await this.#directory.withKeyLock(key, async () => {
        // Whether the file is there (with that cookie) is asked of a replica first: the
        // replicas' answers to the delete itself cannot tell, since each node's agent applies
        // the journaled rows on its tick and may do so before this gateway's own request
        // reaches it (that request then finds nothing: 404 from every replica, for a file that
        // was there).
        await this.#head(key, cookie);
        // Found a moment ago, under the lock: a `not_found` now means this delete's own journal
        // was applied first. Gone either way.
        await this.#retire(key, cookie);
      });
    });
  }

  get(key: Key, range?: ByteRange, cookie?: number): Promise<FileRead> {
    const options = {
      ...(range === undefined ? {} : { range }),
      ...(cookie === undefined ? {} : { cookie }),
    };
    return this.#track(() => {
      checkId(key, cookie);
      return readAny(this.#read, key, async (node, volume) => {
        const read = await this.#api.get(node, volume, key, options);
        return { info: inVolume(read.info, volume), body: read.body };
      });
    });
  }

  head(key: Key, cookie?: number): Promise<FileInfo> {
    return this.#track(() => this.#head(key, cookie));
  }

  /** Every up node syncs its replicas (their writes were on disk when acknowledged anyway). */
  sync(): Promise<SyncReport> {
    return this.#track(async () => {
      const started = performance.now();
      const view = await this.#views.fresh();
      const reports = await Promise.allSettled(
        view.nodes.filter((node) => node.up).map((node) => this.#api.sync(node.url)),
      );
      let volumes = 0;
      for (const report of reports)
        if (report.status === 'fulfilled') volumes += report.value.volumes;
      return { volumes, durationMs: Math.round(performance.now() - started) };
    });
  }

  status(): Promise<ClusterStatus> {
    return this.#track(async () => {
      const view = await this.#views.fresh();
      const answers = await Promise.allSettled(
        view.nodes
          .filter((node) => node.up)
          .map(async (node) => [node.id, (await this.#api.status(node.url)).replicas] as const),
      );
      const live = new Map(
        answers.flatMap((answer) => (answer.status === 'fulfilled' ? [answer.value] : [])),
      );
      return clusterStatus(withLiveFigures(view, live), this.#leases.peek() ?? view.nextKey);
    });
  }

  /**
   * Ready while it is open and the Directory answers with at least as many store nodes up as a
   * volume has replicas: a gateway without them cannot place a write.
   */
  async readiness(): Promise<Readiness> {
    if (this.#closing) return { ready: false, reason: 'the gateway is closing' };
    try {
      const view = await this.#views.fresh();
      const up = view.nodes.filter((node) => node.up).length;
      if (up < this.#replicaCount) {
        return {
          ready: false,
          reason: `${up} store node(s) up, fewer than the ${this.#replicaCount} replicas a volume needs`,
        };
      }
      return { ready: true };
    } catch (err) {
      if (err instanceof StoreError) return { ready: false, reason: err.message };
      throw err;
    }
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled(this.#inFlight);
      await Promise.allSettled([this.#api.close(), this.#directory.close()]);
      if (this.#ownsSpoolDir) await rm(this.#spoolDir, { recursive: true, force: true });
    })();
    return this.#closing;
  }

  /** One repair at a time per replica and key, in the background; `close` waits for it. */
  #repair(node: string, volume: number, key: Key): void {
    const id = `${node}/${volume}/${key}`;
    if (this.#repairing.has(id) || this.#closing) return;
    this.#repairing.add(id);
    const context = {
      directory: this.#directory,
      api: this.#api,
      views: this.#views,
      log: this.#log,
    };
    const done = repairReplica(context, volume, key, node)
      .catch((err: unknown) => {
        this.#log(`repair of key ${key} on node ${node} failed: ${String(err)}`);
        return false;
      })
      .finally(() => this.#repairing.delete(id));
    this.#inFlight.add(done);
    done.then(() => this.#inFlight.delete(done));
  }

  async #head(key: Key, cookie?: number): Promise<FileInfo> {
    checkId(key, cookie);
    return readAny(this.#read, key, async (node, volume) =>
      inVolume(await this.#api.head(node, volume, key, cookie), volume),
    );
  }

  #hold(input: PutInput): Promise<HeldBody> {
    return holdBody(input, () => path.join(this.#spoolDir, `${++this.#spools}.spool`));
  }

  /**
   * Stores the held file under a new key on every replica of a writable volume; on a replica's
   * failure, turns the volume read-only, retires the key and tries again on another volume.
   */
  async #store(body: ReplicaBody): Promise<FileInfo> {
    let lastReason = 'no attempt was made';
    for (let attempt = 0; attempt < this.#writeAttempts; attempt++) {
      const { key, volume: volumeId } = await this.#leases.take();
      const view = await this.#views.current();
      const volume =
        view.volumes.find((v) => v.id === volumeId) ??
        (await this.#views.fresh()).volumes.find((v) => v.id === volumeId);
      if (!volume) throw new Error(`leased keys for logical volume ${volumeId}, which has no row`);
      const nodes = nodesById(view);
      const cookie = randomCookie();
      const outcome = await writeEverywhere(this.#api, volume, nodes, key, cookie, body);
      if (outcome.ok) {
        for (const replica of volume.replicas) this.#suspects.clear(replica.node);
        return outcome.info;
      }
      // Whatever reached a replica under this key must never be read back.
      await this.#retireFailedWrite(volumeId, key, cookie);
      if (outcome.clientError) throw outcome.clientError;
      const { code, reason } = failureReason(outcome.failed);
      lastReason = reason;
      this.#log(`logical volume ${volumeId} is read-only: ${reason}`);
      for (const { node, error } of outcome.failed) {
        if (!isReplicaFailure(error)) continue;
        this.#suspects.add(node, nodes.get(node)?.registeredAt);
        await this.#directory.markReplicaCatchingUp(volumeId, node);
      }
      await this.#directory.markVolumeReadOnly(volumeId, code, reason);
      this.#leases.drop(volumeId);
      this.#views.invalidate();
    }
    throw new StoreError('unavailable', `the write failed on every volume tried: ${lastReason}`);
  }

  async #retireFailedWrite(volume: VolumeId, key: Key, cookie: number): Promise<void> {
    const view = await this.#views.current();
    const row = view.volumes.find((v) => v.id === volume);
    if (!row) return;
    const nodes = nodesById(view);
    await deleteEverywhere(this.#directory, this.#api, row, nodes, key, cookie, (node) =>
      this.#suspects.add(node, nodes.get(node)?.registeredAt),
    ).catch((err: unknown) => {
      // Unreachable replicas keep their rows: the retire is recorded and will be applied.
      if (!(err instanceof StoreError && err.code === 'unavailable')) throw err;
    });
  }

  /** Deletes `key` everywhere (journaled); `not_found` when no replica had it. */
  async #retire(key: Key, cookie?: number) {
    const { volume, nodes } = await holdersOf(this.#read, key);
    return deleteEverywhere(this.#directory, this.#api, volume, nodes, key, cookie, (node) =>
      this.#suspects.add(node, nodes.get(node)?.registeredAt),
    );
  }

  #track<T>(operation: () => Promise<T>): Promise<T> {
    if (this.#closing) return Promise.reject(new StoreError('closed', 'the store is closed'));
    // A check that throws at once still rejects: callers only ever see a promise.
    const promise = Promise.resolve().then(operation);
    this.#inFlight.add(promise);
    const forget = () => this.#inFlight.delete(promise);
    promise.then(forget, forget);
    return promise;
  }
}

/**
 * A replica's answer as the cluster's clients see it: the logical volume, and offset 0, as each
 * replica holds the needle at an offset of its own (the same file must answer the same info
 * whichever replica served it).
 */
function inVolume(info: FileInfo, volume: number): FileInfo {
  return { ...info, volume, offset: 0 };
}

/** A key that is no key is `bad_key`; a cookie no file can have names no file (`not_found`). */
function checkId(key: Key, cookie: number | undefined): void {
  checkKey(key);
  if (cookie !== undefined && !isCookie(cookie)) throw notFound(key);
}

function notFound(key: Key): StoreError {
  return new StoreError('not_found', `no file under key ${key}`);
}
