import { NEEDLE_ALIGNMENT } from './needle.ts';
import type { NeedleLocation, NeedleMap } from './needle-map.ts';

/**
 * The needle map in typed arrays: 8 bytes per needle where keys are dense, one volume fills a
 * chunk and needles are under 512 KiB (the usual case), at most 14 otherwise; no object per
 * entry, no limit at 2^24 entries (a JS Map's cap).
 *
 * Keys are kept sorted in chunks of at most `chunkCapacity` slots. A chunk is one ArrayBuffer
 * holding, per slot, the needle's offset / 8 (u32, as in the index file), the low 16 bits of the
 * key's delta from the chunk's base key and the low 16 bits of the needle's length / 8 (u16
 * each). The high 16 bits of deltas and of lengths, and a per-slot volume, are planes of their
 * own (u16 each), allocated only for a chunk that needs them: one whose keys span 2^16 or more,
 * one holding a needle of 512 KiB or more, one holding needles of two volumes (a chunk that does
 * not holds its one volume, an index into a small table of volume ids, in a field). Offsets and
 * lengths are in 8-byte units because every needle starts and ends on an 8-byte boundary
 * (docs/FORMAT.md); `set` refuses anything else, and anything at or past 2^32 units (32 GiB,
 * MAX_VOLUME_BYTES). Chunks are found by binary search over their base keys, slots by binary
 * search within the chunk. A deleted key's slot is marked dead (length 0); a chunk sweeps its
 * dead slots out once a quarter of it is dead, and then merges with an underfull neighbour.
 *
 * The store hands out keys in increasing order, so almost every `set` is an append at the tail
 * (a few typed-array stores). A key published out of order (a write that reserved its key earlier
 * but finished later) is inserted in place: the slots after it in its chunk shift by one, which is
 * cheap because such keys land near the tail; a full chunk first gives its last slot to the next
 * chunk and only splits when that one is full too (the last chunk splits at the key, so late keys
 * at the tail leave every chunk but the last full). No operation costs more than one chunk's bytes.
 */
const UNIT = NEEDLE_ALIGNMENT;
const TWO_16 = 2 ** 16;
const TWO_32 = 2 ** 32;
/** Bytes per slot in a chunk's main buffer: offset (u32), key delta and length, low halves (u16). */
const SLOT_BYTES = 8;
/** Bytes per slot of each optional plane (high delta, high length, volume: u16 each). */
const PLANE_BYTES = 2;
const MAX_VOLUMES = 2 ** 16;
/** 8192 slots: 64 KiB per chunk, about 6,100 chunks for 50M needles. */
export const DEFAULT_CHUNK_CAPACITY = 8192;

class Chunk {
  /** At most the smallest key in the chunk, above every key of the chunks before. */
  base: number;
  /** Slots in use, dead ones included. */
  count = 0;
  dead = 0;
  readonly capacity: number;
  /** offset / 8. */
  readonly offsets: Uint32Array;
  /** key - base, low 16 bits; key - base is strictly increasing over [0, count). */
  readonly deltas: Uint16Array;
  /** length / 8, low 16 bits; a length of 0 marks a dead slot (deleted, not yet swept out). */
  readonly lengths: Uint16Array;
  /** key - base, high 16 bits; null while every delta the chunk held fitted in 16 bits. */
  deltasHigh: Uint16Array | null = null;
  /** length / 8, high 16 bits; null while every length the chunk held fitted in 16 bits. */
  lengthsHigh: Uint16Array | null = null;
  /** Per slot, an index into the map's table of volume ids; null while all slots share `volume`. */
  volumes: Uint16Array | null = null;
  /** The volume index of every slot while `volumes` is null. */
  volume: number;

  constructor(base: number, capacity: number, volume: number) {
    this.base = base;
    this.capacity = capacity;
    this.volume = volume;
    const buffer = new ArrayBuffer(capacity * SLOT_BYTES);
    this.offsets = new Uint32Array(buffer, 0, capacity);
    this.deltas = new Uint16Array(buffer, capacity * 4, capacity);
    this.lengths = new Uint16Array(buffer, capacity * 6, capacity);
  }

  /** Bytes of typed arrays this chunk holds. */
  get byteLength(): number {
    let planes = 0;
    if (this.deltasHigh !== null) planes++;
    if (this.lengthsHigh !== null) planes++;
    if (this.volumes !== null) planes++;
    return this.capacity * (SLOT_BYTES + planes * PLANE_BYTES);
  }

  get lastKey(): number {
    return this.base + this.delta(this.count - 1);
  }

