import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient, createHttpStore, HaystackError } from '../../adapters/http/index.ts';
import { createApp } from '../../handlers/index.ts';
import { isStoreError, type PutInput } from '../../storage/index.ts';
import { expectBytes, MiB, randomBytes, readAll, rejection } from '../contract/helpers.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { type ServedStore, serveVolumeStore } from '../support/served-store.ts';

/** The call rejects with a HaystackError of this code and status; returns it. */
async function expectHaystackError(
  promise: Promise<unknown>,
  code: string,
  status: number,
): Promise<HaystackError> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(HaystackError);
  const error = err as HaystackError;
  expect({ code: error.code, status: error.status }, error.message).toEqual({ code, status });
  return error;
}

/** A fetch that records the URLs and headers it is asked for, then really fetches. */
function recordingFetch(): { fetch: typeof fetch; calls: { url: string; headers: Headers }[] } {
  const calls: { url: string; headers: Headers }[] = [];
  return {
    calls,
    fetch: (input, init) => {
      calls.push({ url: String(input), headers: new Headers(init?.headers) });
      return fetch(input, init);
    },
  };
}

describe('createClient against a real server', () => {
  let remote: ServedStore;
  let client: ReturnType<typeof createClient>;

  beforeAll(async () => {
    remote = await serveVolumeStore();
    client = createClient(`${remote.base}/`); // a trailing slash is fine
  });
  afterAll(() => remote.close());

  it('put answers the stored file; get and head describe it; it reads back by key, file id or the answer', async () => {
    const bytes = randomBytes(5000);
    const stored = await client.put(bytes, { contentType: 'image/webp' });
    expect(stored).toMatchObject({ size: 5000, flag: true, contentType: 'image/webp' });
    expect(stored.fid).toBe(`${stored.key},${stored.cookie.toString(16).padStart(8, '0')}`);
    expect(stored.volume).toBeGreaterThanOrEqual(1);

    const expected = {
      key: stored.key,
      cookie: stored.cookie,
      size: 5000,
      contentType: 'image/webp',
      etag: stored.etag,
    };
    for (const ref of [stored.key, stored.fid, stored]) {
      const read = await client.get(ref);
      expect(read).toMatchObject({ status: 200, range: undefined, length: 5000, info: expected });
      expectBytes(await readAll(read.body), bytes);
      expect(await client.head(ref)).toEqual(expected);
    }
  });

  it('put takes bytes, text, a Blob and a stream; the types fetch gives them are stored', async () => {
    const text = await client.put('hello, haystack');
    expect(text).toMatchObject({ size: 15, contentType: 'text/plain;charset=UTF-8' });
    const blob = await client.put(new Blob(['<svg/>'], { type: 'image/svg+xml' }));
    expect(blob).toMatchObject({ size: 6, contentType: 'image/svg+xml' });
    const none = await client.put(null);
    expect(none).toMatchObject({ size: 0, contentType: 'application/octet-stream' });
    const chunks = [randomBytes(1000), randomBytes(0), randomBytes(3)];
    const streamed = await client.put(new Blob(chunks).stream(), { length: 1003 });
    expect(streamed.size).toBe(1003);
    expectBytes(
      await readAll((await client.get(streamed)).body),
      new Uint8Array(await new Blob(chunks).arrayBuffer()),
    );
    expect(await (await client.get(text)).body.getReader().read()).toMatchObject({ done: false });
  });

  it('range reads answer 206 with the part, its place and the whole size', async () => {
    const bytes = randomBytes(10_000);
    const stored = await client.put(bytes);
    const part = await client.get(stored.fid, { range: { start: 1234, end: 5678 } });
    expect(part).toMatchObject({ status: 206, range: { start: 1234, end: 5678 }, length: 4445 });
    expect(part.info.size).toBe(10_000);
    expectBytes(await readAll(part.body), bytes.subarray(1234, 5679));

    const tail = await client.get(stored.key, { range: 'bytes=-10' });
    expect(tail).toMatchObject({ status: 206, range: { start: 9990, end: 9999 }, length: 10 });
    expectBytes(await readAll(tail.body), bytes.subarray(9990));

    const outside = await expectHaystackError(
      client.get(stored.key, { range: { start: 20_000, end: 20_001 } }),
      'range_not_satisfiable',
      416,
    );
    expect(outside.message).toContain('10000');
  });

  it('replace moves the content to a new key and the old one is gone; delete retires a key', async () => {
    const old = await client.put(randomBytes(10), { contentType: 'x/old' });
    const bytes = randomBytes(300_000);
    const next = await client.replace(old, new Blob([bytes]).stream(), { contentType: 'x/new' });
    expect(next.key).toBeGreaterThan(old.key);
    expect(next).toMatchObject({ size: 300_000, contentType: 'x/new' });
    expectBytes(await readAll((await client.get(next.fid)).body), bytes);

    const gone = await expectHaystackError(client.get(old.key), 'not_found', 404);
    expect(gone.message).toContain(String(old.key));
    await expectHaystackError(client.head(old.fid), 'not_found', 404);
    await expectHaystackError(client.replace(old, 'again'), 'not_found', 404);

    await expect(client.delete(next.fid)).resolves.toBeUndefined();
    await expectHaystackError(client.head(next), 'not_found', 404);
    await expectHaystackError(client.delete(next), 'not_found', 404);
  });

  it('a wrong cookie is not_found for every call', async () => {
    const stored = await client.put(randomBytes(10));
    const wrong = `${stored.key},${((stored.cookie ^ 1) >>> 0).toString(16).padStart(8, '0')}`;
    await expectHaystackError(client.get(wrong), 'not_found', 404);
    await expectHaystackError(client.head(wrong), 'not_found', 404);
    await expectHaystackError(client.replace(wrong, 'x'), 'not_found', 404);
    await expectHaystackError(client.delete(wrong), 'not_found', 404);
    expect((await client.head(stored)).size).toBe(10);
  });

  it('sync and status answer the server reports', async () => {
    const before = await client.status();
    const stored = await client.put(randomBytes(777));
    const after = await client.status();
    expect(after.liveNeedles).toBe(before.liveNeedles + 1);
    expect(after.nextKey).toBeGreaterThan(stored.key);
    expect(after.volumes.length).toBeGreaterThanOrEqual(1);
    const synced = await client.sync();
    expect(synced.synced).toBe(true);
    expect(synced.volumes).toBeGreaterThanOrEqual(1);
    expect(synced.durationMs).toBeGreaterThanOrEqual(0);
  });

  it('ids that are no file id are bad_key before any request, so no path can be reached by one', async () => {
    const recorder = recordingFetch();
    const checked = createClient(remote.base, { fetch: recorder.fetch });
    const notIds = [
      0,
      -1,
      1.5,
      Number.NaN,
      2 ** 53,
      '',
      '0',
      '007',
      '1/../../status',
      '../sync',
      '1?range=x',
      '1#x',
      '1%2F2',
      '1,',
      '1,abc',
      '1,0123456789',
      '1,0000000g',
      ' 1',
      '99999999999999999',
      { fid: '1,zz' },
    ];
    for (const id of notIds) {
      await expectHaystackError(checked.get(id), 'bad_key', 0);
      await expectHaystackError(checked.head(id), 'bad_key', 0);
      await expectHaystackError(checked.delete(id), 'bad_key', 0);
      await expectHaystackError(checked.replace(id, 'x'), 'bad_key', 0);
    }
    expect(recorder.calls).toEqual([]);
  });

  it('sends the headers it was given with every call, and the server refusals carry code and status', async () => {
    const recorder = recordingFetch();
    const withHeaders = createClient(remote.base, {
      fetch: recorder.fetch,
      headers: { 'x-request-from': 'client-test' },
    });
    await expectHaystackError(
      withHeaders.put('x', { contentType: 'not a type' }),
      'bad_request',
      400,
    );
    await expectHaystackError(withHeaders.get(Number.MAX_SAFE_INTEGER), 'not_found', 404);
    expect(recorder.calls.map((call) => call.headers.get('x-request-from'))).toEqual([
      'client-test',
      'client-test',
    ]);
    // Reads ask for the bytes as stored, so Content-Length describes the body fetch hands out.
    expect(recorder.calls[1]?.headers.get('accept-encoding')).toBe('identity');

    const small = await serveVolumeStore({ maxBody: 1000 });
    try {
      const limited = createClient(small.base);
      const tooLarge = await expectHaystackError(limited.put(randomBytes(1001)), 'too_large', 413);
      expect(tooLarge.message).toContain('1000');
      // Chunked: the server can only tell once the bytes arrive; the answer still comes back.
      const streamed = new Blob([randomBytes(256 * 1024)]).stream();
      await expectHaystackError(limited.put(streamed), 'too_large', 413);
      expect((await small.store.status()).liveNeedles).toBe(0);
    } finally {
      await small.close();
    }
  });

  it('a declared length the body contradicts, or a header value fetch would refuse, is bad_request before sending', async () => {
    const recorder = recordingFetch();
    const checked = createClient(remote.base, { fetch: recorder.fetch });
    await expectHaystackError(checked.put(randomBytes(10), { length: 11 }), 'bad_request', 0);
    await expectHaystackError(checked.put('héllo', { length: 5 }), 'bad_request', 0);
    await expectHaystackError(checked.put(new Blob(['abc']), { length: 2 }), 'bad_request', 0);
    await expectHaystackError(checked.put(null, { length: 1 }), 'bad_request', 0);
    await expectHaystackError(checked.put('x', { contentType: 'a/b\r\nx: y' }), 'bad_request', 0);
    await expectHaystackError(
      checked.put('x', { contentType: `a/${'b'.repeat(2000)}` }),
      'bad_request',
      0,
    );
    await expectHaystackError(checked.get(1, { range: 'bytes=0-1\nx' }), 'bad_request', 0);
    expect(recorder.calls).toEqual([]);
    expect(await checked.put('héllo', { length: 6 })).toMatchObject({ size: 6 });
  });

  it('a Hono app can front the remote store through createHttpStore', async () => {
    const front = createApp({
      store: createHttpStore({ baseUrl: remote.base }),
      maxBody: 16 * MiB,
    });
    const viaFront = createClient('http://front.test', {
      fetch: async (input, init) => front.fetch(new Request(input, init)),
    });
    const bytes = randomBytes(3 * MiB);
    const stored = await viaFront.put(new Blob([bytes]).stream(), { contentType: 'x/fronted' });
    // The file is the remote's: the direct client reads the same bytes under the same id.
    expectBytes(await readAll((await client.get(stored.fid)).body), bytes);
    const part = await viaFront.get(stored, { range: { start: MiB, end: 2 * MiB - 1 } });
    expect(part).toMatchObject({ status: 206, info: { size: 3 * MiB, contentType: 'x/fronted' } });
    expectBytes(await readAll(part.body), bytes.subarray(MiB, 2 * MiB));
    await viaFront.delete(stored);
    await expectHaystackError(client.head(stored), 'not_found', 404);
    await expectHaystackError(viaFront.get(stored), 'not_found', 404);
  });

  it('an aborted call rejects with its signal reason, as fetch does', async () => {
    const stored = await client.put(randomBytes(10));
    const controller = new AbortController();
    const reason = new Error('the caller gave up');
    controller.abort(reason);
    expect(await rejection(client.get(stored, { signal: controller.signal }))).toBe(reason);
  });

  it('mounted under /media in a parent app, reached through any fetch-compatible function', async () => {
    const parent = new Hono();
    parent.route('/media', createApp({ store: remote.store, maxBody: 1000 }));
    const mounted = createClient('http://parent.test/media', {
      fetch: async (input, init) => parent.fetch(new Request(input, init)),
    });
    const stored = await mounted.put('mounted', { contentType: 'text/plain' });
    expect(await mounted.head(stored.fid)).toMatchObject({ size: 7, contentType: 'text/plain' });
    expect(new TextDecoder().decode(await readAll((await mounted.get(stored)).body))).toBe(
      'mounted',
    );
    await expectHaystackError(mounted.put(randomBytes(1001)), 'too_large', 413);
  });
});

