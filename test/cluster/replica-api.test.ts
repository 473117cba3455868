import { randomBytes } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { serve } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NodeUnreachable, type ReplicaApi } from '../../adapters/cluster/replica-api-client.ts';
import { ClusterTokenRefused, createReplicaClient } from '../../adapters/cluster/replica-client.ts';
import { ReplicaSet } from '../../adapters/cluster/replica-set.ts';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { createReplicaApp } from '../../handlers/index.ts';
import { type FileRead, isStoreError, REPLICA_HEADERS } from '../../storage/index.ts';
import { connect } from '../support/raw-http.ts';
import { filesEndingWith, makeTempDir, removeTempDir } from '../support/tmp.ts';

const TOKEN = 'cluster-secret-1';
const MiB = 1024 * 1024;

interface Listening {
  base: string;
  close(): Promise<void>;
}

function listen(fetch: (request: Request) => Response | Promise<Response>): Promise<Listening> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      resolve({
        base: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done, fail) => {
            server.close((err) => (err ? fail(err) : done()));
            (server as unknown as { closeAllConnections?: () => void }).closeAllConnections?.();
          }),
      });
    });
  });
}

/** A raw TCP server, for nodes that misbehave as no HTTP server would. */
function rawServer(onSocket: (socket: net.Socket) => void): Promise<Listening> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        base: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await rejection(promise);
  expect(isStoreError(err) ? err.code : err).toBe(code);
}

async function bytesOf(body: FileRead['body']): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  return new Uint8Array(await new Response(body).arrayBuffer());
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(
    Buffer.from(b.buffer, b.byteOffset, b.byteLength),
  );
}

