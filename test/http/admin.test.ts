import { Hono } from 'hono';
import { afterEach, describe, expect, it } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { createApp } from '../../handlers/index.ts';
import type { BlobStore, CompactReport, VolumeStatus } from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { expectError, MAX_BODY, type Stored, setup, upload } from './helpers.ts';

const TOKEN = 'test-admin-token-0123456789abcdef';
const AUTH = { authorization: `Bearer ${TOKEN}` };

/**
 * The memory store plus a `compact` that records how it was called (`setVolumeReadOnly` has
 * nowhere to go: no test here reaches it).
 * The app has the admin token unless `withToken` is false.
 */
function recorder(withToken = true) {
  const calls: Array<number | undefined> = [];
  const store = new DelegatingStore(createMemoryStore(), {
    volumes: {
      compact: async (volume) => {
        calls.push(volume);
        return [
          {
            volume: volume ?? 1,
            bytesBefore: 1000,
            bytesAfter: 400,
            reclaimedBytes: 600,
            needles: 3,
            inPlace: false,
            durationMs: 1.5,
          },
        ];
      },
    },
  });
  const options = withToken ? { adminToken: TOKEN } : {};
  return { store, calls, app: createApp({ store, maxBody: MAX_BODY, ...options }) };
}

const opened: BlobStore[] = [];
const dirs: string[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()));
  await Promise.all(dirs.splice(0).map(removeTempDir));
});

async function volumeApp() {
  const dir = await makeTempDir();
  dirs.push(dir);
  const store = await openVolumeStore({ dir });
  opened.push(store);
  return { store, app: createApp({ store, maxBody: MAX_BODY, adminToken: TOKEN }) };
}

describe('admin routes without an admin token', () => {
  it.each([
    ['POST', '/admin/compact'],
    ['POST', '/admin/compact?volume=1'],
    ['POST', '/admin/volumes/1/readonly'],
    ['GET', '/admin/compact'],
    ['GET', '/admin'],
  ])('%s %s answers 404 no_route, as if absent', async (method, path) => {
    const { app, calls } = recorder(false);
    await expectError(await app.request(path, { method, headers: AUTH }), 404, 'no_route');
    expect(calls).toEqual([]);
  });
});

