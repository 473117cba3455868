import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openVolumeStore } from '../../adapters/volume/index.ts';
import { readPool } from '../../adapters/volume/read-pool.ts';
import { createApp } from '../../handlers/index.ts';
import { repoRoot } from '../support/cli.ts';

/**
 * The design card's promise, shown: the handlers and the memory adapter bundle for a neutral
 * platform (no Node built-ins: a `node:` import fails the build) and serve through `app.fetch`
 * alone, as on a Worker, Deno or Bun.
 */
interface Bundle {
  app: { fetch(request: Request): Response | Promise<Response> };
  /** The same over a store whose reads lend their bytes, counting the releases. */
  lending: { fetch(request: Request): Response | Promise<Response> };
  releases: { count: number };
  takeAfterSend(response: Response): (() => void) | undefined;
}

const ENTRY = `
import { createApp, takeAfterSend } from './handlers/index.ts';
import { createMemoryStore } from './adapters/memory/memory-store.ts';
export { takeAfterSend };
export const app = createApp({ store: createMemoryStore(), maxBody: 1024 * 1024 });
const memory = createMemoryStore();
export const releases = { count: 0 };
async function lend(key, range, cookie) {
  const read = await memory.get(key, range, cookie);
  return { ...read, release: () => { releases.count++; } };
}
const lendingStore = new Proxy(memory, {
  get(target, name) {
    if (name === 'get') return lend;
    const value = Reflect.get(target, name, target);
    return typeof value === 'function' ? value.bind(target) : value;
  },
});
export const lending = createApp({ store: lendingStore, maxBody: 1024 * 1024 });
`;

let dir: string;
let bundle: Bundle;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'haystack-bundle-'));
  const result = await build({
    stdin: { contents: ENTRY, resolveDir: repoRoot, loader: 'ts', sourcefile: 'fetch-entry.ts' },
    bundle: true,
    platform: 'neutral',
    format: 'esm',
    mainFields: ['module', 'main'],
    write: false,
    logLevel: 'silent',
  });
  const [output] = result.outputFiles;
  if (!output) throw new Error('esbuild wrote nothing');
  expect(output.text).not.toMatch(/from\s*["']node:/);
  const file = path.join(dir, 'bundle.mjs');
  await writeFile(file, output.text);
  bundle = (await import(pathToFileURL(file).href)) as Bundle;
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('handlers + memory adapter, bundled for a neutral platform', () => {
  it('stores, reads, ranges, replaces and deletes through app.fetch', async () => {
    const { app } = bundle;
    const posted = await app.fetch(
      new Request('https://worker.example/file', {
        method: 'POST',
        body: 'hello, fetch host',
        headers: { 'content-type': 'text/plain' },
      }),
    );
    expect(posted.status).toBe(201);
    const { key, fid } = (await posted.json()) as { key: number; fid: string };
    expect(posted.headers.get('location')).toBe(`/file/${key}`);

    const read = await app.fetch(new Request(`https://worker.example/file/${fid}`));
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('text/plain');
    expect(await read.text()).toBe('hello, fetch host');

    const part = await app.fetch(
      new Request(`https://worker.example/file/${key}`, { headers: { range: 'bytes=0-4' } }),
    );
    expect(part.status).toBe(206);
    expect(await part.text()).toBe('hello');

    const replaced = await app.fetch(
      new Request(`https://worker.example/file/${key}`, { method: 'PUT', body: 'v2' }),
    );
    expect(replaced.status).toBe(200);
    const next = (await replaced.json()) as { key: number };
    expect((await app.fetch(new Request(`https://worker.example/file/${key}`))).status).toBe(404);

    const deleted = await app.fetch(
      new Request(`https://worker.example/file/${next.key}`, { method: 'DELETE' }),
    );
    expect(await deleted.json()).toEqual({ key: next.key, flag: false });
    const status = await app.fetch(new Request('https://worker.example/status'));
    expect(status.status).toBe(200);
  });

  it('answers errors in the JSON shape', async () => {
    const res = await bundle.app.fetch(new Request('https://worker.example/file/abc'));
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('bad_key');
  });
});

describe('lent bytes on a fetch host, which never says when an answer was sent', () => {
  it('answers right and never gives back: the release is left with the Response, unused', async () => {
    const { lending, releases, takeAfterSend } = bundle;
    const data = new Uint8Array(40_000).map((_, i) => (i * 7) & 0xff);
    const posted = await lending.fetch(
      new Request('https://worker.example/file', { method: 'POST', body: data }),
    );
    const { key, etag } = (await posted.json()) as { key: number; etag: string };
    const url = `https://worker.example/file/${key}`;

    const whole = await lending.fetch(new Request(url));
    expect(new Uint8Array(await whole.arrayBuffer())).toEqual(data);
    const part = await lending.fetch(new Request(url, { headers: { range: 'bytes=100-199' } }));
    expect(part.status).toBe(206);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(data.subarray(100, 200));
    const head = await lending.fetch(new Request(url, { method: 'HEAD' }));
    expect(head.headers.get('content-length')).toBe('40000');
    const notModified = await lending.fetch(
      new Request(url, { headers: { 'if-none-match': etag } }),
    );
    expect(notModified.status).toBe(304);
    expect(releases.count).toBe(0);

    // A host that can tell when an answer has left takes the release, once.
    const again = await lending.fetch(new Request(url));
    const release = takeAfterSend(again);
    expect(release).toBeTypeOf('function');
    expect(takeAfterSend(again)).toBeUndefined();
    expect(takeAfterSend(head)).toBeUndefined();
    release?.();
    expect(releases.count).toBe(1);
  });
});

describe('the volume store served through app.fetch alone', () => {
  it('answers every lent read its own bytes, with every answer still held and none given back', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'haystack-fetch-pool-'));
    const store = await openVolumeStore({ dir: dataDir, fsync: 'never' });
    try {
      const app = createApp({ store, maxBody: 1 << 20 });
      const files = [];
      for (let n = 0; n < 16; n++) {
        const bytes = randomBytes(64 * 1024);
        files.push({ bytes, key: (await store.put({ body: bytes })).key });
      }
      const before = readPool.stats();
      // Every response made before any body is read. Nothing gives a buffer back here, so none
      // is reused (the store's side is tested in test/volume/store-read-pool.test.ts); a fetch
      // host's own Response copies a byte body when it is made besides.
      const answers = [];
      for (let round = 0; round < 4; round++) {
        for (const { bytes, key } of files) {
          const range = round % 2 === 1 ? { range: 'bytes=1000-50999' } : undefined;
          const res = await app.fetch(
            new Request(`https://worker.example/file/${key}`, { headers: range ?? {} }),
          );
          answers.push({ res, expected: range ? bytes.subarray(1000, 51_000) : bytes });
        }
      }
      for (const { res, expected } of answers) {
        expect(Buffer.from(await res.arrayBuffer()).equals(expected)).toBe(true);
      }
      const after = readPool.stats();
      expect(after.leases - before.leases).toBe(64);
      expect(after.released - before.released).toBe(0);
    } finally {
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
