import { mkdtemp, open, readdir, rm, stat, truncate, unlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { volumeIds } from '../../adapters/volume/data-dir.ts';
import { verifyDataDir } from '../../adapters/volume/index.ts';
import { NeedleKind, needleLength, TOMBSTONE_LENGTH } from '../../adapters/volume/needle.ts';
import { scanVolume } from '../../adapters/volume/scan.ts';
import { SUPERBLOCK_SIZE, VolumeFile } from '../../adapters/volume/volume-file.ts';
import {
  crash,
  killAll,
  runCli,
  type ServerRun,
  startServer,
  stop,
} from '../support/cli-process.ts';
import {
  ADMIN_FLAGS,
  type CompactionStats,
  Compactions,
  formatCompaction,
  readWhileCompacting,
} from './compaction.ts';
import {
  type Content,
  describeDifference,
  REQUEST_TIMEOUT_MS,
  type Read,
  readKey,
  sameContent,
  sha256,
} from './content.ts';
import { eachLimited } from './each-limited.ts';
import { Random } from './random.ts';

/**
 * The crash-loop harness. Each cycle: several clients POST, PUT and DELETE random files against a
 * server child process (one upload in five chunked, which past 1 MiB is spooled to disk first)
 * and record every answer; a random delay after the first acknowledged
 * write the server is killed with SIGKILL. In `kill` cycles `verify` must then find no problem in
 * what the kill left. In `lost-cache` cycles the machine crash is simulated on top (each volume
 * cut to a random length between the end of its last acknowledged needle and its length, or
 * zeroed from there to its end as when its size was on disk but not the data, the index files
 * cut or dropped). Then the index files are sometimes dropped or rebuilt with
 * `reload`; the server is started again and everything the clients were told is checked:
 *
 * - every acknowledged live key reads back byte-exact (SHA-256) with its content type;
 * - every acknowledged delete and replace is still gone (404);
 * - no key was handed out twice, and the next key is above every acknowledged one;
 * - writes that got no answer are either there whole (a key that reads back exactly what was sent)
 *   or absent, never partial; keys they touched read back their old content or 404;
 * - GET /status counts exactly the files the clients know of;
 * - no spool file of a chunked upload cut by the kill is left after the restart.
 *
 * `compact` cycles (torture/compaction.ts) run online compactions while the clients write, kill
 * the server while one has no answer yet (in most cycles), and check what `verify` finds after the
 * kill and after the restart. `mixed` picks kill, lost-cache or compact for each cycle.
 *
 * At the end the server is stopped gracefully and `verify` must find no problem.
 */
export type TortureMode = 'kill' | 'lost-cache' | 'compact' | 'mixed';
export const TORTURE_MODES: readonly TortureMode[] = ['kill', 'lost-cache', 'compact', 'mixed'];

/** What one cycle does; `mixed` picks one of these for each cycle. */
type CycleKind = Exclude<TortureMode, 'mixed'>;

export interface TortureOptions {
  cycles: number;
  mode: TortureMode;
  seed: number;
  /**
   * The server's --fsync; `lost-cache` and `mixed` need `always` (they assume acknowledged = on
   * disk); `never` suits `kill` and `compact`, whose crashes are process crashes.
   */
  fsync?: 'always' | 'never';
  /** Concurrent clients during each cycle. Default 4. */
  clients?: number;
  /** Largest file sent, in bytes. Default 1 MiB. */
  maxFileSize?: number;
  /**
   * The kill comes this many milliseconds (random in the range) after the cycle's first
   * acknowledged write; in compact cycles the first compact request does. Default 0 to 400.
   */
  killDelayMs?: readonly [number, number];
  /** The server's --volume-size (small volumes exercise the roll-over); default the server's. */
  volumeSize?: string;
  /** Data directory, left in place; default a fresh temp dir, removed at the end. */
  dir?: string;
  /** One line per cycle and per finding. */
  log?: (line: string) => void;
}

export interface TortureResult {
  seed: number;
  cycles: number;
  /** Writes (POST, PUT, DELETE) the server acknowledged. */
  acknowledged: number;
  /** Acknowledged live files that did not read back (404, 5xx, or unreadable). */
  lost: number;
  /** Reads that answered other bytes or another content type than stored (or a partial write). */
  wrongBytes: number;
  /** Keys handed out twice in acknowledged answers. */
  duplicateKeys: number;
  /** Acknowledged deletes and replaces whose old key came back. */
  resurrected: number;
  /** Answers other than the expected 2xx during the writes, and other broken expectations. */
  otherFailures: number;
  /** Writes that got no answer because of the kill, and what became of them. */
  unacknowledged: { landedWhole: number; absent: number };
  /** Replaces that got no answer and left the new key live without retiring the old one. */
  halfReplaces: number;
  /** Bytes cut off volumes in lost-cache cycles, in total. */
  bytesCut: number;
  /** Compact cycles: requests, answers, kills that landed mid-compaction; absent without them. */
  compaction?: CompactionStats;
  /** The first failures, in words, with their cycle. */
  failures: string[];
  durationMs: number;
}

export function failed(result: TortureResult): boolean {
  return (
    result.lost +
      result.wrongBytes +
      result.duplicateKeys +
      result.resurrected +
      result.otherFailures >
    0
  );
}

export function formatResult(result: TortureResult): string {
  const r = result;
  return [
    `cycles ${r.cycles}, acknowledged writes ${r.acknowledged}, lost ${r.lost}, wrong bytes ${r.wrongBytes}, duplicate keys ${r.duplicateKeys}`,
    `  resurrected ${r.resurrected}, other failures ${r.otherFailures}; unacknowledged writes: ${r.unacknowledged.landedWhole} landed whole, ${r.unacknowledged.absent} absent; half-applied replaces ${r.halfReplaces}; bytes cut (lost cache) ${r.bytesCut}; ${(r.durationMs / 1000).toFixed(1)} s; seed ${r.seed}`,
    ...(r.compaction ? [formatCompaction(r.compaction)] : []),
  ].join('\n');
}

interface PendingWrite {
  kind: 'post' | 'put';
  content: Content;
  /** The key a PUT replaces. */
  replaces?: number;
}

const CONTENT_TYPES = [
  undefined, // none sent: application/octet-stream
  'image/jpeg',
  'text/plain; charset=utf-8',
  'application/x-haystack-torture',
  'video/mp4',
];
const OCTET_STREAM = 'application/octet-stream';
/** RFC 9110's tchar: what a media type's type and subtype are made of. */
const TOKEN_CHARS = [
  ..."!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
];
const MAX_FAILURES_KEPT = 50;
/** How long a child may take to print its listening line or to exit before it is a failure. */
const CHILD_WAIT_MS = 60_000;
const CHECK_CONCURRENCY = 8;
const MAX_LIVE = 300;
/**
 * Compact cycles last as long as their compactions, which grow with the number of volumes: past
 * this many acknowledged writes their clients only trickle (one write each per pause), so that
 * what every later cycle checks does not balloon.
 */
const COMPACT_CYCLE_WRITES = 300;
const TRICKLE_PAUSE_MS = 250;
/** A cycle whose writes get no answer for this long is killed anyway (and that is reported). */
const FIRST_ACK_CEILING_MS = 30_000;

export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  const torture = new Torture(options);
  return torture.run();
}

