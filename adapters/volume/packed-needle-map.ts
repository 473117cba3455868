import { NEEDLE_ALIGNMENT } from './needle.ts';
import type { NeedleLocation, NeedleMap } from './needle-map.ts';

/**
 * The needle map in typed arrays: 14 bytes per needle, no object per entry, no limit at 2^24
 * entries (a JS Map's cap).
 *
 * Keys are kept sorted in chunks of at most `chunkCapacity` slots. A chunk is one ArrayBuffer
 * holding, per slot, the key as a 32-bit delta from the chunk's base key, the needle's offset / 8
 * and length / 8 (u32 each, as in the index file) and its volume as a u16 index into a small table
 * of volume ids. Chunks are found by binary search over their base keys, slots by binary search
 * within the chunk. A deleted key's slot is marked dead (length 0); a chunk sweeps its dead slots
 * out once a quarter of it is dead, and then merges with an underfull neighbour.
 *
 * The store hands out keys in increasing order, so almost every `set` is an append at the tail
 * (a few typed-array stores). A key published out of order (a write that reserved its key earlier
 * but finished later) is inserted in place: the slots after it in its chunk shift by one, which is
 * cheap because such keys land near the tail; a full chunk first gives its last slot to the next
 * chunk and only splits when that one is full too (the last chunk splits at the key, so late keys
 * at the tail leave every chunk but the last full). No operation costs more than one chunk's bytes.
 */
const UNIT = NEEDLE_ALIGNMENT;
const TWO_32 = 2 ** 32;
/** Bytes per slot: key delta, offset, length (u32 each), volume index (u16). */
const SLOT_BYTES = 14;
const MAX_VOLUMES = 2 ** 16;
/** 8192 slots: 112 KiB per chunk, about 6,100 chunks for 50M needles. */
export const DEFAULT_CHUNK_CAPACITY = 8192;

class Chunk {
  /** At most the smallest key in the chunk, above every key of the chunks before. */
  base: number;
  /** Slots in use, dead ones included. */
  count = 0;
  dead = 0;
  /** key - base, strictly increasing over [0, count). */
  readonly deltas: Uint32Array;
  /** offset / 8. */
  readonly offsets: Uint32Array;
  /** length / 8; 0 marks a dead slot (a deleted key not yet swept out). */
  readonly lengths: Uint32Array;
  /** Index into the map's table of volume ids. */
  readonly volumes: Uint16Array;

  constructor(base: number, capacity: number) {
    this.base = base;
    const buffer = new ArrayBuffer(capacity * SLOT_BYTES);
    this.deltas = new Uint32Array(buffer, 0, capacity);
    this.offsets = new Uint32Array(buffer, capacity * 4, capacity);
    this.lengths = new Uint32Array(buffer, capacity * 8, capacity);
    this.volumes = new Uint16Array(buffer, capacity * 12, capacity);
  }

  get capacity(): number {
    return this.deltas.length;
  }

  get lastKey(): number {
    return this.base + (this.deltas[this.count - 1] as number);
  }

  /** The slot holding `delta`, or `-(insertion point) - 1`. */
  find(delta: number): number {
    const deltas = this.deltas;
    // Deltas are distinct non-negative integers in increasing order, so `delta` sits at or
    // before slot `delta`: where keys are dense (the usual case) the first probe hits.
    let high = this.count - 1;
    if (delta < high) high = delta;
    if (high >= 0 && deltas[high] === delta) return high;
    let low = 0;
    while (low <= high) {
      const mid = (low + high) >>> 1;
      const value = deltas[mid] as number;
      if (value < delta) low = mid + 1;
      else if (value > delta) high = mid - 1;
      else return mid;
    }
    return -low - 1;
  }

  /** Moves slots [from, count) by `by` places (positive: towards the end). */
  shift(from: number, by: number): void {
    const end = this.count;
    this.deltas.copyWithin(from + by, from, end);
    this.offsets.copyWithin(from + by, from, end);
    this.lengths.copyWithin(from + by, from, end);
    this.volumes.copyWithin(from + by, from, end);
  }

  write(at: number, delta: number, offset: number, length: number, volume: number): void {
    this.deltas[at] = delta;
    this.offsets[at] = offset;
    this.lengths[at] = length;
    this.volumes[at] = volume;
  }

