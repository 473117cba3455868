import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { volumeIds } from '../../adapters/volume/data-dir.ts';
import { verifyDataDir } from '../../adapters/volume/index.ts';
import { SUPERBLOCK_SIZE, VolumeFile } from '../../adapters/volume/volume-file.ts';
import type { CompactReport } from '../../storage/index.ts';
import {
  type Content,
  describeDifference,
  REQUEST_TIMEOUT_MS,
  readKey,
  sameContent,
} from './content.ts';
import type { Random } from './random.ts';

/**
 * The `compact` cycles of the crash loop. While the clients write (biased toward deletes and
 * replaces, so that the volumes hold garbage), `POST /admin/compact` requests go out, one or two
 * at a time (every volume with garbage, the writable volume, or one volume with garbage), and a
 * reader checks acknowledged files as the compactions move them. In most cycles the kill is
 * aimed: a random delay after a compact request was sent, within how long such requests have been
 * taking, so that it lands while the request has no answer yet (if the answer comes first, the
 * next request gets a shorter delay). In the other cycles it comes at a random delay from the
 * first request while requests follow one another, so that some land between compactions.
 *
 * After the kill, before any recovery: `verify` finds no problem; it may note, for one volume
 * only, and only one that a compaction without an answer may have been rewriting (or the newest,
 * which the store compacts in place on its own when it is full and half garbage), that the
 * compaction stopped between its two renames (the copy over `N.dat`, its index over `N.idx`; the
 * next start rebuilds that index). After the restart: no `.compact` or `.new` file is left,
 * `verify` finds no problem and counts the live files the clients know of, and no volume is
 * larger than an acknowledged compaction said it became (compacted volumes take no more appends,
 * except the writable one compacted in place, which its report says).
 */

/** Not a secret: the server only listens on 127.0.0.1 for the harness. */
export const ADMIN_TOKEN = 'torture-admin-token-0123456789';
export const ADMIN_FLAGS: readonly string[] = ['--admin-token', ADMIN_TOKEN];

export interface CompactionStats {
  /** Cycles that ran compactions. */
  cycles: number;
  /** POST /admin/compact requests sent, and those answered (200, or a broken expectation). */
  requests: number;
  answered: number;
  /** Volumes the answers reported compacted, and the bytes they said they reclaimed. */
  volumesCompacted: number;
  reclaimedBytes: number;
  /** Volumes the answers reported rewritten without reclaiming a byte. */
  rewrittenForNothing: number;
  /** Cycles whose kill came while a compact request had no answer yet. */
  killsMidCompaction: number;
  /** What such kills left: copies (`N.dat.compact`, `N.idx.compact`) start-up removed, ... */
  copiesRemoved: number;
  /** ... volumes rewritten with their old index still in place (between the two renames), ... */
  oldIndexes: number;
  /** ... and volumes rewritten by a compaction whose answer the kill took. */
  rewrittenUnanswered: number;
  /** Reads of acknowledged files checked during compact cycles (mostly while compactions ran). */
  reads: number;
}

export function emptyCompactionStats(): CompactionStats {
  return {
    cycles: 0,
    requests: 0,
    answered: 0,
    volumesCompacted: 0,
    reclaimedBytes: 0,
    rewrittenForNothing: 0,
    killsMidCompaction: 0,
    copiesRemoved: 0,
    oldIndexes: 0,
    rewrittenUnanswered: 0,
    reads: 0,
  };
}

export function formatCompaction(s: CompactionStats): string {
  return `  compaction: ${s.cycles} cycles, kills mid-compaction ${s.killsMidCompaction}; ${s.requests} requests, ${s.answered} answered (${s.volumesCompacted} volumes compacted, ${s.rewrittenForNothing} of them reclaiming nothing, ${s.reclaimedBytes} bytes reclaimed); the kills left ${s.copiesRemoved} copies removed at start-up, ${s.oldIndexes} volumes with the old index, ${s.rewrittenUnanswered} volumes rewritten without an answer; ${s.reads} reads checked during compact cycles`;
}

/** Share of cycles whose kill is aimed at a compaction without an answer. */
const AIMED_SHARE = 0.85;
/** Delays start from this guess of how long a compaction takes, until answers tell better. */
const FIRST_ESTIMATE_MS = 150;
/** The part of a new measurement in the running estimate. */
const ESTIMATE_WEIGHT = 0.3;
/** Aimed cycles let up to this many rounds of requests run to their answer first. */
const MAX_ANSWERED_ROUNDS = 1;
/** A compaction that takes longer than this is a failure (and the cycle's kill comes). */
const ANSWER_CEILING_MS = 60_000;

type Scope = 'all' | 'one';

