import type { StoreObserver, StoreTelemetry } from '../../storage/index.ts';
import { HistogramTally } from './family.ts';
import { DURATION_BUCKETS } from './route-tally.ts';

/** Writes made durable by one flush: 1 to 1024, doubling. */
export const WRITES_PER_FLUSH_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024];

/** What a store's telemetry events added up to, since the app subscribed. */
export class TelemetryTally {
  flushes = 0;
  readonly writesPerFlush = new HistogramTally(WRITES_PER_FLUSH_BUCKETS);
  readonly flushDuration = new HistogramTally(DURATION_BUCKETS);
  corruptReads = 0;
  compactions = 0;
  reclaimedBytes = 0;

  /** Subscribes for the store's lifetime: an app has no close, and outlives none of its stores. */
  constructor(telemetry: StoreTelemetry) {
    const observer: StoreObserver = {
      flushed: (writes, seconds) => {
        this.flushes++;
        this.writesPerFlush.observe(writes);
        this.flushDuration.observe(seconds);
      },
      corruptRead: () => {
        this.corruptReads++;
      },
      compacted: (report) => {
        this.compactions++;
        this.reclaimedBytes += Math.max(0, report.reclaimedBytes);
      },
    };
    telemetry.observe(observer);
  }
}