describe('streaming through the client', () => {
  /** Bytes the server's store has read of the upload in progress, counted as it reads them. */
  let received = 0;
  let remote: ServedStore;

  beforeAll(async () => {
    remote = await serveVolumeStore({
      maxBody: 128 * MiB,
      wrap: (store) =>
        new DelegatingStore(store, {
          put: (input) => store.put({ ...input, body: counted(input.body) }),
        }),
    });
  });
  afterAll(() => remote.close());

  function counted(body: PutInput['body']): PutInput['body'] {
    if (!(body instanceof ReadableStream)) return body;
    return body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          received += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
    );
  }

  /**
   * A client that gathered the body before sending would have made all of it while the server
   * had none. Streamed, what is made but not yet read by the store is what the sockets and
   * streams between them hold: at most the kernel's loopback buffers (4 MiB to send, up to
   * 32 MiB to receive, net.ipv4.tcp_rmem) and a few chunks, whatever the machine's speed.
   */
  const SIZE = 64 * MiB;
  const IN_FLIGHT_BOUND = 40 * MiB;

  it(`uploads a generated ${SIZE / MiB} MiB stream as it is made, and downloads it as a stream`, async () => {
    const client = createClient(remote.base);
    const chunk = randomBytes(64 * 1024);
    const sent = createHash('sha256');
    let made = 0;
    let mostInFlight = 0;
    received = 0;
    const generated = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          if (made === SIZE) return controller.close();
          mostInFlight = Math.max(mostInFlight, made - received);
          const next = chunk.slice();
          next[0] = made / chunk.byteLength; // no two chunks alike
          sent.update(next);
          made += next.byteLength;
          controller.enqueue(next);
        },
      },
      { highWaterMark: 0 },
    );
    const stored = await client.put(generated, { contentType: 'application/x-generated' });
    expect(stored.size).toBe(SIZE);
    expect(received).toBe(SIZE);
    expect(mostInFlight, 'bytes made but not yet read by the store').toBeLessThan(IN_FLIGHT_BOUND);

    const read = await client.get(stored);
    expect(read.length).toBe(SIZE);
    const got = createHash('sha256');
    let bytes = 0;
    for await (const part of read.body) {
      got.update(part);
      bytes += part.byteLength;
    }
    expect(bytes).toBe(SIZE);
    expect(got.digest('hex')).toBe(sent.digest('hex'));
  });
});