/** What lasts from cycle to cycle: the statistics, timing estimates, and compacted sizes. */
export class Compactions {
  readonly stats = emptyCompactionStats();
  readonly #estimateMs: Record<Scope, number> = { all: FIRST_ESTIMATE_MS, one: FIRST_ESTIMATE_MS };
  /** Per volume, the smallest size an acknowledged compaction reported: it never grows again. */
  readonly #sizeBound = new Map<number, number>();

  cycle(context: CycleContext): CompactionCycle {
    return new CompactionCycle(this, context);
  }

  estimate(scope: Scope): number {
    return this.#estimateMs[scope];
  }

  observe(scope: Scope, ms: number): void {
    this.#estimateMs[scope] += ESTIMATE_WEIGHT * (ms - this.#estimateMs[scope]);
  }

  bound(volume: number, bytes: number): void {
    if (bytes < (this.#sizeBound.get(volume) ?? Number.POSITIVE_INFINITY)) {
      this.#sizeBound.set(volume, bytes);
    }
  }

  get bounds(): ReadonlyMap<number, number> {
    return this.#sizeBound;
  }
}

export interface CycleContext {
  url: string;
  dir: string;
  /** A stream of its own: how many requests go out depends on timing. */
  rng: Random;
  /** Clients write this long (random in the range) before the first compact request. */
  warmupMs: readonly [number, number];
  fail: (message: string) => void;
}

interface CompactRequest {
  target: number | undefined;
  answered: boolean;
  /** Volumes the answer reported. */
  reported: number[];
}

export class CompactionCycle {
  readonly #run: Compactions;
  readonly #context: CycleContext;
  readonly #requests: CompactRequest[] = [];
  readonly #settled: Promise<void>[] = [];
  /** Volume nonces before the first request: a new one means the volume was rewritten. */
  #nonces = new Map<number, string>();

  constructor(run: Compactions, context: CycleContext) {
    this.#run = run;
    this.#context = context;
  }