describe('the replica API over a real socket', () => {
  let dir = '';
  let set: ReplicaSet;
  let node: Listening;
  let small: Listening;
  let client: ReplicaApi;
  let base = '';
  /** Volumes the "Directory" names this node a replica of. */
  const allowed = new Set([1, 2, 3, 4, 5, 6, 7]);
  const errors: unknown[] = [];

  beforeAll(async () => {
    dir = await makeTempDir('haystack-replica-api-');
    set = new ReplicaSet({
      dir,
      open: (folder) => openVolumeStore({ dir: folder }),
      mayCreate: async (volume) => allowed.has(volume),
    });
    const app = createReplicaApp({
      replicas: set,
      token: TOKEN,
      maxBody: 16 * MiB,
      node: 'node-a',
      onUnexpectedError: (err) => errors.push(err),
    });
    node = await listen(app.fetch);
    base = node.base;
    // The same replicas behind a small limit, for 413.
    small = await listen(
      createReplicaApp({ replicas: set, token: TOKEN, maxBody: 1000, onUnexpectedError: () => {} })
        .fetch,
    );
    client = createReplicaClient({ token: TOKEN, timeoutMs: 5_000 });
  });

  afterAll(async () => {
    await client.close();
    await node.close();
    await small.close();
    await set.close();
    await removeTempDir(dir);
  });

  const auth = { authorization: `Bearer ${TOKEN}` };

  describe('refuses every request without the cluster token, changing nothing', () => {
    for (const [what, headers] of [
      ['no token', {}],
      ['a wrong token', { authorization: 'Bearer not-the-token' }],
      ['a malformed header', { authorization: 'Basic abc' }],
    ] as const) {
      it(`with ${what}`, async () => {
        const put = await fetch(`${base}/replicas/1/100`, {
          method: 'PUT',
          headers: { ...headers, [REPLICA_HEADERS.cookie]: '5', 'content-type': 'text/plain' },
          body: 'never stored',
        });
        expect(put.status).toBe(401);
        expect(await put.json()).toMatchObject({ error: { code: 'unauthorized' } });
        expect(put.headers.get('www-authenticate')).toMatch(/^Bearer/);
        expect(await exists(join(dir, 'volumes', '1'))).toBe(false);

        for (const [method, path] of [
          ['GET', '/replicas/1/100'],
          ['DELETE', '/replicas/1/100'],
          ['GET', '/replicas/1/keys'],
          ['DELETE', '/sync'],
          ['GET', '/status'],
          ['GET', '/nothing/here'],
          ['POST', '/file'],
        ] as const) {
          const res = await fetch(`${base}${path}`, { method, headers });
          expect(res.status, `${method} ${path}`).toBe(401);
          expect(await res.json()).toMatchObject({ error: { code: 'unauthorized' } });
        }
      });
    }

    it('answers 401 to a PUT before a byte of its body has been sent', async () => {
      const conn = await connect(base);
      try {
        await conn.write(
          'PUT /replicas/1/101 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer wrong\r\n' +
            `${REPLICA_HEADERS.cookie}: 5\r\nContent-Length: 10485760\r\n\r\n`,
        );
        const res = await conn.readResponse();
        expect(res.status).toBe(401);
        expect(JSON.parse(res.body.toString())).toMatchObject({ error: { code: 'unauthorized' } });
      } finally {
        conn.abort();
      }
      expect(await exists(join(dir, 'volumes', '1'))).toBe(false);
    });

    it('the client says the tokens differ, as a ClusterTokenRefused', async () => {
      const stranger = createReplicaClient({ token: 'another-token' });
      try {
        const err = await rejection(
          stranger.put(base, 1, 100, 5, { size: 3, contentType: 'a/b', bytes: new Uint8Array(3) }),
        );
        expect(err).toBeInstanceOf(ClusterTokenRefused);
        expect((err as Error).message).toMatch(/cluster tokens .* differ/);
        expect(await rejection(stranger.status(base))).toBeInstanceOf(ClusterTokenRefused);
      } finally {
        await stranger.close();
      }
      expect(await exists(join(dir, 'volumes', '1'))).toBe(false);
    });
  });

  it('routes: 404 no_route for unknown paths, 405 for a wrong method, 400 for bad parts', async () => {
    for (const path of ['/file', '/file/1', '/replicas', '/replicas/1', '/replicas/1/2/3', '/x']) {
      const res = await fetch(`${base}${path}`, { headers: auth });
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ error: { code: 'no_route' } });
    }
    for (const [method, path, allow] of [
      ['POST', '/replicas/1/2', 'GET, HEAD, PUT, DELETE'],
      ['PUT', '/replicas/1/keys', 'GET'],
      ['GET', '/sync', 'DELETE'],
      ['POST', '/status', 'GET'],
    ] as const) {
      const res = await fetch(`${base}${path}`, { method, headers: auth });
      expect(res.status, `${method} ${path}`).toBe(405);
      expect(res.headers.get('allow')).toBe(allow);
      expect(await res.json()).toMatchObject({ error: { code: 'method_not_allowed' } });
    }
    for (const [path, headers, code] of [
      ['/replicas/01/2', {}, 'bad_request'],
      ['/replicas/abc/2', {}, 'bad_request'],
      ['/replicas/1/007', {}, 'bad_key'],
      ['/replicas/1/-1', {}, 'bad_key'],
      ['/replicas/1/2', { [REPLICA_HEADERS.cookie]: '0x10' }, 'bad_request'],
      ['/replicas/1/2', { [REPLICA_HEADERS.cookie]: '4294967296' }, 'bad_request'],
      ['/replicas/1/2', { [REPLICA_HEADERS.cookie]: '' }, 'bad_request'],
    ] as const) {
      const res = await fetch(`${base}${path}`, {
        method: 'PUT',
        headers: { ...auth, ...headers },
        body: 'x',
      });
      expect(res.status, `${path} ${JSON.stringify(headers)}`).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code } });
    }
    // A write without a cookie is refused, and makes no replica.
    const noCookie = await fetch(`${base}/replicas/6/2`, {
      method: 'PUT',
      headers: auth,
      body: 'x',
    });
    expect(noCookie.status).toBe(400);
    expect(await exists(join(dir, 'volumes', '6'))).toBe(false);
  });

  it('PUT, then GET, HEAD, ranges, and a wrong cookie reads as missing', async () => {
    const bytes = new Uint8Array(randomBytes(5000));
    const info = await client.put(base, 2, 1_000_001, 0xdeadbeef, {
      size: bytes.byteLength,
      contentType: 'image/jpeg',
      bytes,
    });
    expect(info).toMatchObject({
      key: 1_000_001,
      volume: 2,
      size: 5000,
      cookie: 0xdeadbeef,
      contentType: 'image/jpeg',
    });
    expect(info.etag).toMatch(/^".+"$/);

    const read = await client.get(base, 2, 1_000_001);
    expect(read.info).toEqual(info);
    expect(read.body).toBeInstanceOf(Uint8Array);
    expect(same(await bytesOf(read.body), bytes)).toBe(true);
    expect(await client.head(base, 2, 1_000_001, 0xdeadbeef)).toEqual(info);

    const part = await client.get(base, 2, 1_000_001, {
      range: { start: 100, end: 1099 },
      cookie: 0xdeadbeef,
    });
    expect(part.info).toEqual(info);
    expect(same(await bytesOf(part.body), bytes.subarray(100, 1100))).toBe(true);

    const raw = await fetch(`${base}/replicas/2/1000001`, {
      headers: { ...auth, range: 'bytes=10-19' },
    });
    expect(raw.status).toBe(206);
    expect(raw.headers.get('content-range')).toBe('bytes 10-19/5000');
    expect(raw.headers.get('content-length')).toBe('10');
    expect(raw.headers.get(REPLICA_HEADERS.size)).toBe('5000');
    expect(raw.headers.get(REPLICA_HEADERS.cookie)).toBe(String(0xdeadbeef));
    expect(raw.headers.get(REPLICA_HEADERS.offset)).toBe(String(info.offset));
    expect(raw.headers.get('etag')).toBe(info.etag);
    expect(raw.headers.get('content-type')).toBe('image/jpeg');
    expect(same(new Uint8Array(await raw.arrayBuffer()), bytes.subarray(10, 20))).toBe(true);

    const outside = await fetch(`${base}/replicas/2/1000001`, {
      headers: { ...auth, range: 'bytes=9000-9001' },
    });
    expect(outside.status).toBe(416);
    expect(await outside.json()).toMatchObject({ error: { code: 'range_not_satisfiable' } });

    await expectCode(client.get(base, 2, 1_000_001, { cookie: 0xdeadbeee }), 'not_found');
    await expectCode(client.head(base, 2, 1_000_001, 1), 'not_found');
    await expectCode(client.get(base, 2, 1_000_002), 'not_found');
    // A volume this node has no replica of.
    await expectCode(client.get(base, 3, 1_000_001), 'not_found');
  });

  it('a retry of the same PUT answers the same file and stores it once; another file is conflict', async () => {
    const bytes = new TextEncoder().encode('the same file, twice');
    const file = { size: bytes.byteLength, contentType: 'text/plain', bytes };
    const first = await client.put(base, 4, 40, 1234, file);
    // The retry streams, as a spool file would be sent.
    const again = await client.put(base, 4, 40, 1234, {
      size: bytes.byteLength,
      contentType: 'text/plain',
      open: () => Readable.from([bytes.subarray(0, 5), bytes.subarray(5)]),
    });
    expect(again).toEqual(first);
    const [replica] = (await client.status(base)).replicas.filter((r) => r.volume === 4);
    expect(replica?.liveNeedles).toBe(1);
    const bytesBefore = replica?.bytes;

    const other = new TextEncoder().encode('another file, same key');
    await expectCode(
      client.put(base, 4, 40, 1234, {
        size: other.byteLength,
        contentType: 'text/plain',
        bytes: other,
      }),
      'conflict',
    );
    await expectCode(client.put(base, 4, 40, 999, file), 'conflict');
    const [after] = (await client.status(base)).replicas.filter((r) => r.volume === 4);
    expect(after?.liveNeedles).toBe(1);
    expect(after?.bytes).toBe(bytesBefore);
    expect(same(await bytesOf((await client.get(base, 4, 40)).body), bytes)).toBe(true);
  });

  it('a PUT to a volume the Directory does not give this node is 404, and makes no folder', async () => {
    const bytes = new Uint8Array(10);
    await expectCode(
      client.put(base, 99, 5, 1, { size: 10, contentType: 'a/b', bytes }),
      'not_found',
    );
    expect(await exists(join(dir, 'volumes', '99'))).toBe(false);
  });

  it('over maxBody is 413 too_large, and nothing is stored', async () => {
    const bytes = new Uint8Array(5000);
    await expectCode(
      client.put(small.base, 5, 77, 1, { size: 5000, contentType: 'a/b', bytes }),
      'too_large',
    );
    // The declared length is refused before a replica is made.
    expect(await exists(join(dir, 'volumes', '5'))).toBe(false);
    // A chunked body is refused as it passes the limit.
    const chunked = await fetch(`${small.base}/replicas/2/77`, {
      method: 'PUT',
      headers: { ...auth, [REPLICA_HEADERS.cookie]: '1' },
      body: Readable.toWeb(
        Readable.from([new Uint8Array(600), new Uint8Array(600)]),
      ) as ReadableStream,
      duplex: 'half',
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(await chunked.json()).toMatchObject({ error: { code: 'too_large' } });
    await expectCode(client.head(base, 2, 77), 'not_found');
  });

  it('DELETE, then GET is 404, and DELETE again is 404', async () => {
    const bytes = new Uint8Array([1, 2, 3]);
    await client.put(base, 2, 500, 42, { size: 3, contentType: 'a/b', bytes });
    await expectCode(client.delete(base, 2, 500, 41), 'not_found');
    const raw = await fetch(`${base}/replicas/2/500`, {
      method: 'DELETE',
      headers: { ...auth, [REPLICA_HEADERS.cookie]: '42' },
    });
    expect(raw.status).toBe(200);
    expect(await raw.json()).toEqual({ key: 500, flag: false });
    await expectCode(client.get(base, 2, 500), 'not_found');
    await expectCode(client.delete(base, 2, 500), 'not_found');
    await expectCode(client.delete(base, 3, 500), 'not_found');
  });

  it('lists live keys a page at a time', async () => {
    const bytes = new Uint8Array([7]);
    for (const key of [25, 5, 15, 10, 20, 30]) {
      await client.put(base, 3, key, key, { size: 1, contentType: 'a/b', bytes });
    }
    await client.delete(base, 3, 30);
    expect(await client.listKeys(base, 3, 0, 2)).toEqual({ keys: [5, 10], next: 10 });
    expect(await client.listKeys(base, 3, 10, 2)).toEqual({ keys: [15, 20], next: 20 });
    expect(await client.listKeys(base, 3, 20, 2)).toEqual({ keys: [25], next: null });
    expect(await client.listKeys(base, 3, 25, 2)).toEqual({ keys: [], next: null });

    const all = await fetch(`${base}/replicas/3/keys`, { headers: auth });
    expect(await all.json()).toEqual({ keys: [5, 10, 15, 20, 25], next: null });
    for (const query of ['limit=0', 'limit=10001', 'after=-1', 'after=01', 'limit=x']) {
      const res = await fetch(`${base}/replicas/3/keys?${query}`, { headers: auth });
      expect(res.status, query).toBe(400);
      expect(await res.json()).toMatchObject({ error: { code: 'bad_request' } });
    }
    await expectCode(client.listKeys(base, 98, 0, 10), 'not_found');
  });

  it('syncs every replica and reports the node status', async () => {
    await client.put(base, 7, 1, 1, { size: 1, contentType: 'a/b', bytes: new Uint8Array(1) });
    const report = await client.sync(base);
    expect(report.volumes).toBeGreaterThanOrEqual(set.volumes().length);
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    const status = await client.status(base);
    expect(status.node).toBe('node-a');
    expect(status.replicas.map((replica) => replica.volume)).toEqual(set.volumes());
    expect(status.replicas.find((replica) => replica.volume === 7)).toMatchObject({
      liveNeedles: 1,
    });
  });

  it('streams a large file both ways, bytes intact', async () => {
    const bytes = new Uint8Array(randomBytes(8 * MiB));
    const chunks = Array.from({ length: 64 }, (_, i) =>
      bytes.subarray(i * 128 * 1024, (i + 1) * 128 * 1024),
    );
    const info = await client.put(base, 2, 8_000_000, 8, {
      size: bytes.byteLength,
      contentType: 'video/mp4',
      open: () => Readable.from(chunks),
    });
    expect(info.size).toBe(8 * MiB);
    const read = await client.get(base, 2, 8_000_000, { cookie: 8 });
    expect(read.body).toBeInstanceOf(ReadableStream);
    expect(same(await bytesOf(read.body), bytes)).toBe(true);
    // Buffered on request, and a range of it streamed.
    const whole = await client.get(base, 2, 8_000_000, { bufferUpTo: 16 * MiB });
    expect(whole.body).toBeInstanceOf(Uint8Array);
    expect(same(await bytesOf(whole.body), bytes)).toBe(true);
    const range = { start: 1, end: 3 * MiB };
    const part = await client.get(base, 2, 8_000_000, { range, bufferUpTo: 0 });
    expect(same(await bytesOf(part.body), bytes.subarray(1, 3 * MiB + 1))).toBe(true);
  });

  it('a corrupt needle is StoreError corrupt, never wrong bytes', async () => {
    const marker = new TextEncoder().encode('CORRUPT-ME-PLEASE-'.repeat(20));
    await client.put(base, 1, 3, 3, {
      size: marker.byteLength,
      contentType: 'text/plain',
      bytes: marker,
    });
    const folder = join(dir, 'volumes', '1');
    const [dat] = await filesEndingWith(folder, '.dat');
    if (dat === undefined) throw new Error('no .dat file in the replica folder');
    const path = join(folder, dat);
    const content = await readFile(path);
    const at = content.indexOf(Buffer.from(marker));
    expect(at).toBeGreaterThan(0);
    content[at + 100] = (content[at + 100] as number) ^ 0xff;
    await writeFile(path, content);
    errors.length = 0;
    await expectCode(client.get(base, 1, 3), 'corrupt');
    expect(errors.some((err) => isStoreError(err, 'corrupt'))).toBe(true);
  });
});

