/** Where a live file's needle is: all that is kept in memory per file. */
export interface NeedleLocation {
  volume: number;
  offset: number;
  /** Bytes of the whole needle (header to padding), so one read fetches it. */
  length: number;
}

/**
 * The in-memory index from key to needle location. An interface so that a packed structure
 * (typed arrays, a few bytes per needle) can replace the Map without touching the store.
 */
export interface NeedleMap {
  get(key: number): NeedleLocation | undefined;
  set(key: number, location: NeedleLocation): void;
  delete(key: number): boolean;
  readonly size: number;
  /** Live entries in increasing key order, from the first key above `after` when given. */
  entries(after?: number): IterableIterator<[number, NeedleLocation]>;
}

export class MapNeedleMap implements NeedleMap {
  readonly #map = new Map<number, NeedleLocation>();

  get(key: number): NeedleLocation | undefined {
    return this.#map.get(key);
  }

  set(key: number, location: NeedleLocation): void {
    this.#map.set(key, location);
  }

  delete(key: number): boolean {
    return this.#map.delete(key);
  }

  get size(): number {
    return this.#map.size;
  }

  *entries(after?: number): IterableIterator<[number, NeedleLocation]> {
    const keys = [...this.#map.keys()]
      .filter((key) => after === undefined || key > after)
      .sort((a, b) => a - b);
    for (const key of keys) {
      const location = this.#map.get(key);
      if (location) yield [key, location];
    }
  }
}
