import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cli.ts';

/**
 * The design card's promise, shown: the handlers and the memory adapter bundle for a neutral
 * platform (no Node built-ins: a `node:` import fails the build) and serve through `app.fetch`
 * alone, as on a Worker, Deno or Bun.
 */
interface Bundle {
  app: { fetch(request: Request): Response | Promise<Response> };
}

const ENTRY = `
import { createApp } from './handlers/index.ts';
import { createMemoryStore } from './adapters/memory/memory-store.ts';
export const app = createApp({ store: createMemoryStore(), maxBody: 1024 * 1024 });
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
