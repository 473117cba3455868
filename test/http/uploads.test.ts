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

  /** A body over the limit at once, then `chunk` bytes per pull (after `gapMs`) for ever. */
  function endlessBody(chunk: number, gapMs: number) {
    let sent = 0;
    let resolveCancel: (at: number) => void = () => {};
    const cancelled = new Promise<number>((resolve) => {
      resolveCancel = resolve;
    });
    const stream = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          if (sent > 0 && gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
          const bytes = new Uint8Array(sent === 0 ? MAX_BODY * 2 : chunk);
          sent += bytes.byteLength;
          controller.enqueue(bytes);
        },
        cancel() {
          resolveCancel(performance.now());
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, cancelled, sent: () => sent };
  }

  it('after refusing a chunked body, drops the rest up to maxBytes, then cancels it', async () => {
    const maxBytes = 100_000;
    // No time bound in the way: only the byte bound can end it.
    const { app } = setup({ discardBounds: { maxBytes, maxMs: 2 ** 31 - 1 } });
    const body = endlessBody(1000, 0);
    const res = await app.request('/file', {
      method: 'POST',
      body: body.stream,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'too_large');
    await body.cancelled;
    // What came after the refusal was dropped up to the bound, and not much past it.
    const dropped = body.sent() - MAX_BODY * 2;
    expect(dropped).toBeGreaterThan(maxBytes);
    expect(dropped).toBeLessThanOrEqual(maxBytes + 3 * 1000);
  });

  it('after refusing a chunked body, drops the rest for maxMs at most, then cancels it', async () => {
    const maxMs = 300;
    // No byte bound in the way: a trickle of 100 bytes every 20 ms is let go by the timer.
    const { app } = setup({ discardBounds: { maxBytes: Number.POSITIVE_INFINITY, maxMs } });
    const body = endlessBody(100, 20);
    // Taken before the request: the drop's timer starts later, at the refusal.
    const sentAt = performance.now();
    const res = await app.request('/file', {
      method: 'POST',
      body: body.stream,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'too_large');
    const cancelledAt = await body.cancelled;
    // A timer never fires early (1 ms of slack for the clocks' rounding); late is only slow.
    expect(cancelledAt - sentAt).toBeGreaterThanOrEqual(maxMs - 1);
    expect(body.sent()).toBeGreaterThan(MAX_BODY * 2); // kept reading while it waited
  });

  it('cancels a refused body that stalls once maxMs is over, not at its next chunk', async () => {
    const { app } = setup({ discardBounds: { maxBytes: Number.POSITIVE_INFINITY, maxMs: 50 } });
    let pulls = 0;
    let cancelled!: () => void;
    const done = new Promise<void>((resolve) => {
      cancelled = resolve;
    });
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(controller) {
          // One chunk over the limit, then nothing ever again.
          if (pulls++ === 0) controller.enqueue(new Uint8Array(MAX_BODY * 2));
          return new Promise(() => {});
        },
        cancel() {
          cancelled();
        },
      },
      { highWaterMark: 0 },
    );
    const res = await app.request('/file', {
      method: 'POST',
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectError(res, 413, 'too_large');
    await done; // without the timer this would wait for ever (the test's timeout)
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
