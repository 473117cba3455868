import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NodeId, VolumeId } from '../../adapters/cluster/directory/types.ts';
import {
  type AgentTimer,
  NodeAgent,
  type NodeReplicas,
} from '../../adapters/cluster/node-agent.ts';
import { loadOrCreateNodeId } from '../../adapters/cluster/node-id.ts';
import { MemoryStore } from '../../adapters/memory/index.ts';
import { type BlobStore, type Key, StoreError } from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { MemoryDirectory } from '../support/memory-directory.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { useVolumeStores } from '../support/volume-stores.ts';

const TIMEOUT_MS = 10_000;
const NODE: NodeId = '11111111-1111-4111-8111-111111111111';
const PEER_B: NodeId = '22222222-2222-4222-8222-222222222222';
const PEER_C: NodeId = '33333333-3333-4333-8333-333333333333';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('loadOrCreateNodeId', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir('haystack-node-id-');
  });
  afterEach(() => removeTempDir(dir));

  it('makes the id once and answers the same one on every later start', async () => {
    const id = await loadOrCreateNodeId(dir);
    expect(id).toMatch(UUID);
    expect(await readFile(path.join(dir, 'node-id'), 'utf8')).toBe(`${id}\n`);
    expect(await loadOrCreateNodeId(dir)).toBe(id);
    expect(await loadOrCreateNodeId(dir)).toBe(id);
    // Nothing but the id file is left behind.
    expect(await readdir(dir)).toEqual(['node-id']);
  });

  it('answers one id to starts that race in the same directory', async () => {
    for (let round = 0; round < 10; round++) {
      const here = path.join(dir, `round-${round}`);
      const ids = await Promise.all(Array.from({ length: 8 }, () => loadOrCreateNodeId(here)));
      expect(new Set(ids).size).toBe(1);
      expect(await readFile(path.join(here, 'node-id'), 'utf8')).toBe(`${ids[0]}\n`);
      expect(await readdir(here)).toEqual(['node-id']);
    }
  });

  it('makes the data directory when there is none yet', async () => {
    const nested = path.join(dir, 'data', 'node');
    const id = await loadOrCreateNodeId(nested);
    expect(await loadOrCreateNodeId(nested)).toBe(id);
  });

  it('accepts an id an operator rewrote without the newline, in capitals', async () => {
    await writeFile(path.join(dir, 'node-id'), NODE.toUpperCase());
    expect(await loadOrCreateNodeId(dir)).toBe(NODE);
  });

  it.each([
    ['empty', '', /node-id is empty/],
    ['blank', ' \n', /node-id is empty/],
    ['not a UUID', 'node-7\n', /node-id does not hold a node id \(a UUID\) but "node-7"/],
    ['a torn UUID', NODE.slice(0, 20), /node-id does not hold a node id/],
  ])('refuses a file that is %s, and leaves it as it was', async (_name, text, message) => {
    const file = path.join(dir, 'node-id');
    await writeFile(file, text);
    const failure = loadOrCreateNodeId(dir);
    await expect(failure).rejects.toThrow(message);
    await expect(failure).rejects.toThrow(file);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  it('removes the temp file a crashed start left', async () => {
    await writeFile(path.join(dir, 'node-id.new-99999'), 'half');
    const id = await loadOrCreateNodeId(dir);
    expect(await readdir(dir)).toEqual(['node-id']);
    expect(await loadOrCreateNodeId(dir)).toBe(id);
  });
});

/** A timer the test drives: at most one tick is pending, and the test fires it. */
class ManualTimer implements AgentTimer {
  #pending: { fn: () => void; ms: number } | undefined;
  #waiters: (() => void)[] = [];

