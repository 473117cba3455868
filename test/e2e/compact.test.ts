import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';

const cli = useCli();

describe('haystack compact', () => {
  it('reclaims the space of deleted files with the server stopped, keeping the others', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const keys: number[] = [];
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${server.url}/file`, {
        method: 'POST',
        body: Buffer.alloc(4000, i),
        headers: { 'content-type': `x/${i}` },
      });
      keys.push(((await res.json()) as { key: number }).key);
    }
    for (const key of keys.slice(0, 10)) {
      expect((await fetch(`${server.url}/file/${key}`, { method: 'DELETE' })).status).toBe(200);
    }
    const refused = await cli.run(['compact', '--data', dir]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/POST \/admin\/compact/);
    await cli.stop(server);
    const before = (await stat(join(dir, '1.dat'))).size;

    const done = await cli.run(['compact', '--data', dir]);
    expect(done.code).toBe(0);
    expect(done.stdout).toMatch(/^volume 1: \d+ -> \d+ bytes, reclaimed \d+/m);
    expect((await stat(join(dir, '1.dat'))).size).toBeLessThan(before / 2 + 1000);
    expect((await readdir(dir)).filter((n) => n.includes('compact'))).toEqual([]);

    const again = await cli.start(dir);
    for (const [i, key] of keys.entries()) {
      const res = await fetch(`${again.url}/file/${key}`);
      if (i < 10) {
        expect(res.status).toBe(404);
      } else {
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe(`x/${i}`);
        expect(Buffer.from(await res.arrayBuffer()).equals(Buffer.alloc(4000, i))).toBe(true);
      }
    }
  });
});