describe('the replica client against nodes that fail', () => {
  it('a node that is not listening is NodeUnreachable', async () => {
    const closed = await rawServer(() => {});
    await closed.close();
    const client = createReplicaClient({ token: TOKEN, timeoutMs: 60_000 });
    try {
      const err = await rejection(client.get(closed.base, 1, 1));
      expect(err).toBeInstanceOf(NodeUnreachable);
      expect((err as NodeUnreachable).node).toBe(closed.base);
      expect(
        await rejection(
          client.put(closed.base, 1, 1, 1, {
            size: 1,
            contentType: 'a/b',
            open: () => Readable.from([new Uint8Array(1)]),
          }),
        ),
      ).toBeInstanceOf(NodeUnreachable);
    } finally {
      await client.close();
    }
  });

  it('a node that accepts but never answers is NodeUnreachable after the timeout', async () => {
    const silent = await rawServer((socket) => socket.resume());
    const client = createReplicaClient({ token: TOKEN, timeoutMs: 200 });
    try {
      expect(await rejection(client.head(silent.base, 1, 1))).toBeInstanceOf(NodeUnreachable);
      expect(
        await rejection(
          client.put(silent.base, 1, 1, 1, {
            size: 2,
            contentType: 'a/b',
            bytes: new Uint8Array(2),
          }),
        ),
      ).toBeInstanceOf(NodeUnreachable);
    } finally {
      await client.close();
      await silent.close();
    }
  });

  /** Answers every request with a file's headers and `sent` of its `length` bytes, then hangs up. */
  const cutShort = (length: number, sent: number, extra: Record<string, string> = {}) =>
    rawServer((socket) => {
      socket.once('data', () => {
        const headers = {
          'content-type': 'a/b',
          'content-length': String(length),
          etag: '"1-00000001"',
          [REPLICA_HEADERS.cookie]: '1',
          [REPLICA_HEADERS.size]: String(length),
          [REPLICA_HEADERS.offset]: '0',
          ...extra,
        };
        const head = Object.entries(headers)
          .filter(([, value]) => value !== '')
          .map(([name, value]) => `${name}: ${value}\r\n`)
          .join('');
        socket.write(`HTTP/1.1 200 OK\r\n${head}\r\n`);
        socket.write(Buffer.alloc(sent, 7), () => socket.destroy());
      });
    });

  it('an answer cut mid-body is NodeUnreachable when buffered, and errors the stream when streamed', async () => {
    const node = await cutShort(100_000, 1000);
    const client = createReplicaClient({ token: TOKEN, timeoutMs: 5_000 });
    try {
      expect(await rejection(client.get(node.base, 1, 1))).toBeInstanceOf(NodeUnreachable);
      const read = await client.get(node.base, 1, 1, { bufferUpTo: 10 });
      expect(read.body).toBeInstanceOf(ReadableStream);
      expect(await rejection(bytesOf(read.body))).toBeInstanceOf(NodeUnreachable);
    } finally {
      await client.close();
      await node.close();
    }
  });

  it('an answer without the cookie header is malformed: NodeUnreachable', async () => {
    const node = await cutShort(10, 10, { [REPLICA_HEADERS.cookie]: '' });
    const client = createReplicaClient({ token: TOKEN, timeoutMs: 5_000 });
    try {
      const err = await rejection(client.get(node.base, 1, 1));
      expect(err).toBeInstanceOf(NodeUnreachable);
      expect((err as Error).message).toContain(REPLICA_HEADERS.cookie);
    } finally {
      await client.close();
      await node.close();
    }
  });

  it('a 5xx without a JSON error is io_error; a JSON error keeps its code', async () => {
    let answer = '';
    const node = await rawServer((socket) => {
      socket.on('data', () => socket.end(answer));
    });
    const client = createReplicaClient({ token: TOKEN, timeoutMs: 5_000 });
    const reply = (status: string, body: string, type = 'text/html') =>
      `HTTP/1.1 ${status}\r\ncontent-type: ${type}\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`;
    try {
      answer = reply('502 Bad Gateway', '<h1>bad gateway</h1>');
      await expectCode(client.get(node.base, 1, 1), 'io_error');
      answer = reply(
        '507 Insufficient Storage',
        JSON.stringify({ error: { code: 'no_space', message: 'full' } }),
        'application/json',
      );
      await expectCode(
        client.put(node.base, 1, 1, 1, { size: 1, contentType: 'a/b', bytes: new Uint8Array(1) }),
        'no_space',
      );
    } finally {
      await client.close();
      await node.close();
    }
  });
});