  setTimeout(fn: () => void, ms: number): unknown {
    if (this.#pending) throw new Error('a second tick was scheduled while one is pending');
    const entry = { fn, ms };
    this.#pending = entry;
    for (const wake of this.#waiters.splice(0)) wake();
    return entry;
  }

  clearTimeout(handle: unknown): void {
    if (this.#pending === handle) this.#pending = undefined;
  }

  /** The wait the agent asked for before its next tick; undefined when none is scheduled. */
  get pendingMs(): number | undefined {
    return this.#pending?.ms;
  }

  /** Resolves once a tick is scheduled: the agent ended the one before. */
  scheduled(): Promise<void> {
    if (this.#pending) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Starts the pending tick (without waiting for it). */
  fire(): void {
    const pending = this.#pending;
    if (!pending) throw new Error('no tick is scheduled');
    this.#pending = undefined;
    pending.fn();
  }

  /** Runs the pending tick to its end (the agent schedules the next). */
  async tick(): Promise<void> {
    this.fire();
    await this.scheduled();
  }
}

/** A node's replicas as MemoryStores; a volume not `present` cannot be opened (`not_found`). */
class MemoryReplicas implements NodeReplicas {
  readonly stores = new Map<VolumeId, BlobStore>();
  readonly present = new Set<VolumeId>();
  readonly #open = new Set<VolumeId>();

  add(volume: VolumeId, store: BlobStore = new MemoryStore()): BlobStore {
    this.stores.set(volume, store);
    this.present.add(volume);
    return store;
  }

  store(volume: VolumeId): BlobStore {
    const store = this.stores.get(volume);
    if (!store) throw new Error(`no store for volume ${volume}`);
    return store;
  }

  async open(volume: VolumeId): Promise<BlobStore> {
    const store = this.stores.get(volume);
    if (!store || !this.present.has(volume)) {
      throw new StoreError('not_found', `no replica of volume ${volume} here`);
    }
    this.#open.add(volume);
    return store;
  }

  volumes(): VolumeId[] {
    return [...this.#open].sort((a, b) => a - b);
  }
}

async function putFile(store: BlobStore, key: Key, cookie: number, text: string): Promise<void> {
  const writer = store.capabilities.replicas;
  if (!writer) throw new Error('the store takes no replica writes');
  await writer.putReplica(key, cookie, { body: new TextEncoder().encode(text) });
}

async function exists(store: BlobStore, key: Key): Promise<boolean> {
  try {
    await store.head(key);
    return true;
  } catch (err) {
    if (err instanceof StoreError && err.code === 'not_found') return false;
    throw err;
  }
}

interface Cluster {
  directory: MemoryDirectory;
  replicas: MemoryReplicas;
  timer: ManualTimer;
  logs: string[];
  agent: NodeAgent;
  freeBytes: { value: number };
}

/** A Directory with this node and two peers registered, and the agent (not started). */
async function cluster(options: { pageSize?: number; now?: () => number } = {}): Promise<Cluster> {
  const directory = new MemoryDirectory();
  for (const node of [NODE, PEER_B, PEER_C]) {
    await directory.registerNode(node, `http://${node.slice(0, 4)}.test:7000`, 1000);
  }
  const replicas = new MemoryReplicas();
  const timer = new ManualTimer();
  const logs: string[] = [];
  const freeBytes = { value: 5_000_000 };
  const agent = new NodeAgent({
    id: NODE,
    url: 'http://node-a.test:7000',
    directory,
    replicas,
    nodeTimeoutMs: TIMEOUT_MS,
    bytesFree: async () => freeBytes.value,
    log: (line) => logs.push(line),
    timer,
    now: options.now ?? (() => 0),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
  });
  return { directory, replicas, timer, logs, agent, freeBytes };
}

describe('NodeAgent', () => {
  const agents: NodeAgent[] = [];
  afterEach(async () => {
    await Promise.all(agents.splice(0).map((agent) => agent.stop()));
  });
  async function started(c: Cluster): Promise<Cluster> {
    agents.push(c.agent);
    await c.agent.start();
    return c;
  }

  it('registers, opens every volume the Directory names, and marks them ok once caught up', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const v2 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const v3 = c.directory.addVolume([PEER_B, PEER_C]).id;
    c.replicas.add(v1);
    c.replicas.add(v2);
    c.replicas.add(v3); // on disk here, but not named by the Directory: left closed
    await started(c);

    // Registered (with its URL and free bytes), its replicas marked catching-up, and opened
    // before start resolved.
    const view = await c.directory.view(TIMEOUT_MS);
    expect(view.nodes.find((n) => n.id === NODE)).toMatchObject({
      url: 'http://node-a.test:7000',
      bytesFree: 5_000_000,
      up: true,
    });
    expect(c.replicas.volumes()).toEqual([v1, v2]);
    expect(c.directory.calls.filter((call) => call === 'registerNode')).toHaveLength(4);

    // The first catch-up pass ends with both replicas ok, then the heartbeats are scheduled.
    await c.timer.scheduled();
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
    expect(c.directory.replicaRow(v2, NODE)?.state).toBe('ok');
    expect(c.agent.states).toEqual(
      new Map([
        [v1, 'ok'],
        [v2, 'ok'],
      ]),
    );
    expect(c.timer.pendingMs).toBe(TIMEOUT_MS / 4);
    expect(c.logs.some((line) => line.includes(`registered as node ${NODE}`))).toBe(true);
  });

  it('a restart marks its replicas catching-up until it has caught up again', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    c.replicas.add(v1);
    const states: string[] = [];
    c.directory.before = (call) => {
      if (call === 'finishCatchUp') states.push(c.directory.replicaRow(v1, NODE)?.state ?? '');
    };
    await started(c);
    await c.timer.scheduled();
    expect(states).toEqual(['catching-up']);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
  });

  it('applies owed deletes with their cookies, page by page, settles them, then reports ok', async () => {
    const c = await cluster({ pageSize: 2 });
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const store = c.replicas.add(v1);
    await putFile(store, 1, 11, 'one');
    await putFile(store, 2, 22, 'two');
    await putFile(store, 3, 33, 'three');
    await putFile(store, 4, 44, 'four');
    // Deletes gateways journaled while this node was away.
    await c.directory.oweDeletes(v1, 1, [NODE, PEER_B], 11); // right cookie
    await c.directory.oweDeletes(v1, 2, [NODE], 99); // wrong cookie: the file stays
    await c.directory.oweDeletes(v1, 3, [NODE], null); // no cookie named
    await c.directory.oweDeletes(v1, 500, [NODE], null); // never stored here
    await started(c);
    await c.timer.scheduled();

    expect(await exists(store, 1)).toBe(false);
    expect(await exists(store, 2)).toBe(true);
    expect(await exists(store, 3)).toBe(false);
    expect(await exists(store, 4)).toBe(true);
    // Every row of this node is settled (the wrong-cookie one too: the file was not there for
    // that cookie); the peer's row is the peer's.
    expect(c.directory.owedDeletes().map((d) => d.node)).toEqual([PEER_B]);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
    // Paged by two, until a page came back empty; settled before the replica was reported ok.
    const calls = c.directory.calls.slice(c.directory.calls.lastIndexOf('registerNode') + 1);
    expect(calls).toEqual([
      'deletesOwedBy',
      'settleDeletes',
      'deletesOwedBy',
      'settleDeletes',
      'deletesOwedBy',
      'finishCatchUp',
    ]);
  });

  it('a delete owed while it catches up keeps the replica catching-up until the next tick applies it', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const store = c.replicas.add(v1);
    await putFile(store, 7, 77, 'seven');
    await putFile(store, 8, 88, 'eight');
    await c.directory.oweDeletes(v1, 7, [NODE], 77);
    let raced = false;
    c.directory.before = async (call) => {
      // A gateway's delete of key 8 fails on this node just before it asks to be marked ok.
      if (call === 'finishCatchUp' && !raced) {
        raced = true;
        await c.directory.oweDeletes(v1, 8, [NODE, PEER_B, PEER_C], 88);
      }
    };
    await started(c);
    await c.timer.scheduled();

    expect(raced).toBe(true);
    expect(await exists(store, 7)).toBe(false);
    expect(await exists(store, 8)).toBe(true);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('catching-up');
    expect(c.agent.states.get(v1)).toBe('catching-up');

    await c.timer.tick();
    expect(await exists(store, 8)).toBe(false);
    expect(c.directory.owedDeletes().filter((d) => d.node === NODE)).toEqual([]);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
    expect(c.agent.states.get(v1)).toBe('ok');
  });

  it('applies deletes owed to an ok replica on the next tick, and leaves it ok', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const store = c.replicas.add(v1);
    await putFile(store, 5, 55, 'five');
    await started(c);
    await c.timer.scheduled();
    await c.directory.oweDeletes(v1, 5, [NODE], 55);
    await c.timer.tick();
    expect(await exists(store, 5)).toBe(false);
    expect(c.directory.owedDeletes()).toEqual([]);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
  });

  it('heartbeats every node timeout / 4 with its free bytes and each replica’s figures', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const v2 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const s1 = c.replicas.add(v1);
    const s2 = c.replicas.add(v2);
    await putFile(s1, 1, 1, 'a'.repeat(1000));
    await putFile(s1, 2, 2, 'b'.repeat(3000));
    await s1.delete(2);
    await putFile(s2, 10, 10, 'c'.repeat(500));
    await started(c);
    await c.timer.scheduled();
    expect(c.timer.pendingMs).toBe(2500);

    c.freeBytes.value = 4_000_000;
    await c.timer.tick();
    expect(c.timer.pendingMs).toBe(2500);
    for (const [volume, store] of [
      [v1, s1],
      [v2, s2],
    ] as const) {
      const status = await store.status();
      expect(c.directory.replicaRow(volume, NODE)).toMatchObject({
        bytes: status.bytes,
        liveNeedles: status.liveNeedles,
        deletedNeedles: status.deletedNeedles,
        liveBytes: status.liveBytes,
        garbageBytes: status.garbageBytes,
      });
    }
    expect(c.directory.replicaRow(v1, NODE)).toMatchObject({ liveNeedles: 1, deletedNeedles: 1 });
    expect(c.directory.replicaRow(v1, NODE)?.liveBytes).toBeGreaterThanOrEqual(1000);
    expect(c.directory.replicaRow(v2, NODE)).toMatchObject({ liveNeedles: 1, deletedNeedles: 0 });
    const view = await c.directory.view(TIMEOUT_MS);
    expect(view.nodes.find((n) => n.id === NODE)?.bytesFree).toBe(4_000_000);
  });

  it('keeps the beat: a tick that took time waits only what is left of the interval', async () => {
    let clock = 0;
    const c = await cluster({ now: () => clock });
    c.directory.addVolume([NODE, PEER_B, PEER_C]);
    c.replicas.add(1);
    await started(c);
    await c.timer.scheduled();
    c.directory.before = (call) => {
      if (call === 'heartbeat') clock += 1000;
    };
    await c.timer.tick();
    expect(c.timer.pendingMs).toBe(1500);
    c.directory.before = (call) => {
      if (call === 'heartbeat') clock += 9000;
    };
    await c.timer.tick();
    expect(c.timer.pendingMs).toBe(0);
  });

  it('heartbeats between pages of a long catch-up, so it does not look down', async () => {
    let clock = 0;
    const c = await cluster({ pageSize: 1, now: () => clock });
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const inner = new MemoryStore();
    const store = new DelegatingStore(inner, {
      delete: async (key, cookie) => {
        clock += 2000; // each owed delete takes 2 s: a heartbeat is due every second page
        c.directory.now = clock;
        return inner.delete(key, cookie);
      },
    });
    c.replicas.add(v1, store);
    for (let key = 1; key <= 6; key++) await putFile(store, key, key, `file ${key}`);
    for (let key = 1; key <= 6; key++) await c.directory.oweDeletes(v1, key, [NODE], key);
    await started(c);
    await c.timer.scheduled();
    for (let key = 1; key <= 6; key++) expect(await exists(store, key)).toBe(false);
    // 12 s of deletes, more than the node timeout, yet no gap the Directory saw as down.
    expect(c.directory.calls.filter((call) => call === 'heartbeat')).toHaveLength(3);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
  });

  it('leaves the rows of a replica it cannot open, logs that once, and applies them once it opens', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const v2 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const s1 = c.replicas.add(v1);
    const s2 = c.replicas.add(v2);
    c.replicas.present.delete(v2); // its folder cannot be opened yet
    await putFile(s1, 1, 1, 'one');
    await putFile(s2, 2, 2, 'two');
    await c.directory.oweDeletes(v1, 1, [NODE], 1);
    await c.directory.oweDeletes(v2, 2, [NODE], 2);
    await started(c);
    await c.timer.scheduled();

    expect(await exists(s1, 1)).toBe(false);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
    expect(c.directory.owedDeletes().map((d) => d.volume)).toEqual([v2]);
    expect(c.directory.replicaRow(v2, NODE)?.state).toBe('catching-up');
    await c.timer.tick();
    await c.timer.tick();
    expect(
      c.logs.filter((line) => line.includes(`volume ${v2}: replica could not be opened`)),
    ).toHaveLength(1);
    expect(c.directory.replicaRow(v2, NODE)?.state).toBe('catching-up');

    c.replicas.present.add(v2);
    await c.timer.tick();
    expect(await exists(s2, 2)).toBe(false);
    expect(c.directory.owedDeletes()).toEqual([]);
    expect(c.directory.replicaRow(v2, NODE)?.state).toBe('ok');
    expect(c.logs).toContain(`volume ${v2}: replica opened`);
  });

  it('leaves an owed delete its replica failed to apply, and retries it next tick', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const inner = new MemoryStore();
    let diskFails = true;
    const store = new DelegatingStore(inner, {
      before: (method) => {
        if (method === 'delete' && diskFails) throw new StoreError('io_error', 'EIO on write');
      },
    });
    c.replicas.add(v1, store);
    await putFile(store, 3, 3, 'three');
    await c.directory.oweDeletes(v1, 3, [NODE], 3);
    await started(c);
    await c.timer.scheduled();
    expect(await exists(store, 3)).toBe(true);
    expect(c.directory.owedDeletes()).toHaveLength(1);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('catching-up');
    await c.timer.tick();
    expect(c.logs.filter((line) => line.includes('not applied (EIO on write)'))).toHaveLength(1);

    diskFails = false;
    await c.timer.tick();
    expect(await exists(store, 3)).toBe(false);
    expect(c.directory.owedDeletes()).toEqual([]);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
  });

