import type { Liveness, Window } from './cluster-liveness.ts';
import {
  type Content,
  describeDifference,
  REQUEST_TIMEOUT_MS,
  sameContent,
  sha256,
} from './content.ts';
import type { Random } from './random.ts';

/**
 * The client side of the cluster's crash tests: clients that POST, GET, PUT (replace) and DELETE
 * through the gateways, and a ledger of everything a gateway acknowledged, judged against what
 * was really up (`Liveness`) while each request ran. Shared by the kill test
 * (test/cluster/cluster-kill.test.ts) and the crash loop (scripts/torture-cluster.ts).
 *
 * The figures that count (CLUSTER.md, "How it is proven"), all of them must stay 0.
 */
export interface LedgerFigures {
  /** POSTs and PUTs a gateway acknowledged (201 / 200 with a key). */
  acknowledged: number;
  /** Acknowledged deletes, and replaces (their old keys). */
  deleted: number;
  replaced: number;
  /** Acknowledged live files that answered 404. */
  lost: number;
  /** Reads that answered other bytes or another content type than acknowledged. */
  wrongBytes: number;
  /** Reads that failed (503, or no answer from an up gateway) while a replica's node was up. */
  failedReadsWhileReachable: number;
  /** Deleted or replaced keys that read back. */
  deletedReadBack: number;
  /** Keys handed out twice in acknowledged answers (across every gateway). */
  duplicateKeys: number;
  /** Writes answered 503 (or failed otherwise) while at least R nodes were up throughout. */
  writesFailedWithRUp: number;
  /** Other broken expectations: an unexpected status, an up gateway that did not answer. */
  other: number;
  /** Not failures: 503 `unavailable` to writes while fewer than R nodes were up. */
  unavailableAsExpected: number;
  /** Not failures: requests cut by a gateway's kill, sent again to another gateway. */
  interrupted: number;
  /** Not failures: reads that served the acknowledged bytes. */
  readsOk: number;
}

export const FAILURE_FIGURES = [
  'lost',
  'wrongBytes',
  'failedReadsWhileReachable',
  'deletedReadBack',
  'duplicateKeys',
  'writesFailedWithRUp',
  'other',
] as const;
export type FailureKind = (typeof FAILURE_FIGURES)[number];

export function emptyFigures(): LedgerFigures {
  return {
    acknowledged: 0,
    deleted: 0,
    replaced: 0,
    lost: 0,
    wrongBytes: 0,
    failedReadsWhileReachable: 0,
    deletedReadBack: 0,
    duplicateKeys: 0,
    writesFailedWithRUp: 0,
    other: 0,
    unavailableAsExpected: 0,
    interrupted: 0,
    readsOk: 0,
  };
}

export function failures(figures: LedgerFigures): number {
  return FAILURE_FIGURES.reduce((sum, kind) => sum + figures[kind], 0);
}

/** The summary line the brief asks for (and the single node's crash loop prints). */
export function formatFigures(cycles: number, f: LedgerFigures): string {
  return (
    `cycles ${cycles}, acknowledged writes ${f.acknowledged}, lost ${f.lost}, wrong bytes ${f.wrongBytes}, ` +
    `failed reads while reachable ${f.failedReadsWhileReachable}, deleted read back ${f.deletedReadBack}, ` +
    `duplicate keys ${f.duplicateKeys}, writes failed with R up ${f.writesFailedWithRUp}, other ${f.other}`
  );
}

export function formatNotes(f: LedgerFigures): string {
  return (
    `deletes ${f.deleted}, replaces ${f.replaced}, reads ok ${f.readsOk}, ` +
    `503 unavailable with fewer than R up ${f.unavailableAsExpected}, requests cut by a gateway kill ${f.interrupted}`
  );
}

interface LiveEntry {
  content: Content;
  volume: number;
}

/** A read that failed: judged once the volume's replicas are known (`Ledger.judgeReads`). */
interface FailedRead {
  key: number;
  volume: number;
  upThroughout: number[];
  what: string;
}

export interface GatewayAnswer {
  status: number;
  bytes: Uint8Array;
  contentType: string;
  /** The gateway it went to. */
  gateway: number;
}

