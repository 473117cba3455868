import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import { CACHE_SIZE_TESTED } from '../../adapters/volume/needle-cache.ts';
import { createApp } from '../../handlers/index.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { type Listening, listen } from './helpers.ts';

const TOKEN = 'cache-test-token-0123456789';

/**
 * The volume store's cache under the real server: @hono/node-server writes the cached bytes
 * themselves to the socket, request after request, and they must come out the same each time.
 */
describe('the cache, end to end under @hono/node-server', () => {
  let dir = '';
  let store: VolumeStore;
  let server: Listening;
  let base = '';

  beforeAll(async () => {
    dir = await makeTempDir('haystack-http-cache-');
    store = await openVolumeStore({ dir, cacheSize: CACHE_SIZE_TESTED });
    server = await listen(createApp({ store, maxBody: 1024 * 1024, adminToken: TOKEN }).fetch);
    base = server.base;
  });

  afterAll(async () => {
    await server.close();
    await store.close();
    await removeTempDir(dir);
  });

  const post = async (data: Uint8Array<ArrayBuffer>) => {
    const res = await fetch(`${base}/file`, {
      method: 'POST',
      body: data,
      headers: { 'content-type': 'image/jpeg' },
    });
    expect(res.status).toBe(201);
    return (await res.json()) as { key: number; fid: string; etag: string };
  };
  const bytesOf = async (res: Response) => new Uint8Array(await res.arrayBuffer());

  it('serves a cached file whole, ranged, as HEAD and as 304, the same bytes every time', async () => {
    const data = new Uint8Array(randomBytes(64 * 1024));
    const { key, fid, etag } = await post(data);
    const hitsBefore = store.cacheStats().hits;
    for (let i = 0; i < 3; i++) {
      const get = await fetch(`${base}/file/${fid}`);
      expect(get.status).toBe(200);
      expect(get.headers.get('content-length')).toBe(String(data.byteLength));
      expect(await bytesOf(get)).toEqual(data);
    }
    const part = await fetch(`${base}/file/${key}`, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 1000-1999/${data.byteLength}`);
    expect(await bytesOf(part)).toEqual(data.subarray(1000, 2000));
    const head = await fetch(`${base}/file/${key}`, { method: 'HEAD' });
    expect(head.headers.get('etag')).toBe(etag);
    const notModified = await fetch(`${base}/file/${key}`, { headers: { 'if-none-match': etag } });
    expect(notModified.status).toBe(304);
    expect(store.cacheStats().hits).toBeGreaterThanOrEqual(hitsBefore + 6);
    expect(await bytesOf(await fetch(`${base}/file/${key}`))).toEqual(data);
  });

  it('a wrong cookie is 404 on a cached file; delete and replace are 404 at once', async () => {
    const a = await post(new Uint8Array(randomBytes(100)));
    const [key, cookie] = a.fid.split(',') as [string, string];
    const wrong = ((Number.parseInt(cookie, 16) + 1) >>> 0).toString(16).padStart(8, '0');
    expect((await fetch(`${base}/file/${key},${wrong}`)).status).toBe(404);

    const b = await post(new Uint8Array(randomBytes(100)));
    await fetch(`${base}/file/${b.key}`);
    const replaced = await fetch(`${base}/file/${b.key}`, {
      method: 'PUT',
      body: new Uint8Array([1, 2, 3]),
    });
    expect(replaced.status).toBe(200);
    const { key: newKey } = (await replaced.json()) as { key: number };
    expect((await fetch(`${base}/file/${b.key}`)).status).toBe(404);
    expect(await bytesOf(await fetch(`${base}/file/${newKey}`))).toEqual(new Uint8Array([1, 2, 3]));

    expect((await fetch(`${base}/file/${a.key}`, { method: 'DELETE' })).status).toBe(200);
    expect((await fetch(`${base}/file/${a.key}`)).status).toBe(404);
    expect((await fetch(`${base}/file/${a.key}`, { method: 'HEAD' })).status).toBe(404);
  });

  it('files cached before an online compaction read back right after it', async () => {
    const files = await Promise.all(
      [500, 4000, 30_000].map(async (size) => {
        const data = new Uint8Array(randomBytes(size));
        return { data, ...(await post(data)) };
      }),
    );
    const dead = await post(new Uint8Array(randomBytes(8000)));
    await fetch(`${base}/file/${dead.key}`, { method: 'DELETE' });
    const compact = await fetch(`${base}/admin/compact`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(compact.status).toBe(200);
    for (const { key, data } of files) {
      expect(await bytesOf(await fetch(`${base}/file/${key}`))).toEqual(data);
    }
  });
});