  delta(slot: number): number {
    const low = this.deltas[slot] as number;
    const high = this.deltasHigh;
    return high === null ? low : low + (high[slot] as number) * TWO_16;
  }

  /** length / 8 of the slot, 0 if it is dead. */
  length(slot: number): number {
    const low = this.lengths[slot] as number;
    const high = this.lengthsHigh;
    return high === null ? low : low + (high[slot] as number) * TWO_16;
  }

  volumeAt(slot: number): number {
    const volumes = this.volumes;
    return volumes === null ? this.volume : (volumes[slot] as number);
  }

  /** The slot holding `delta`, or `-(insertion point) - 1`. */
  find(delta: number): number {
    // Deltas are distinct non-negative integers in increasing order, so `delta` sits at or
    // before slot `delta`: where keys are dense (the usual case) the first probe hits.
    let high = this.count - 1;
    if (delta < high) high = delta;
    let low = 0;
    if (this.deltasHigh === null) {
      // Every delta here is below 2^16.
      if (delta >= TWO_16) return -this.count - 1;
      const deltas = this.deltas;
      if (high >= 0 && deltas[high] === delta) return high;
      while (low <= high) {
        const mid = (low + high) >>> 1;
        const value = deltas[mid] as number;
        if (value < delta) low = mid + 1;
        else if (value > delta) high = mid - 1;
        else return mid;
      }
      return -low - 1;
    }
    if (high >= 0 && this.delta(high) === delta) return high;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const value = this.delta(mid);
      if (value < delta) low = mid + 1;
      else if (value > delta) high = mid - 1;
      else return mid;
    }
    return -low - 1;
  }

  /** Moves slots [from, count) by `by` places (positive: towards the end). */
  shift(from: number, by: number): void {
    const end = this.count;
    const to = from + by;
    this.offsets.copyWithin(to, from, end);
    this.deltas.copyWithin(to, from, end);
    this.lengths.copyWithin(to, from, end);
    this.deltasHigh?.copyWithin(to, from, end);
    this.lengthsHigh?.copyWithin(to, from, end);
    this.volumes?.copyWithin(to, from, end);
  }

  write(at: number, delta: number, offset: number, length: number, volume: number): void {
    this.setDelta(at, delta);
    this.offsets[at] = offset;
    this.setLength(at, length);
    this.setVolume(at, volume);
  }

  /** `delta` below 2^32. */
  setDelta(at: number, delta: number): void {
    this.deltas[at] = delta & 0xffff;
    let high = this.deltasHigh;
    if (high === null) {
      if (delta < TWO_16) return;
      // Zero is the right high half of every delta held so far.
      high = this.deltasHigh = new Uint16Array(this.capacity);
    }
    high[at] = delta >>> 16;
  }

  /** `length` (in units) below 2^32; 0 marks the slot dead. */
  setLength(at: number, length: number): void {
    this.lengths[at] = length & 0xffff;
    let high = this.lengthsHigh;
    if (high === null) {
      if (length < TWO_16) return;
      high = this.lengthsHigh = new Uint16Array(this.capacity);
    }
    high[at] = length >>> 16;
  }

  setVolume(at: number, volume: number): void {
    let volumes = this.volumes;
    if (volumes === null) {
      if (volume === this.volume) return;
      volumes = this.volumes = new Uint16Array(this.capacity).fill(this.volume);
    }
    volumes[at] = volume;
  }

  /** Copies slot `from` over slot `to` (both in this chunk). */
  copySlot(from: number, to: number): void {
    this.offsets[to] = this.offsets[from] as number;
    this.deltas[to] = this.deltas[from] as number;
    this.lengths[to] = this.lengths[from] as number;
    const { deltasHigh, lengthsHigh, volumes } = this;
    if (deltasHigh !== null) deltasHigh[to] = deltasHigh[from] as number;
    if (lengthsHigh !== null) lengthsHigh[to] = lengthsHigh[from] as number;
    if (volumes !== null) volumes[to] = volumes[from] as number;
  }

  /** Copies slots [from, to) of `source` to the end of this chunk, rebased on this chunk's base. */
  takeFrom(source: Chunk, from: number, to: number): void {
    const at = this.count - from;
    const rebase = source.base - this.base;
    for (let i = from; i < to; i++) {
      this.setDelta(at + i, source.delta(i) + rebase);
      this.setLength(at + i, source.length(i));
      this.setVolume(at + i, source.volumeAt(i));
    }
    this.offsets.set(source.offsets.subarray(from, to), this.count);
    this.count += to - from;
  }

  /** Sweeps out the dead slots, keeping the order. */
  sweep(): void {
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      if (this.length(i) === 0) continue;
      if (kept !== i) this.copySlot(i, kept);
      kept++;
    }
    this.count = kept;
    this.dead = 0;
  }
}

