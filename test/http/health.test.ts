import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { createApp } from '../../handlers/index.ts';
import type { BlobStore } from '../../storage/index.ts';
import { useCli } from '../support/cli.ts';
import { buildFaultyIo, faultyDisk } from '../support/faulty-io.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { useVolumeStores } from '../support/volume-stores.ts';
import { expectError, MAX_BODY } from './helpers.ts';

const appOver = (store: BlobStore) => createApp({ store, maxBody: MAX_BODY });

async function expectReady(app: ReturnType<typeof createApp>) {
  const res = await app.request('/readyz');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(await res.json()).toEqual({ status: 'ready' });
}

/** 503 `unavailable` with the store's reason as the message. */
async function expectNotReady(app: ReturnType<typeof createApp>, reason: RegExp) {
  const res = await app.request('/readyz');
  const message = await expectError(res, 503, 'unavailable');
  expect(message).toMatch(reason);
  return message;
}

async function expectHealthy(app: ReturnType<typeof createApp>) {
  const res = await app.request('/healthz');
  expect(res.status).toBe(200);
  expect(await res.json()).toEqual({ status: 'ok' });
}

describe('GET /healthz and /readyz', () => {
  const volumes = useVolumeStores('haystack-health-');

  it('answer ok and ready on a memory store, HEAD too, and 405 with Allow to other methods', async () => {
    const app = appOver(createMemoryStore());
    await expectHealthy(app);
    await expectReady(app);
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const head = await app.request(path, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      for (const method of ['POST', 'PUT', 'DELETE']) {
        const res = await app.request(path, { method });
        await expectError(res, 405, 'method_not_allowed');
        expect(res.headers.get('allow')).toBe('GET, HEAD');
      }
    }
    // Probes must never be answered from a cache.
    expect((await app.request('/readyz')).headers.get('cache-control')).toBe('no-store');
  });

  it('readyz is 503 on a read-only memory store, healthz still 200', async () => {
    const app = appOver(createMemoryStore({ readOnly: true }));
    await expectNotReady(app, /read-only/);
    await expectHealthy(app);
  });

  it('readyz is 503 with the reason on a read-only volume store, and ready on a writable one', async () => {
    const writable = await volumes.open();
    await expectReady(appOver(writable));
    await writable.close();
    const readOnly = await volumes.open({ readOnly: true });
    const app = appOver(readOnly);
    const reason = (await readOnly.readiness()) as { ready: false; reason: string };
    expect(reason.ready).toBe(false);
    expect(await expectNotReady(app, /read-only/)).toBe(reason.reason);
    await expectHealthy(app);
  });

  it('readyz is 503 once the store is closed (memory and volume)', async () => {
    const memory = createMemoryStore();
    const memoryApp = appOver(memory);
    await expectReady(memoryApp);
    await memory.close();
    await expectNotReady(memoryApp, /closed/);

    const volume = await volumes.open();
    const volumeApp = appOver(volume);
    await expectReady(volumeApp);
    await volume.close();
    await expectNotReady(volumeApp, /clos/);
    await expectHealthy(volumeApp);
  });

  it('a store whose readiness check fails answers 500, not a crash', async () => {
    const store = createMemoryStore();
    store.readiness = () => Promise.reject(new Error('probe broke'));
    const app = createApp({ store, maxBody: MAX_BODY, onUnexpectedError: () => {} });
    const message = await expectError(await app.request('/readyz'), 500, 'internal');
    expect(message).not.toContain('probe broke');
  });
});

const shimDir = await makeTempDir('haystack-health-io-');
const library = await buildFaultyIo(shimDir);
afterAll(() => removeTempDir(shimDir));

function requireShim(ctx: TestContext): string {
  if (library) return library;
  return ctx.skip('no LD_PRELOAD shim here (needs Linux and a C compiler)');
}

describe('GET /readyz on a disk whose flush failed', () => {
  const cli = useCli();

  it('is 503 once a flush failed, and stays so after the disk works again', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir());
    const dir = await cli.tempDir();
    // The first server creates the volume as 1.dat.new (which the shim does not match); the
    // second opens 1.dat by name, as every later start does.
    const first = await cli.start(dir, [], disk.env);
    expect((await fetch(`${first.url}/file`, { method: 'POST', body: 'one' })).status).toBe(201);
    expect((await cli.stop(first)).code).toBe(0);
    const server = await cli.start(dir, [], disk.env);
    const ready = await fetch(`${server.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready' });

    await disk.arm('sync');
    const write = await fetch(`${server.url}/file`, { method: 'POST', body: 'two' });
    expect(write.status).toBe(500);
    await write.text();
    await disk.disarm();

    const refusing = await fetch(`${server.url}/readyz`);
    expect(refusing.status).toBe(503);
    const body = (await refusing.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('unavailable');
    expect(body.error.message).toMatch(/restart/);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
    expect((await cli.stop(server)).code).toBe(0);
  });
});
