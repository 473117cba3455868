import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import {
  deleteFile,
  expectFile,
  expectGone,
  getStatus,
  postFile,
  putFile,
  randomBody,
} from '../support/http.ts';

const MiB = 1024 * 1024;

describe('haystack start: the HTTP API over a real socket', () => {
  const cli = useCli();

  it('stores, reads, replaces and deletes files, with their content types', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const { url } = server;
    expect(server.dataDir).toBe(dir);

    const text = new TextEncoder().encode('hello, haystack\n');
    const a = await postFile(url, text, 'text/plain; charset=utf-8');
    expect(a.json).toMatchObject({ size: text.byteLength, offset: expect.any(Number), flag: true });
    expect(a.key).toBeGreaterThanOrEqual(1);

    const everyByte = new Uint8Array(256).map((_, i) => i);
    const b = await postFile(url, everyByte); // no Content-Type at all
    const empty = await postFile(url, new Uint8Array(0), 'image/png');
    const big = await postFile(url, randomBody(3 * MiB + 17), 'video/mp4');
    expect(b.contentType).toBe('application/octet-stream');
    expect(empty.json.size).toBe(0);
    expect([a.key, b.key, empty.key, big.key]).toEqual(
      [a.key, b.key, empty.key, big.key].toSorted((x, y) => x - y),
    );
    expect(new Set([a.key, b.key, empty.key, big.key]).size).toBe(4);

    const etag = await expectFile(url, a);
    for (const file of [b, empty, big]) await expectFile(url, file);
    expect(etag).toMatch(/^"/);

    const head = await fetch(`${url}/file/${a.key}`, { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(head.headers.get('content-length')).toBe(String(text.byteLength));
    expect(head.headers.get('etag')).toBe(etag);
    expect((await head.arrayBuffer()).byteLength).toBe(0);

    const cached = await fetch(`${url}/file/${a.key}`, {
      headers: { 'if-none-match': etag ?? '' },
    });
    expect(cached.status).toBe(304);
    await cached.arrayBuffer();
    const part = await fetch(`${url}/file/${big.key}`, { headers: { range: 'bytes=1000-1999' } });
    expect(part.status).toBe(206);
    const partBytes = Buffer.from(await part.arrayBuffer());
    expect(partBytes.equals(Buffer.from(big.bytes.subarray(1000, 2000)))).toBe(true);

    const replaced = await putFile(
      url,
      a.key,
      new TextEncoder().encode('# new\n'),
      'text/markdown',
    );
    expect(replaced.key).toBeGreaterThan(big.key);
    await expectGone(url, a.key);
    await expectFile(url, replaced);

    await deleteFile(url, b.key);
    await expectGone(url, b.key);
    const again = await fetch(`${url}/file/${b.key}`, { method: 'DELETE' });
    expect(again.status).toBe(404);
    await again.arrayBuffer();

    const sync = await fetch(`${url}/sync`, { method: 'DELETE' });
    expect(sync.status).toBe(200);
    expect(await sync.json()).toBeTypeOf('object');

    const status = await getStatus(url);
    expect(status.liveNeedles).toBe(3);
    expect(status.deletedNeedles).toBeGreaterThanOrEqual(2);

    const bad = await fetch(`${url}/file/abc`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: expect.any(String) } });
    const noRoute = await fetch(`${url}/nowhere`);
    expect(noRoute.status).toBe(404);
    await noRoute.arrayBuffer();
    const wrongMethod = await fetch(`${url}/file/${big.key}`, { method: 'PATCH' });
    expect(wrongMethod.status).toBe(405);
    await wrongMethod.arrayBuffer();

    expect(server.running()).toBe(true);
  });
});
