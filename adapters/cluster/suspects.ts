import type { NodeRow } from './directory/types.ts';

/**
 * Nodes this gateway saw fail lately (a refused connection, a timeout, a 5xx). The Directory
 * learns that a node is down only after `--node-timeout`; until then the gateway steers around
 * what it saw itself: no new volume on a suspect node, its replicas read last.
 *
 * A node that registered again since it was suspected (it restarted: `registeredAt` in the
 * Directory is newer than what the gateway saw when the node failed) is trusted again at once
 * (`forgiveRestarted`): else a node back from a kill would be kept out of new volumes for up to
 * a node timeout, and writes refused while R nodes are up.
 */
export class Suspects {
  readonly #until = new Map<string, { until: number; registeredAt: number | undefined }>();
  readonly #forMs: number;
  readonly #now: () => number;

  constructor(forMs: number, now: () => number = Date.now) {
    this.#forMs = forMs;
    this.#now = now;
  }

  /** `registeredAt`: the node's registration as the caller's view of the cluster had it. */
  add(node: string, registeredAt?: Date): void {
    const known = registeredAt?.getTime() ?? this.#until.get(node)?.registeredAt;
    this.#until.set(node, { until: this.#now() + this.#forMs, registeredAt: known });
  }

  /** A node that answered well again is trusted again. */
  clear(node: string): void {
    this.#until.delete(node);
  }

  /** Trusts again every suspect whose registration in `nodes` is newer than when it failed. */
  forgiveRestarted(nodes: Iterable<NodeRow>): void {
    if (this.#until.size === 0) return;
    for (const node of nodes) {
      const suspect = this.#until.get(node.id);
      if (
        suspect?.registeredAt !== undefined &&
        node.registeredAt.getTime() > suspect.registeredAt
      ) {
        this.#until.delete(node.id);
      }
    }
  }

  has(node: string): boolean {
    const suspect = this.#until.get(node);
    if (suspect === undefined) return false;
    if (suspect.until > this.#now()) return true;
    this.#until.delete(node);
    return false;
  }

  list(): string[] {
    return [...this.#until.keys()].filter((node) => this.has(node));
  }
}