class Torture {
  readonly #options: Required<Omit<TortureOptions, 'dir' | 'log' | 'volumeSize'>>;
  readonly #serverFlags: string[];
  readonly #log: (line: string) => void;
  readonly #dirOption: string | undefined;
  readonly #result: TortureResult;

  /** Acknowledged live files. */
  readonly #live = new Map<number, Content>();
  /** Acknowledged deleted or replaced keys. */
  readonly #gone = new Set<number>();
  /**
   * Keys whose state the coming crash leaves open: acknowledged files that a DELETE or PUT without
   * an answer touched. After the restart each must read back its content or be gone, and then is
   * settled into `#live` or `#gone` (start-up syncs what it finds, so the state stays).
   */
  readonly #uncertain = new Map<number, Content>();
  /** Every key an acknowledged answer gave, to catch one given twice. */
  readonly #issued = new Set<number>();
  #maxIssued = 0;
  /** Per volume, where its acknowledged needles end: a lost-cache cut never goes below. */
  readonly #durableEnd = new Map<number, number>();
  /** Acknowledged deletes (and writes whose answer lost its offset) not yet located on disk. */
  readonly #unlocated: Array<{ key: number; kind: NeedleKind }> = [];
  /**
   * Keys whose state an unanswered write set (a file that landed, a key it retired): served so
   * since a restart, so they must stay, but never acknowledged. Told apart in failures.
   */
  readonly #servedUnanswered = new Set<number>();
  /** Resolves the current cycle's wait for its first acknowledged write. */
  #onAcknowledged: () => void = () => {};
  /** Present when the mode has compact cycles. */
  readonly #compactions: Compactions | undefined;

