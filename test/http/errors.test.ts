import { describe, expect, it, vi } from 'vitest';
import { createMemoryStore, type MemoryStore } from '../../adapters/memory/memory-store.ts';
import { createApp } from '../../handlers/index.ts';
import { StoreError, type StoreErrorCode } from '../../storage/index.ts';
import { DelegatingStore, type StoreMethod } from '../support/delegating-store.ts';
import { expectError, MAX_BODY } from './helpers.ts';

/** The memory store, except that `method` rejects with `error` (the other calls go through). */
function faultyStore(method: StoreMethod, error: unknown): DelegatingStore<MemoryStore> {
  return new DelegatingStore(createMemoryStore(), {
    before: (called) => {
      if (called === method) throw error;
    },
  });
}

function faulty(method: StoreMethod, error: unknown) {
  const store = faultyStore(method, error);
  const onUnexpectedError = vi.fn();
  const app = createApp({ store, maxBody: MAX_BODY, onUnexpectedError });
  return { app, store, onUnexpectedError };
}

describe('StoreError codes map to statuses', () => {
  it.each<[StoreErrorCode, number]>([
    ['corrupt', 500],
    ['io_error', 500],
    ['no_space', 507],
    ['read_only', 403],
    ['locked', 503],
    ['closed', 503],
    ['too_large', 413],
    ['bad_request', 400],
    ['bad_key', 400],
    ['not_found', 404],
  ])('%s -> %i with its code and message', async (code, status) => {
    const { app, onUnexpectedError } = faulty(
      'put',
      new StoreError(code, `the store says ${code}`),
    );
    const res = await app.request('/file', { method: 'POST', body: 'x' });
    expect(await expectError(res, status, code)).toBe(`the store says ${code}`);
    // 5xx answers are news to the operator too; 4xx ones are the client's business.
    if (status >= 500) {
      expect(onUnexpectedError).toHaveBeenCalledWith(expect.objectContaining({ code }));
    } else {
      expect(onUnexpectedError).not.toHaveBeenCalled();
    }
  });

  it('a corrupt needle on read is a 500 corrupt, never bytes', async () => {
    const { app, store } = faulty('get', new StoreError('corrupt', 'needle 1 fails its checksum'));
    await store.inner.put({ body: new Uint8Array([1, 2, 3]) });
    await expectError(await app.request('/file/1'), 500, 'corrupt');
  });

  it('a full disk on upload is a 507 and the store stays readable', async () => {
    const { app, store } = faulty('replace', new StoreError('no_space', 'the disk is full'));
    await store.inner.put({ body: new Uint8Array([4, 5]) });
    await expectError(
      await app.request('/file/1', { method: 'PUT', body: 'new' }),
      507,
      'no_space',
    );
    const res = await app.request('/file/1');
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array([4, 5]));
  });

  it('the calls that do not fail reach the store whole: a wrong cookie is 404, the right one reads', async () => {
    // A forwarder that dropped the cookie would answer these with the file.
    const { app, store } = faulty('sync', new StoreError('io_error', 'fsync failed'));
    const info = await store.inner.put({ body: new Uint8Array([1, 2, 3]) });
    const hex = (cookie: number) => cookie.toString(16).padStart(8, '0');
    const wrong = `/file/${info.key},${hex((info.cookie ^ 1) >>> 0)}`;
    for (const init of [{}, { method: 'PUT', body: 'new' }, { method: 'DELETE' }]) {
      await expectError(await app.request(wrong, init), 404, 'not_found');
    }
    expect((await app.request(wrong, { method: 'HEAD' })).status).toBe(404);
    expect(await store.inner.head(info.key)).toEqual(info);

    const right = `/file/${info.key},${hex(info.cookie)}`;
    const part = await app.request(right, { headers: { range: 'bytes=1-1' } });
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(new Uint8Array([2]));
    expect((await app.request(right, { method: 'DELETE' })).status).toBe(200);
    await expect(store.inner.head(info.key)).rejects.toMatchObject({ code: 'not_found' });
  });

  it('an io_error from sync is a 500', async () => {
    const { app } = faulty('sync', new StoreError('io_error', 'fsync failed'));
    await expectError(await app.request('/sync', { method: 'DELETE' }), 500, 'io_error');
  });

  it('a closed store answers 503 on status', async () => {
    const store = createMemoryStore();
    await store.close();
    const app = createApp({ store, maxBody: MAX_BODY });
    await expectError(await app.request('/status'), 503, 'closed');
  });
});

describe('unexpected errors', () => {
  it('answer 500 internal with a generic message, and go to onUnexpectedError', async () => {
    const boom = new Error('secret detail: /var/data/1.dat');
    const { app, onUnexpectedError } = faulty('head', boom);
    const res = await app.request('/file/1', { headers: { range: 'bytes=0-1' } });
    const text = await res.clone().text();
    await expectError(res, 500, 'internal');
    expect(text).not.toContain('secret');
    expect(text).not.toContain('errors.test.ts');
    expect(onUnexpectedError).toHaveBeenCalledWith(boom);
  });

  it.each<[StoreMethod, string, RequestInit]>([
    ['put', '/file', { method: 'POST', body: 'x' }],
    ['get', '/file/1', {}],
    ['head', '/file/1', { method: 'HEAD' }],
    ['replace', '/file/1', { method: 'PUT', body: 'x' }],
    ['delete', '/file/1', { method: 'DELETE' }],
    ['sync', '/sync', { method: 'DELETE' }],
    ['status', '/status', {}],
  ])('from store.%s answer 500 on %s', async (method, path, init) => {
    const { app, onUnexpectedError } = faulty(method, new TypeError('oops'));
    const res = await app.request(path, init);
    expect(res.status).toBe(500);
    if (init.method !== 'HEAD') await expectError(res, 500, 'internal');
    expect(onUnexpectedError).toHaveBeenCalledTimes(1);
  });

  it('a thrown non-Error still answers 500 JSON instead of escaping fetch()', async () => {
    const { app, onUnexpectedError } = faulty('status', 'a bare string');
    await expectError(await app.request('/status'), 500, 'internal');
    const reported = onUnexpectedError.mock.calls[0]?.[0] as Error;
    expect(reported).toBeInstanceOf(Error);
    expect(reported.cause).toBe('a bare string');
  });

  it('go to a process warning when neither a handler nor a logger is given', async () => {
    const spy = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const store = faultyStore('status', new Error('kaput'));
      const app = createApp({ store, maxBody: MAX_BODY });
      await expectError(await app.request('/status'), 500, 'internal');
      expect(spy).toHaveBeenCalledTimes(1);
      const [message, options] = spy.mock.calls[0] as [string, { type: string; detail: string }];
      expect(message).toMatch(/unexpected error while serving a request/);
      expect(options.type).toBe('HaystackWarning');
      expect(options.detail).toContain('kaput');
    } finally {
      spy.mockRestore();
    }
  });

  it('still answer 500 when onUnexpectedError itself throws', async () => {
    const store = faultyStore('status', new Error('kaput'));
    const onUnexpectedError = () => {
      throw new Error('the logger is down');
    };
    const app = createApp({ store, maxBody: MAX_BODY, onUnexpectedError });
    await expectError(await app.request('/status'), 500, 'internal');
  });
});
