import type { Slot, Volume } from './volume.ts';

/**
 * Volume space held by uploads still arriving from clients, capped (`maxStreamingBytes`): a
 * client that declares a large length and goes away leaves its space behind as a hole, so
 * strangers may hold only a bounded share of a volume at once.
 */
export class StreamingBudget {
  readonly #max: number;
  readonly #slots = new Map<Slot, Volume>();
  #bytes = 0;

  constructor(max: number) {
    this.#max = max;
  }

  /** Space in `volume` for an upload in flight, or undefined past the cap. */
  tryReserve(volume: Volume, length: number): Slot | undefined {
    if (this.#bytes + length > this.#max) return undefined;
    const slot = volume.reserve(length);
    this.#slots.set(slot, volume);
    this.#bytes += length;
    return slot;
  }

  /** The upload is in, or failed: its space no longer counts against the cap. */
  release(slot: Slot): void {
    if (this.#slots.delete(slot)) this.#bytes -= slot.length;
  }

  /** Bytes of `volume` reserved by uploads still arriving (which may yet fail and leave holes). */
  pendingIn(volume: Volume): number {
    let pending = 0;
    for (const [slot, holder] of this.#slots) if (holder === volume) pending += slot.length;
    return pending;
  }
}
