/**
 * Nodes this gateway saw fail lately (a refused connection, a timeout, a 5xx). The Directory
 * learns that a node is down only after `--node-timeout`; until then the gateway steers around
 * what it saw itself: no new volume on a suspect node, its replicas read last.
 */
export class Suspects {
  readonly #until = new Map<string, number>();
  readonly #forMs: number;
  readonly #now: () => number;

  constructor(forMs: number, now: () => number = Date.now) {
    this.#forMs = forMs;
    this.#now = now;
  }

  add(node: string): void {
    this.#until.set(node, this.#now() + this.#forMs);
  }

  /** A node that answered well again is trusted again. */
  clear(node: string): void {
    this.#until.delete(node);
  }

  has(node: string): boolean {
    const until = this.#until.get(node);
    if (until === undefined) return false;
    if (until > this.#now()) return true;
    this.#until.delete(node);
    return false;
  }

  list(): string[] {
    return [...this.#until.keys()].filter((node) => this.has(node));
  }
}
