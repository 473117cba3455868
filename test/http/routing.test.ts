import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { noRoute } from '../../handlers/index.ts';
import { bodyBytes, bytes, expectError, setup } from './helpers.ts';

describe('unknown routes', () => {
  it.each([
    ['GET', '/'],
    ['GET', '/nope'],
    ['POST', '/files'],
    ['GET', '/file/1/extra'],
    ['GET', '/file/1/'],
    ['GET', '/file/'],
    ['DELETE', '/status/x'],
  ])('%s %s answers 404 no_route, not not_found', async (method, path) => {
    const { app } = setup();
    await expectError(await app.request(path, { method }), 404, 'no_route');
  });
});

describe('known paths with the wrong method', () => {
  it.each([
    ['GET', '/file', 'POST'],
    ['PUT', '/file', 'POST'],
    ['DELETE', '/file', 'POST'],
    ['POST', '/file/1', 'GET, HEAD, PUT, DELETE'],
    ['PATCH', '/file/1', 'GET, HEAD, PUT, DELETE'],
    ['OPTIONS', '/file/1', 'GET, HEAD, PUT, DELETE'],
    ['PATCH', '/file/abc', 'GET, HEAD, PUT, DELETE'],
    ['GET', '/sync', 'DELETE'],
    ['POST', '/sync', 'DELETE'],
    ['POST', '/status', 'GET, HEAD'],
    ['DELETE', '/status', 'GET, HEAD'],
  ])('%s %s answers 405 with Allow: %s', async (method, path, allow) => {
    const { app, store } = setup();
    const res = await app.request(path, { method });
    expect(res.headers.get('allow')).toBe(allow);
    await expectError(res, 405, 'method_not_allowed');
    expect(await store.status()).toMatchObject({ liveNeedles: 0, nextKey: 1 });
  });

  it('HEAD on a path without GET answers 405 with Allow and no body', async () => {
    const { app } = setup();
    const res = await app.request('/sync', { method: 'HEAD' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('DELETE');
    expect(res.body).toBeNull();
  });
});

describe('app.fetch on a plain Request (any fetch-compatible host)', () => {
  it('serves the whole file life cycle', async () => {
    const { app } = setup();
    const post = await app.fetch(
      new Request('http://x/file', {
        method: 'POST',
        body: bytes(1, 2, 3),
        headers: { 'content-type': 'image/webp' },
      }),
    );
    expect(post.status).toBe(201);
    const location = post.headers.get('location');
    expect(location).toBe('/file/1');

    const get = await app.fetch(new Request(`http://x${location}`));
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('image/webp');
    expect(await bodyBytes(get)).toEqual(bytes(1, 2, 3));

    const head = await app.fetch(new Request(`http://x${location}`, { method: 'HEAD' }));
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('3');
    expect(head.body).toBeNull();

    const put = await app.fetch(new Request(`http://x${location}`, { method: 'PUT', body: 'v2' }));
    expect(put.status).toBe(200);
    expect(put.headers.get('location')).toBe('/file/2');

    const del = await app.fetch(new Request('http://x/file/2', { method: 'DELETE' }));
    expect(await del.json()).toEqual({ key: 2, flag: false });

    await expectError(await app.fetch(new Request('http://x/file/2')), 404, 'not_found');
    await expectError(await app.fetch(new Request('http://x/file/x')), 400, 'bad_key');
    await expectError(await app.fetch(new Request('http://x/elsewhere')), 404, 'no_route');
    await expectError(await app.fetch(new Request('http://x/file')), 405, 'method_not_allowed');
    expect((await app.fetch(new Request('http://x/status'))).status).toBe(200);
    expect((await app.fetch(new Request('http://x/sync', { method: 'DELETE' }))).status).toBe(200);
  });

  it('ignores the host and query string', async () => {
    const { app } = setup();
    const res = await app.fetch(
      new Request('https://cdn.example:8443/file?x=1', { method: 'POST', body: 'q' }),
    );
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toBe('/file/1');
  });
});

describe('mounted in a parent app', () => {
  function mounted() {
    const fixture = setup();
    const parent = new Hono();
    parent.get('/', (c) => c.text('parent home'));
    parent.route('/media', fixture.app);
    return { ...fixture, parent };
  }

  it('serves the routes under the prefix, with Location under the prefix too', async () => {
    const { parent } = mounted();
    const post = await parent.request('/media/file', { method: 'POST', body: bytes(5, 6) });
    expect(post.status).toBe(201);
    expect(post.headers.get('location')).toBe('/media/file/1');

    const location = post.headers.get('location') ?? '';
    const get = await parent.request(location);
    expect(get.status).toBe(200);
    expect(await bodyBytes(get)).toEqual(bytes(5, 6));

    const head = await parent.request(location, { method: 'HEAD' });
    expect(head.headers.get('content-length')).toBe('2');
    expect(head.body).toBeNull();

    const put = await parent.request(location, { method: 'PUT', body: 'v2' });
    expect(put.headers.get('location')).toBe('/media/file/2');

    const range = await parent.request('/media/file/2', { headers: { range: 'bytes=1-' } });
    expect(range.status).toBe(206);
    expect(await range.text()).toBe('2');

    expect((await parent.request('/media/status')).status).toBe(200);
    expect((await parent.request('/media/sync', { method: 'DELETE' })).status).toBe(200);
    expect(await (await parent.request('/')).text()).toBe('parent home');
  });

  it('keeps its JSON errors and 405s under the prefix', async () => {
    const { parent } = mounted();
    await expectError(await parent.request('/media/file/abc'), 400, 'bad_key');
    await expectError(await parent.request('/media/file/9'), 404, 'not_found');
    const wrong = await parent.request('/media/file');
    expect(wrong.headers.get('allow')).toBe('POST');
    await expectError(wrong, 405, 'method_not_allowed');
    await expectError(
      await parent.request('/media/file', { method: 'POST', body: new Uint8Array(5000) }),
      413,
      'too_large',
    );
  });

  it('does not answer paths outside the prefix', async () => {
    const { parent } = mounted();
    expect((await parent.request('/file', { method: 'POST', body: 'x' })).status).toBe(404);
    expect((await parent.request('/status')).status).toBe(404);
  });

  it("leaves unknown paths to the parent's notFound, which can reuse noRoute", async () => {
    const { parent } = mounted();
    const res = await parent.request('/media/unknown');
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).not.toMatch(/json/); // Hono's default, the parent's choice

    const jsonParent = new Hono().notFound(noRoute);
    jsonParent.route('/media', setup().app);
    await expectError(await jsonParent.request('/media/unknown'), 404, 'no_route');
  });

  it('can be mounted twice over different stores', async () => {
    const a = setup();
    const b = setup();
    const parent = new Hono().route('/a', a.app).route('/b', b.app);
    await parent.request('/a/file', { method: 'POST', body: 'in a' });
    expect(await (await parent.request('/a/file/1')).text()).toBe('in a');
    await expectError(await parent.request('/b/file/1'), 404, 'not_found');
  });
});
