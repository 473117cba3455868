import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createDirectory,
  createPgDatabase,
  type Directory,
  type KeyLease,
  MAX_KEY,
  migrate,
  openDirectory,
  type SqlDatabase,
} from '../../adapters/cluster/directory/index.ts';
import { freePort } from '../../scripts/support/postgres.ts';
import { testDatabase } from '../support/postgres.ts';

const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
const TIMEOUT = 10_000;
const figuresZero = { bytes: 0, liveNeedles: 0, deletedNeedles: 0, liveBytes: 0, garbageBytes: 0 };

/** Everything a test opened, closed after it, failed or not. */
const opened: { close(): Promise<void> }[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const child of children.splice(0)) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  await Promise.allSettled(opened.splice(0).map((item) => item.close()));
});

async function open(url: string): Promise<Directory> {
  const directory = await openDirectory(url);
  opened.push(directory);
  return directory;
}

function raw(url: string): SqlDatabase {
  const db = createPgDatabase(url);
  opened.push(db);
  return db;
}

/** A fresh database with the Directory on it, and plain SQL beside it. */
async function fresh(): Promise<{ url: string; dir: Directory; sql: SqlDatabase }> {
  const url = await testDatabase();
  const dir = await open(url);
  return { url, dir, sql: raw(url) };
}

/** Moves a node's last heartbeat `seconds` into the past (no sleeping). */
async function age(sql: SqlDatabase, node: string, seconds: number): Promise<void> {
  await sql.query(
    `UPDATE haystack_nodes SET last_heartbeat = now() - make_interval(secs => $2) WHERE id = $1`,
    [node, seconds],
  );
}

async function nodeUp(dir: Directory, node: string, timeoutMs = TIMEOUT): Promise<boolean> {
  const view = await dir.view(timeoutMs);
  const row = view.nodes.find((n) => n.id === node);
  if (row === undefined) throw new Error(`no node ${node} in the view`);
  return row.up;
}

async function volumeOf(dir: Directory, id: number) {
  const volume = (await dir.view(TIMEOUT)).volumes.find((v) => v.id === id);
  if (volume === undefined) throw new Error(`no volume ${id} in the view`);
  return volume;
}

/** Registers nodes with the given free bytes; all up. */
async function nodes(dir: Directory, free: Record<string, number>): Promise<void> {
  for (const [id, bytes] of Object.entries(free)) {
    await dir.registerNode(id, `http://${id}.test:7000`, bytes);
  }
}

async function volumeOn(dir: Directory, replicas: number): Promise<number> {
  const volume = await dir.createVolume(replicas, TIMEOUT);
  if (volume === undefined) throw new Error('no volume made');
  return volume.id;
}