export interface PackedNeedleMapOptions {
  /** Slots per chunk (default 8192). Small values are for tests: they exercise splits and merges. */
  chunkCapacity?: number;
}

export class PackedNeedleMap implements NeedleMap {
  readonly #capacity: number;
  readonly #chunks: Chunk[] = [];
  /** `#chunks[i].base`, kept apart so the binary search over chunks stays in one array. */
  readonly #bases: number[] = [];
  readonly #volumeIds: number[] = [];
  readonly #volumeIndex = new Map<number, number>();
  /** The volume of the last `set` and its index: consecutive sets almost always share it. */
  #lastVolume = Number.NaN;
  #lastVolumeSlot = 0;
  #size = 0;

  constructor(options: PackedNeedleMapOptions = {}) {
    const capacity = options.chunkCapacity ?? DEFAULT_CHUNK_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 2 || capacity > 2 ** 24) {
      throw new RangeError(`chunk capacity must be an integer from 2 to 2^24, not ${capacity}`);
    }
    this.#capacity = capacity;
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes held in typed arrays (what the slots cost, without the few objects around them). */
  get byteLength(): number {
    let bytes = 0;
    for (const chunk of this.#chunks) bytes += chunk.byteLength;
    return bytes;
  }

  get(key: number): NeedleLocation | undefined {
    // Not a key (NaN, fractions, infinities) would confuse the searches, which compare numbers.
    if (!Number.isSafeInteger(key)) return undefined;
    const index = this.#chunkFor(key);
    if (index < 0) return undefined;
    const chunk = this.#chunks[index] as Chunk;
    const delta = key - chunk.base;
    if (delta >= TWO_32) return undefined;
    const slot = chunk.find(delta);
    if (slot < 0) return undefined;
    const length = chunk.length(slot);
    if (length === 0) return undefined;
    return {
      volume: this.#volumeIds[chunk.volumeAt(slot)] as number,
      offset: (chunk.offsets[slot] as number) * UNIT,
      length: length * UNIT,
    };
  }

  set(key: number, location: NeedleLocation): void {
    if (!Number.isSafeInteger(key) || key < 0) {
      throw new RangeError(`a needle map key is an integer from 0 to 2^53-1, not ${key}`);
    }
    const offset = location.offset / UNIT;
    const length = location.length / UNIT;
    if (!(Number.isInteger(offset) && offset >= 0 && offset < TWO_32)) {
      throw new RangeError(`offset ${location.offset} is not a multiple of 8 below 32 GiB`);
    }
    if (!(Number.isInteger(length) && length > 0 && length < TWO_32)) {
      throw new RangeError(
        `length ${location.length} is not a positive multiple of 8 below 32 GiB`,
      );
    }
    const volume = this.#volumeSlot(location.volume);

    const chunks = this.#chunks;
    const last = chunks[chunks.length - 1];
    if (last && key > last.lastKey) {
      // The usual case: a key above every key in the map.
      const delta = key - last.base;
      if (last.count < last.capacity && delta < TWO_32) {
        last.write(last.count++, delta, offset, length, volume);
      } else {
        this.#insertChunk(chunks.length, key, volume).write(0, 0, offset, length, volume);
      }
      this.#size++;
      return;
    }

    const index = this.#chunkFor(key);
    if (index < 0) {
      this.#insertFront(key, offset, length, volume);
      this.#size++;
      return;
    }
    const chunk = chunks[index] as Chunk;
    const delta = key - chunk.base;
    if (delta < TWO_32) {
      const slot = chunk.find(delta);
      if (slot >= 0) {
        if (chunk.length(slot) === 0) {
          chunk.dead--;
          this.#size++;
        }
        chunk.offsets[slot] = offset;
        chunk.setLength(slot, length);
        chunk.setVolume(slot, volume);
        return;
      }
      this.#insertAt(index, -slot - 1, key, offset, length, volume);
    } else {
      // Above every key of its chunk, and too far from its base to be a delta: the next chunk.
      this.#insertAfter(index, key, offset, length, volume);
    }
    this.#size++;
  }

  delete(key: number): boolean {
    if (!Number.isSafeInteger(key)) return false;
    const index = this.#chunkFor(key);
    if (index < 0) return false;
    const chunk = this.#chunks[index] as Chunk;
    const delta = key - chunk.base;
    if (delta >= TWO_32) return false;
    const slot = chunk.find(delta);
    if (slot < 0 || chunk.length(slot) === 0) return false;
    chunk.setLength(slot, 0);
    chunk.dead++;
    this.#size--;
    if (chunk.dead * 4 >= chunk.count) this.#sweep(index);
    return true;
  }

  /**
   * Live entries in increasing key order, from the first key above `after` (every one, without).
   * Changes made while iterating are seen as a Map would.
   */
  *entries(after?: number): IterableIterator<[number, NeedleLocation]> {
    let { index, slot } = after === undefined ? { index: 0, slot: 0 } : this.#seekAbove(after);
    let chunk = this.#chunks[index];
    while (chunk) {
      if (slot >= chunk.count) {
        chunk = this.#chunks[++index];
        slot = 0;
        continue;
      }
      const at = slot++;
      const length = chunk.length(at);
      if (length === 0) continue;
      const key = chunk.base + chunk.delta(at);
      yield [
        key,
        {
          volume: this.#volumeIds[chunk.volumeAt(at)] as number,
          offset: (chunk.offsets[at] as number) * UNIT,
          length: length * UNIT,
        },
      ];
      if (this.#chunks[index] !== chunk || !this.#holds(chunk, at, key)) {
        // The map was changed around our place while the caller had the entry: find it again.
        ({ index, slot } = this.#seekAbove(key));
        chunk = this.#chunks[index];
      }
    }
  }

  [Symbol.iterator](): IterableIterator<[number, NeedleLocation]> {
    return this.entries();
  }

  /**
   * Checks the structure's invariants and throws an Error naming the first one broken. For tests
   * and debugging: it reads every slot.
   */
  assertConsistent(): void {
    let live = 0;
    let previous = -1;
    this.#chunks.forEach((chunk, i) => {
      const fail = (what: string) => {
        throw new Error(`packed needle map, chunk ${i} of ${this.#chunks.length}: ${what}`);
      };
      if (this.#bases[i] !== chunk.base) fail('base out of sync with the directory');
      if (chunk.count === 0) fail('empty chunk kept');
      if (chunk.count > chunk.capacity) fail('count over capacity');
      if (chunk.base <= previous) fail('base not above the previous chunk');
      let dead = 0;
      for (let s = 0; s < chunk.count; s++) {
        const key = chunk.base + chunk.delta(s);
        if (key <= previous) fail(`key ${key} at slot ${s} out of order`);
        previous = key;
        if (chunk.length(s) === 0) dead++;
        else if (chunk.volumeAt(s) >= this.#volumeIds.length) fail('bad volume index');
      }
      if (chunk.lastKey - chunk.base >= TWO_32) fail('a delta past 32 bits');
      if (dead !== chunk.dead) fail(`dead count ${chunk.dead}, found ${dead}`);
      live += chunk.count - dead;
    });
    if (this.#bases.length !== this.#chunks.length) throw new Error('directory length mismatch');
    if (live !== this.#size) throw new Error(`size ${this.#size}, found ${live} live slots`);
  }

  /** Index of the last chunk whose base is at most `key`, or -1. */
  #chunkFor(key: number): number {
    const bases = this.#bases;
    let low = 0;
    let high = bases.length - 1;
    if (high < 0 || key < (bases[0] as number)) return -1;
    if (key >= (bases[high] as number)) return high;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if ((bases[mid] as number) <= key) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  #volumeSlot(volume: number): number {
    if (volume === this.#lastVolume) return this.#lastVolumeSlot;
    let slot = this.#volumeIndex.get(volume);
    if (slot === undefined) {
      if (this.#volumeIds.length >= MAX_VOLUMES) {
        throw new RangeError(`a needle map holds at most ${MAX_VOLUMES} distinct volumes`);
      }
      slot = this.#volumeIds.length;
      this.#volumeIds.push(volume);
      this.#volumeIndex.set(volume, slot);
    }
    this.#lastVolume = volume;
    this.#lastVolumeSlot = slot;
    return slot;
  }

  #insertChunk(index: number, base: number, volume: number): Chunk {
    const chunk = new Chunk(base, this.#capacity, volume);
    chunk.count = 1;
    this.#chunks.splice(index, 0, chunk);
    this.#bases.splice(index, 0, base);
    return chunk;
  }

  #removeChunk(index: number): void {
    this.#chunks.splice(index, 1);
    this.#bases.splice(index, 1);
  }

  /** Inserts a key that `#chunkFor` placed in chunk `index`, where it is missing, at `slot`. */
  #insertAt(
    index: number,
    slot: number,
    key: number,
    offset: number,
    length: number,
    volume: number,
  ): void {
    let chunk = this.#chunks[index] as Chunk;
    let at = slot;
    if (chunk.count === chunk.capacity) {
      if (chunk.dead > 0) {
        chunk.sweep();
        at = -chunk.find(key - chunk.base) - 1;
      } else if (at === chunk.count) {
        this.#insertAfter(index, key, offset, length, volume);
        return;
      } else if (this.#prependable(index + 1, chunk.lastKey)) {
        // Make room by handing the last slot to the next chunk.
        const end = chunk.count - 1;
        this.#prepend(
          index + 1,
          chunk.lastKey,
          chunk.offsets[end] as number,
          chunk.length(end),
          chunk.volumeAt(end),
        );
        chunk.count--;
      } else {
        // Split. The last chunk splits where the key goes: it stays full and the slots above
        // start the new last chunk, which appends fill (a late key at the tail wastes nothing).
        // Another chunk splits in half, leaving room on both sides for more late keys.
        const split = index === this.#chunks.length - 1 ? at : chunk.count >>> 1;
        const upper = new Chunk(
          chunk.base + chunk.delta(split),
          this.#capacity,
          chunk.volumeAt(split),
        );
        upper.takeFrom(chunk, split, chunk.count);
        chunk.count = split;
        this.#chunks.splice(index + 1, 0, upper);
        this.#bases.splice(index + 1, 0, upper.base);
        if (key >= upper.base) {
          chunk = upper;
          at -= split;
        }
      }
    }
    chunk.shift(at, 1);
    chunk.write(at, key - chunk.base, offset, length, volume);
    chunk.count++;
  }

  /** Inserts a key above every key of chunk `index` and below the next chunk's base. */
  #insertAfter(index: number, key: number, offset: number, length: number, volume: number): void {
    if (this.#prependable(index + 1, key)) this.#prepend(index + 1, key, offset, length, volume);
    else this.#insertChunk(index + 1, key, volume).write(0, 0, offset, length, volume);
  }

  /** Inserts a key below every key in the map. */
  #insertFront(key: number, offset: number, length: number, volume: number): void {
    if (this.#prependable(0, key)) this.#prepend(0, key, offset, length, volume);
    else this.#insertChunk(0, key, volume).write(0, 0, offset, length, volume);
  }

  /** Whether chunk `index` exists, has room, and can take `key`, below its keys, as its base. */
  #prependable(index: number, key: number): boolean {
    const chunk = this.#chunks[index];
    if (!chunk || chunk.count === chunk.capacity) return false;
    return chunk.lastKey - key < TWO_32;
  }