describe('admin routes with an admin token', () => {
  it.each([
    ['no Authorization header', undefined],
    ['an empty header', ''],
    ['another scheme', `Basic ${btoa(`admin:${TOKEN}`)}`],
    ['the token without a scheme', TOKEN],
    ['Bearer without a token', 'Bearer'],
    ['Bearer and spaces only', 'Bearer   '],
    ['a wrong token of the same length', `Bearer ${TOKEN.slice(0, -1)}X`],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, 8)}`],
    ['the token and more', `Bearer ${TOKEN}x`],
    ['the token twice', `Bearer ${TOKEN} ${TOKEN}`],
    ['the token in other case', `Bearer ${TOKEN.toUpperCase()}`],
  ])('refuse %s with 401 unauthorized and a Bearer challenge', async (_, authorization) => {
    const { app, calls } = recorder();
    const headers: Record<string, string> = authorization === undefined ? {} : { authorization };
    for (const [method, path] of [
      ['POST', '/admin/compact'],
      ['POST', '/admin/volumes/1/readonly'],
      ['GET', '/admin/compact'], // a wrong method is not told before the token
      ['POST', '/admin/nowhere'], // nor is an unknown path
    ] as const) {
      const res = await app.request(path, { method, headers });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      await expectError(res, 401, 'unauthorized');
    }
    expect(calls).toEqual([]);
  });

  it('take the token with the scheme in any case', async () => {
    const { app, calls } = recorder();
    for (const authorization of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER  ${TOKEN} `]) {
      const res = await app.request('/admin/compact', {
        method: 'POST',
        headers: { authorization },
      });
      expect(res.status, authorization).toBe(200);
    }
    expect(calls).toEqual([undefined, undefined, undefined]);
  });

  it('POST /admin/compact calls the store and answers its reports', async () => {
    const { app, calls } = recorder();
    const res = await app.request('/admin/compact', { method: 'POST', headers: AUTH });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual({
      compacted: [
        {
          volume: 1,
          bytesBefore: 1000,
          bytesAfter: 400,
          reclaimedBytes: 600,
          needles: 3,
          inPlace: false,
          durationMs: 1.5,
        },
      ],
    });
    expect(calls).toEqual([undefined]);
  });

  it('POST /admin/compact names one volume by query or by JSON body', async () => {
    const { app, calls } = recorder();
    const post = (path: string, body?: string) =>
      app.request(path, {
        method: 'POST',
        headers: { ...AUTH, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body }),
      });
    expect((await post('/admin/compact?volume=2')).status).toBe(200);
    expect((await post('/admin/compact', '{"volume": 3}')).status).toBe(200);
    expect((await post('/admin/compact?volume=4', '{"volume":4}')).status).toBe(200);
    expect((await post('/admin/compact', '{}')).status).toBe(200);
    expect((await post('/admin/compact', '  ')).status).toBe(200);
    const res = await post('/admin/compact', '{"volume": 5}');
    expect(await res.json()).toMatchObject({ compacted: [{ volume: 5 }] });
    expect(calls).toEqual([2, 3, 4, undefined, undefined, 5]);
  });

  it.each([
    ['/admin/compact?volume=0', undefined],
    ['/admin/compact?volume=abc', undefined],
    ['/admin/compact?volume=-1', undefined],
    ['/admin/compact?volume=01', undefined],
    ['/admin/compact?volume=', undefined],
    ['/admin/compact', '{"volume": 0}'],
    ['/admin/compact', '{"volume": 1.5}'],
    ['/admin/compact', '{"volume": "2"}'],
    ['/admin/compact', '{"volumes": 2}'],
    ['/admin/compact', '[2]'],
    ['/admin/compact', 'null'],
    ['/admin/compact', 'volume=2'],
    ['/admin/compact', '{"volume": 2'],
    ['/admin/compact?volume=2', '{"volume": 3}'],
  ])('POST %s with body %s is 400 bad_request and compacts nothing', async (path, body) => {
    const { app, calls } = recorder();
    const res = await app.request(path, {
      method: 'POST',
      headers: AUTH,
      ...(body === undefined ? {} : { body }),
    });
    await expectError(res, 400, 'bad_request');
    expect(calls).toEqual([]);
  });

  it('POST /admin/compact refuses a large body with 413', async () => {
    const { app, calls } = recorder();
    const body = JSON.stringify({ volume: 1, padding: 'x'.repeat(10_000) });
    const res = await app.request('/admin/compact', { method: 'POST', headers: AUTH, body });
    await expectError(res, 413, 'too_large');
    expect(calls).toEqual([]);
  });

  it('answer 501 not_supported when the store has no compact or setVolumeReadOnly', async () => {
    const { app } = setup({ adminToken: TOKEN });
    await expectError(
      await app.request('/admin/compact', { method: 'POST', headers: AUTH }),
      501,
      'not_supported',
    );
    await expectError(
      await app.request('/admin/volumes/1/readonly', { method: 'POST', headers: AUTH }),
      501,
      'not_supported',
    );
  });

  it('answer 405 to a wrong method and 404 to an unknown path, once authorized', async () => {
    const { app } = recorder();
    const wrong = await app.request('/admin/compact', { headers: AUTH });
    expect(wrong.headers.get('allow')).toBe('POST');
    await expectError(wrong, 405, 'method_not_allowed');
    const readonly = await app.request('/admin/volumes/1/readonly', {
      method: 'DELETE',
      headers: AUTH,
    });
    expect(readonly.headers.get('allow')).toBe('POST');
    await expectError(readonly, 405, 'method_not_allowed');
    await expectError(await app.request('/admin/nowhere', { headers: AUTH }), 404, 'no_route');
  });

  it('do not get in the way of the file routes', async () => {
    const { app } = recorder();
    const stored = await upload(app, 'plain');
    expect(await (await app.request(`/file/${stored.key}`)).text()).toBe('plain');
  });

  it('work under a mount prefix', async () => {
    const { app, calls } = recorder();
    const parent = new Hono().route('/media', app);
    expect((await parent.request('/media/admin/compact', { method: 'POST' })).status).toBe(401);
    const res = await parent.request('/media/admin/compact?volume=7', {
      method: 'POST',
      headers: AUTH,
    });
    expect(res.status).toBe(200);
    expect(calls).toEqual([7]);
  });

  it('createApp refuses an admin token that no header could carry', () => {
    const store = createMemoryStore();
    for (const adminToken of ['', 'has space', 'tab\there', 'naïve-token']) {
      expect(() => createApp({ store, maxBody: MAX_BODY, adminToken }), adminToken).toThrow(
        RangeError,
      );
    }
  });
});

