import { Hono } from 'hono';
import { describe, expect, it, vi } from 'vitest';
import { bodyBytes, bytes, expectError, type Fixture, setup, upload } from './helpers.ts';

/** The cookie as a file id writes it. */
function hex(cookie: number): string {
  return cookie.toString(16).padStart(8, '0');
}

/** A cookie that is not this one. */
function wrong(cookie: number): string {
  return hex((cookie ^ 0x0101_0101) >>> 0);
}

const methods = ['GET', 'HEAD', 'PUT', 'DELETE'] as const;

async function send(app: Fixture['app'], method: string, path: string): Promise<Response> {
  return app.request(path, method === 'PUT' ? { method, body: 'new' } : { method });
}

/** Status, content type and JSON body: everything a client can tell two error answers by. */
async function answer(res: Response): Promise<unknown> {
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    body: res.body === null ? null : await res.json(),
  };
}

describe('file ids with cookies: /file/{key},{cookie}', () => {
  it('POST and PUT answer the file id as fid; Location keeps the bare key by default', async () => {
    const { app } = setup();
    const post = await app.request('/file', { method: 'POST', body: 'a' });
    expect(post.status).toBe(201);
    const stored = (await post.json()) as { key: number; cookie: number; fid: string };
    expect(stored.fid).toBe(`${stored.key},${hex(stored.cookie)}`);
    expect(stored.fid).toMatch(/^[0-9]+,[0-9a-f]{8}$/);
    expect(post.headers.get('location')).toBe(`/file/${stored.key}`);

    const put = await app.request(`/file/${stored.fid}`, { method: 'PUT', body: 'b' });
    expect(put.status).toBe(200);
    const replaced = (await put.json()) as { key: number; cookie: number; fid: string };
    expect(replaced.fid).toBe(`${replaced.key},${hex(replaced.cookie)}`);
    expect(put.headers.get('location')).toBe(`/file/${replaced.key}`);
  });

  it('GET, HEAD, PUT and DELETE take the right cookie, in either case', async () => {
    const { app } = setup();
    const stored = await upload(app, bytes(1, 2, 3, 4), { 'content-type': 'image/png' });
    const fid = `${stored.key},${hex(stored.cookie)}`;

    for (const id of [fid, fid.toUpperCase()]) {
      const get = await app.request(`/file/${id}`);
      expect(get.status).toBe(200);
      expect(get.headers.get('content-type')).toBe('image/png');
      expect(get.headers.get('etag')).toBe(stored.etag);
      expect(await bodyBytes(get)).toEqual(bytes(1, 2, 3, 4));
      const head = await app.request(`/file/${id}`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe('4');
    }
    const range = await app.request(`/file/${fid}`, { headers: { range: 'bytes=1-2' } });
    expect(range.status).toBe(206);
    expect(await bodyBytes(range)).toEqual(bytes(2, 3));
    const cached = await app.request(`/file/${fid}`, {
      headers: { 'if-none-match': stored.etag },
    });
    expect(cached.status).toBe(304);

    const put = await app.request(`/file/${fid}`, { method: 'PUT', body: 'v2' });
    expect(put.status).toBe(200);
    const replaced = (await put.json()) as { key: number; fid: string };
    await expectError(await app.request(`/file/${fid}`), 404, 'not_found');
    expect(await (await app.request(`/file/${replaced.fid}`)).text()).toBe('v2');

    const del = await app.request(`/file/${replaced.fid}`, { method: 'DELETE' });
    expect(del.status).toBe(200);
    expect(await del.json()).toEqual({ key: replaced.key, flag: false });
    await expectError(await app.request(`/file/${replaced.fid}`), 404, 'not_found');
  });

  it('a wrong cookie answers exactly what a missing file answers, and changes nothing', async () => {
    const { app, store } = setup();
    const stored = await upload(app, 'keep me', { 'content-type': 'text/plain' });
    const bad = `/file/${stored.key},${wrong(stored.cookie)}`;
    const before = await store.status();

    const whileLive: unknown[] = [];
    for (const method of methods) whileLive.push(await answer(await send(app, method, bad)));
    // Even a matching If-None-Match must not turn a wrong cookie into a 304.
    const conditional = await app.request(bad, { headers: { 'if-none-match': stored.etag } });
    await expectError(conditional, 404, 'not_found');
    const ranged = await app.request(bad, { headers: { range: 'bytes=0-0' } });
    await expectError(ranged, 404, 'not_found');

    expect(await store.status()).toEqual(before);
    expect(await (await app.request(`/file/${stored.key},${hex(stored.cookie)}`)).text()).toBe(
      'keep me',
    );

    await store.delete(stored.key);
    const whenGone: unknown[] = [];
    for (const method of methods) whenGone.push(await answer(await send(app, method, bad)));
    expect(whileLive).toEqual(whenGone);
    expect(whileLive[0]).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } });
    expect(whileLive[1]).toMatchObject({ status: 404, body: null });
  });

  it.each([
    '1,',
    '1,abc',
    '1,0000000',
    '1,000000000',
    '1,0000000g',
    '1,+0000001',
    '1,-0000001',
    '1,00000000,',
    '1,00000000,00000000',
    '1,,00000000',
    ',00000000',
    'abc,00000000',
    '007,00000000',
    '0,00000000',
    '99999999999999999999,00000000',
    '1;00000000',
    '1,0x000000',
  ])('%s is not a file id: 400 bad_key for every method, nothing changes', async (id) => {
    const { app, store } = setup();
    const stored = await upload(app, 'x');
    const path = `/file/${id.replace(/^1(?=[,;])/, String(stored.key))}`;
    for (const method of methods) {
      const res = await send(app, method, path);
      if (method === 'HEAD') {
        expect(res.status).toBe(400);
        expect(res.body).toBeNull();
      } else {
        await expectError(res, 400, 'bad_key');
      }
    }
    expect(await store.status()).toMatchObject({ liveNeedles: 1, deletedNeedles: 0 });
  });

  it('hands the cookie to the store on every call', async () => {
    const { app, store } = setup();
    const a = await upload(app, 'abcdef');
    const b = await upload(app, 'b');
    const spies = {
      get: vi.spyOn(store, 'get'),
      head: vi.spyOn(store, 'head'),
      replace: vi.spyOn(store, 'replace'),
      delete: vi.spyOn(store, 'delete'),
    };
    await app.request(`/file/${a.key},${hex(a.cookie)}`);
    expect(spies.get).toHaveBeenLastCalledWith(a.key, undefined, a.cookie);
    await app.request(`/file/${a.key},${hex(a.cookie)}`, { headers: { range: 'bytes=1-2' } });
    expect(spies.head).toHaveBeenLastCalledWith(a.key, a.cookie);
    expect(spies.get).toHaveBeenLastCalledWith(a.key, { start: 1, end: 2 }, a.cookie);
    await app.request(`/file/${a.key},${hex(a.cookie)}`, { method: 'HEAD' });
    expect(spies.head).toHaveBeenLastCalledWith(a.key, a.cookie);
    await app.request(`/file/${a.key},${hex(a.cookie)}`, { method: 'PUT', body: 'x' });
    expect(spies.replace).toHaveBeenLastCalledWith(a.key, expect.anything(), a.cookie);
    await app.request(`/file/${b.key},${hex(b.cookie).toUpperCase()}`, { method: 'DELETE' });
    expect(spies.delete).toHaveBeenLastCalledWith(b.key, b.cookie);
  });

  it('a wrong method on a file id is still 405', async () => {
    const { app } = setup();
    const res = await app.request('/file/1,0000abcd', { method: 'PATCH' });
    expect(res.headers.get('allow')).toBe('GET, HEAD, PUT, DELETE');
    await expectError(res, 405, 'method_not_allowed');
  });
});

