import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { ReplicaSet } from '../../adapters/cluster/replica-set.ts';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import { type ReadPoolStats, readPool } from '../../adapters/volume/read-pool.ts';
import { createApp, createReplicaApp, releaseAfterClose } from '../../handlers/index.ts';
import { type FileRead, REPLICA_HEADERS, type ReplicaWriter } from '../../storage/index.ts';
import { createHttpServer } from '../../wrangler-free-local/http-server.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { connect, type RawConnection } from '../support/raw-http.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * Whatever the read path does with its buffers (slab slices, or pooled buffers lent to an answer
 * and given back when the host says it has been sent), the bytes answered must be the file's: a
 * buffer reused while a response still holds part of it answers another file's bytes, the worst
 * failure a store can have. Many concurrent 64 KiB reads over a real server and raw sockets,
 * pipelined, with clients that read at once, clients that stop reading until the others are
 * done (their responses wait in the server's buffers), and clients that hang up half-way; on
 * every host the store is served by, with what the read pool did checked too, so that a host
 * that gives buffers back is shown to have reused them.
 */

const SIZE = 64 * 1024;
const FILES = 48;

/** File `n`'s bytes: a pattern of `n`, so any byte of another file shows. */
function contentOf(n: number): Buffer {
  const bytes = Buffer.allocUnsafe(SIZE);
  let x = (n + 1) * 2654435761;
  for (let i = 0; i < SIZE; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes.writeUInt32LE(x, i);
  }
  return bytes;
}

/** A server on a free port of 127.0.0.1, with a way to wait until its connections are gone. */
interface Served {
  base: string;
  /** Resolves once no connection is open (each one's responses have closed by then). */
  idle(): Promise<void>;
  close(): Promise<void>;
}

function served(server: Server, prefix: string): Promise<Served> {
  let open = 0;
  let waiters: (() => void)[] = [];
  server.on('connection', (socket) => {
    open++;
    socket.once('close', () => {
      open--;
      if (open === 0) for (const wake of waiters.splice(0)) wake();
    });
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        base: `http://127.0.0.1:${port}${prefix}`,
        idle: () =>
          new Promise<void>((wake) => {
            if (open === 0) wake();
            else waiters = [...waiters, wake];
          }),
        close: () =>
          new Promise<void>((done, fail) => {
            server.closeAllConnections();
            server.close((err) => (err ? fail(err) : done()));
          }),
      });
    });
  });
}

/** The local server's limits, with room for the slow clients' 128 pipelined requests. */
const LIMITS = {
  maxConnections: 1024,
  maxPipeline: 256,
  headersTimeoutMs: 60_000,
  idleTimeoutMs: 60_000,
};

type App = ReturnType<typeof createApp>;

interface Host {
  name: string;
  /** Whether it gives lent buffers back. */
  releases: boolean;
  serve(app: App): Promise<Served>;
}

const HOSTS: Host[] = [
  {
    name: 'plain @hono/node-server, which gives nothing back',
    releases: false,
    serve: (app) => served(createServer(getRequestListener(app.fetch)), ''),
  },
  {
    name: "the local server's stack (http-server.ts), which gives back on close",
    releases: true,
    serve: (app) => served(createHttpServer(app.fetch, LIMITS, '127.0.0.1').server, ''),
  },
  // Node answers every pipelined request here at once, so the first answers of a slow client
  // go into the kernel's buffers and the rest wait in Node's; a release too early shows on the
  // local server's stack above (one answer at a time: the one waiting is the one lent), this
  // host shows that a parent's wiring gives back and reuses.
  {
    name: 'a parent app on @hono/node-server with releaseAfterClose, every pipelined answer at once',
    releases: true,
    serve(app) {
      const parent = new Hono();
      parent.route('/media', app);
      return served(createServer(getRequestListener(releaseAfterClose(parent.fetch))), '/media');
    },
  },
];

let dir: string;
let store: VolumeStore | undefined;
let server: Served | undefined;
const keys: number[] = [];

afterEach(async () => {
  await server?.close();
  await store?.close();
  await removeTempDir(dir);
  server = undefined;
  store = undefined;
});

/** Files 0..FILES-1 in a fresh store, served by `host` (the store wrapped by `wrap`, if given). */
async function start(
  host: Host,
  options: { cacheSize?: number; wrap?: (store: VolumeStore) => DelegatingStore } = {},
): Promise<Served> {
  dir = await makeTempDir('haystack-read-bytes-');
  const opened = await openVolumeStore({ dir, fsync: 'never', cacheSize: options.cacheSize ?? 0 });
  store = opened;
  keys.length = 0;
  for (let n = 0; n < FILES; n++) keys.push((await opened.put({ body: contentOf(n) })).key);
  const app = createApp({ store: options.wrap ? options.wrap(opened) : opened, maxBody: 1 << 20 });
  server = await host.serve(app);
  return server;
}