describe('the PostgreSQL port (pg-database.ts)', () => {
  it('parses bigint as numbers for its own pool only', async () => {
    const db = raw(await testDatabase());
    const [row] = await db.query<{ big: unknown; count: unknown; text: unknown }>(
      `SELECT 9007199254740991::bigint AS big, count(*) AS count, 'x'::text AS text
       FROM generate_series(1, 3)`,
    );
    expect(row).toEqual({ big: MAX_KEY, count: 3, text: 'x' });
    // The driver's global parser is untouched: a plain client still gets strings.
    const client = new pg.Client({ connectionString: await testDatabase() });
    await client.connect();
    try {
      const { rows } = await client.query('SELECT 5::bigint AS five');
      expect(rows[0]).toEqual({ five: '5' });
    } finally {
      await client.end();
    }
  });

  it('commits a transaction that resolves, rolls back one that rejects, and reuses the client', async () => {
    // One connection: a client not released would make the next call wait for ever.
    const url = await testDatabase();
    const db = createPgDatabase(url, { max: 1, connectionTimeoutMs: 5_000 });
    opened.push(db);
    await db.query('CREATE TABLE t (n int)');
    await db.transaction(async (tx) => {
      await tx.query('INSERT INTO t VALUES (1)');
    });
    const failure = new Error('work failed');
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES (2)');
        throw failure;
      }),
    ).rejects.toBe(failure);
    await expect(
      db.transaction(async (tx) => {
        await tx.query('INSERT INTO t VALUES (3)');
        await tx.query('SELECT 1/0');
      }),
    ).rejects.toThrow(/division by zero/);
    await expect(db.query('SELECT nope')).rejects.toThrow(/nope/);
    expect(await db.query('SELECT n FROM t ORDER BY n')).toEqual([{ n: 1 }]);
    await db.close();
    await expect(db.query('SELECT 1')).rejects.toThrow(/closed/);
  });

  it('never shows the password when it cannot connect', async () => {
    const port = await freePort(); // nobody listens there
    const password = 's3cret-Pa55word';
    const url = `postgres://gate:${password}@127.0.0.1:${port}/haystack_dir`;
    const texts = (error: unknown): string[] => {
      const out: string[] = [];
      for (let e = error; e instanceof Error; e = e.cause) {
        out.push(e.message, e.stack ?? '', JSON.stringify(e), String(e));
      }
      return out;
    };
    const db = createPgDatabase(url);
    opened.push(db);
    const error = await db.query('SELECT 1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`gate@127.0.0.1:${port}/haystack_dir`);
    expect((error as Error).cause).toBeInstanceOf(Error);
    for (const text of texts(error)) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(url);
    }
    const opening = await openDirectory(url).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(opening).toBeInstanceOf(Error);
    expect((opening as Error).message).toContain(`gate@127.0.0.1:${port}/haystack_dir`);
    for (const text of texts(opening)) expect(text).not.toContain(password);
  });
});

describe('migrations', () => {
  async function schema(sql: SqlDatabase) {
    const tables = await sql.query<{ tablename: string }>(
      `SELECT tablename FROM pg_tables WHERE tablename LIKE 'haystack\\_%' ORDER BY tablename`,
    );
    const versions = await sql.query('SELECT version FROM haystack_migrations');
    const counter = await sql.query('SELECT next_key FROM haystack_key_counter');
    return { tables: tables.map((t) => t.tablename), versions, counter };
  }
  const expected = {
    tables: [
      'haystack_key_counter',
      'haystack_key_ranges',
      'haystack_migrations',
      'haystack_nodes',
      'haystack_owed_deletes',
      'haystack_replicas',
      'haystack_volumes',
    ],
    versions: [{ version: 1 }],
    counter: [{ next_key: 1 }],
  };

  it('apply once, and again is a no-op', async () => {
    const url = await testDatabase();
    const sql = raw(url);
    expect(await migrate(sql)).toEqual([1]);
    expect(await migrate(sql)).toEqual([]);
    await open(url);
    expect(await schema(sql)).toEqual(expected);
  });

  it('are safe when two processes open the Directory at once', async () => {
    const url = await testDatabase();
    const sql = raw(url);
    // Each openDirectory has its own pool, as two processes would.
    const [a, b] = await Promise.all([open(url), open(url), open(url)]);
    expect(await schema(sql)).toEqual(expected);
    // Both work on the one schema.
    const volume = await (async () => {
      await a?.registerNode('n1', 'http://n1', 1);
      return volumeOn(b as Directory, 1);
    })();
    expect(volume).toBe(1);
  });
});