describe('createApp({ requireCookie: true })', () => {
  it('Location carries the file id; the file id works for every method', async () => {
    const { app } = setup({ requireCookie: true });
    const post = await app.request('/file', { method: 'POST', body: 'one' });
    const stored = (await post.json()) as { key: number; fid: string };
    expect(post.headers.get('location')).toBe(`/file/${stored.fid}`);

    const location = post.headers.get('location') ?? '';
    expect(await (await app.request(location)).text()).toBe('one');
    expect((await app.request(location, { method: 'HEAD' })).status).toBe(200);
    const put = await app.request(location, { method: 'PUT', body: 'two' });
    const replaced = (await put.json()) as { key: number; fid: string };
    expect(put.headers.get('location')).toBe(`/file/${replaced.fid}`);
    expect((await app.request(`/file/${replaced.fid}`, { method: 'DELETE' })).status).toBe(200);
  });

  it('a bare key is 404 not_found for every method, whether or not the file exists', async () => {
    const { app, store } = setup({ requireCookie: true });
    const stored = await upload(app, 'secret');
    const missing = stored.key + 1;
    const before = await store.status();

    for (const method of methods) {
      const live = await answer(await send(app, method, `/file/${stored.key}`));
      const absent = await answer(await send(app, method, `/file/${missing}`));
      expect(live).toMatchObject({ status: 404 });
      // The same answer but for the key the client itself sent.
      expect(JSON.stringify(live).replaceAll(String(stored.key), 'K')).toBe(
        JSON.stringify(absent).replaceAll(String(missing), 'K'),
      );
      if (method !== 'HEAD') {
        const res = await send(app, method, `/file/${stored.key}`);
        const message = await expectError(res, 404, 'not_found');
        expect(message).toMatch(/\{key\},\{cookie\}/);
      }
    }
    const wrongCookie = await app.request(`/file/${stored.key},${wrong(stored.cookie)}`);
    await expectError(wrongCookie, 404, 'not_found');

    expect(await store.status()).toEqual(before);
    expect(await (await app.request(`/file/${stored.key},${hex(stored.cookie)}`)).text()).toBe(
      'secret',
    );
  });

  it('a malformed id is still 400 bad_key: the check does not depend on stored data', async () => {
    const { app } = setup({ requireCookie: true });
    await expectError(await app.request('/file/abc'), 400, 'bad_key');
    await expectError(await app.request('/file/1,xyz'), 400, 'bad_key');
  });

  it('mounted under a prefix, Location is the file id under the prefix', async () => {
    const { app } = setup({ requireCookie: true });
    const parent = new Hono().route('/media', app);
    const post = await parent.request('/media/file', { method: 'POST', body: 'm' });
    const stored = (await post.json()) as { fid: string };
    expect(post.headers.get('location')).toBe(`/media/file/${stored.fid}`);
    expect(await (await parent.request(`/media/file/${stored.fid}`)).text()).toBe('m');
    await expectError(await parent.request('/media/file/1'), 404, 'not_found');
  });
});