  /** Sends compact requests until the moment of the kill; says how the kill was placed. */
  async untilKill(): Promise<string> {
    const { rng, warmupMs } = this.#context;
    this.#nonces = await readNonces(this.#context.dir);
    await sleep(rng.int(warmupMs[0], warmupMs[1]));
    const aimed = rng.chance(AIMED_SHARE);
    // Aimed: the first rounds run to their answer (checked, and timed for the estimates).
    const aimedRound = rng.int(1, MAX_ANSWERED_ROUNDS + 1);
    let deadline: Timer | undefined;
    let freeDelay = 0;
    for (let round = 1; ; round++) {
      const targets = await this.#targets();
      const scope: Scope = targets.includes(undefined) ? 'all' : 'one';
      const names = targets.map((t) => (t === undefined ? 'all' : `volume ${t}`)).join(' + ');
      const answered = Promise.all(targets.map((t) => this.#send(t))).then(() => false as const);
      let kill: Timer;
      let how: string;
      if (aimed && round < aimedRound) {
        const ceiling = timer(ANSWER_CEILING_MS);
        const late = await Promise.race([answered, ceiling.fired]);
        ceiling.cancel();
        if (late) {
          this.#context.fail(`compact ${names} got no answer within ${ANSWER_CEILING_MS} ms`);
          return `kill as compact ${names} had no answer after ${ANSWER_CEILING_MS} ms`;
        }
        continue;
      }
      if (aimed) {
        // Uniform over how long requests have taken; shorter each time the answer won the race.
        const limit = Math.ceil(this.#run.estimate(scope) / 2 ** (round - aimedRound));
        const delay = rng.int(0, limit);
        kill = timer(delay);
        how = `kill ${delay} ms after compact ${names} (round ${round})`;
      } else {
        if (!deadline) {
          freeDelay = rng.int(0, Math.ceil(2 * this.#run.estimate('all')));
          deadline = timer(freeDelay);
        }
        kill = deadline;
        how = `kill ${freeDelay} ms after the first compact request (round ${round}: ${names})`;
      }
      if (await Promise.race([answered, kill.fired])) return how;
      if (kill !== deadline) kill.cancel();
    }
  }

  /**
   * After the kill: waits for the requests to settle, then checks what the kill left (see the
   * module comment). Returns the cycle's steps for the log, and the volumes rewritten or created
   * in this cycle (all their bytes were synced: a lost-cache cut must not go below their end).
   */
  async afterKill(): Promise<{ steps: string[]; rewritten: number[] }> {
    const { dir, fail } = this.#context;
    const stats = this.#run.stats;
    await Promise.allSettled(this.#settled);
    stats.cycles++;
    const unanswered = this.#requests.filter((r) => !r.answered);
    if (unanswered.length > 0) stats.killsMidCompaction++;
    const steps = [`${this.#requests.length} compact requests, ${unanswered.length} unanswered`];

    const copiesLeft = (await readdir(dir)).filter((n) =>
      /\.(dat|idx)\.compact(\.new)?$/.test(n),
    ).length;
    if (copiesLeft > 0) steps.push(`${copiesLeft} .compact files left`);
    const nonces = await readNonces(dir);
    const rewritten = [...nonces.keys()].filter((id) => this.#nonces.get(id) !== nonces.get(id));
    const reported = new Set(this.#requests.flatMap((r) => r.reported));
    const lostAnswers = rewritten.filter((id) => this.#nonces.has(id) && !reported.has(id));
    stats.rewrittenUnanswered += lostAnswers.length;
    if (lostAnswers.length > 0) steps.push(`rewritten without an answer: ${listIds(lostAnswers)}`);

    const report = await verifyDataDir({ dir });
    for (const p of report.problems) fail(`verify after the kill: ${describeProblem(p)}`);
    let oldIndex: number | undefined;
    // The store also compacts its writable (newest) volume in place on its own, when it is full
    // and half garbage: no request asked for that one.
    const newest = Math.max(...nonces.keys());
    for (const note of report.notes) {
      if (!note.message.includes('stopped between its two renames')) continue;
      const asked = unanswered.some((r) => r.target === undefined || r.target === note.volume);
      const allowed =
        oldIndex === undefined &&
        rewritten.includes(note.volume) &&
        (asked || note.volume === newest);
      if (!allowed) fail(`verify after the kill, unexpected: ${describeProblem(note)}`);
      oldIndex = note.volume;
      stats.oldIndexes++;
      steps.push(`volume ${note.volume} rewritten, its old index left`);
    }
    steps.push(`verify: ${report.notes.length} notes`);
    return { steps, rewritten };
  }

  /** After the restart and the harness's checks (see the module comment). */
  async afterRestart(startupLog: string, expectedLive: number): Promise<void> {
    const { dir, fail } = this.#context;
    const stats = this.#run.stats;
    stats.copiesRemoved +=
      startupLog.match(/removed \d+\.(dat|idx)\.compact(\.new)?, left by/g)?.length ?? 0;
    const left = (await readdir(dir)).filter((n) => /\.(compact|new)$/.test(n));
    if (left.length > 0)
      fail(`after the restart the data directory still holds ${left.join(', ')}`);
    for (const [id, bound] of this.#run.bounds) {
      const size = await stat(path.join(dir, `${id}.dat`)).then(
        (s) => s.size,
        () => undefined,
      );
      if (size === undefined) fail(`volume ${id}, compacted before, is gone`);
      else if (size > bound) {
        fail(`volume ${id} is ${size} bytes, but an acknowledged compaction left it at ${bound}`);
      }
    }
    const report = await verifyDataDir({ dir });
    for (const p of report.problems) fail(`verify after the restart: ${describeProblem(p)}`);
    if (report.live !== expectedLive) {
      fail(
        `verify after the restart counts ${report.live} live files, the clients know of ${expectedLive}`,
      );
    }
  }

  /**
   * One target, sometimes two (they queue in the store): every volume with garbage, the writable
   * volume, a volume with garbage, or the one with the most.
   */
  async #targets(): Promise<Array<number | undefined>> {
    const { rng } = this.#context;
    const volumes = await this.#volumes();
    const pick = (): number | undefined => {
      const roll = rng.next();
      const writable = volumes.find((v) => !v.sealed) ?? volumes.at(-1);
      if (roll < 0.35 || !writable) return undefined;
      if (roll < 0.55) return writable.id;
      // The volume with the most garbage, or any with some (most hold a few tombstones).
      const dirty = volumes.filter((v) => v.garbageBytes > 0);
      if (dirty.length === 0) return writable.id;
      if (roll < 0.75) return rng.pick(dirty).id;
      return dirty.reduce((most, v) => (v.garbageBytes > most.garbageBytes ? v : most)).id;
    };
    return rng.chance(0.3) ? [pick(), pick()] : [pick()];
  }

  async #volumes(): Promise<Array<{ id: number; garbageBytes: number; sealed: boolean }>> {
    try {
      const res = await fetch(`${this.#context.url}/status`, {
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const status = (await res.json()) as {
        volumes?: Array<{ id: number; garbageBytes: number; sealed: boolean }>;
      };
      return status.volumes ?? [];
    } catch {
      return [];
    }
  }

  #send(target: number | undefined): Promise<void> {
    const { url, fail } = this.#context;
    const request: CompactRequest = { target, answered: false, reported: [] };
    this.#requests.push(request);
    this.#run.stats.requests++;
    const what = `POST /admin/compact${target === undefined ? '' : `?volume=${target}`}`;
    const started = performance.now();
    const settled = (async () => {
      let res: Response;
      try {
        res = await fetch(
          `${url}/admin/compact${target === undefined ? '' : `?volume=${target}`}`,
          {
            method: 'POST',
            headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
          },
        );
      } catch {
        return; // no answer: the kill came first
      }
      request.answered = true;
      this.#run.stats.answered++;
      // The status line is the answer; the kill may still cut the JSON short.
      const body = (await res.json().catch(() => undefined)) as { compacted?: unknown } | undefined;
      if (res.status !== 200) {
        fail(`${what} answered ${res.status}: ${JSON.stringify(body)}`);
        return;
      }
      this.#run.observe(target === undefined ? 'all' : 'one', performance.now() - started);
      if (body !== undefined) this.#checkAnswer(what, target, body, request);
    })();
    this.#settled.push(settled);
    return settled;
  }

  /** The reports add up, and name the volume asked for; each compacted size is remembered. */
  #checkAnswer(
    what: string,
    target: number | undefined,
    body: { compacted?: unknown },
    request: CompactRequest,
  ): void {
    const { fail } = this.#context;
    const reports = body.compacted;
    if (!Array.isArray(reports)) {
      fail(`${what} answered 200 without a list of compacted volumes: ${JSON.stringify(body)}`);
      return;
    }
    if (target !== undefined && (reports.length !== 1 || reports[0]?.volume !== target)) {
      fail(`${what} answered reports for ${JSON.stringify(reports.map((r) => r?.volume))}`);
    }
    for (const r of reports as CompactReport[]) {
      const sound =
        Number.isSafeInteger(r.volume) &&
        r.bytesAfter >= SUPERBLOCK_SIZE &&
        r.bytesAfter <= r.bytesBefore &&
        r.reclaimedBytes === r.bytesBefore - r.bytesAfter;
      if (!sound) fail(`${what}: a report that does not add up: ${JSON.stringify(r)}`);
      request.reported.push(r.volume);
      this.#run.stats.volumesCompacted++;
      this.#run.stats.reclaimedBytes += r.reclaimedBytes;
      if (r.reclaimedBytes === 0) this.#run.stats.rewrittenForNothing++;
      // A volume compacted in place still takes appends: it may grow again.
      if (!r.inPlace) this.#run.bound(r.volume, r.bytesAfter);
    }
  }
}

/**
 * A client of compact cycles that reads acknowledged files while compactions move them: each must
 * read back whole and exact. It takes a key out of the pool while it reads it, so that no client
 * deletes or replaces it meanwhile. A read the kill cuts off proves nothing and is ignored.
 */
export async function readWhileCompacting(options: {
  url: string;
  pool: number[];
  live: ReadonlyMap<number, Content>;
  rng: Random;
  stopped: () => boolean;
  stats: CompactionStats;
  fail: (kind: 'wrongBytes' | 'other', message: string) => void;
}): Promise<void> {
  const { url, pool, live, rng, stopped, stats, fail } = options;
  while (!stopped()) {
    if (pool.length === 0) {
      await sleep(5);
      continue;
    }
    const [key] = pool.splice(rng.int(0, pool.length - 1), 1) as [number];
    const content = live.get(key);
    try {
      const read = await readKey(url, key).catch(() => undefined);
      if (read === undefined || content === undefined) continue;
      stats.reads++;
      if (read.status !== 200) {
        fail('other', `acknowledged key ${key} answered ${read.status} in a compact cycle`);
      } else if (!sameContent(read, content)) {
        fail('wrongBytes', `key ${key} in a compact cycle: ${describeDifference(read, content)}`);
      }
    } finally {
      pool.push(key);
    }
  }
}

/** Each volume's nonce (hex), read from its superblock; volumes that cannot be read are left out. */
async function readNonces(dir: string): Promise<Map<number, string>> {
  const nonces = new Map<number, string>();
  for (const id of await volumeIds(dir)) {
    const file = await VolumeFile.open(path.join(dir, `${id}.dat`), id, 'r').catch(() => undefined);
    if (!file) continue;
    nonces.set(id, file.nonce.toString('hex'));
    await file.close();
  }
  return nonces;
}

/** Volume ids for the log, the first few of a long list. */
function listIds(ids: readonly number[]): string {
  const shown = ids.slice(0, 8).join(', ');
  return ids.length > 8 ? `${ids.length} volumes (${shown}, ...)` : shown;
}

function describeProblem(p: { volume: number; offset: number; key?: number; message: string }) {
  return `volume ${p.volume}, offset ${p.offset}${p.key ? `, key ${p.key}` : ''}: ${p.message}`;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

interface Timer {
  fired: Promise<true>;
  cancel: () => void;
}

/** A delay that can be called off, so that no timer outlives its race. */
function timer(ms: number): Timer {
  let handle: NodeJS.Timeout | undefined;
  const fired = new Promise<true>((resolve) => {
    handle = setTimeout(() => resolve(true), ms);
  });
  return { fired, cancel: () => clearTimeout(handle) };
}
