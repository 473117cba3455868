import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { createApp } from '../../handlers/index.ts';
import type { BlobStore } from '../../storage/index.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { bodyBytes, bytes, expectError, MAX_BODY, type Stored, upload } from './helpers.ts';

const opened: BlobStore[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  await Promise.all(dirs.splice(0).map(removeTempDir));
});

/** A volume store with two files in it, closed and opened again read-only. */
async function readOnlyVolumeStore() {
  const dir = await makeTempDir();
  dirs.push(dir);
  const writable = await openVolumeStore({ dir });
  const setup = createApp({ store: writable, maxBody: MAX_BODY });
  const a = await upload(setup, bytes(1, 2, 3), { 'content-type': 'image/gif' });
  const b = await upload(setup, 'second');
  await writable.close();

  const store = await openVolumeStore({ dir, readOnly: true });
  opened.push(store);
  const app = createApp({ store, maxBody: MAX_BODY });
  return { app, store, a, b };
}

const fid = (file: Stored) => `${file.key},${file.cookie.toString(16).padStart(8, '0')}`;

describe('a read-only volume store over HTTP', () => {
  it('serves GET, HEAD, ranges, status and sync', async () => {
    const { app, a, b } = await readOnlyVolumeStore();
    const get = await app.request(`/file/${a.key}`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('image/gif');
    expect(await bodyBytes(get)).toEqual(bytes(1, 2, 3));
    expect(await (await app.request(`/file/${fid(b)}`)).text()).toBe('second');
    expect((await app.request(`/file/${a.key}`, { method: 'HEAD' })).status).toBe(200);
    const part = await app.request(`/file/${a.key}`, { headers: { range: 'bytes=1-' } });
    expect(part.status).toBe(206);
    expect(await bodyBytes(part)).toEqual(bytes(2, 3));
    expect((await app.request('/status')).status).toBe(200);
    expect((await app.request('/sync', { method: 'DELETE' })).status).toBe(200);
  });

  it('answers POST, PUT and DELETE with 403 read_only and changes nothing', async () => {
    const { app, store, a, b } = await readOnlyVolumeStore();
    const before = await store.status();
    await expectError(
      await app.request('/file', { method: 'POST', body: 'new' }),
      403,
      'read_only',
    );
    await expectError(
      await app.request('/file', { method: 'POST', body: new Uint8Array(MAX_BODY) }),
      403,
      'read_only',
    );
    await expectError(
      await app.request(`/file/${a.key}`, { method: 'PUT', body: 'v2' }),
      403,
      'read_only',
    );
    await expectError(
      await app.request(`/file/${fid(b)}`, { method: 'PUT', body: 'v2' }),
      403,
      'read_only',
    );
    await expectError(await app.request(`/file/${a.key}`, { method: 'DELETE' }), 403, 'read_only');
    await expectError(await app.request(`/file/${fid(b)}`, { method: 'DELETE' }), 403, 'read_only');

    expect(await store.status()).toEqual(before);
    expect(await bodyBytes(await app.request(`/file/${a.key}`))).toEqual(bytes(1, 2, 3));
    expect(await (await app.request(`/file/${b.key}`)).text()).toBe('second');
  });

  it('still answers 404 for a wrong cookie and 400 for a bad id', async () => {
    const { app, a } = await readOnlyVolumeStore();
    const wrong = ((a.cookie ^ 0xff) >>> 0).toString(16).padStart(8, '0');
    await expectError(await app.request(`/file/${a.key},${wrong}`), 404, 'not_found');
    await expectError(
      await app.request(`/file/${a.key},${wrong}`, { method: 'DELETE' }),
      404,
      'not_found',
    );
    await expectError(await app.request('/file/x', { method: 'DELETE' }), 400, 'bad_key');
  });
});

describe('a read-only memory store over HTTP', () => {
  it('refuses uploads with 403 read_only and stores nothing', async () => {
    const store = createMemoryStore({ readOnly: true });
    const app = createApp({ store, maxBody: MAX_BODY });
    await expectError(await app.request('/file', { method: 'POST', body: 'x' }), 403, 'read_only');
    expect(await store.status()).toMatchObject({ liveNeedles: 0, nextKey: 1 });
    await expectError(await app.request('/file/1'), 404, 'not_found');
  });
});