  /** Puts `key` first in chunk `index`, making it the chunk's base. */
  #prepend(index: number, key: number, offset: number, length: number, volume: number): void {
    const chunk = this.#chunks[index] as Chunk;
    const rebase = chunk.base - key;
    chunk.shift(0, 1);
    for (let i = 1; i <= chunk.count; i++) chunk.setDelta(i, chunk.delta(i) + rebase);
    chunk.write(0, 0, offset, length, volume);
    chunk.count++;
    chunk.base = key;
    this.#bases[index] = key;
  }

  /** Sweeps chunk `index`'s dead slots out, then merges it with a neighbour if both fit in one. */
  #sweep(index: number): void {
    const chunk = this.#chunks[index] as Chunk;
    chunk.sweep();
    if (chunk.count === 0) {
      this.#removeChunk(index);
      return;
    }
    if (!this.#merge(index)) this.#merge(index - 1);
  }

  /** Moves chunk `index + 1` into chunk `index` if together they fill at most 3/4 of a chunk. */
  #merge(index: number): boolean {
    const left = this.#chunks[index];
    const right = this.#chunks[index + 1];
    if (!left || !right) return false;
    if (right.dead > 0) right.sweep();
    if (left.dead > 0) left.sweep();
    if ((left.count + right.count) * 4 > this.#capacity * 3) return false;
    if (right.lastKey - left.base >= TWO_32) return false;
    left.takeFrom(right, 0, right.count);
    this.#removeChunk(index + 1);
    return true;
  }

  /** Whether slot `slot` of `chunk` holds `key`. */
  #holds(chunk: Chunk, slot: number, key: number): boolean {
    return slot < chunk.count && chunk.base + chunk.delta(slot) === key;
  }

  /** Where the first key above `key` is (or would be). */
  #seekAbove(key: number): { index: number; slot: number } {
    let index = this.#chunkFor(key);
    if (index < 0) return { index: 0, slot: 0 };
    const chunk = this.#chunks[index] as Chunk;
    const delta = key - chunk.base;
    if (delta >= TWO_32) return { index: index + 1, slot: 0 };
    const found = chunk.find(delta);
    let slot = found >= 0 ? found + 1 : -found - 1;
    if (slot >= chunk.count) {
      index++;
      slot = 0;
    }
    return { index, slot };
  }
}