/** Where the ledger sends requests: the gateways' base URLs by index. */
export interface Endpoints {
  gatewayUrl(index: number): string;
}

const CONTENT_TYPES = ['application/octet-stream', 'image/jpeg', 'text/plain; charset=utf-8'];
const MAX_FAILURES_KEPT = 60;

export interface LedgerOptions {
  liveness: Liveness;
  endpoints: Endpoints;
  replicas: number;
  log?: (line: string) => void;
  /** What each replica of `volume` answers for `key` now, in words: added to a loss's report. */
  probe?: (volume: number, key: number) => Promise<string>;
}

export class Ledger {
  readonly figures = emptyFigures();
  readonly failureLines: string[] = [];
  /** Acknowledged live files. */
  readonly live = new Map<number, LiveEntry>();
  /** Acknowledged deleted or replaced keys, with their volume. */
  readonly gone = new Map<number, number>();
  /** Keys whose fate a failed replace or delete left open: their content, or 404. */
  readonly uncertain = new Map<number, LiveEntry>();
  /** Every key an acknowledged answer gave. */
  readonly #issued = new Set<number>();
  /** Live keys a delete or replace has taken: no other operation picks them. */
  readonly #busy = new Set<number>();
  /** Live keys being read: no delete or replace picks them meanwhile. */
  readonly #reading = new Map<number, number>();
  readonly #failedReads: FailedRead[] = [];
  readonly #liveness: Liveness;
  readonly #endpoints: Endpoints;
  readonly #replicas: number;
  readonly #log: (line: string) => void;
  #ackWaiters: { count: number; wake: () => void }[] = [];
  /** What happened to each key, for the report of a failure about it. */
  readonly #history = new Map<number, string[]>();
  readonly #started = performance.now();
  readonly #probe: ((volume: number, key: number) => Promise<string>) | undefined;

  constructor(options: LedgerOptions) {
    this.#liveness = options.liveness;
    this.#endpoints = options.endpoints;
    this.#replicas = options.replicas;
    this.#log = options.log ?? (() => {});
    this.#probe = options.probe;
  }

  /** Notes an event of `key`'s life, with the time and the nodes up. */
  note(key: number, event: string): void {
    const line = `${((performance.now() - this.#started) / 1000).toFixed(2)}s ${event} (up ${this.#liveness.upNodes().join(',')})`;
    const list = this.#history.get(key);
    if (list) list.push(line);
    else this.#history.set(key, [line]);
  }

  history(key: number): string {
    return (this.#history.get(key) ?? []).join(' | ');
  }

  /** A loss: its history and, when the ledger can, what every replica holds now. */
  async #lost(key: number, volume: number, message: string): Promise<void> {
    const probed = this.#probe ? await this.#probe(volume, key).catch((err) => String(err)) : '';
    this.fail(
      'lost',
      `${message}; volume ${volume}; history: ${this.history(key)}; replicas now: ${probed}`,
    );
  }