  it('rides out a Directory outage: logged once, without its URL, then catches up as at start', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const store = c.replicas.add(v1);
    await putFile(store, 9, 99, 'nine');
    await started(c);
    await c.timer.scheduled();
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');

    let down = true;
    c.directory.before = (call) => {
      if (down && call !== 'oweDeletes') {
        throw new Error(
          'connect ECONNREFUSED 10.0.0.5:5432 (postgres://haystack:s3cret@db.internal:5432/hs)',
        );
      }
    };
    for (let i = 0; i < 5; i++) {
      await c.timer.tick(); // each failed tick schedules the next: the agent keeps going
      expect(c.timer.pendingMs).toBe(2500);
      c.directory.now += 2500;
    }
    // Meanwhile a gateway owed it a delete, and the Directory saw the node down (12.5 s > 10 s).
    await c.directory.oweDeletes(v1, 9, [NODE], 99);
    const failures = c.logs.filter((line) => line.startsWith('heartbeat failed'));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain('ECONNREFUSED');
    expect(c.logs.join('\n')).not.toMatch(/s3cret|db\.internal/);
    expect(await exists(store, 9)).toBe(true); // the node still serves what it has

    down = false;
    await c.timer.tick();
    expect(c.logs).toContain('the Directory answers again, after 5 failed tick(s)');
    expect(c.logs).toContain(`volume ${v1}: the Directory marked this replica catching-up`);
    expect(await exists(store, 9)).toBe(false);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
    expect(c.logs.filter((line) => line.startsWith('heartbeat failed'))).toHaveLength(1);
  });

  it('fails to start when it cannot register, without the Directory’s URL in the error', async () => {
    const c = await cluster();
    c.directory.before = () => {
      throw new AggregateError(
        [
          new Error('connect ECONNREFUSED ::1:5432'),
          new Error('connect ECONNREFUSED 127.0.0.1:5432'),
        ],
        '',
      );
    };
    agents.push(c.agent);
    await expect(c.agent.start()).rejects.toThrow(
      `node ${NODE} could not register: connect ECONNREFUSED ::1:5432; connect ECONNREFUSED 127.0.0.1:5432`,
    );
    expect(c.timer.pendingMs).toBeUndefined();
  });

  it('refuses a node timeout that is not a positive number of ms', async () => {
    const c = await cluster();
    for (const nodeTimeoutMs of [0, -1, Number.NaN]) {
      expect(
        () =>
          new NodeAgent({
            id: NODE,
            url: 'http://node-a.test:7000',
            directory: c.directory,
            replicas: c.replicas,
            nodeTimeoutMs,
            bytesFree: async () => 0,
            log: () => {},
          }),
      ).toThrow(RangeError);
    }
  });

  it('stop waits for the tick in progress, and schedules no other', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    c.replicas.add(v1);
    await started(c);
    await c.timer.scheduled();

    let release: () => void = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => {};
    const inHeartbeat = new Promise<void>((resolve) => {
      entered = resolve;
    });
    c.directory.before = (call) => {
      if (call !== 'heartbeat') return;
      entered();
      return held;
    };
    c.timer.fire();
    await inHeartbeat;
    expect(c.timer.pendingMs).toBeUndefined(); // ticks never overlap: none scheduled meanwhile

    let stopped = false;
    const stopping = c.agent.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(stopped).toBe(false);

    const callsBefore = c.directory.calls.length;
    release();
    await stopping;
    // The tick ran to its end (its catch-up pass asked for owed rows) before stop resolved.
    expect(c.directory.calls.slice(callsBefore)).toContain('deletesOwedBy');
    expect(c.timer.pendingMs).toBeUndefined();
    // The replicas stay open: the command closes them.
    expect(await c.replicas.store(v1).status()).toMatchObject({ liveNeedles: 0 });
  });
});

