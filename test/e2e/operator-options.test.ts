import { describe, expect, it } from 'vitest';
import { logRecords, useCli } from '../support/cli.ts';
import {
  deleteFile,
  expectFile,
  getStatus,
  postFile,
  randomBody,
  type SentFile,
} from '../support/http.ts';

const TOKEN = 'e2e-admin-token-fedcba9876543210';

interface ErrorJson {
  error?: { code?: string };
}

/** A request that must fail with this status and code. */
async function expectRefused(
  res: Promise<Response>,
  status: number,
  code: string,
): Promise<Response> {
  const answer = await res;
  const body = (await answer.json()) as ErrorJson;
  expect(answer.status, JSON.stringify(body)).toBe(status);
  expect(body.error?.code).toBe(code);
  return answer;
}

function hex(cookie: number): string {
  return cookie.toString(16).padStart(8, '0');
}

describe('haystack start: --read-only, --require-cookie, --admin-token', () => {
  const cli = useCli();

  it('--read-only serves the files of a data directory and refuses every write with 403', async () => {
    const dir = await cli.tempDir();
    const writable = await cli.start(dir);
    const a = await postFile(writable.url, randomBody(5000), 'image/jpeg');
    const b = await postFile(writable.url, randomBody(10));
    expect((await cli.stop(writable)).code).toBe(0);

    const server = await cli.start(dir, ['--read-only']);
    const { url } = server;
    await expectFile(url, a);
    await expectFile(url, b);
    const before = await getStatus(url);

    await expectRefused(fetch(`${url}/file`, { method: 'POST', body: 'new' }), 403, 'read_only');
    await expectRefused(
      fetch(`${url}/file/${a.key}`, { method: 'PUT', body: 'v2' }),
      403,
      'read_only',
    );
    await expectRefused(fetch(`${url}/file/${b.key}`, { method: 'DELETE' }), 403, 'read_only');
    expect(await getStatus(url)).toEqual(before);
    expect((await cli.stop(server)).code).toBe(0);

    // The files are all there for the next writable server, and nothing else is.
    const again = await cli.start(dir, [], { HAYSTACK_READ_ONLY: 'false' });
    await expectFile(again.url, a);
    await expectFile(again.url, b);
    expect((await getStatus(again.url)).liveNeedles).toBe(2);
  });

  it('HAYSTACK_READ_ONLY=1 is --read-only', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, [], { HAYSTACK_READ_ONLY: '1' });
    await expectRefused(
      fetch(`${server.url}/file`, { method: 'POST', body: 'x' }),
      403,
      'read_only',
    );
  });

  it('--require-cookie: the fid reads the file; a bare key or a wrong cookie is 404', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, ['--require-cookie']);
    const { url } = server;
    const post = await fetch(`${url}/file`, {
      method: 'POST',
      body: 'photo',
      headers: { 'content-type': 'image/webp' },
    });
    expect(post.status).toBe(201);
    const stored = (await post.json()) as { key: number; cookie: number; fid: string };
    expect(stored.fid).toBe(`${stored.key},${hex(stored.cookie)}`);
    expect(post.headers.get('location')).toBe(`/file/${stored.fid}`);

    const get = await fetch(`${url}/file/${stored.fid}`);
    expect(get.status).toBe(200);
    expect(get.headers.get('content-type')).toBe('image/webp');
    expect(await get.text()).toBe('photo');

    await expectRefused(fetch(`${url}/file/${stored.key}`), 404, 'not_found');
    await expectRefused(
      fetch(`${url}/file/${stored.key},${hex((stored.cookie ^ 1) >>> 0)}`),
      404,
      'not_found',
    );
    await expectRefused(fetch(`${url}/file/${stored.key}`, { method: 'DELETE' }), 404, 'not_found');
    expect((await getStatus(url)).liveNeedles).toBe(1);
  });

  it('HAYSTACK_REQUIRE_COOKIE=true is --require-cookie; without it bare keys work', async () => {
    const strict = await cli.start(await cli.tempDir(), [], { HAYSTACK_REQUIRE_COOKIE: 'true' });
    const a = await fetch(`${strict.url}/file`, { method: 'POST', body: 'a' });
    const { key } = (await a.json()) as { key: number };
    await expectRefused(fetch(`${strict.url}/file/${key}`), 404, 'not_found');

    const open = await cli.start(await cli.tempDir());
    const b = await postFile(open.url, randomBody(3));
    await expectFile(open.url, b);
    const cookie = (b.json as { cookie?: number }).cookie ?? 0;
    const wrongCookie = `${b.key},${hex((cookie ^ 1) >>> 0)}`;
    await expectRefused(fetch(`${open.url}/file/${wrongCookie}`), 404, 'not_found');
  });

  it('HAYSTACK_ADMIN_TOKEN turns the admin routes on, behind the bearer token', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, [], { HAYSTACK_ADMIN_TOKEN: TOKEN });
    const { url } = server;
    const first = await postFile(url, randomBody(100));

    const refused = await expectRefused(
      fetch(`${url}/admin/volumes/1/readonly`, { method: 'POST' }),
      401,
      'unauthorized',
    );
    expect(refused.headers.get('www-authenticate')).toMatch(/^Bearer/);
    await expectRefused(
      fetch(`${url}/admin/compact`, {
        method: 'POST',
        headers: { authorization: 'Bearer not-the-token-at-all' },
      }),
      401,
      'unauthorized',
    );

    const marked = await fetch(`${url}/admin/volumes/1/readonly`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(marked.status).toBe(200);
    expect(await marked.json()).toMatchObject({ id: 1, sealed: true, readOnly: true });
    const second = await postFile(url, randomBody(100));
    expect((second.json as { volume?: number }).volume).toBeGreaterThan(1);
    await expectFile(url, first);

    const compact = await fetch(`${url}/admin/compact`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(compact.status).toBe(200);
    expect(await compact.json()).toMatchObject({ compacted: expect.any(Array) });
    await expectFile(url, first);
    await expectFile(url, second);
  });

  it('without an admin token there are no admin routes; --admin-token turns them on', async () => {
    const off = await cli.start(await cli.tempDir());
    await expectRefused(
      fetch(`${off.url}/admin/compact`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}` },
      }),
      404,
      'no_route',
    );

    const on = await cli.start(await cli.tempDir(), ['--admin-token', TOKEN]);
    const res = await fetch(`${on.url}/admin/compact`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
  });

  it('bad values are usage errors, exit 2, and the token is never echoed', async () => {
    const dir = await cli.tempDir();
    const cases: Array<[string[], Record<string, string>, RegExp]> = [
      [['--admin-token', 'short-token'], {}, /--admin-token must be at least 16/],
      [[], { HAYSTACK_ADMIN_TOKEN: 'has a space in the token' }, /HAYSTACK_ADMIN_TOKEN .*must be/],
      [[], { HAYSTACK_READ_ONLY: 'maybe' }, /HAYSTACK_READ_ONLY .*must be 1, true, 0 or false/],
      [[], { HAYSTACK_REQUIRE_COOKIE: 'yes please' }, /HAYSTACK_REQUIRE_COOKIE .*must be 1/],
      [['--read-only=true'], {}, /--read-only/],
      [['--compact-at', '0.0'], {}, /--compact-at must be above 0/],
      [['--compact-at', '0'], {}, /--compact-at must be a share/],
      [['--compact-at', '1.5'], {}, /--compact-at must be a share/],
      [[], { HAYSTACK_COMPACT_AT: '30%' }, /HAYSTACK_COMPACT_AT .*must be a share/],
    ];
    for (const [args, env, problem] of cases) {
      const run = await cli.run(['start', '--data', dir, '--port', '0', ...args], env);
      const what = JSON.stringify([args, env]);
      expect(run.code, what).toBe(2);
      expect(run.stderr, what).toMatch(problem);
      expect(run.stderr, what).not.toContain('short-token');
      expect(run.stderr, what).not.toContain('has a space in the token');
    }
  });

  it('--compact-at compacts a full volume in the background once enough of it is deleted', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, ['--volume-size', '1M', '--compact-at', '0.5']);
    const files: Array<SentFile & { volume: number }> = [];
    for (let i = 0; i < 40; i++) {
      const file = await postFile(server.url, randomBody(64 * 1024), 'image/png');
      files.push({ ...file, volume: file.json.volume });
    }
    const volumeOne = async () =>
      ((await getStatus(server.url)).volumes as Array<{ id: number; bytes: number }>).find(
        (v) => v.id === 1,
      );
    const before = await volumeOne();
    const inFirst = files.filter((f) => f.volume === 1);
    const doomed = inFirst.slice(0, Math.ceil(inFirst.length * 0.6));
    for (const file of doomed) await deleteFile(server.url, file.key);

    // The compaction's log lines, from the store, at info.
    await server.waitForLine(/^volume 1: compacted/);
    const compaction = logRecords(server.stdout()).filter((r) => r.component === 'store');
    expect(compaction.map((r) => r.msg)).toContainEqual(
      expect.stringMatching(/^volume 1: \d+% garbage \(compact-at 50%\), compacting$/),
    );
    expect(compaction.every((r) => r.level === 30)).toBe(true);
    expect((await volumeOne())?.bytes).toBeLessThan((before?.bytes ?? 0) / 2);
    for (const file of files) {
      if (doomed.includes(file)) {
        expect((await fetch(`${server.url}/file/${file.key}`)).status).toBe(404);
      } else {
        await expectFile(server.url, file);
      }
    }
  });
});
