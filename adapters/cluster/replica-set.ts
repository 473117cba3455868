import { mkdir, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type BlobStore,
  MAX_KEY,
  type ReplicaStatus,
  type ReplicaVolumes,
  StoreError,
  type SyncReport,
} from '../../storage/index.ts';

export interface ReplicaSetOptions {
  /** The node's data directory: replicas live in `DIR/volumes/{volume}/`. */
  dir: string;
  /** Opens the store of one replica's folder (the node passes the volume adapter's). */
  open: (dir: string) => Promise<BlobStore>;
  /** Whether the cluster names this node a replica of `volume` (the Directory's answer). */
  mayCreate: (volume: number) => Promise<boolean>;
}

/** A folder name that is a logical volume: the canonical decimal the paths use. */
const VOLUME_NAME = /^[1-9][0-9]{0,15}$/;

/**
 * A store node's replicas (docs/CLUSTER-DESIGN.md): the replica of logical volume N is a store of
 * its own in `DIR/volumes/N/`, opened once, on first use or by `openAll` at start. A replica this
 * node does not have is made only when the Directory names the node one of its replicas.
 */
export class ReplicaSet implements ReplicaVolumes {
  readonly #volumesDir: string;
  readonly #open: (dir: string) => Promise<BlobStore>;
  readonly #mayCreate: (volume: number) => Promise<boolean>;
  /** Every replica opened or being opened; a failed open is removed, so the next call tries again. */
  readonly #opening = new Map<number, Promise<BlobStore>>();
  /** The replicas whose open has finished. */
  readonly #opened = new Map<number, BlobStore>();
  #closed = false;

  constructor({ dir, open, mayCreate }: ReplicaSetOptions) {
    this.#volumesDir = join(dir, 'volumes');
    this.#open = open;
    this.#mayCreate = mayCreate;
  }

  /** The folder of `volume`'s replica. */
  folderOf(volume: number): string {
    return join(this.#volumesDir, String(volume));
  }

  async replica(volume: number, options: { create?: boolean } = {}): Promise<BlobStore> {
    this.#assertOpen();
    if (!Number.isSafeInteger(volume) || volume < 1 || volume > MAX_KEY) {
      throw new StoreError('not_found', `no replica of volume ${volume} here`);
    }
    const opening = this.#opening.get(volume);
    if (opening !== undefined) return opening;
    const folder = this.folderOf(volume);
    if (!(await isDirectory(folder))) {
      if (!options.create || !(await this.#mayCreate(volume))) {
        throw new StoreError('not_found', `this node holds no replica of volume ${volume}`);
      }
      await mkdir(folder, { recursive: true });
    }
    // Looked for again after the awaits above: a concurrent first call may have started it.
    return this.#opening.get(volume) ?? this.#startOpen(volume, folder);
  }

  /** Opens every replica found under `DIR/volumes/` (at start); answers their volumes. */
  async openAll(): Promise<number[]> {
    this.#assertOpen();
    let names: string[];
    try {
      names = await readdir(this.#volumesDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const volumes: number[] = [];
    for (const name of names) {
      const volume = Number(name);
      if (!VOLUME_NAME.test(name) || volume > MAX_KEY) continue;
      if (await isDirectory(join(this.#volumesDir, name))) volumes.push(volume);
    }
    volumes.sort((a, b) => a - b);
    await Promise.all(volumes.map((volume) => this.replica(volume)));
    return volumes;
  }

  /** The logical volumes whose replica is open, increasing. */
  volumes(): number[] {
    return [...this.#opened.keys()].sort((a, b) => a - b);
  }

  async sync(): Promise<SyncReport> {
    this.#assertOpen();
    const started = performance.now();
    const reports = await Promise.all([...this.#opened.values()].map((store) => store.sync()));
    return {
      volumes: reports.reduce((sum, report) => sum + report.volumes, 0),
      durationMs: performance.now() - started,
    };
  }

  async status(): Promise<ReplicaStatus[]> {
    this.#assertOpen();
    return Promise.all(
      this.volumes().map(async (volume) => {
        const store = this.#opened.get(volume) as BlobStore;
        return { volume, ...(await store.status()) };
      }),
    );
  }

  /** Closes every replica (those still opening once they are open); later calls are `closed`. */
  async close(): Promise<void> {
    this.#closed = true;
    const stores = await Promise.allSettled([...this.#opening.values()]);
    this.#opening.clear();
    this.#opened.clear();
    const closes = await Promise.allSettled(
      stores.flatMap((result) => (result.status === 'fulfilled' ? [result.value.close()] : [])),
    );
    const failed = closes.find((result) => result.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
  }

  #startOpen(volume: number, folder: string): Promise<BlobStore> {
    this.#assertOpen();
    const opening = this.#open(folder).then(
      (store) => {
        if (this.#opening.get(volume) === opening) this.#opened.set(volume, store);
        return store;
      },
      (err: unknown) => {
        this.#opening.delete(volume);
        throw err;
      },
    );
    this.#opening.set(volume, opening);
    return opening;
  }

  #assertOpen(): void {
    if (this.#closed) throw new StoreError('closed', "the node's replicas are closed");
  }
}

async function isDirectory(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