describe('key leases', () => {
  it('from two gateways at once never overlap, and each one’s increase', async () => {
    const { url, dir, sql } = await fresh();
    await nodes(dir, { n1: 1 });
    const volume = await volumeOn(dir, 1);
    const gateways = [await open(url), await open(url)];
    const sizes = [1, 7, 1000, 3];
    const leases = await Promise.all(
      gateways.map(async (gateway, g) => {
        const mine: KeyLease[] = [];
        // Two streams per gateway, each a gateway's sequence of leases, all four at once.
        await Promise.all(
          [0, 1].map(async () => {
            const stream: KeyLease[] = [];
            for (let i = 0; i < 50; i++) {
              stream.push(await gateway.leaseKeys(volume, sizes[i % 4] ?? 1, `g${g}`));
            }
            for (let i = 1; i < stream.length; i++) {
              expect(stream[i]?.first).toBeGreaterThan(stream[i - 1]?.last ?? 0);
            }
            mine.push(...stream);
          }),
        );
        return mine;
      }),
    );
    const all = leases.flat().sort((a, b) => a.first - b.first);
    expect(all).toHaveLength(200);
    let next = 1;
    for (const lease of all) {
      expect(lease.first).toBe(next); // no overlap, and no gap either
      expect(lease.volume).toBe(volume);
      next = lease.last + 1;
    }
    expect(await sql.query('SELECT next_key FROM haystack_key_counter')).toEqual([
      { next_key: next },
    ]);
    const ranges = await sql.query<{ first_key: number; last_key: number }>(
      'SELECT first_key, last_key FROM haystack_key_ranges ORDER BY first_key',
    );
    expect(ranges.map((r) => [r.first_key, r.last_key])).toEqual(all.map((l) => [l.first, l.last]));
  });

  it('2 x 100 at once, all in flight together, never overlap', async () => {
    const { url, dir } = await fresh();
    await nodes(dir, { n1: 1 });
    const volume = await volumeOn(dir, 1);
    const gateways = [await open(url), await open(url)];
    const all = (
      await Promise.all(
        gateways.flatMap((gateway, g) =>
          Array.from({ length: 100 }, (_, i) => gateway.leaseKeys(volume, 1 + (i % 5), `g${g}`)),
        ),
      )
    ).sort((a, b) => a.first - b.first);
    let next = 1;
    for (const lease of all) {
      expect(lease.first).toBe(next);
      next = lease.last + 1;
    }
    expect(next).toBe(1 + 2 * 20 * (1 + 2 + 3 + 4 + 5));
  });

  it('taken by a process killed with SIGKILL are wasted, and the next lease is above them', async () => {
    const { url, dir } = await fresh();
    await nodes(dir, { n1: 1 });
    const volume = await volumeOn(dir, 1);
    const before = await dir.leaseKeys(volume, 10, 'test');
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', 'test/cluster/support/lease-and-wait.ts', url, String(volume), '1000'],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    children.push(child);
    const exited = new Promise<NodeJS.Signals | null>((resolve) =>
      child.once('exit', (_code, signal) => resolve(signal)),
    );
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
        out += chunk;
        const end = out.indexOf('\n');
        if (end >= 0) resolve(out.slice(0, end));
      });
      child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
        err += chunk;
      });
      child.once('exit', (code) => reject(new Error(`the child exited (${code}):\n${err}`)));
    });
    const childLease = JSON.parse(line) as KeyLease;
    expect(childLease).toEqual({ first: before.last + 1, last: before.last + 1000, volume });
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');

    const after = await dir.leaseKeys(volume, 10, 'test');
    expect(after.first).toBe(childLease.last + 1);
    expect((await dir.view(TIMEOUT)).nextKey).toBe(after.last + 1);
    // The dead gateway's keys stay its lease: never handed out again, still placed.
    expect((await dir.placeKey(childLease.first + 5)).lease).toEqual(childLease);
  });

  it('stop at 2^53 - 1', async () => {
    const { dir, sql } = await fresh();
    await nodes(dir, { n1: 1 });
    const volume = await volumeOn(dir, 1);
    await sql.query('UPDATE haystack_key_counter SET next_key = $1', [MAX_KEY - 5]);
    await expect(dir.leaseKeys(volume, 7, 'g')).rejects.toThrow(/ran out/);
    expect(await dir.leaseKeys(volume, 6, 'g')).toEqual({
      first: MAX_KEY - 5,
      last: MAX_KEY,
      volume,
    });
    await expect(dir.leaseKeys(volume, 1, 'g')).rejects.toThrow(/ran out/);
    await expect(dir.leaseKeys(volume, 0, 'g')).rejects.toThrow(RangeError);
    expect((await dir.placeKey(MAX_KEY)).lease?.last).toBe(MAX_KEY);
  });

  it('are found by placeKey, with the nodes owing a delete of the key', async () => {
    const { dir, sql } = await fresh();
    await nodes(dir, { a: 3, b: 2, c: 1 });
    const v1 = await volumeOn(dir, 3);
    const first = await dir.leaseKeys(v1, 10, 'g'); // 1..10
    await sql.query('UPDATE haystack_key_counter SET next_key = 100'); // a gap: 11..99
    const second = await dir.leaseKeys(v1, 10, 'g'); // 100..109
    expect(first).toEqual({ first: 1, last: 10, volume: v1 });
    expect(second).toEqual({ first: 100, last: 109, volume: v1 });

    expect(await dir.placeKey(1)).toEqual({ lease: first, owedBy: [] });
    expect(await dir.placeKey(10)).toEqual({ lease: first, owedBy: [] });
    expect(await dir.placeKey(109)).toEqual({ lease: second, owedBy: [] });
    expect(await dir.placeKey(11)).toEqual({ lease: undefined, owedBy: [] });
    expect(await dir.placeKey(99)).toEqual({ lease: undefined, owedBy: [] });
    expect(await dir.placeKey(110)).toEqual({ lease: undefined, owedBy: [] });
    expect(await dir.placeKey(0)).toEqual({ lease: undefined, owedBy: [] });

    const ids = await dir.oweDeletes(v1, 5, ['c', 'a'], 1234);
    await dir.oweDeletes(v1, 6, ['b'], null);
    const place = await dir.placeKey(5);
    expect(place.lease).toEqual(first);
    expect([...place.owedBy].sort()).toEqual(['a', 'c']);
    await dir.settleDeletes([ids[0] ?? -1]);
    expect(await dir.placeKey(5)).toEqual({ lease: first, owedBy: ['a'] });
  });
});

