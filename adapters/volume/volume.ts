import { StoreError } from '../../storage/index.ts';
import { GroupCommit } from './group-commit.ts';
import {
  encodeEntries,
  type IndexEntry,
  type IndexWriter,
  MAX_VOLUME_BYTES,
} from './index-file.ts';
import { voidHeader } from './needle.ts';
import type { VolumeFile } from './volume-file.ts';

/** Space handed to one write; its index entries follow the entries of all earlier slots. */
export interface Slot {
  readonly offset: number;
  readonly length: number;
  /** Encoded index entries once the write is durable; null if it failed; undefined while open. */
  entries: Buffer | null | undefined;
}

export interface VolumeCounts {
  liveNeedles: number;
  liveBytes: number;
  deletedNeedles: number;
}

/**
 * A volume open for use: its file, its index writer, where the next append goes, and the group
 * commit that makes appends durable. Appends reserve space first (synchronously, so offsets are
 * handed out in order) and write it concurrently; index entries are still written in volume
 * order, so the index always describes a prefix of the volume.
 */
export class Volume {
  readonly file: VolumeFile;
  readonly index: IndexWriter;
  readonly counts: VolumeCounts;
  #tail: number;
  readonly #commit: GroupCommit;
  readonly #slots: Slot[] = [];

  constructor(file: VolumeFile, index: IndexWriter, counts: VolumeCounts) {
    this.file = file;
    this.index = index;
    this.counts = counts;
    this.#tail = file.size;
    this.#commit = new GroupCommit(() => file.datasync());
  }

  get id(): number {
    return this.file.id;
  }

  /** Bytes in use, including space reserved by writes in progress. */
  get tail(): number {
    return this.#tail;
  }

  reserve(length: number): Slot {
    if (this.#tail + length > MAX_VOLUME_BYTES) {
      throw new StoreError('no_space', `volume ${this.id} is full (${MAX_VOLUME_BYTES} bytes)`);
    }
    const slot: Slot = { offset: this.#tail, length, entries: undefined };
    this.#tail += length;
    this.#slots.push(slot);
    return slot;
  }

  /** Resolves once everything written to the volume before the call is on disk. */
  flush(): Promise<void> {
    return this.#commit.sync();
  }

  /** The slot's write is durable: queue its index entries behind those of earlier slots. */
  complete(slot: Slot, entries: readonly IndexEntry[]): void {
    slot.entries = encodeEntries(entries);
    this.#drain();
  }

  /**
   * The slot's write failed. The last slot gives its space back; an earlier one is marked as a
   * void needle so that scans step over it (if even that write fails, scans resync past it).
   */
  async abandon(slot: Slot): Promise<void> {
    slot.entries = null;
    if (this.#tail === slot.offset + slot.length) {
      this.#tail = slot.offset;
    } else {
      await this.file.write([voidHeader(slot.length)], slot.offset).catch(() => {});
    }
    this.#drain();
  }

  #drain(): void {
    const ready: Buffer[] = [];
    let done = 0;
    for (const slot of this.#slots) {
      if (slot.entries === undefined) break;
      if (slot.entries) ready.push(slot.entries);
      done++;
    }
    if (done === 0) return;
    this.#slots.splice(0, done);
    if (ready.length > 0) this.index.append(Buffer.concat(ready));
  }
}
