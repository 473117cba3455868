import { describe, expect, it, vi } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { createApp } from '../../handlers/index.ts';
import { bytes, expectError, MAX_BODY, setup, streamOf, upload } from './helpers.ts';

/** A body that counts how much of it was pulled, to prove a refusal read nothing. */
function countingStream(chunks: Uint8Array[]): {
  stream: ReadableStream<Uint8Array>;
  pulled: () => number;
} {
  let pulled = 0;
  let index = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        const chunk = chunks[index++];
        if (chunk === undefined) {
          controller.close();
          return;
        }
        pulled += chunk.byteLength;
        controller.enqueue(chunk);
      },
    },
    { highWaterMark: 0 },
  ); // pull only when someone reads, not ahead
  return { stream, pulled: () => pulled };
}

describe('the body limit (maxBody)', () => {
  it('accepts a body of exactly maxBody bytes', async () => {
    const { app } = setup();
    expect((await upload(app, new Uint8Array(MAX_BODY))).size).toBe(MAX_BODY);
  });

  it('refuses a body over the limit with Content-Length: 413, nothing stored', async () => {
    const { app, store } = setup();
    const before = await store.status();
    const res = await app.request('/file', {
      method: 'POST',
      body: new Uint8Array(MAX_BODY + 1),
      headers: { 'content-length': String(MAX_BODY + 1) },
    });
    await expectError(res, 413, 'too_large');
    expect(await store.status()).toEqual(before);
  });

  it('refuses a declared length over the limit before reading the body or calling the store', async () => {
    const { app, store } = setup();
    const put = vi.spyOn(store, 'put');
    const body = countingStream([new Uint8Array(10), new Uint8Array(10)]);
    const res = await app.request('/file', {
      method: 'POST',
      body: body.stream,
      duplex: 'half',
      headers: { 'content-length': String(MAX_BODY + 1) },
    } as RequestInit);
    await expectError(res, 413, 'too_large');
    expect(put).not.toHaveBeenCalled();
    expect(body.pulled()).toBe(0);
  });

  it('refuses a chunked body over the limit while streaming: 413, nothing stored', async () => {
    const { app, store } = setup();
    const before = await store.status();
    const half = new Uint8Array(MAX_BODY / 2 + 1);
    const res = await app.request('/file', {
      method: 'POST',
      body: streamOf(half, half),
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'too_large');
    expect(await store.status()).toEqual(before);
  });

  it('after refusing a chunked body, drops the rest for 5 seconds at most, then cancels it', async () => {
    const { app } = setup();
    // Over the limit at once, then 100 bytes every 50 ms for as long as anyone reads.
    let sent = 0;
    let cancelledAt: number | undefined;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent > 0) await new Promise((r) => setTimeout(r, 50));
        const chunk = new Uint8Array(sent === 0 ? MAX_BODY * 2 : 100);
        sent += chunk.byteLength;
        controller.enqueue(chunk);
      },
      cancel() {
        cancelledAt = Date.now();
      },
    });
    const res = await app.request('/file', { method: 'POST', body, duplex: 'half' } as RequestInit);
    await expectError(res, 413, 'too_large');
    const refusedAt = Date.now();
    while (cancelledAt === undefined && Date.now() - refusedAt < 10_000) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(cancelledAt).toBeDefined();
    const heldFor = (cancelledAt ?? 0) - refusedAt;
    expect(heldFor).toBeGreaterThan(4_000); // kept reading: the client can still read its answer
    expect(heldFor).toBeLessThan(6_500);
    expect(sent).toBeGreaterThan(MAX_BODY * 2 + 50 * 100); // and dropped what came meanwhile
  });

  it('uses the maxBody it was given', async () => {
    const app = createApp({ store: createMemoryStore(), maxBody: 2 });
    expect((await app.request('/file', { method: 'POST', body: bytes(1, 2) })).status).toBe(201);
    await expectError(
      await app.request('/file', { method: 'POST', body: bytes(1, 2, 3) }),
      413,
      'too_large',
    );
  });

  it('accepts only an empty body when maxBody is 0', async () => {
    const app = createApp({ store: createMemoryStore(), maxBody: 0 });
    expect((await app.request('/file', { method: 'POST' })).status).toBe(201);
    await expectError(
      await app.request('/file', { method: 'POST', body: bytes(1) }),
      413,
      'too_large',
    );
  });

  it.each([-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY])(
    'refuses maxBody %s at creation',
    (maxBody) => {
      expect(() => createApp({ store: createMemoryStore(), maxBody })).toThrow(RangeError);
    },
  );
});

describe('Content-Length', () => {
  it('refuses a body shorter than declared: 400, nothing stored', async () => {
    const { app, store } = setup();
    const before = await store.status();
    const res = await app.request('/file', {
      method: 'POST',
      body: bytes(1, 2, 3),
      headers: { 'content-length': '10' },
    });
    await expectError(res, 400, 'bad_request');
    expect(await store.status()).toEqual(before);
  });

  it('refuses a body longer than declared: 400, nothing stored', async () => {
    const { app, store } = setup();
    const before = await store.status();
    const res = await app.request('/file', {
      method: 'POST',
      body: streamOf(bytes(1, 2, 3), bytes(4, 5)),
      duplex: 'half',
      headers: { 'content-length': '3' },
    } as RequestInit);
    await expectError(res, 400, 'bad_request');
    expect(await store.status()).toEqual(before);
  });

  it('refuses a declared length with no body: 400', async () => {
    const { app } = setup();
    const res = await app.request('/file', { method: 'POST', headers: { 'content-length': '4' } });
    await expectError(res, 400, 'bad_request');
  });

  it.each(['abc', '-1', '1.5', '1e3', '0x10', '+5', '5, 5'])(
    'refuses Content-Length %j with 400 bad_request, calling no store',
    async (length) => {
      const { app, store } = setup();
      const put = vi.spyOn(store, 'put');
      const res = await app.request('/file', {
        method: 'POST',
        body: bytes(1),
        headers: { 'content-length': length },
      });
      await expectError(res, 400, 'bad_request');
      expect(put).not.toHaveBeenCalled();
    },
  );

  it('applies to PUT as well, leaving the old file in place', async () => {
    const { app } = setup();
    const old = await upload(app, 'old');
    const res = await app.request(`/file/${old.key}`, {
      method: 'PUT',
      body: bytes(1),
      headers: { 'content-length': '2' },
    });
    await expectError(res, 400, 'bad_request');
    expect(await (await app.request(`/file/${old.key}`)).text()).toBe('old');
  });
});