  /** Copies slots [from, to) of `source` to the end of this chunk, rebased on this chunk's base. */
  takeFrom(source: Chunk, from: number, to: number): void {
    const at = this.count;
    const rebase = source.base - this.base;
    for (let i = from; i < to; i++) {
      this.deltas[at + i - from] = (source.deltas[i] as number) + rebase;
    }
    this.offsets.set(source.offsets.subarray(from, to), at);
    this.lengths.set(source.lengths.subarray(from, to), at);
    this.volumes.set(source.volumes.subarray(from, to), at);
    this.count += to - from;
  }

  /** Sweeps out the dead slots, keeping the order. */
  sweep(): void {
    const { deltas, offsets, lengths, volumes } = this;
    let kept = 0;
    for (let i = 0; i < this.count; i++) {
      const length = lengths[i] as number;
      if (length === 0) continue;
      if (kept !== i) {
        deltas[kept] = deltas[i] as number;
        offsets[kept] = offsets[i] as number;
        lengths[kept] = length;
        volumes[kept] = volumes[i] as number;
      }
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
    return this.#chunks.length * this.#capacity * SLOT_BYTES;
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
    const length = chunk.lengths[slot] as number;
    if (length === 0) return undefined;
    return {
      volume: this.#volumeIds[chunk.volumes[slot] as number] as number,
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
        this.#insertChunk(chunks.length, key).write(0, 0, offset, length, volume);
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
        if (chunk.lengths[slot] === 0) {
          chunk.dead--;
          this.#size++;
        }
        chunk.offsets[slot] = offset;
        chunk.lengths[slot] = length;
        chunk.volumes[slot] = volume;
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
    if (slot < 0 || chunk.lengths[slot] === 0) return false;
    chunk.lengths[slot] = 0;
    chunk.dead++;
    this.#size--;
    if (chunk.dead * 4 >= chunk.count) this.#sweep(index);
    return true;
  }

  /** Live entries in increasing key order. Changes made while iterating are seen as a Map would. */
  *entries(): IterableIterator<[number, NeedleLocation]> {
    let index = 0;
    let slot = 0;
    let chunk = this.#chunks[0];
    while (chunk) {
      if (slot >= chunk.count) {
        chunk = this.#chunks[++index];
        slot = 0;
        continue;
      }
      const at = slot++;
      const length = chunk.lengths[at] as number;
      if (length === 0) continue;
      const key = chunk.base + (chunk.deltas[at] as number);
      yield [
        key,
        {
          volume: this.#volumeIds[chunk.volumes[at] as number] as number,
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
        const key = chunk.base + (chunk.deltas[s] as number);
        if (key <= previous) fail(`key ${key} at slot ${s} out of order`);
        previous = key;
        if (chunk.lengths[s] === 0) dead++;
        else if ((chunk.volumes[s] as number) >= this.#volumeIds.length) fail('bad volume index');
      }
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

  #insertChunk(index: number, base: number): Chunk {
    const chunk = new Chunk(base, this.#capacity);
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
          chunk.lengths[end] as number,
          chunk.volumes[end] as number,
        );
        chunk.count--;
      } else {
        // Split. The last chunk splits where the key goes: it stays full and the slots above
        // start the new last chunk, which appends fill (a late key at the tail wastes nothing).
        // Another chunk splits in half, leaving room on both sides for more late keys.
        const split = index === this.#chunks.length - 1 ? at : chunk.count >>> 1;
        const upper = new Chunk(chunk.base + (chunk.deltas[split] as number), this.#capacity);
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
    else this.#insertChunk(index + 1, key).write(0, 0, offset, length, volume);
  }

  /** Inserts a key below every key in the map. */
  #insertFront(key: number, offset: number, length: number, volume: number): void {
    if (this.#prependable(0, key)) this.#prepend(0, key, offset, length, volume);
    else this.#insertChunk(0, key).write(0, 0, offset, length, volume);
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
    const deltas = chunk.deltas;
    for (let i = 1; i <= chunk.count; i++) deltas[i] = (deltas[i] as number) + rebase;
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
    return slot < chunk.count && chunk.base + (chunk.deltas[slot] as number) === key;
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
