import { randomInt } from 'node:crypto';
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
});
