import { describe, expect, it, vi } from 'vitest';
import { MAX_CONTENT_TYPE_LENGTH } from '../../storage/index.ts';
import {
  allByteValues,
  bodyBytes,
  bytes,
  expectError,
  MAX_BODY,
  setup,
  streamOf,
  upload,
} from './helpers.ts';

const IMMUTABLE = 'public, max-age=31536000, immutable';

describe('POST /file', () => {
  it('stores the body and answers 201 with Location and the needle JSON', async () => {
    const { app } = setup();
    const res = await app.request('/file', {
      method: 'POST',
      body: bytes(1, 2, 3),
      headers: { 'content-type': 'image/png' },
    });
    expect(res.status).toBe(201);
    const json = (await res.json()) as Record<string, unknown>;
    expect(json).toEqual({
      key: 1,
      fid: expect.stringMatching(/^1,[0-9a-f]{8}$/),
      size: 3,
      offset: 0,
      flag: true,
      volume: 1,
      cookie: expect.any(Number),
      contentType: 'image/png',
      etag: expect.stringMatching(/^"[^"]+"$/),
    });
    expect(res.headers.get('location')).toBe('/file/1');
  });

  it('hands out increasing keys', async () => {
    const { app } = setup();
    const a = await upload(app, 'a');
    const b = await upload(app, 'b');
    expect(b.key).toBeGreaterThan(a.key);
  });

  it('passes a small body of declared length as bytes, with the limit and the length', async () => {
    const { app, store } = setup();
    const put = vi.spyOn(store, 'put');
    // Request() adds no Content-Length for a byte body (only the wire does): declare it.
    await upload(app, bytes(9, 8, 7), { 'content-type': 'x/y', 'content-length': '3' });
    expect(put).toHaveBeenCalledTimes(1);
    const input = put.mock.calls[0]?.[0];
    expect(input?.body).toEqual(bytes(9, 8, 7));
    expect(input).toMatchObject({ limit: MAX_BODY, length: 3, contentType: 'x/y' });
  });

  it('passes a large body to the store as a stream, never read whole in the handler', async () => {
    const { app, store } = setup({ maxBody: 1024 * 1024 });
    const put = vi.spyOn(store, 'put');
    const size = 256 * 1024 + 1;
    const stored = await upload(app, new Uint8Array(size).fill(5), {
      'content-length': String(size),
    });
    expect(stored.size).toBe(size);
    const input = put.mock.calls[0]?.[0];
    expect(input?.body).toBeInstanceOf(ReadableStream);
    expect(input).toMatchObject({ limit: 1024 * 1024, length: size });
  });

  it('stores a chunked body (no Content-Length) intact', async () => {
    const { app } = setup();
    const res = await app.request('/file', {
      method: 'POST',
      body: streamOf(bytes(1, 2), bytes(3), bytes(4, 5, 6)),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(201);
    const { key } = (await res.json()) as { key: number };
    expect(await bodyBytes(await app.request(`/file/${key}`))).toEqual(bytes(1, 2, 3, 4, 5, 6));
  });
});

describe('GET /file/{key}', () => {
  it('answers the stored bytes with their type, length, ETag and caching headers', async () => {
    const { app } = setup();
    const stored = await upload(app, bytes(10, 20, 30, 40), { 'content-type': 'image/jpeg' });
    const res = await app.request(`/file/${stored.key}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('content-length')).toBe('4');
    expect(res.headers.get('etag')).toBe(stored.etag);
    expect(res.headers.get('cache-control')).toBe(IMMUTABLE);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(await bodyBytes(res)).toEqual(bytes(10, 20, 30, 40));
  });

  it('round-trips every byte value', async () => {
    const { app } = setup();
    const data = allByteValues();
    const stored = await upload(app, data);
    expect(stored.size).toBe(data.byteLength);
    expect(await bodyBytes(await app.request(`/file/${stored.key}`))).toEqual(data);
  });

  it('serves a zero-byte file as a valid file', async () => {
    const { app } = setup();
    const stored = await upload(app, new Uint8Array(0));
    expect(stored.size).toBe(0);
    const res = await app.request(`/file/${stored.key}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('0');
    expect((await bodyBytes(res)).byteLength).toBe(0);
  });

  it('stores a POST without any body as a zero-byte file', async () => {
    const { app } = setup();
    const res = await app.request('/file', { method: 'POST' });
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ size: 0, contentType: 'application/octet-stream' });
  });

  it('serves a stream body from the store with its Content-Length', async () => {
    const { app, store } = setup();
    const stored = await upload(app, bytes(5, 6, 7));
    const info = await store.head(stored.key);
    vi.spyOn(store, 'get').mockResolvedValue({ info, body: streamOf(bytes(5), bytes(6, 7)) });
    const res = await app.request(`/file/${stored.key}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('3');
    expect(await bodyBytes(res)).toEqual(bytes(5, 6, 7));
  });
});

describe('Content-Type', () => {
  it('is stored as sent (trimmed) and returned on GET', async () => {
    const { app } = setup();
    const stored = await upload(app, 'x', { 'content-type': '  text/plain; charset=utf-8 ' });
    expect(stored.contentType).toBe('text/plain; charset=utf-8');
    const res = await app.request(`/file/${stored.key}`);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
  });

  it('defaults to application/octet-stream when none is sent', async () => {
    const { app } = setup();
    const stored = await upload(app, bytes(1));
    expect(stored.contentType).toBe('application/octet-stream');
    const res = await app.request(`/file/${stored.key}`);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
  });

  it('defaults when the header is blank', async () => {
    const { app } = setup();
    const stored = await upload(app, bytes(1), { 'content-type': '   ' });
    expect(stored.contentType).toBe('application/octet-stream');
  });

  it.each([
    'image/svg+xml',
    'text/plain;charset=UTF-8',
    'multipart/mixed; boundary="a b;c"',
    'application/x-thing; a=1;; b="q\\"uote"',
  ])('accepts the media type %s as sent', async (type) => {
    const { app } = setup();
    expect((await upload(app, bytes(1), { 'content-type': type })).contentType).toBe(type);
  });

  it(`accepts exactly ${MAX_CONTENT_TYPE_LENGTH} bytes`, async () => {
    const { app } = setup();
    const type = `x/${'a'.repeat(MAX_CONTENT_TYPE_LENGTH - 2)}`;
    expect((await upload(app, bytes(1), { 'content-type': type })).contentType).toBe(type);
  });

  it.each([
    ['too long', `x/${'a'.repeat(MAX_CONTENT_TYPE_LENGTH - 1)}`],
    ['a control character', 'text/plain\x01'],
    ['a DEL character', 'text/pl\x7fain'],
    ['a non-ASCII character', 'text/caf\xe9'],
    ['markup', '<script>alert(1)</script>'],
    ['two types joined by a comma', 'text/html, text/plain'],
    ['no subtype', 'text'],
    ['a space in the subtype', 'text/pl ain'],
    ['a parameter without a value', 'text/plain; charset'],
    ['an unterminated quoted value', 'text/plain; name="x'],
  ])('refuses one with %s: 400 and nothing stored', async (_, type) => {
    const { app, store } = setup();
    const res = await app.request('/file', {
      method: 'POST',
      body: bytes(1),
      headers: { 'content-type': type },
    });
    await expectError(res, 400, 'bad_request');
    expect((await store.status()).liveNeedles).toBe(0);
  });
});

describe('HEAD /file/{key}', () => {
  it('answers the GET headers with no body, from store.head without reading bytes', async () => {
    const { app, store } = setup();
    const stored = await upload(app, allByteValues(), { 'content-type': 'audio/ogg' });
    const get = vi.spyOn(store, 'get');
    const head = vi.spyOn(store, 'head');
    const res = await app.request(`/file/${stored.key}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe(String(stored.size));
    expect(res.headers.get('content-type')).toBe('audio/ogg');
    expect(res.headers.get('etag')).toBe(stored.etag);
    expect(res.headers.get('cache-control')).toBe(IMMUTABLE);
    expect(res.headers.get('accept-ranges')).toBe('bytes');
    expect(res.body).toBeNull();
    expect(head).toHaveBeenCalledWith(stored.key, undefined);
    expect(get).not.toHaveBeenCalled();
  });

  it('ignores Range: HEAD describes the whole file', async () => {
    const { app } = setup();
    const stored = await upload(app, bytes(1, 2, 3, 4));
    const res = await app.request(`/file/${stored.key}`, {
      method: 'HEAD',
      headers: { range: 'bytes=0-1' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('4');
    expect(res.headers.get('content-range')).toBeNull();
  });

  it('answers 404 with no body for a missing key', async () => {
    const { app } = setup();
    const res = await app.request('/file/5', { method: 'HEAD' });
    expect(res.status).toBe(404);
    expect(res.body).toBeNull();
  });

  it('answers 400 for a bad key', async () => {
    const { app } = setup();
    expect((await app.request('/file/abc', { method: 'HEAD' })).status).toBe(400);
  });
});

describe('PUT /file/{key}', () => {
  it('moves the content to a new key and retires the old one for good', async () => {
    const { app } = setup();
    const old = await upload(app, 'old', { 'content-type': 'text/plain' });
    const res = await app.request(`/file/${old.key}`, {
      method: 'PUT',
      body: bytes(7, 7),
      headers: { 'content-type': 'image/gif' },
    });
    expect(res.status).toBe(200);
    const json = (await res.json()) as Record<string, unknown>;
    expect(json).toMatchObject({ size: 2, flag: true, contentType: 'image/gif' });
    const key = json.key as number;
    expect(key).toBeGreaterThan(old.key);
    expect(res.headers.get('location')).toBe(`/file/${key}`);

    const now = await app.request(`/file/${key}`);
    expect(await bodyBytes(now)).toEqual(bytes(7, 7));
    expect(now.headers.get('content-type')).toBe('image/gif');
    await expectError(await app.request(`/file/${old.key}`), 404, 'not_found');
    await expectError(
      await app.request(`/file/${old.key}`, { method: 'PUT', body: 'again' }),
      404,
      'not_found',
    );
  });

  it('answers 404 for a key never stored, and stores nothing', async () => {
    const { app, store } = setup();
    await expectError(
      await app.request('/file/42', { method: 'PUT', body: 'x' }),
      404,
      'not_found',
    );
    expect((await store.status()).liveNeedles).toBe(0);
  });

  it('refuses a body over the limit and keeps the old file', async () => {
    const { app } = setup();
    const old = await upload(app, 'keep me');
    const res = await app.request(`/file/${old.key}`, {
      method: 'PUT',
      body: new Uint8Array(MAX_BODY + 1),
    });
    await expectError(res, 413, 'too_large');
    expect(await (await app.request(`/file/${old.key}`)).text()).toBe('keep me');
  });
});

describe('DELETE /file/{key}', () => {
  it('answers {key, flag: false}, after which the key is gone', async () => {
    const { app, store } = setup();
    const stored = await upload(app, 'bye');
    const res = await app.request(`/file/${stored.key}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ key: stored.key, flag: false });
    await expectError(await app.request(`/file/${stored.key}`), 404, 'not_found');
    await expectError(
      await app.request(`/file/${stored.key}`, { method: 'DELETE' }),
      404,
      'not_found',
    );
    expect(await store.status()).toMatchObject({ liveNeedles: 0, deletedNeedles: 1 });
  });

  it('never reuses a deleted key', async () => {
    const { app } = setup();
    const first = await upload(app, 'a');
    await app.request(`/file/${first.key}`, { method: 'DELETE' });
    expect((await upload(app, 'b')).key).toBeGreaterThan(first.key);
  });
});

describe('keys', () => {
  it.each([
    'abc',
    '-1',
    '1.5',
    '007x',
    '007',
    '0',
    '+7',
    '1e3',
    '0x10',
    '123456789012345678901234567890',
    '9007199254740992',
    '9999999999999999',
  ])('refuses %s with 400 bad_key on every method', async (key) => {
    const { app, store } = setup();
    await upload(app, 'x');
    await expectError(await app.request(`/file/${key}`), 400, 'bad_key');
    await expectError(
      await app.request(`/file/${key}`, { method: 'PUT', body: 'y' }),
      400,
      'bad_key',
    );
    await expectError(await app.request(`/file/${key}`, { method: 'DELETE' }), 400, 'bad_key');
    expect(await store.status()).toMatchObject({ liveNeedles: 1, deletedNeedles: 0, nextKey: 2 });
  });

  it('accepts the largest key, 2^53-1 (404 here, not 400)', async () => {
    const { app } = setup();
    await expectError(await app.request(`/file/${Number.MAX_SAFE_INTEGER}`), 404, 'not_found');
  });

  it('answers 404 for a key that was never stored', async () => {
    const { app } = setup();
    await expectError(await app.request('/file/1'), 404, 'not_found');
  });
});

describe('DELETE /sync', () => {
  it('answers 200 with the sync report', async () => {
    const { app, store } = setup();
    const sync = vi.spyOn(store, 'sync').mockResolvedValue({ volumes: 3, durationMs: 12 });
    const res = await app.request('/sync', { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ synced: true, volumes: 3, durationMs: 12 });
    expect(sync).toHaveBeenCalledTimes(1);
  });
});

describe('GET /status', () => {
  it('answers the store status', async () => {
    const { app, store } = setup();
    const a = await upload(app, 'aaaa');
    await upload(app, 'bb');
    await app.request(`/file/${a.key}`, { method: 'DELETE' });
    const res = await app.request('/status');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const json = await res.json();
    expect(json).toEqual(await store.status());
    expect(json).toMatchObject({ liveNeedles: 1, deletedNeedles: 1, liveBytes: 2, nextKey: 3 });
  });

  it('answers HEAD with no body', async () => {
    const { app } = setup();
    const res = await app.request('/status', { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.body).toBeNull();
  });
});