/** What a broken server, or a proxy in front of one, might answer, by path. */
type Answer = (req: IncomingMessage, res: ServerResponse) => void;

const hostileAnswers: Record<string, Answer> = {
  '/html-500/file': (_req, res) => {
    res.writeHead(500, { 'content-type': 'text/html' }).end('<h1>Internal Server Error</h1>');
  },
  '/proxy-502/file/1': (_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>502 Bad Gateway</h1>');
  },
  '/proxy-502/readyz': (_req, res) => {
    res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>502 Bad Gateway</h1>');
  },
  '/odd-code/file/1': (_req, res) => {
    const body = JSON.stringify({ error: { code: 'Not A Code!', message: 'x' } });
    res.writeHead(404, { 'content-type': 'application/json' }).end(body);
  },
  '/huge-error/file/1': (_req, res) => {
    res.writeHead(500, { 'content-type': 'application/json' });
    const mib = Buffer.alloc(MiB, 0x20);
    let left = 64;
    const more = () => {
      while (left > 0 && res.write(mib)) left--;
      if (left-- > 0) res.once('drain', more);
      else res.end();
    };
    res.on('error', () => {});
    more();
  },
  '/cut-body/file/1': (_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': '1000',
      etag: '"1-0000abcd"',
    });
    res.write(Buffer.alloc(500, 1), () => res.destroy());
  },
  '/no-etag/file/1': (_req, res) => {
    res.writeHead(200, { 'content-length': '3' }).end('abc');
  },
  '/bad-range/file/1': (_req, res) => {
    res.writeHead(206, { 'content-length': '3', 'content-range': 'bytes 0-9/10', etag: '"1-0"' });
    res.end('abc');
  },
  '/cut-json/file': (_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"key":1,', () => res.destroy());
  },
  '/wrong-json/file': (_req, res) => {
    res.writeHead(201, { 'content-type': 'application/json' }).end('{"key":"one","flag":true}');
  },
  '/array-status/status': (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end('[1,2,3]');
  },
};