  /**
   * Resolves once `count` more writes were acknowledged than now; rejects after `limitMs` (the
   * clients stopped getting writes through: the caller's failure, with the figures).
   */
  acknowledgedMore(count: number, limitMs = 120_000): Promise<void> {
    const target = this.figures.acknowledged + count;
    return new Promise((resolve, reject) => {
      if (this.figures.acknowledged >= target) return resolve();
      const timer = setTimeout(() => {
        reject(
          new Error(
            `waited ${limitMs} ms for ${count} more acknowledged writes (at ${this.figures.acknowledged})`,
          ),
        );
      }, limitMs);
      this.#ackWaiters.push({
        count: target,
        wake: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  fail(kind: FailureKind, message: string): void {
    this.figures[kind]++;
    if (this.failureLines.length < MAX_FAILURES_KEPT) this.failureLines.push(`${kind}: ${message}`);
    this.#log(`FAIL ${kind}: ${message}`);
  }

  /**
   * Sends a request to a random up gateway (waiting for one if none is); a request cut by that
   * gateway's kill is sent again to another, as a client behind a load balancer would. `null`
   * when a gateway that stayed up did not answer (counted in `other`).
   */
  async send(
    rng: Random,
    method: string,
    path: string,
    body?: { bytes: Uint8Array; contentType: string },
  ): Promise<(GatewayAnswer & { window: Window; retried: boolean }) | null> {
    let retried = false;
    const window = this.#liveness.open();
    try {
      for (;;) {
        await this.#liveness.someGateway();
        const gateway = rng.pick(this.#liveness.upGateways());
        const attempt = this.#liveness.open();
        try {
          const res = await fetch(`${this.#endpoints.gatewayUrl(gateway)}${path}`, {
            method,
            ...(body ? { body: body.bytes, headers: { 'content-type': body.contentType } } : {}),
            signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
          });
          const bytes = new Uint8Array(await res.arrayBuffer());
          return {
            status: res.status,
            bytes,
            contentType: res.headers.get('content-type') ?? '',
            gateway,
            window,
            retried,
          };
        } catch (err) {
          if (attempt.gatewaysDown.has(gateway)) {
            this.figures.interrupted++;
            retried = true;
            continue;
          }
          this.fail(
            'other',
            `${method} ${path}: gateway ${gateway} stayed up but did not answer: ${describe(err)}`,
          );
          return null;
        } finally {
          this.#liveness.close(attempt);
        }
      }
    } finally {
      this.#liveness.close(window);
    }
  }

  /** POST a new file; true when acknowledged. */
  async write(rng: Random, bytes: Uint8Array): Promise<boolean> {
    const contentType = rng.pick(CONTENT_TYPES);
    const answer = await this.send(rng, 'POST', '/file', { bytes, contentType });
    if (!answer) return false;
    if (answer.status === 201) {
      const { key, volume } = json(answer.bytes) as { key: number; volume: number };
      this.note(key, `POST 201 via gateway ${answer.gateway}, volume ${volume}`);
      this.#acknowledge(key, { content: contentOf(bytes, contentType), volume });
      return true;
    }
    this.#writeRefused('POST /file', answer);
    return false;
  }

  /** PUT over a live key (taken from the others while it runs). */
  async replace(rng: Random, bytes: Uint8Array): Promise<void> {
    const key = this.#take(rng);
    if (key === undefined) return;
    const old = this.live.get(key) as LiveEntry;
    try {
      const contentType = rng.pick(CONTENT_TYPES);
      const answer = await this.send(rng, 'PUT', `/file/${key}`, { bytes, contentType });
      if (!answer) {
        this.#unsettle(key, old);
        return;
      }
      if (answer.status === 200) {
        const { key: fresh, volume } = json(answer.bytes) as { key: number; volume: number };
        this.note(key, `PUT 200 via gateway ${answer.gateway} (new key ${fresh})`);
        this.note(fresh, `PUT 200 over ${key} via gateway ${answer.gateway}, volume ${volume}`);
        this.#retire(key, old.volume);
        this.figures.replaced++;
        this.#acknowledge(fresh, { content: contentOf(bytes, contentType), volume });
      } else if (answer.status === 404 && answer.retried) {
        // An attempt cut by a gateway's kill retired it before it died.
        this.#retire(key, old.volume);
      } else if (answer.status === 404) {
        await this.#lost(
          key,
          old.volume,
          `PUT /file/${key} via gateway ${answer.gateway}: acknowledged file answered 404`,
        );
        this.#retire(key, old.volume);
      } else {
        this.note(
          key,
          `PUT ${answer.status} via gateway ${answer.gateway}${answer.retried ? ' (retried)' : ''}`,
        );
        // The old key's delete may have been journaled before the failure: it is 404 or intact.
        if (answer.status === 503) this.#unsettle(key, old);
        this.#writeRefused(`PUT /file/${key}`, answer);
      }
    } finally {
      this.#busy.delete(key);
    }
  }

  async delete(rng: Random): Promise<boolean> {
    const key = this.#take(rng);
    if (key === undefined) return false;
    const old = this.live.get(key) as LiveEntry;
    try {
      const answer = await this.send(rng, 'DELETE', `/file/${key}`);
      if (!answer) {
        this.#unsettle(key, old);
        return false;
      }
      this.note(
        key,
        `DELETE ${answer.status} via gateway ${answer.gateway}${answer.retried ? ' (retried)' : ''}`,
      );
      if (answer.status === 200 || (answer.status === 404 && answer.retried)) {
        this.#retire(key, old.volume);
        this.figures.deleted++;
        return true;
      }
      if (answer.status === 404) {
        await this.#lost(
          key,
          old.volume,
          `DELETE /file/${key} via gateway ${answer.gateway}: acknowledged file answered 404`,
        );
        this.#retire(key, old.volume);
        return false;
      }
      this.#unsettle(key, old);
      this.fail(
        'other',
        `DELETE /file/${key} answered ${answer.status} ${text(answer.bytes)} (nodes up throughout: ${this.#liveness.upThroughout(answer.window).join(',')})`,
      );
      return false;
    } finally {
      this.#busy.delete(key);
    }
  }

  /** GET of a random live key, checked byte for byte. */
  async readLive(rng: Random): Promise<void> {
    const keys = [...this.live.keys()].filter((key) => !this.#busy.has(key));
    if (keys.length === 0) return;
    await this.readKey(rng, rng.pick(keys));
  }

  /** GET of `key`, which must be live (and is kept from deletes while read). */
  async readKey(rng: Random, key: number): Promise<void> {
    const entry = this.live.get(key);
    if (!entry) return;
    this.#reading.set(key, (this.#reading.get(key) ?? 0) + 1);
    try {
      const answer = await this.send(rng, 'GET', `/file/${key}`);
      if (!answer) return;
      if (answer.status === 200) {
        const read = { status: 200, ...contentOf(answer.bytes, answer.contentType) };
        if (sameContent(read, entry.content)) this.figures.readsOk++;
        else
          this.fail('wrongBytes', `GET /file/${key}: ${describeDifference(read, entry.content)}`);
      } else if (answer.status === 404) {
        await this.#lost(
          key,
          entry.volume,
          `GET /file/${key} via gateway ${answer.gateway}: acknowledged file answered 404`,
        );
      } else {
        this.#readFailed(key, entry.volume, answer);
      }
    } finally {
      const left = (this.#reading.get(key) ?? 1) - 1;
      if (left === 0) this.#reading.delete(key);
      else this.#reading.set(key, left);
    }
  }

  /** GET of a deleted or replaced key: 404 expected. */
  async readGone(rng: Random, key: number): Promise<void> {
    const volume = this.gone.get(key);
    if (volume === undefined) return;
    const answer = await this.send(rng, 'GET', `/file/${key}`);
    if (!answer || answer.status === 404) return;
    if (answer.status === 200) {
      this.fail(
        'deletedReadBack',
        `GET /file/${key}: deleted key answered 200 (${answer.bytes.byteLength} bytes)`,
      );
    } else {
      this.#readFailed(key, volume, answer);
    }
  }

  async readRandomGone(rng: Random): Promise<void> {
    if (this.gone.size === 0) return;
    // Recent ones mostly: a Map keeps insertion order.
    const keys = [...this.gone.keys()];
    const at = rng.chance(0.7)
      ? Math.max(0, keys.length - 1 - rng.int(0, 50))
      : rng.int(0, keys.length - 1);
    await this.readGone(rng, keys[at] as number);
  }

  /** Settles an uncertain key: its content (live again) or 404 (gone); anything else fails. */
  async settle(rng: Random, key: number): Promise<void> {
    const entry = this.uncertain.get(key);
    if (!entry) return;
    const answer = await this.send(rng, 'GET', `/file/${key}`);
    if (!answer) return;
    this.note(key, `settle: GET ${answer.status} via gateway ${answer.gateway}`);
    if (answer.status === 404) {
      this.uncertain.delete(key);
      this.gone.set(key, entry.volume);
      return;
    }
    if (answer.status === 200) {
      const read = { status: 200, ...contentOf(answer.bytes, answer.contentType) };
      if (sameContent(read, entry.content)) {
        this.uncertain.delete(key);
        this.live.set(key, entry);
      } else {
        this.fail(
          'wrongBytes',
          `GET /file/${key} (left open): ${describeDifference(read, entry.content)}`,
        );
      }
      return;
    }
    this.#readFailed(key, entry.volume, answer);
  }

  /**
   * Judges the reads that failed: a failure counts when a node holding a replica of the key's
   * volume was up throughout the read. `replicasOf` names each volume's nodes by index.
   */
  judgeReads(replicasOf: (volume: number) => number[] | undefined): void {
    for (const read of this.#failedReads.splice(0)) {
      const holders = replicasOf(read.volume);
      if (holders === undefined) {
        this.fail('other', `${read.what}; logical volume ${read.volume} is not in the status`);
        continue;
      }
      const reachable = holders.filter((node) => read.upThroughout.includes(node));
      if (reachable.length > 0) {
        this.fail(
          'failedReadsWhileReachable',
          `${read.what}, while nodes ${reachable.join(',')} holding a replica were up`,
        );
      }
    }
  }

  /** The volumes of every key the ledger knows, for `judgeReads`' lookup. */
  get pendingReadFailures(): number {
    return this.#failedReads.length;
  }

  #acknowledge(key: number, entry: LiveEntry): void {
    this.figures.acknowledged++;
    if (this.#issued.has(key)) this.fail('duplicateKeys', `key ${key} was handed out twice`);
    this.#issued.add(key);
    this.live.set(key, entry);
    this.gone.delete(key);
    const waiters = this.#ackWaiters;
    this.#ackWaiters = [];
    for (const waiter of waiters) {
      if (this.figures.acknowledged >= waiter.count) waiter.wake();
      else this.#ackWaiters.push(waiter);
    }
  }

  #retire(key: number, volume: number): void {
    this.live.delete(key);
    this.gone.set(key, volume);
  }

  #unsettle(key: number, entry: LiveEntry): void {
    this.note(key, 'left open');
    this.live.delete(key);
    this.uncertain.set(key, entry);
  }

  #take(rng: Random): number | undefined {
    const keys = [...this.live.keys()].filter(
      (key) => !this.#busy.has(key) && !this.#reading.has(key),
    );
    if (keys.length === 0) return undefined;
    const key = rng.pick(keys);
    this.#busy.add(key);
    return key;
  }