describe('NodeAgent over a volume store', () => {
  const volumes = useVolumeStores('haystack-node-agent-');

  it('applies owed deletes durably, checking cookies, and reports its figures', async () => {
    const c = await cluster();
    const v1 = c.directory.addVolume([NODE, PEER_B, PEER_C]).id;
    const store = await volumes.open();
    c.replicas.add(v1, store);
    await putFile(store, 1, 11, 'one');
    await putFile(store, 2, 22, 'two');
    await putFile(store, 3, 33, 'three');
    await c.directory.oweDeletes(v1, 1, [NODE], 11);
    await c.directory.oweDeletes(v1, 2, [NODE], 23); // wrong cookie
    await c.agent.start();
    await c.timer.scheduled();
    await c.timer.tick();
    await c.agent.stop();

    expect(c.directory.owedDeletes()).toEqual([]);
    expect(c.directory.replicaRow(v1, NODE)?.state).toBe('ok');
    const status = await store.status();
    expect(c.directory.replicaRow(v1, NODE)).toMatchObject({
      bytes: status.bytes,
      liveNeedles: 2,
      deletedNeedles: 1,
      liveBytes: status.liveBytes,
      garbageBytes: status.garbageBytes,
    });
    // The deletes were made durable by the store: they hold across a reopen.
    const reopened = await volumes.reopen(store);
    expect(await exists(reopened, 1)).toBe(false);
    expect(await exists(reopened, 2)).toBe(true);
    expect(await exists(reopened, 3)).toBe(true);
  });
});
