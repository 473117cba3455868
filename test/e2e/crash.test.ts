import { randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import {
  eachLimited,
  expectFile,
  getStatus,
  OCTET_STREAM,
  postFile,
  randomBody,
  type SentFile,
} from '../support/http.ts';
import { pattern, upload } from '../support/transfer.ts';

const MiB = 1024 * 1024;
const WRITERS = 4;
const KILL_AFTER = 200;
const TYPES = ['image/jpeg', 'text/plain; charset=utf-8', 'application/x-thing', undefined];

describe('haystack start: kill -9 during writes', () => {
  const cli = useCli();

  it('keeps every acknowledged write, byte-exact with its content type', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir); // default --fsync always
    const acknowledged = new Map<number, SentFile>();
    let killed = false;
    let inFlight = 0;
    let inFlightAtKill = 0;

    const writer = async () => {
      while (!killed) {
        const bytes = randomBody(randomInt(0, 64 * 1024 + 1));
        const contentType = TYPES[randomInt(TYPES.length)];
        inFlight++;
        let res: Response;
        try {
          res = await fetch(`${server.url}/file`, {
            method: 'POST',
            body: bytes,
            headers: contentType === undefined ? {} : { 'content-type': contentType },
          });
        } catch {
          return; // the server is gone: this write was never acknowledged
        } finally {
          inFlight--;
        }
        // The status line and Location are the acknowledgement; the body may be cut off.
        expect(res.status).toBe(201);
        const key = Number(res.headers.get('location')?.replace('/file/', ''));
        expect(Number.isSafeInteger(key) && key > 0).toBe(true);
        acknowledged.set(key, { key, bytes, contentType: contentType ?? OCTET_STREAM });
        if (acknowledged.size >= KILL_AFTER && !killed) {
          killed = true;
          inFlightAtKill = inFlight; // the other writers' POSTs, still unanswered
          server.child.kill('SIGKILL');
        }
        await res.arrayBuffer().catch(() => {});
      }
    };
    await Promise.all(Array.from({ length: WRITERS }, writer));

    const exit = await server.exited;
    expect(exit.signal).toBe('SIGKILL');
    expect(inFlightAtKill).toBeGreaterThan(0);
    expect(acknowledged.size).toBeGreaterThanOrEqual(KILL_AFTER);

    const restarted = await cli.start(dir);
    await eachLimited([...acknowledged.values()], 8, (file) => expectFile(restarted.url, file));
    // Writes cut off by the kill may or may not have landed, but nothing else is there.
    const status = await getStatus(restarted.url);
    expect(status.liveNeedles).toBeGreaterThanOrEqual(acknowledged.size);
    expect(status.liveNeedles).toBeLessThanOrEqual(acknowledged.size + WRITERS);
    const next = await postFile(restarted.url, randomBody(3), 'text/plain');
    expect(next.key).toBeGreaterThan(Math.max(...acknowledged.keys()));
  });

  it('a chunked upload killed while it is spooled to disk leaves nothing behind', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const spoolFiles = async () => (await readdir(dir)).filter((name) => name.endsWith('.spool'));

    // 3 MiB of a chunked body (past the 1 MiB kept in memory), then the client stalls.
    let release: () => void = () => {};
    const stalled = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* body(): AsyncGenerator<Buffer> {
      yield* pattern(0, 3 * MiB, { chunkSize: 64 * 1024 });
      await stalled;
    }
    const cut = upload(server.url, undefined, body()).catch((err: unknown) => err);

    while ((await spoolFiles()).length === 0) await new Promise((r) => setTimeout(r, 20));
    server.child.kill('SIGKILL');
    expect((await server.exited).signal).toBe('SIGKILL');
    release();
    expect(await cut).toBeInstanceOf(Error); // never answered
    expect(await spoolFiles()).toHaveLength(1); // the kill came mid-spool

    const restarted = await cli.start(dir);
    expect(await spoolFiles()).toEqual([]);
    expect((await getStatus(restarted.url)).liveNeedles).toBe(0);
    const after = await postFile(restarted.url, randomBody(10), 'text/plain');
    await expectFile(restarted.url, after);
  });
});
