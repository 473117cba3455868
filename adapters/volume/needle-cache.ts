import type { CacheStats, FileInfo, FileRead, Key } from '../../storage/index.ts';

/**
 * Haystack's Cache, in the store: the bytes and info of small files recently written or read,
 * bounded in bytes. What it holds was verified before it got here (just made durable by a
 * write, or read back with its checksum checked), so a hit costs no system call and no
 * checksum. Content under a key never changes: only a delete or a replace (the store evicts on
 * both, at once) can make an entry wrong, never time or compaction. Entries are keyed by key,
 * not location; the read path checks the key is still live and where, on every hit.
 *
 * Eviction is CLOCK: entries sit in a ring of slots that a hand sweeps. A hit only sets the
 * entry's `referenced` bit, reordering nothing, so it allocates nothing and touches one entry;
 * when room is needed, the hand clears the bit of each referenced entry it passes (a second
 * chance) and evicts the first entry not referenced since the hand last passed it.
 */

/**
 * Off until it measures faster over HTTP: see `--cache-size` in the README. 64 MiB is what its
 * tests and the crash loop run with (`CACHE_SIZE_TESTED`).
 */
export const DEFAULT_CACHE_SIZE = 0;
export const CACHE_SIZE_TESTED = 64 * 1024 * 1024;
/** Files up to this size are cached; larger ones are read from the volume each time. */
export const CACHE_MAX_FILE = 64 * 1024;
/**
 * What an entry costs besides its data and content type, in bytes: the Map slot, the entry, the
 * frozen FileRead and FileInfo, the etag string, the Buffer and its own ArrayBuffer. Measured
 * with `node --expose-gc` on Node 20 (100,000 entries of one byte, heap plus external memory,
 * after a full GC): 470 bytes an entry; rounded up for malloc's own headers.
 */
export const ENTRY_OVERHEAD = 512;

/** Content types shared between entries: at most this many, of at most this many characters. */
const INTERNED = 256;
const INTERNED_LENGTH = 128;

interface Entry {
  readonly key: Key;
  /** What a whole-file read answers: frozen, handed to every reader as it is. */
  read: FileRead;
  readonly data: Uint8Array;
  readonly cost: number;
  referenced: boolean;
  /** Its place in the ring. */
  readonly slot: number;
}

export class NeedleCache {
  readonly maxBytes: number;
  readonly #entries = new Map<Key, Entry>();
  /** The ring the hand sweeps; a slot freed by an eviction or a delete is reused. */
  readonly #slots: Array<Entry | undefined> = [];
  readonly #freeSlots: number[] = [];
  #hand = 0;
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  /** Content types shared by entries (see #compact). */
  readonly #types = new Map<string, string>();

  constructor(maxBytes: number) {
    if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) {
      throw new RangeError(`cacheSize must be a byte count, got ${maxBytes}`);
    }
    this.maxBytes = maxBytes;
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /** Whether a file of this size and content type would be kept. */
  accepts(size: number, contentType: string): boolean {
    return size <= CACHE_MAX_FILE && costOf(size, contentType) <= this.maxBytes;
  }

  /** The whole-file read of `key`, if held; counted as a hit or a miss. */
  get(key: Key): FileRead | undefined {
    if (this.maxBytes === 0) return undefined;
    const entry = this.#entries.get(key);
    if (entry === undefined) {
      this.#misses++;
      return undefined;
    }
    this.#hits++;
    entry.referenced = true;
    return entry.read;
  }

  /**
   * Keeps a copy of verified `data` as the file `info` describes, if it is small enough, and
   * answers the whole-file read to serve (of the copy, or of `data` when not kept). The copy is
   * the cache's own: the caller's buffer may be reused or changed afterwards.
   */
  fill(info: FileInfo, data: Uint8Array): FileRead {
    if (!this.accepts(data.byteLength, info.contentType)) return { info, body: data };
    const own = Buffer.allocUnsafeSlow(data.byteLength);
    own.set(data);
    const cost = costOf(own.byteLength, info.contentType);
    this.delete(info.key);
    this.#makeRoom(cost);
    const read = frozenRead(this.#compact(info), own);
    const slot = this.#freeSlots.pop() ?? this.#slots.length;
    const entry: Entry = { key: info.key, read, data: own, cost, referenced: false, slot };
    this.#slots[slot] = entry;
    this.#entries.set(info.key, entry);
    this.#bytes += cost;
    return entry.read;
  }

  /**
   * The file moved (compaction): the entry's info is brought to its new place. Answers the
   * entry's new read.
   */
  moved(key: Key, volume: number, offset: number): FileRead | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    entry.read = frozenRead(this.#compact({ ...entry.read.info, volume, offset }), entry.data);
    return entry.read;
  }

  /** The key's file is gone (deleted or replaced): it must never be answered from here. */
  delete(key: Key): void {
    const entry = this.#entries.get(key);
    if (entry !== undefined) this.#remove(entry);
  }

  #remove(entry: Entry): void {
    this.#entries.delete(entry.key);
    this.#slots[entry.slot] = undefined;
    this.#freeSlots.push(entry.slot);
    this.#bytes -= entry.cost;
  }

  stats(): CacheStats {
    return {
      hits: this.#hits,
      misses: this.#misses,
      bytes: this.#bytes,
      entries: this.#entries.size,
      maxBytes: this.maxBytes,
    };
  }

  /**
   * The info as the cache keeps it, at a third of what a FileInfo fresh from a read costs
   * (measured: 137 against 553 bytes of heap): one object of a fixed shape, the etag as one flat
   * string rather than the pieces it was concatenated from, and content types shared between
   * entries (a store holds few distinct ones; at most INTERNED of them, short ones, are shared).
   */
  #compact(info: FileInfo): FileInfo {
    const { key, size, volume, offset, cookie } = info;
    let contentType = this.#types.get(info.contentType);
    if (contentType === undefined) {
      contentType = info.contentType;
      if (this.#types.size < INTERNED && contentType.length <= INTERNED_LENGTH) {
        this.#types.set(contentType, contentType);
      }
    }
    const etag = Buffer.from(info.etag, 'latin1').toString('latin1');
    return { key, size, volume, offset, cookie, contentType, etag };
  }

  /** Evicts until `cost` more bytes fit: CLOCK's hand sweeps, giving referenced entries a second chance. */
  #makeRoom(cost: number): void {
    const slots = this.#slots;
    while (this.#bytes + cost > this.maxBytes && this.#entries.size > 0) {
      if (this.#hand >= slots.length) this.#hand = 0;
      const entry = slots[this.#hand++];
      if (entry === undefined) continue;
      if (entry.referenced) entry.referenced = false;
      else this.#remove(entry);
    }
  }
}

function costOf(size: number, contentType: string): number {
  return size + contentType.length + ENTRY_OVERHEAD;
}

function frozenRead(info: FileInfo, body: Uint8Array): FileRead {
  return Object.freeze({ info: Object.freeze(info), body });
}