describe('the delete journal', () => {
  it('answers ids in the order of the nodes, oldest first per node, and settles by id', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 3, b: 2, c: 1 });
    const v = await volumeOn(dir, 3);
    const order = ['c', 'a', 'b', 'a'];
    const ids = await dir.oweDeletes(v, 42, order, 77);
    expect(ids).toHaveLength(4);
    expect(new Set(ids).size).toBe(4);
    const later = await dir.oweDeletes(v, 43, ['a'], null);
    expect(await dir.oweDeletes(v, 44, [], null)).toEqual([]);

    const owedByA = await dir.deletesOwedBy('a', 10);
    expect(owedByA).toEqual([
      { id: ids[1], node: 'a', volume: v, key: 42, cookie: 77 },
      { id: ids[3], node: 'a', volume: v, key: 42, cookie: 77 },
      { id: later[0], node: 'a', volume: v, key: 43, cookie: null },
    ]);
    expect((await dir.deletesOwedBy('c', 10)).map((d) => d.id)).toEqual([ids[0]]);
    expect((await dir.deletesOwedBy('b', 10)).map((d) => d.id)).toEqual([ids[2]]);
    expect(await dir.deletesOwedBy('a', 2)).toEqual(owedByA.slice(0, 2));

    await dir.settleDeletes([ids[1] ?? -1, ids[0] ?? -1]);
    await dir.settleDeletes([]);
    expect((await dir.deletesOwedBy('a', 10)).map((d) => d.id)).toEqual([ids[3], later[0]]);
    expect(await dir.deletesOwedBy('c', 10)).toEqual([]);
  });
});

