import { StoreError } from '../../storage/index.ts';
import { isWritable, nodesById, type ViewCache } from './cluster-view.ts';
import type { Directory, KeyLease, VolumeId } from './directory/types.ts';
import type { Suspects } from './suspects.ts';

export interface LeasedKey {
  key: number;
  volume: VolumeId;
}

/**
 * A gateway's keys: taken from one lease at a time (so they increase), each lease bound to one
 * logical volume that took writes when it was leased. A new lease goes to a writable volume
 * picked at random (spreading writes over volumes and gateways); none left, the Directory makes
 * one on R up nodes. A crash wastes the rest of the lease; no key is ever handed out twice.
 */
export class KeyLeases {
  readonly #directory: Directory;
  readonly #views: ViewCache;
  readonly #suspects: Suspects;
  readonly #replicas: number;
  readonly #nodeTimeoutMs: number;
  readonly #leaseSize: number;
  readonly #gateway: string;
  #lease: (KeyLease & { next: number }) | undefined;
  #leasing: Promise<void> | undefined;

  constructor(options: {
    directory: Directory;
    views: ViewCache;
    suspects: Suspects;
    replicas: number;
    nodeTimeoutMs: number;
    leaseSize: number;
    gateway: string;
  }) {
    this.#directory = options.directory;
    this.#views = options.views;
    this.#suspects = options.suspects;
    this.#replicas = options.replicas;
    this.#nodeTimeoutMs = options.nodeTimeoutMs;
    this.#leaseSize = options.leaseSize;
    this.#gateway = options.gateway;
  }

  /** The next key, and the volume it is to be stored in. */
  async take(): Promise<LeasedKey> {
    for (;;) {
      const lease = this.#lease;
      if (lease && lease.next <= lease.last) return { key: lease.next++, volume: lease.volume };
      this.#leasing ??= this.#newLease().finally(() => {
        this.#leasing = undefined;
      });
      await this.#leasing;
    }
  }

  /** The key `take` answers next, if the current lease has one left. */
  peek(): number | undefined {
    const lease = this.#lease;
    return lease && lease.next <= lease.last ? lease.next : undefined;
  }

  /** The volume failed a write: no more keys for it from this lease. */
  drop(volume: VolumeId): void {
    if (this.#lease?.volume === volume) this.#lease = undefined;
  }

  async #newLease(): Promise<void> {
    const view = await this.#views.current();
    const nodes = nodesById(view);
    this.#suspects.forgiveRestarted(view.nodes);
    const avoid = this.#suspects.list();
    const writable = view.volumes.filter(
      (volume) =>
        isWritable(volume, nodes) && volume.replicas.every((r) => !avoid.includes(r.node)),
    );
    let volume = writable[Math.floor(Math.random() * writable.length)]?.id;
    if (volume === undefined) {
      const made = await this.#directory.createVolume(this.#replicas, this.#nodeTimeoutMs, avoid);
      if (!made) {
        throw new StoreError(
          'unavailable',
          `no logical volume takes writes and fewer than ${this.#replicas} nodes are up to make one`,
        );
      }
      this.#views.invalidate();
      volume = made.id;
    }
    const lease = await this.#directory.leaseKeys(volume, this.#leaseSize, this.#gateway);
    this.#lease = { ...lease, next: lease.first };
  }
}