describe('a hostile or broken server gives clean HaystackErrors', () => {
  let server: Server;
  let base = '';

  beforeAll(async () => {
    server = createServer((req, res) => {
      // The upload's body is read and dropped, as any server would, before the answer.
      req.resume();
      const answer = hostileAnswers[req.url ?? ''];
      if (answer) answer(req, res);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    const closed = new Promise<void>((done) => server.close(() => done()));
    server.closeAllConnections();
    await closed;
  });

  const at = (path: string) => createClient(`${base}${path}`);

  it('an error answer without the JSON error body is bad_response with its status', async () => {
    const html = await expectHaystackError(at('/html-500').put('x'), 'bad_response', 500);
    expect(html.message).toContain('POST /file answered 500');
    await expectHaystackError(at('/proxy-502').get(1), 'bad_response', 502);
    await expectHaystackError(at('/odd-code').get(1), 'bad_response', 404);
    // 64 MiB of error page is not read to its end, nor kept.
    await expectHaystackError(at('/huge-error').get(1), 'bad_response', 500);
  });

  it('a body cut short errors the stream with bad_response, never passing for the whole file', async () => {
    const read = await at('/cut-body').get(1);
    expect(read.info).toMatchObject({ key: 1, cookie: 0xabcd, size: 1000 });
    const err = await rejection(readAll(read.body));
    expect(err).toBeInstanceOf(HaystackError);
    expect(err).toMatchObject({ code: 'bad_response', status: 200 });
  });

  it('a success answer missing what the API always sends is bad_response', async () => {
    await expectHaystackError(at('/no-etag').get(1), 'bad_response', 200);
    await expectHaystackError(at('/bad-range').get(1, { range: 'bytes=0-9' }), 'bad_response', 206);
    await expectHaystackError(at('/cut-json').put('x'), 'bad_response', 201);
    await expectHaystackError(at('/wrong-json').put('x'), 'bad_response', 201);
    await expectHaystackError(at('/array-status').status(), 'bad_response', 200);
  });

  it('no server at all is network_error with status 0', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const err = await expectHaystackError(
      createClient(`http://127.0.0.1:${port}`).status(),
      'network_error',
      0,
    );
    expect(err.message).toContain('GET /status failed');
  });

  it('readiness is 200 only; anything else is not ready with the server reason', async () => {
    const answering = (res: Response) =>
      createClient('http://store.test', { fetch: async () => res });
    expect(await answering(Response.json({ status: 'ready' })).readiness()).toEqual({
      ready: true,
    });
    const unavailable = { error: { code: 'unavailable', message: 'the store is read-only' } };
    expect(await answering(Response.json(unavailable, { status: 503 })).readiness()).toEqual({
      ready: false,
      reason: 'the store is read-only',
    });
    // A server without the route (before /readyz existed) or a gateway's page.
    const missing = await at('/no-such-mount').readiness();
    expect(missing.ready).toBe(false);
    expect(await at('/proxy-502').readiness()).toMatchObject({ ready: false });
  });

  it('through createHttpStore, the same failures are StoreErrors of the port', async () => {
    const codeOf = async (promise: Promise<unknown>) => {
      const err = await rejection(promise);
      expect(isStoreError(err), String(err)).toBe(true);
      return isStoreError(err) ? err.code : undefined;
    };
    const storeAt = (path: string) => createHttpStore({ baseUrl: `${base}${path}` });
    expect(await codeOf(storeAt('/html-500').put({ body: randomBytes(3) }))).toBe('io_error');
    expect(await codeOf(storeAt('/proxy-502').get(1))).toBe('unavailable');
    expect(await codeOf(storeAt('/no-etag').get(1))).toBe('io_error');
    const cut = await storeAt('/cut-body').get(1);
    expect(await codeOf(readAll(cut.body))).toBe('io_error');
    expect(await storeAt('/proxy-502').readiness()).toMatchObject({ ready: false });
  });
});