describe('logical volumes', () => {
  it('are made on the R up nodes with the most free bytes, and reused while writable', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 100, b: 400, c: 300, d: 200 });
    const made = await dir.createVolume(3, TIMEOUT);
    expect(made).toMatchObject({ id: 1, state: 'writable', reasonCode: null, reason: null });
    expect(made?.replicas.map((r) => [r.node, r.state])).toEqual([
      ['b', 'ok'],
      ['c', 'ok'],
      ['d', 'ok'],
    ]);
    expect(made?.replicas[0]).toEqual({ volume: 1, node: 'b', state: 'ok', ...figuresZero });
    expect(await dir.createVolume(3, TIMEOUT)).toEqual(made);
    expect(await dir.holdsReplica('b', 1)).toBe(true);
    expect(await dir.holdsReplica('a', 1)).toBe(false);
    expect(await dir.holdsReplica('b', 2)).toBe(false);

    // Read-only: a new one (b, c, d still have the most room).
    await dir.markVolumeReadOnly(1, 'replica-failed', 'c refused');
    const second = await dir.createVolume(3, TIMEOUT);
    expect(second?.id).toBe(2);
    expect(second?.replicas.map((r) => r.node)).toEqual(['b', 'c', 'd']);

    // A replica catching up: not writable, so a new one.
    await dir.markReplicaCatchingUp(2, 'd');
    expect((await dir.createVolume(2, TIMEOUT))?.id).toBe(3);
  });

  it('avoid the nodes a gateway names, in the volume reused and in the one made', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 100, b: 400, c: 300, d: 200 });
    const first = await dir.createVolume(3, TIMEOUT);
    expect(first?.replicas.map((r) => r.node)).toEqual(['b', 'c', 'd']);
    // b failed a write just now, before the Directory counts it down: not reused, not chosen.
    const second = await dir.createVolume(3, TIMEOUT, ['b']);
    expect(second?.id).toBe(2);
    expect(second?.replicas.map((r) => r.node)).toEqual(['a', 'c', 'd']);
    expect(await dir.createVolume(3, TIMEOUT, ['b', 'c'])).toBeUndefined();
    // A writable volume with fewer replicas than asked for is not reused either.
    expect((await dir.createVolume(4, TIMEOUT))?.replicas).toHaveLength(4);
  });

  it('skip down nodes, and are not made when fewer than R nodes are up', async () => {
    const { dir, sql } = await fresh();
    await nodes(dir, { a: 100, b: 400, c: 300 });
    const first = await dir.createVolume(2, TIMEOUT);
    expect(first?.replicas.map((r) => r.node)).toEqual(['b', 'c']);
    await age(sql, 'b', 60); // b is down: volume 1 is not writable any more
    const second = await dir.createVolume(2, TIMEOUT);
    expect(second?.id).toBe(2);
    expect(second?.replicas.map((r) => r.node)).toEqual(['a', 'c']);
    await age(sql, 'c', 60);
    expect(await dir.createVolume(2, TIMEOUT)).toBeUndefined();
    // With a longer node timeout the same nodes count as up.
    expect((await dir.createVolume(2, 120_000))?.id).toBe(1);
    expect((await dir.view(TIMEOUT)).volumes.map((v) => v.id)).toEqual([1, 2]);
  });

  it('made by two gateways at once on an empty cluster: exactly one', async () => {
    const { url, dir, sql } = await fresh();
    await nodes(dir, { a: 1, b: 2, c: 3 });
    const other = await open(url);
    const made = await Promise.all([
      dir.createVolume(3, TIMEOUT),
      other.createVolume(3, TIMEOUT),
      dir.createVolume(3, TIMEOUT),
      other.createVolume(3, TIMEOUT),
    ]);
    expect(new Set(made.map((v) => v?.id))).toEqual(new Set([1]));
    expect(await sql.query('SELECT count(*) AS n FROM haystack_volumes')).toEqual([{ n: 1 }]);
    expect(await sql.query('SELECT count(*) AS n FROM haystack_replicas')).toEqual([{ n: 3 }]);
  });

  it('read-only for full stay so: a replica failure does not overwrite it', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 1 });
    const v = await volumeOn(dir, 1);
    await dir.markVolumeReadOnly(v, 'full', 'a: no space');
    await dir.markVolumeReadOnly(v, 'replica-failed', 'a refused');
    expect(await volumeOf(dir, v)).toMatchObject({
      state: 'read-only',
      reasonCode: 'full',
      reason: 'a: no space',
    });
  });
});

