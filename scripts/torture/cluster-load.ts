import type { Ledger } from './cluster-ledger.ts';
import { Random } from './random.ts';

/**
 * Concurrent clients of the cluster's crash tests, each a seeded stream of POSTs (0 B to about
 * 300 KiB, and every so often 2 to 3 MiB), GETs of live and of deleted keys, replaces and
 * deletes, until stopped. Each waits for its answer before its next request.
 */
export interface LoadOptions {
  clients: number;
  seed: number;
  /** Separates the streams of successive loads (a cycle number). */
  stream: number;
  /** Past this many live files, deletes outnumber writes. */
  maxLive: number;
  /** One write in this many (across the load) is 2 to 3 MiB. Default 40. */
  bigEvery?: number;
}

export interface Load {
  /** Asks the clients to stop after their current request; resolves once they did. */
  stop(): Promise<void>;
}

export function startLoad(ledger: Ledger, options: LoadOptions): Load {
  let stopping = false;
  let writes = 0;
  const bigEvery = options.bigEvery ?? 40;
  const crowded = () => ledger.live.size > options.maxLive;
  const client = async (index: number) => {
    const rng = new Random(options.seed, options.stream, index);
    while (!stopping) {
      // Past maxLive, deletes outnumber writes, so that what each check reads stays bounded.
      const roll = crowded() ? 0.35 + 0.65 * rng.next() : rng.next();
      if (roll < 0.45) {
        const big = ++writes % bigEvery === 1;
        await ledger.write(rng, rng.bytes(fileSize(rng, big)));
      } else if (roll < 0.7) {
        await ledger.readLive(rng);
      } else if (roll < 0.75) {
        await ledger.readRandomGone(rng);
      } else if (roll < 0.85) {
        await ledger.replace(rng, rng.bytes(fileSize(rng, false)));
      } else {
        await ledger.delete(rng);
      }
    }
  };
  const running = Promise.all(Array.from({ length: options.clients }, (_, i) => client(i)));
  return {
    async stop() {
      stopping = true;
      await running;
    },
  };
}

const KiB = 1024;
const MiB = 1024 * KiB;

/** 0 B now and then, mostly small, up to about 300 KiB; `big`: 2 to 3 MiB. */
export function fileSize(rng: Random, big: boolean): number {
  if (big) return rng.int(2 * MiB, 3 * MiB);
  const roll = rng.next();
  if (roll < 0.06) return 0;
  if (roll < 0.55) return rng.int(1, 4 * KiB);
  if (roll < 0.9) return rng.int(1, 64 * KiB);
  return rng.int(64 * KiB, 300 * KiB);
}