/** A request for all of file `n`, or the bytes [start, end] of it. */
interface Ask {
  n: number;
  range?: { start: number; end: number };
}

/** `count` pipelined GETs of what `pick` asks for, sent at once on one connection. */
async function pipelined(base: string, count: number, pick: (i: number) => Ask) {
  const connection = await connect(base);
  const asks = Array.from({ length: count }, (_, i) => pick(i));
  const path = new URL(base).pathname.replace(/\/$/, '');
  const requests = asks.map(({ n, range }) => {
    const ranged = range ? `Range: bytes=${range.start}-${range.end}\r\n` : '';
    return `GET ${path}/file/${keys[n % FILES]} HTTP/1.1\r\nHost: test\r\n${ranged}\r\n`;
  });
  await connection.write(requests.join(''));
  return { connection, asks };
}

const whole = (n: number): Ask => ({ n });

async function expectFiles(connection: RawConnection, asks: Ask[]): Promise<void> {
  for (const { n, range } of asks) {
    const response = await connection.readResponse();
    const file = contentOf(n % FILES);
    const expected = range ? file.subarray(range.start, range.end + 1) : file;
    expect(response.status).toBe(range ? 206 : 200);
    expect(response.body.byteLength).toBe(expected.byteLength);
    // Compared whole, but reported briefly: the first differing byte.
    if (!response.body.equals(expected)) {
      const at = response.body.findIndex((byte, i) => byte !== expected[i]);
      expect.fail(
        `file ${n % FILES}${range ? ` (${range.start}-${range.end})` : ''}: byte ${at} differs`,
      );
    }
  }
}

/** What the process's read pool did since `before`. */
function poolSince(before: ReadPoolStats): ReadPoolStats {
  const now = readPool.stats();
  return {
    leases: now.leases - before.leases,
    reused: now.reused - before.reused,
    released: now.released - before.released,
    dropped: now.dropped - before.dropped,
    freeBytes: now.freeBytes,
  };
}

/**
 * The hostile mix: slow clients holding answers in the server's buffers, clients that hang up
 * half-way, fast clients reading at once, then a check that the server still answers right.
 * `pick(c, i)` is what connection `c`'s request `i` asks for. Answers how many connections it
 * opened, at most, at once.
 */
async function hostileMix(
  base: string,
  pick: (c: number, i: number) => Ask = (c, i) => whole(c + i),
): Promise<number> {
  // Slow clients: 8 MiB of answers each, more than the kernel's socket buffers hold (up to
  // 4 MiB sent and a receive window that does not grow while nothing is read), not read yet:
  // the server's writes to them wait, holding its buffers.
  const slow = await Promise.all(
    Array.from({ length: 4 }, (_, c) => pipelined(base, 128, (i) => pick(c * 7, i))),
  );
  for (const { connection } of slow) connection.socket.pause();
  // Aborted clients: hang up once the first answer has begun to arrive.
  const aborted = await Promise.all(
    Array.from({ length: 8 }, (_, c) => pipelined(base, 16, (i) => pick(c * 5, i * 3))),
  );
  // Fast clients, meanwhile: every answer read and checked as it comes.
  const fast = Promise.all(
    Array.from({ length: 16 }, async (_, c) => {
      const { connection, asks } = await pipelined(base, 12, (i) => pick(c * 11, i * 13));
      await expectFiles(connection, asks);
      connection.socket.end();
    }),
  );
  await Promise.all(
    aborted.map(async ({ connection }) => {
      await connection.waitForBytes(SIZE / 2);
      connection.abort();
    }),
  );
  await fast;
  // The slow clients read now: what waited in buffers all along must still be right.
  for (const { connection } of slow) connection.socket.resume();
  await Promise.all(
    slow.map(async ({ connection, asks }) => {
      await expectFiles(connection, asks);
      connection.socket.end();
    }),
  );
  // And the server still answers right after all that.
  const after = await pipelined(base, FILES, (i) => pick(0, i));
  await expectFiles(after.connection, after.asks);
  after.connection.socket.end();
  return slow.length + aborted.length + 16;
}

describe.each(HOSTS)('64 KiB reads under load, served by $name', (host) => {
  it('answer every file its own bytes, with slow, fast and aborted clients at once', async () => {
    const { base, idle } = await start(host);
    const before = readPool.stats();
    const connections = await hostileMix(base);
    await idle();
    const pool = poolSince(before);
    expect(pool.leases).toBeGreaterThan(500);
    if (!host.releases) {
      expect(pool.released).toBe(0);
      return;
    }
    expect(pool.reused).toBeGreaterThan(0);
    if (host.name.startsWith("the local server's")) {
      // One answer at a time per connection, so at most one lease each at a time: every other
      // read was into a buffer given back, and every buffer came back once its answer closed.
      expect(pool.leases - pool.reused).toBeLessThanOrEqual(connections);
      expect(pool.released).toBe(pool.leases);
    }
  });
});