describe('catching up', () => {
  it('is refused while a delete is owed for that volume, and done after it is settled', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 2, b: 1 });
    const v = await volumeOn(dir, 2);
    await dir.markVolumeReadOnly(v, 'replica-failed', 'a timed out');
    await dir.markReplicaCatchingUp(v, 'a');
    const [owed] = await dir.oweDeletes(v, 9, ['a'], null);
    expect(await dir.finishCatchUp(v, 'a')).toBe(false);
    expect(await volumeOf(dir, v)).toMatchObject({ state: 'read-only' });
    expect((await volumeOf(dir, v)).replicas.find((r) => r.node === 'a')?.state).toBe(
      'catching-up',
    );

    await dir.settleDeletes([owed ?? -1]);
    expect(await dir.finishCatchUp(v, 'a')).toBe(true);
    expect(await volumeOf(dir, v)).toMatchObject({
      state: 'writable',
      reasonCode: null,
      reason: null,
    });
    // Already ok: still true, nothing changes.
    expect(await dir.finishCatchUp(v, 'a')).toBe(true);
  });

  it('is not held back by a delete owed for another volume', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 1 });
    const v1 = await volumeOn(dir, 1);
    await dir.markVolumeReadOnly(v1, 'full', 'full');
    const v2 = await volumeOn(dir, 1);
    await dir.oweDeletes(v1, 1, ['a'], null);
    await dir.markReplicaCatchingUp(v2, 'a');
    expect(await dir.finishCatchUp(v2, 'a')).toBe(true);
    await dir.markReplicaCatchingUp(v1, 'a');
    expect(await dir.finishCatchUp(v1, 'a')).toBe(false);
  });

  it('makes a replica-failed volume writable only once all its replicas are ok, never a full one', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 3, b: 2, c: 1 });
    const v = await volumeOn(dir, 2); // a, b
    await dir.markVolumeReadOnly(v, 'replica-failed', 'a and b failed');
    await dir.markReplicaCatchingUp(v, 'a');
    await dir.markReplicaCatchingUp(v, 'b');
    expect(await dir.finishCatchUp(v, 'a')).toBe(true);
    expect((await volumeOf(dir, v)).state).toBe('read-only');
    expect(await dir.finishCatchUp(v, 'b')).toBe(true);
    expect((await volumeOf(dir, v)).state).toBe('writable');

    await dir.markVolumeReadOnly(v, 'full', 'b: no space');
    await dir.markReplicaCatchingUp(v, 'a');
    expect(await dir.finishCatchUp(v, 'a')).toBe(true);
    expect(await volumeOf(dir, v)).toMatchObject({ state: 'read-only', reasonCode: 'full' });
    // A node that holds no replica of it is not ok.
    expect(await dir.finishCatchUp(v, 'c')).toBe(false);
  });

  it('by two replicas at once turns the volume writable', async () => {
    const { url, dir } = await fresh();
    await nodes(dir, { a: 2, b: 1 });
    const other = await open(url);
    for (let round = 0; round < 10; round++) {
      const v = await volumeOn(dir, 2);
      await dir.markVolumeReadOnly(v, 'replica-failed', 'both failed');
      await dir.markReplicaCatchingUp(v, 'a');
      await dir.markReplicaCatchingUp(v, 'b');
      expect(await Promise.all([dir.finishCatchUp(v, 'a'), other.finishCatchUp(v, 'b')])).toEqual([
        true,
        true,
      ]);
      expect((await volumeOf(dir, v)).state).toBe('writable');
      await dir.markVolumeReadOnly(v, 'full', 'next round');
    }
  });
});

