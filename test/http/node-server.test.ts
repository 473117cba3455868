import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  bodyBytes,
  expectError,
  type Listening,
  listen,
  MAX_BODY,
  setup,
  streamOf,
} from './helpers.ts';

/** The same app over a real socket, as @hono/node-server serves it in production. */
describe('under @hono/node-server', () => {
  const { app, store } = setup();
  let server: Listening;
  let base = '';

  beforeAll(async () => {
    server = await listen(app.fetch);
    base = server.base;
  });

  afterAll(() => server.close());

  it('stores a streamed upload and serves it back, whole, ranged and as HEAD', async () => {
    const data = new Uint8Array(700).map((_, i) => (i * 31) % 256);
    const post = await fetch(`${base}/file`, {
      method: 'POST',
      body: streamOf(data.subarray(0, 300), data.subarray(300)),
      duplex: 'half',
      headers: { 'content-type': 'image/avif' },
    } as RequestInit);
    expect(post.status).toBe(201);
    const location = post.headers.get('location');
    expect(location).toMatch(/^\/file\/\d+$/);

    const get = await fetch(`${base}${location}`);
    expect(get.headers.get('content-type')).toBe('image/avif');
    expect(get.headers.get('content-length')).toBe('700');
    expect(await bodyBytes(get)).toEqual(data);

    const head = await fetch(`${base}${location}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('700');
    expect(await head.text()).toBe('');

    const part = await fetch(`${base}${location}`, { headers: { range: 'bytes=-10' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 690-699/700');
    expect(await bodyBytes(part)).toEqual(data.subarray(690));
  });

  it('refuses a chunked upload over the limit with 413 and stores nothing', async () => {
    const before = await store.status();
    const res = await fetch(`${base}/file`, {
      method: 'POST',
      body: streamOf(new Uint8Array(MAX_BODY), new Uint8Array(MAX_BODY)),
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'too_large');
    expect(await store.status()).toEqual(before);
  });

  it('answers a malformed request path with JSON, not a crash', async () => {
    await expectError(await fetch(`${base}/file/%zz`), 400, 'bad_key');
    await expectError(await fetch(`${base}/file/${'9'.repeat(5000)}`), 400, 'bad_key');
  });

  it('refuses a Content-Length over the limit without waiting for the body', async () => {
    // A raw request that declares a huge body and sends none of it: the answer must not wait.
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${base}/file`, {
        method: 'POST',
        headers: { 'content-length': String(MAX_BODY * 1000) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    expect(status).toBe(413);
  });
});