  constructor(options: TortureOptions) {
    this.#options = {
      cycles: options.cycles,
      mode: options.mode,
      seed: options.seed >>> 0,
      fsync: options.fsync ?? 'always',
      clients: options.clients ?? 4,
      maxFileSize: options.maxFileSize ?? 1024 * 1024,
      killDelayMs: options.killDelayMs ?? [0, 400],
    };
    // The cache is off by default; the crash loop runs with it on, so kills land on it too.
    this.#serverFlags = ['--fsync', this.#options.fsync, '--cache-size', '64M'];
    if (options.volumeSize !== undefined)
      this.#serverFlags.push('--volume-size', options.volumeSize);
    const { mode } = this.#options;
    if (mode === 'compact' || mode === 'mixed') {
      this.#compactions = new Compactions();
      this.#serverFlags.push(...ADMIN_FLAGS);
    }
    if ((mode === 'lost-cache' || mode === 'mixed') && this.#options.fsync !== 'always') {
      throw new RangeError(
        'the lost-cache simulation assumes that acknowledged means on disk: use --fsync always',
      );
    }
    this.#log = options.log ?? (() => {});
    this.#dirOption = options.dir;
    this.#result = {
      seed: this.#options.seed,
      cycles: 0,
      acknowledged: 0,
      lost: 0,
      wrongBytes: 0,
      duplicateKeys: 0,
      resurrected: 0,
      otherFailures: 0,
      unacknowledged: { landedWhole: 0, absent: 0 },
      halfReplaces: 0,
      bytesCut: 0,
      ...(this.#compactions ? { compaction: this.#compactions.stats } : {}),
      failures: [],
      durationMs: 0,
    };
  }

  async run(): Promise<TortureResult> {
    const started = performance.now();
    const dir = this.#dirOption ?? (await mkdtemp(path.join(os.tmpdir(), 'haystack-torture-')));
    const serverFlags = this.#serverFlags;
    let server: ServerRun | undefined;
    try {
      server = await startServer(dir, serverFlags, { limitMs: CHILD_WAIT_MS });
      for (let cycle = 1; cycle <= this.#options.cycles; cycle++) {
        server = await this.#cycle(cycle, dir, server, serverFlags);
        this.#result.cycles = cycle;
        if (!server) break;
      }
      if (server) {
        const exit = await stop(server);
        if (exit.code !== 0) this.#fail('end', 'other', `graceful stop exited ${exit.code}`);
        const report = await verifyDataDir({ dir });
        for (const p of report.problems) {
          this.#fail(
            'end',
            'other',
            `verify: volume ${p.volume}, offset ${p.offset}${p.key ? `, key ${p.key}` : ''}: ${p.message}`,
          );
        }
      }
    } catch (err) {
      this.#fail(this.#result.cycles + 1, 'other', `harness stopped: ${(err as Error).message}`);
    } finally {
      await killAll();
      if (!this.#dirOption) await rm(dir, { recursive: true, force: true });
    }
    this.#result.durationMs = performance.now() - started;
    return this.#result;
  }

  /** One cycle; returns the restarted server, or undefined when it could not start. */
  async #cycle(
    cycle: number,
    dir: string,
    server: ServerRun,
    serverFlags: readonly string[],
  ): Promise<ServerRun | undefined> {
    const rng = new Random(this.#options.seed, cycle);
    const { mode } = this.#options;
    const kind: CycleKind =
      mode === 'mixed' ? rng.pick(['kill', 'lost-cache', 'compact'] as const) : mode;
    const compaction =
      kind === 'compact'
        ? this.#compactions?.cycle({
            url: server.url,
            dir,
            // A stream of its own: how many requests a cycle sends depends on timing.
            rng: new Random(this.#options.seed, cycle, 0x636f),
            warmupMs: this.#options.killDelayMs,
            fail: (message) => this.#fail(cycle, 'other', message),
          })
        : undefined;
    const firstKey = (await this.#status(server.url)).nextKey;

    // Writes, then the kill.
    const unanswered: PendingWrite[] = [];
    const acknowledgedBefore = this.#result.acknowledged;
    const [low, high] = this.#options.killDelayMs;
    const delay = rng.int(low, high);
    // The delay runs from the first acknowledged write (or from a ceiling if none comes), so that
    // every cycle has something to check however slow the machine is.
    const firstAck = new Promise<void>((resolve) => {
      this.#onAcknowledged = resolve;
    });
    const writes = this.#write(cycle, server.url, unanswered, kind === 'compact');
    let ceiling: NodeJS.Timeout | undefined;
    const acknowledged = await Promise.race([
      firstAck.then(() => true),
      new Promise<boolean>((resolve) => {
        ceiling = setTimeout(() => resolve(false), FIRST_ACK_CEILING_MS);
      }),
    ]);
    clearTimeout(ceiling);
    if (!acknowledged) {
      this.#fail(cycle, 'other', `no write acknowledged within ${FIRST_ACK_CEILING_MS} ms`);
    }
    let killed = `kill ${delay} ms after the first acknowledgement`;
    if (compaction) killed = await compaction.untilKill();
    else await new Promise((resolve) => setTimeout(resolve, delay));
    writes.stop();
    await crash(server);
    await writes.done;

    const steps: string[] = [killed];
    if (kind === 'lost-cache') {
      steps.push(...(await this.#loseCache(dir, rng)));
    } else if (compaction) {
      const { steps: found, rewritten } = await compaction.afterKill();
      steps.push(...found);
      // A compaction syncs its whole copy before renaming it in: later cuts must spare it.
      for (const id of rewritten) {
        this.#durable(id, (await stat(path.join(dir, `${id}.dat`))).size);
      }
    } else {
      // What kill -9 leaves (torn tails, unfinished writes, a lagging index) is no problem.
      const report = await verifyDataDir({ dir });
      for (const p of report.problems) {
        this.#fail(
          cycle,
          'other',
          `verify after the kill: volume ${p.volume}, offset ${p.offset}${p.key ? `, key ${p.key}` : ''}: ${p.message}`,
        );
      }
      steps.push(`verify: ${report.notes.length} notes`);
    }
    const recovery = rng.pick(['none', 'drop-idx', 'reload'] as const);
    if (recovery === 'drop-idx') {
      await this.#dropIndexes(dir);
      steps.push('index files dropped');
    } else if (recovery === 'reload') {
      const reload = await runCli(['reload', '--data', dir], { limitMs: CHILD_WAIT_MS });
      if (reload.code !== 0) {
        this.#fail(cycle, 'other', `reload exited ${reload.code}: ${reload.stderr}`);
      }
      steps.push('reload');
    }

    const spooled = await spoolFiles(dir);
    if (spooled > 0) steps.push(`${spooled} chunked uploads cut mid-spool`);

    let restarted: ServerRun;
    const restarting = performance.now();
    try {
      restarted = await startServer(dir, serverFlags, { limitMs: CHILD_WAIT_MS });
    } catch (err) {
      this.#fail(cycle, 'other', `the server did not start again: ${(err as Error).message}`);
      return undefined;
    }
    if ((await spoolFiles(dir)) > 0) {
      this.#fail(cycle, 'other', 'start-up left spool files of cut uploads behind');
    }
    // Start-up cut any torn tail and synced every volume before serving it (also after `reload`,
    // which only reads): all that the volumes now hold is on disk, and a later lost-cache cut may
    // not go below it.
    for (const id of await volumeIds(dir)) {
      this.#durable(id, (await stat(path.join(dir, `${id}.dat`))).size);
    }
    const checking = performance.now();
    await this.#check(cycle, restarted.url, firstKey, unanswered);
    await compaction?.afterRestart(restarted.stdout(), this.#live.size);
    const acked = this.#result.acknowledged - acknowledgedBefore;
    const ms = (from: number, to = performance.now()) => Math.round(to - from);
    this.#log(
      `cycle ${cycle}: ${acked} acknowledged, ${unanswered.length} unanswered; ${steps.join(', ')}; ${this.#live.size} live, ${this.#gone.size} gone, ${this.#uncertain.size} uncertain (restart ${ms(restarting, checking)} ms, check ${ms(checking)} ms)`,
    );
    return restarted;
  }

  /**
   * Starts the clients; `stop` makes them send nothing more, `done` settles once all are idle.
   * While compactions run, the clients delete and replace more (compaction gets garbage to drop)
   * and one more client reads acknowledged files back.
   */
  #write(cycle: number, url: string, unanswered: PendingWrite[], compacting: boolean) {
    let stopped = false;
    /** Live keys a client may PUT or DELETE (or the reader read): one client at a time per key. */
    const pool = [...this.#live.keys()];
    const [deletes, replaces] = compacting ? [0.25, 0.4] : [0.2, 0.25];
    const trickleAfter = this.#result.acknowledged + COMPACT_CYCLE_WRITES;
    const client = async (id: number) => {
      const rng = new Random(this.#options.seed, cycle, id + 1);
      while (!stopped) {
        if (compacting && this.#result.acknowledged >= trickleAfter) {
          await new Promise((resolve) => setTimeout(resolve, TRICKLE_PAUSE_MS));
          if (stopped) break;
        }
        const bias = this.#live.size > MAX_LIVE ? deletes + 0.3 : deletes;
        const roll = rng.next();
        if (pool.length > 0 && roll < bias) {
          const key = takeRandom(pool, rng);
          await this.#delete(cycle, url, key);
        } else if (pool.length > 0 && roll < bias + replaces) {
          const key = takeRandom(pool, rng);
          await this.#upload(cycle, url, rng, key, pool, unanswered);
        } else {
          await this.#upload(cycle, url, rng, undefined, pool, unanswered);
        }
      }
    };
    const clients = Array.from({ length: this.#options.clients }, (_, i) => client(i));
    const stats = this.#compactions?.stats;
    if (compacting && stats) {
      const reader = readWhileCompacting({
        url,
        pool,
        live: this.#live,
        rng: new Random(this.#options.seed, cycle, 0x7265),
        stopped: () => stopped,
        stats,
        fail: (kind, message) => this.#fail(cycle, kind, message),
      });
      clients.push(reader);
    }
    const done = Promise.all(clients);
    return {
      stop: () => {
        stopped = true;
      },
      done,
    };
  }

  async #upload(
    cycle: number,
    url: string,
    rng: Random,
    replaces: number | undefined,
    pool: number[],
    unanswered: PendingWrite[],
  ): Promise<void> {
    const bytes = rng.bytes(this.#fileSize(rng));
    const sent = this.#contentType(rng);
    const content: Content = {
      sha256: sha256(bytes),
      size: bytes.byteLength,
      contentType: sent ?? OCTET_STREAM,
    };
    const isPut = replaces !== undefined;
    // One upload in five goes chunked (no Content-Length): past 1 MiB the server spools it to
    // disk before it reaches a volume, so kills also land mid-spool.
    const chunked = rng.chance(0.2);
    let res: Response;
    try {
      res = await fetch(isPut ? `${url}/file/${replaces}` : `${url}/file`, {
        method: isPut ? 'PUT' : 'POST',
        body: chunked ? inPieces(bytes) : bytes,
        headers: sent === undefined ? {} : { 'content-type': sent },
        ...(chunked ? { duplex: 'half' } : {}),
      } as RequestInit);
    } catch {
      unanswered.push({ kind: isPut ? 'put' : 'post', content, ...(isPut ? { replaces } : {}) });
      if (replaces !== undefined) this.#makeUncertain(replaces);
      return;
    }
    // The status line and Location are the acknowledgement; the JSON may be cut off by the kill.
    const json = (await res.json().catch(() => undefined)) as
      | { key?: number; volume?: number; offset?: number; size?: number; contentType?: string }
      | undefined;
    const expected = isPut ? 200 : 201;
    const key = Number(res.headers.get('location')?.split('/').pop());
    if (res.status !== expected || !Number.isSafeInteger(key) || key < 1) {
      this.#fail(cycle, 'other', `${isPut ? 'PUT' : 'POST'} answered ${res.status}`);
      if (replaces !== undefined) this.#makeUncertain(replaces);
      return;
    }
    this.#result.acknowledged++;
    this.#onAcknowledged();
    this.#acknowledgeKey(cycle, key);
    if (json?.key !== undefined && json.key !== key) {
      this.#fail(cycle, 'other', `answer says key ${json.key}, Location says ${key}`);
    }
    if (replaces !== undefined) {
      this.#live.delete(replaces);
      this.#gone.add(replaces);
    }
    this.#live.set(key, content);
    pool.push(key);
    if (json?.volume !== undefined && json.offset !== undefined && json.contentType !== undefined) {
      const typeLength = Buffer.byteLength(json.contentType, 'latin1');
      const end =
        json.offset + needleLength(typeLength, content.size) + (isPut ? TOMBSTONE_LENGTH : 0);
      this.#durable(json.volume, end);
    } else {
      this.#unlocate(key, NeedleKind.file);
      if (replaces !== undefined) this.#unlocate(replaces, NeedleKind.tombstone);
    }
  }

  async #delete(cycle: number, url: string, key: number): Promise<void> {
    let res: Response;
    try {
      res = await fetch(`${url}/file/${key}`, { method: 'DELETE' });
      await res.arrayBuffer().catch(() => {});
    } catch {
      this.#makeUncertain(key);
      return;
    }
    if (res.status !== 200) {
      this.#fail(cycle, 'other', `DELETE ${key} answered ${res.status}`);
      this.#makeUncertain(key);
      return;
    }
    this.#result.acknowledged++;
    this.#onAcknowledged();
    this.#live.delete(key);
    this.#gone.add(key);
    // The answer does not say where the tombstone is: found by a scan if a cut needs it.
    this.#unlocate(key, NeedleKind.tombstone);
  }

  /** An acknowledged needle whose place in its volume no answer gave (only cuts need it). */
  #unlocate(key: number, kind: NeedleKind): void {
    if (this.#options.mode !== 'kill') this.#unlocated.push({ key, kind });
  }

  /**
   * The machine crash: each volume is cut to a random length from the end of its last
   * acknowledged needle (all of which is on disk with --fsync always) to its length, and each
   * index file is cut at a random length or dropped.
   */
  async #loseCache(dir: string, rng: Random): Promise<string[]> {
    const steps: string[] = [];
    const ids = await volumeIds(dir);
    for (const id of ids) await this.#locate(path.join(dir, `${id}.dat`), id);
    // What no tail held lies below a floor already (or is lost, which the checks will tell).
    this.#unlocated.length = 0;
    for (const id of ids) {
      const file = path.join(dir, `${id}.dat`);
      const { size } = await stat(file);
      const floor = Math.max(SUPERBLOCK_SIZE, this.#durableEnd.get(id) ?? SUPERBLOCK_SIZE);
      if (size <= floor) continue;
      const roll = rng.next();
      const cut = roll < 0.2 ? floor : roll < 0.3 ? size : rng.int(floor, size);
      if (cut < size && rng.next() < 0.5) {
        await truncate(file, cut);
        this.#result.bytesCut += size - cut;
        steps.push(`volume ${id} cut to ${cut} of ${size} bytes`);
      } else if (cut < size) {
        // The store writes zeros ahead of its tail and flushes them: the file's size survives
        // the crash, the data written over the zeros since the last flush does not.
        await zeroFrom(file, cut, size);
        this.#result.bytesCut += size - cut;
        steps.push(`volume ${id} zeroed from ${cut} to its end (${size} bytes)`);
      }
    }
    for (const name of await readdir(dir)) {
      if (!name.endsWith('.idx')) continue;
      const file = path.join(dir, name);
      const roll = rng.next();
      if (roll < 0.4) {
        await unlink(file);
        steps.push(`${name} dropped`);
      } else if (roll < 0.9) {
        const { size } = await stat(file);
        const cut = rng.int(0, size);
        await truncate(file, cut);
        steps.push(`${name} cut to ${cut} of ${size} bytes`);
      }
    }
    return steps;
  }

  /**
   * Finds acknowledged needles whose place the answers did not give (tombstones of deletes) in
   * the part of a volume a cut may remove, and raises that volume's floor above them.
   */
  async #locate(file: string, id: number): Promise<void> {
    if (this.#unlocated.length === 0) return;
    const wanted = new Map(this.#unlocated.map((u) => [`${u.kind}:${u.key}`, u]));
    const from = this.#durableEnd.get(id) ?? SUPERBLOCK_SIZE;
    if ((await stat(file)).size < SUPERBLOCK_SIZE) return;
    const volume = await VolumeFile.open(file, id, 'r');
    try {
      await scanVolume(
        volume,
        (event) => {
          if (event.type !== 'needle') return;
          const name = `${event.header.kind}:${event.header.key}`;
          if (!wanted.has(name)) return;
          wanted.delete(name);
          this.#durable(id, event.offset + event.length);
        },
        { from },
      );
    } finally {
      await volume.close();
    }
    const left = new Set(wanted.keys());
    const kept = this.#unlocated.filter((u) => left.has(`${u.kind}:${u.key}`));
    this.#unlocated.splice(0, this.#unlocated.length, ...kept);
  }

  async #dropIndexes(dir: string): Promise<void> {
    for (const name of await readdir(dir)) {
      if (name.endsWith('.idx')) await unlink(path.join(dir, name));
    }
  }

  /** Everything the clients were told, checked against the restarted server. */
  async #check(
    cycle: number,
    url: string,
    firstKey: number,
    unanswered: PendingWrite[],
  ): Promise<void> {
    const status = await this.#status(url);

    await eachLimited([...this.#live], CHECK_CONCURRENCY, async ([key, content]) => {
      const read = await readKey(url, key);
      if (read.status !== 200 && this.#servedUnanswered.has(key)) {
        this.#fail(
          cycle,
          'other',
          `key ${key}, an unanswered write that landed and was served after a restart, answered ${read.status}: a later crash took it`,
        );
      } else if (read.status !== 200) {
        this.#fail(cycle, 'lost', `acknowledged key ${key} answered ${read.status}`);
      } else if (!sameContent(read, content)) {
        this.#fail(cycle, 'wrongBytes', `key ${key}: ${describeDifference(read, content)}`);
      }
    });

    await eachLimited([...this.#gone], CHECK_CONCURRENCY, async (key) => {
      const res = await fetch(`${url}/file/${key}`, {
        method: 'HEAD',
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      if (res.status !== 404 && this.#servedUnanswered.has(key)) {
        this.#fail(
          cycle,
          'other',
          `key ${key}, gone after a restart through a DELETE or PUT that got no answer, came back after a later crash`,
        );
      } else if (res.status !== 404) {
        this.#fail(cycle, 'resurrected', `deleted or replaced key ${key} answered ${res.status}`);
      }
    });

    const present = new Set<number>();
    const landed = new Map<number, PendingWrite>();
    const unmatched = [...unanswered];
    /** The unanswered write of this cycle that sent exactly what `read` holds, taken once. */
    const takeMatch = (read: Read): PendingWrite | undefined => {
      const at =
        read.status === 200 ? unmatched.findIndex((w) => sameContent(read, w.content)) : -1;
      return at < 0 ? undefined : (unmatched.splice(at, 1)[0] as PendingWrite);
    };
    await eachLimited([...this.#uncertain], CHECK_CONCURRENCY, async ([key, content]) => {
      const read = await readKey(url, key);
      if (read.status === 404) return;
      if (read.status === 200 && sameContent(read, content)) {
        present.add(key);
        return;
      }
      // Another write under this acknowledged key: the key was handed out twice.
      const write = takeMatch(read);
      if (write) {
        landed.set(key, write);
        this.#fail(cycle, 'duplicateKeys', `key ${key} was handed out again, to another write`);
        return;
      }
      this.#fail(
        cycle,
        'wrongBytes',
        `key ${key} (state left open by a crash) answered ${read.status}: ${describeDifference(read, content)}`,
      );
    });

    // Keys handed out in this cycle that no answer named: they must hold an unanswered write whole.
    const probe: number[] = [];
    for (let key = firstKey; key < status.nextKey; key++) {
      if (!this.#live.has(key) && !this.#gone.has(key) && !this.#uncertain.has(key)) {
        probe.push(key);
      }
    }
    await eachLimited(probe, CHECK_CONCURRENCY, async (key) => {
      const read = await readKey(url, key);
      if (read.status === 404) return;
      const write = takeMatch(read);
      if (!write) {
        this.#fail(
          cycle,
          'wrongBytes',
          `key ${key}, never acknowledged, answered ${read.status} with ${read.size} bytes of ${read.contentType} that no unanswered write sent`,
        );
        return;
      }
      landed.set(key, write);
    });
    this.#result.unacknowledged.landedWhole += landed.size;
    this.#result.unacknowledged.absent += unmatched.length;
    for (const [key, write] of landed) {
      if (write.replaces !== undefined && present.has(write.replaces)) {
        this.#result.halfReplaces++;
        this.#log(
          `cycle ${cycle}: unanswered replace of key ${write.replaces} left both it and its new key ${key} live`,
        );
      }
    }

    // What the restart shows is on disk for good (start-up synced it): settle the open states.
    // A landed write now counts as stored, a key found gone stays gone.
    for (const [key, content] of this.#uncertain) {
      if (present.has(key)) this.#live.set(key, content);
      else {
        this.#gone.add(key);
        this.#servedUnanswered.add(key);
      }
    }
    this.#uncertain.clear();
    for (const [key, write] of landed) {
      this.#servedUnanswered.add(key);
      this.#live.set(key, write.content);
      this.#gone.delete(key);
      this.#issued.add(key);
      if (key > this.#maxIssued) this.#maxIssued = key;
    }

    const expectedLive = this.#live.size;
    if (status.liveNeedles !== expectedLive) {
      this.#fail(
        cycle,
        'other',
        `GET /status counts ${status.liveNeedles} live files, the clients know of ${expectedLive}`,
      );
    }
    if (status.nextKey <= this.#maxIssued) {
      this.#fail(
        cycle,
        'duplicateKeys',
        `next key ${status.nextKey} is not above acknowledged key ${this.#maxIssued}`,
      );
    }
  }

  async #status(url: string): Promise<{ nextKey: number; liveNeedles: number }> {
    const res = await fetch(`${url}/status`, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    if (res.status !== 200) throw new Error(`GET /status answered ${res.status}`);
    return (await res.json()) as { nextKey: number; liveNeedles: number };
  }

  #acknowledgeKey(cycle: number, key: number): void {
    if (this.#issued.has(key)) {
      this.#fail(cycle, 'duplicateKeys', `key ${key} was handed out twice`);
    }
    this.#issued.add(key);
    if (key > this.#maxIssued) this.#maxIssued = key;
  }

  #makeUncertain(key: number): void {
    const content = this.#live.get(key);
    if (!content) return;
    this.#live.delete(key);
    this.#uncertain.set(key, content);
  }

  #durable(volume: number, end: number): void {
    if (end > (this.#durableEnd.get(volume) ?? 0)) this.#durableEnd.set(volume, end);
  }

  #fileSize(rng: Random): number {
    const max = this.#options.maxFileSize;
    const roll = rng.next();
    if (roll < 0.08) return 0;
    if (roll < 0.5) return rng.int(1, Math.min(max, 4096));
    if (roll < 0.8) return rng.int(1, Math.min(max, 64 * 1024));
    if (roll < 0.95) return rng.int(1, max);
    return max;
  }

  #contentType(rng: Random): string | undefined {
    if (rng.chance(0.8)) return rng.pick(CONTENT_TYPES);
    // A random media type, up to 1024 bytes: a subtype of token characters, and half the time a
    // quoted parameter of any printable ASCII (quotes and backslashes escaped).
    const length = rng.chance(0.1) ? 1024 : rng.int(3, 60);
    let type = 'x/';
    const subtypeEnd = rng.chance(0.5) ? length : Math.min(length, rng.int(3, 20));
    while (type.length < subtypeEnd) type += rng.pick(TOKEN_CHARS);
    if (type.length + 6 > length) return type;
    type += '; p="';
    while (type.length < length - 1) {
      const char = String.fromCharCode(rng.int(0x20, 0x7e));
      type += char === '"' || char === '\\' ? (type.length < length - 2 ? `\\${char}` : 'q') : char;
    }
    return `${type}"`;
  }

  #fail(
    cycle: number | 'end',
    kind: 'lost' | 'wrongBytes' | 'duplicateKeys' | 'resurrected' | 'other',
    message: string,
  ): void {
    if (kind === 'other') this.#result.otherFailures++;
    else this.#result[kind]++;
    const line = `cycle ${cycle}: ${message}`;
    if (this.#result.failures.length < MAX_FAILURES_KEPT) this.#result.failures.push(line);
    this.#log(`FAIL ${line}`);
  }
}

function takeRandom(pool: number[], rng: Random): number {
  const at = rng.int(0, pool.length - 1);
  const [key] = pool.splice(at, 1) as [number];
  return key;
}

/** Spool files of chunked uploads (`upload-*.spool`) in the data directory. */
async function spoolFiles(dir: string): Promise<number> {
  return (await readdir(dir)).filter((name) => name.endsWith('.spool')).length;
}

/** A body fetch sends chunked: the bytes as a stream of 64 KiB pieces. */
function inPieces(bytes: Uint8Array): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) {
        controller.close();
        return;
      }
      controller.enqueue(bytes.subarray(at, at + 64 * 1024));
      at += 64 * 1024;
    },
  });
}

/** Overwrites [from, to) of a file with zeros, as a crash loses what was written over zeros. */
async function zeroFrom(file: string, from: number, to: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const zeros = Buffer.alloc(Math.min(to - from, 1024 * 1024));
    for (let at = from; at < to; at += zeros.byteLength) {
      await handle.write(zeros, 0, Math.min(zeros.byteLength, to - at), at);
    }
  } finally {
    await handle.close();
  }
}
