import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { expect } from 'vitest';
import { createMemoryStore, type MemoryStore } from '../../adapters/memory/memory-store.ts';
import { type CreateAppOptions, createApp } from '../../handlers/index.ts';

export const MAX_BODY = 1024;

export interface Fixture {
  app: ReturnType<typeof createApp>;
  store: MemoryStore;
}

/** An app over a fresh memory store. */
export function setup(options: Partial<CreateAppOptions> = {}): Fixture {
  const store = createMemoryStore();
  const app = createApp({ store, maxBody: MAX_BODY, ...options });
  return { app, store };
}

export interface Stored {
  key: number;
  size: number;
  offset: number;
  flag: boolean;
  volume: number;
  cookie: number;
  contentType: string;
  etag: string;
}

/** POSTs bytes and returns the stored file's JSON, failing the test unless it was a 201. */
export async function upload(
  app: Fixture['app'],
  body: Uint8Array<ArrayBuffer> | string,
  headers: Record<string, string> = {},
): Promise<Stored> {
  const res = await app.request('/file', { method: 'POST', body, headers });
  expect(res.status).toBe(201);
  return (await res.json()) as Stored;
}

/** Asserts the one error shape: JSON `{ error: { code, message } }` under the given status. */
export async function expectError(res: Response, status: number, code: string): Promise<string> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(body).toEqual({ error: { code, message: expect.any(String) } });
  expect(body.error.message).not.toBe('');
  expect(body.error.message).not.toMatch(/\n\s+at /); // no stack trace
  return body.error.message;
}

export function bytes(...values: number[]): Uint8Array<ArrayBuffer> {
  return new Uint8Array(values);
}

/** Every byte value, then some more: catches any text decoding on the way through. */
export function allByteValues(): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(300);
  for (let i = 0; i < out.length; i++) out[i] = (i * 7 + 3) % 256;
  for (let i = 0; i < 256; i++) out[i] = i;
  return out;
}

/** A request body without a length: fetch sends it chunked. */
export function streamOf(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

export async function bodyBytes(res: Response): Promise<Uint8Array> {
  return new Uint8Array(await res.arrayBuffer());
}

/** A running @hono/node-server on a free port of 127.0.0.1, serving `fetch`. */
export interface Listening {
  base: string;
  close(): Promise<void>;
}

export function listen(fetch: Fixture['app']['fetch']): Promise<Listening> {
  return new Promise((resolve) => {
    const server = serve({ fetch, port: 0, hostname: '127.0.0.1' }, (info: AddressInfo) => {
      resolve({
        base: `http://127.0.0.1:${info.port}`,
        close: () =>
          new Promise<void>((done, fail) => server.close((err) => (err ? fail(err) : done()))),
      });
    });
  });
}