  #writeRefused(what: string, answer: GatewayAnswer & { window: Window; retried: boolean }): void {
    const up = this.#liveness.upThroughout(answer.window);
    const code = errorCode(answer.bytes);
    if (answer.status === 503 && code === 'unavailable' && up.length < this.#replicas) {
      this.figures.unavailableAsExpected++;
      return;
    }
    const detail = `${what} answered ${answer.status} ${text(answer.bytes)} via gateway ${answer.gateway}${answer.retried ? ' (retried after a gateway kill)' : ''}; nodes up throughout: [${up.join(',')}]`;
    if (up.length >= this.#replicas) this.fail('writesFailedWithRUp', detail);
    else this.fail('other', detail);
  }

  #readFailed(key: number, volume: number, answer: GatewayAnswer & { window: Window }): void {
    const upThroughout = this.#liveness.upThroughout(answer.window);
    const what = `GET /file/${key} answered ${answer.status} ${text(answer.bytes)} via gateway ${answer.gateway}; history: ${this.history(key)}`;
    if (answer.status !== 503) {
      this.fail('other', what);
      return;
    }
    this.#failedReads.push({ key, volume, upThroughout, what });
  }
}

function contentOf(bytes: Uint8Array, contentType: string): Content {
  return { sha256: sha256(bytes), size: bytes.byteLength, contentType };
}

function json(bytes: Uint8Array): unknown {
  return JSON.parse(Buffer.from(bytes).toString('utf8'));
}

function text(bytes: Uint8Array): string {
  return Buffer.from(bytes.subarray(0, 300)).toString('utf8');
}

function errorCode(bytes: Uint8Array): string | undefined {
  try {
    const body = json(bytes) as { error?: { code?: string }; code?: string };
    return body.error?.code ?? body.code;
  } catch {
    return undefined;
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