describe('POST /admin/volumes/{id}/readonly on the volume store', () => {
  it('marks the volume read-only; later uploads go to a new volume; old files still read', async () => {
    const { app } = await volumeApp();
    const before = await upload(app, 'in volume 1');
    expect(before.volume).toBe(1);

    const res = await app.request('/admin/volumes/1/readonly', { method: 'POST', headers: AUTH });
    expect(res.status).toBe(200);
    const status = (await res.json()) as VolumeStatus;
    expect(status).toMatchObject({ id: 1, sealed: true, readOnly: true, liveNeedles: 1 });

    const after = await upload(app, 'in a new volume');
    expect(after.volume).toBeGreaterThan(1);
    expect(await (await app.request(`/file/${before.key}`)).text()).toBe('in volume 1');
    expect(await (await app.request(`/file/${after.key}`)).text()).toBe('in a new volume');

    const list = (await (await app.request('/status')).json()) as { volumes: VolumeStatus[] };
    expect(list.volumes.find((v) => v.id === 1)).toMatchObject({ sealed: true, readOnly: true });
    // The new writable volume takes appends and was marked by nobody.
    expect(list.volumes.find((v) => v.id === after.volume)).toMatchObject({
      sealed: false,
      readOnly: false,
    });
    expect(list.volumes.map((v) => v.id)).toContain(after.volume);

    // Again: still read-only, still 200.
    const again = await app.request('/admin/volumes/1/readonly', { method: 'POST', headers: AUTH });
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: 1, sealed: true, readOnly: true });
  });

  it('answers 404 for an unknown volume and 400 for a bad id', async () => {
    const { app } = await volumeApp();
    await expectError(
      await app.request('/admin/volumes/99/readonly', { method: 'POST', headers: AUTH }),
      404,
      'not_found',
    );
    for (const id of ['0', 'abc', '-1', '01', '1.5']) {
      await expectError(
        await app.request(`/admin/volumes/${id}/readonly`, { method: 'POST', headers: AUTH }),
        400,
        'bad_request',
      );
    }
  });

  it('needs the token', async () => {
    const { app } = await volumeApp();
    const res = await app.request('/admin/volumes/1/readonly', { method: 'POST' });
    await expectError(res, 401, 'unauthorized');
    const stored = await upload(app, 'x');
    expect(stored.volume).toBe(1);
  });
});

describe('POST /admin/compact on the volume store', () => {
  it('compacts away deleted files and keeps every live file byte-exact', async ({ skip }) => {
    const { app, store } = await volumeApp();
    if (store.compact === undefined) skip('the volume store has no compact yet');
    const files: Array<Stored & { text: string }> = [];
    for (let i = 0; i < 20; i++) {
      const text = `file ${i} `.repeat(100 + i);
      files.push({ ...(await upload(app, text)), text });
    }
    for (const file of files.filter((_, i) => i % 2 === 0)) {
      expect((await app.request(`/file/${file.key}`, { method: 'DELETE' })).status).toBe(200);
    }
    const res = await app.request('/admin/compact', { method: 'POST', headers: AUTH });
    expect(res.status).toBe(200);
    const { compacted } = (await res.json()) as { compacted: CompactReport[] };
    expect(compacted.length).toBeGreaterThanOrEqual(1);
    const reclaimed = compacted.reduce((sum, report) => sum + report.reclaimedBytes, 0);
    expect(reclaimed).toBeGreaterThan(0);
    for (const [i, file] of files.entries()) {
      const get = await app.request(`/file/${file.key}`);
      if (i % 2 === 0) {
        await expectError(get, 404, 'not_found');
      } else {
        expect(await get.text()).toBe(file.text);
      }
    }
  });
});

describe('sameToken', () => {
  it('is true for the same token only, whatever the lengths', async () => {
    const { sameToken } = await import('../../handlers/bearer-token.ts');
    const token = 'abcdefghijklmnop0123';
    expect(sameToken(token, token)).toBe(true);
    expect(sameToken(token, `${token}`.slice(0))).toBe(true);
    for (const other of [
      '',
      'a',
      token.slice(0, -1),
      `${token}x`,
      `x${token.slice(1)}`,
      token.toUpperCase(),
    ]) {
      expect(sameToken(token, other), other).toBe(false);
    }
    // A prefix padded with what charCodeAt gives past the end must not pass either.
    expect(sameToken('ab\u0000', 'ab')).toBe(false);
  });
});