describe("the local server's stack and the read pool", () => {
  const runner = HOSTS[1] as Host;

  it('answer ranges of lent buffers right, and give every buffer back', async () => {
    const { base, idle } = await start(runner);
    const before = readPool.stats();
    const connections = await hostileMix(base, (c, i) => {
      const start = ((c * 977 + i * 4099) % SIZE) & ~3;
      const end = Math.min(SIZE - 1, start + ((c + i) % 5) * 9973);
      return (c + i) % 3 === 0 ? whole(c + i) : { n: c + i, range: { start, end } };
    });
    await idle();
    const pool = poolSince(before);
    expect(pool.leases - pool.reused).toBeLessThanOrEqual(connections);
    expect(pool.released).toBe(pool.leases);
  });

  it('with the cache on, answer its copies right while the misses churn the pool', async () => {
    // A cache of 1 MiB holds about 15 of the 48 files: most reads miss, are read into a pooled
    // buffer, copied into the cache (evicting others) and the buffer given back at once.
    const { base, idle } = await start(runner, { cacheSize: 1024 * 1024 });
    const before = readPool.stats();
    await hostileMix(base);
    await idle();
    const pool = poolSince(before);
    expect(pool.leases).toBeGreaterThan(100);
    expect(pool.released).toBe(pool.leases);
    expect(pool.reused).toBeGreaterThanOrEqual(pool.leases - 1);
  });

  it('give a buffer back at once when the client left before its answer was ready', async () => {
    let arrived: () => void = () => {};
    const getCalled = new Promise<void>((resolve) => {
      arrived = resolve;
    });
    let openGate: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      openGate = resolve;
    });
    let released: () => void = () => {};
    const givenBack = new Promise<void>((resolve) => {
      released = resolve;
    });
    const { base, idle } = await start(runner, {
      wrap: (inner) =>
        new DelegatingStore(inner, {
          async get(key, range, cookie): Promise<FileRead> {
            arrived();
            await gate;
            const read = await inner.get(key, range, cookie);
            const release = read.release;
            expect(release).toBeTypeOf('function');
            return {
              ...read,
              release: () => {
                release?.();
                released();
              },
            };
          },
        }),
    });
    const { connection } = await pipelined(base, 1, whole);
    await getCalled;
    connection.abort();
    await idle();
    const before = readPool.stats();
    openGate();
    await givenBack;
    expect(poolSince(before)).toMatchObject({ leases: 1, released: 1 });
  });
});

describe("a store node's replica routes on the local server's stack", () => {
  it('answer lent replica reads right, whole and ranged, and give every buffer back', async () => {
    dir = await makeTempDir('haystack-read-bytes-replicas-');
    const set = new ReplicaSet({
      dir,
      open: (folder) => openVolumeStore({ dir: folder, fsync: 'never' }),
      mayCreate: async () => true,
    });
    try {
      const replica = await set.replica(1, { create: true });
      const writer = replica.capabilities.replicas as ReplicaWriter;
      for (let n = 0; n < 16; n++) await writer.putReplica(n + 1, 7, { body: contentOf(n) });
      const app = createReplicaApp({ replicas: set, token: 'cluster-secret-1', maxBody: 1 << 20 });
      server = await served(createHttpServer(app.fetch, LIMITS, '127.0.0.1').server, '');
      const before = readPool.stats();
      await Promise.all(
        Array.from({ length: 4 }, async (_, c) => {
          const connection = await connect(server?.base as string);
          const asks = Array.from({ length: 24 }, (_, i): Ask => {
            const n = (c * 5 + i) % 16;
            return i % 2 === 0 ? { n } : { n, range: { start: i * 100, end: i * 100 + 30_000 } };
          });
          const requests = asks.map(({ n, range }) => {
            const ranged = range ? `Range: bytes=${range.start}-${range.end}\r\n` : '';
            return (
              `GET /replicas/1/${n + 1} HTTP/1.1\r\nHost: test\r\n` +
              `Authorization: Bearer cluster-secret-1\r\n${REPLICA_HEADERS.cookie}: 7\r\n${ranged}\r\n`
            );
          });
          await connection.write(requests.join(''));
          await expectFiles(connection, asks);
          connection.socket.end();
        }),
      );
      await server.idle();
      const pool = poolSince(before);
      expect(pool.leases).toBe(96);
      expect(pool.leases - pool.reused).toBeLessThanOrEqual(4);
      expect(pool.released).toBe(pool.leases);
    } finally {
      await server?.close();
      server = undefined;
      await set.close();
    }
  });
});