describe('nodes', () => {
  it('are up or down by the age of their last heartbeat, judged by the caller’s timeout', async () => {
    const { dir, sql } = await fresh();
    await nodes(dir, { a: 1, b: 1 });
    expect(await nodeUp(dir, 'a')).toBe(true);
    await age(sql, 'a', 20);
    expect(await nodeUp(dir, 'a', 10_000)).toBe(false);
    expect(await nodeUp(dir, 'a', 30_000)).toBe(true);
    expect(await nodeUp(dir, 'b', 10_000)).toBe(true);
    await dir.heartbeat('a', 1, new Map(), 10_000);
    expect(await nodeUp(dir, 'a', 10_000)).toBe(true);
  });

  it('register: row made, then URL and free bytes updated, replicas marked catching-up', async () => {
    const { dir } = await fresh();
    expect(await dir.registerNode('a', 'http://old:1', 10)).toEqual([]);
    expect(await dir.registerNode('b', 'http://b:1', 5)).toEqual([]);
    const v1 = await volumeOn(dir, 2);
    await dir.markVolumeReadOnly(v1, 'full', 'full');
    const v2 = await volumeOn(dir, 1); // on a, the one with more room
    expect(await dir.registerNode('a', 'http://new:2', 7)).toEqual([v1, v2]);
    const view = await dir.view(TIMEOUT);
    expect(view.nodes.find((n) => n.id === 'a')).toMatchObject({
      url: 'http://new:2',
      bytesFree: 7,
      up: true,
    });
    expect(view.nodes.find((n) => n.id === 'a')?.lastHeartbeat).toBeInstanceOf(Date);
    const states = view.volumes.flatMap((v) =>
      v.replicas.map((r) => `${v.id}/${r.node}:${r.state}`),
    );
    expect(states.sort()).toEqual([`1/a:catching-up`, `1/b:ok`, `2/a:catching-up`]);
  });

  it('a heartbeat after a gap marks the replicas catching-up; a timely one does not', async () => {
    const { dir, sql } = await fresh();
    await nodes(dir, { a: 2, b: 1 });
    const v = await volumeOn(dir, 2);
    const timely = await dir.heartbeat('a', 2, new Map(), TIMEOUT);
    expect(timely).toEqual([{ volume: v, node: 'a', state: 'ok', ...figuresZero }]);
    await age(sql, 'a', 5); // late-ish, within the timeout
    expect((await dir.heartbeat('a', 2, new Map(), TIMEOUT))[0]?.state).toBe('ok');

    await age(sql, 'a', 11);
    const late = await dir.heartbeat('a', 2, new Map(), TIMEOUT);
    expect(late).toEqual([{ volume: v, node: 'a', state: 'catching-up', ...figuresZero }]);
    expect(await nodeUp(dir, 'a')).toBe(true);
    // b was not late: untouched.
    expect((await volumeOf(dir, v)).replicas.find((r) => r.node === 'b')?.state).toBe('ok');
    await expect(dir.heartbeat('nobody', 1, new Map(), TIMEOUT)).rejects.toThrow(/not registered/);
  });

  it('report figures in heartbeats, which the view shows', async () => {
    const { dir } = await fresh();
    await nodes(dir, { a: 2, b: 1 });
    const v1 = await volumeOn(dir, 2);
    await dir.markVolumeReadOnly(v1, 'full', 'full');
    const v2 = await volumeOn(dir, 1); // on a
    const f1 = {
      bytes: 5_000_000_000,
      liveNeedles: 10,
      deletedNeedles: 2,
      liveBytes: 4_000_000_000,
      garbageBytes: 999,
    };
    const f2 = { bytes: 1, liveNeedles: 2, deletedNeedles: 3, liveBytes: 4, garbageBytes: 5 };
    const answer = await dir.heartbeat(
      'a',
      2 ** 40,
      new Map([
        [v1, f1],
        [v2, f2],
        [99, f2], // not a replica of a: ignored
      ]),
      TIMEOUT,
    );
    expect(answer).toEqual([
      { volume: v1, node: 'a', state: 'ok', ...f1 },
      { volume: v2, node: 'a', state: 'ok', ...f2 },
    ]);
    const view = await dir.view(TIMEOUT);
    expect(view.nodes.find((n) => n.id === 'a')?.bytesFree).toBe(2 ** 40);
    expect(view.volumes).toEqual([
      {
        id: v1,
        state: 'read-only',
        reasonCode: 'full',
        reason: 'full',
        replicas: [
          { volume: v1, node: 'a', state: 'ok', ...f1 },
          { volume: v1, node: 'b', state: 'ok', ...figuresZero },
        ],
      },
      {
        id: v2,
        state: 'writable',
        reasonCode: null,
        reason: null,
        replicas: [{ volume: v2, node: 'a', state: 'ok', ...f2 }],
      },
    ]);
  });
});

describe('createDirectory', () => {
  it('works over any SqlDatabase and closes it', async () => {
    const url = await testDatabase();
    const db = createPgDatabase(url);
    await migrate(db);
    const dir = createDirectory(db);
    await dir.registerNode('a', 'http://a', 1);
    expect((await dir.view(TIMEOUT)).nodes.map((n) => n.id)).toEqual(['a']);
    await dir.close();
    await expect(db.query('SELECT 1')).rejects.toThrow(/closed/);
  });
});
