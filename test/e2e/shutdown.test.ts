import { describe, expect, it } from 'vitest';
import { loggedErrors, logMessages, STOPPED, useCli } from '../support/cli.ts';
import {
  deleteFile,
  expectFile,
  expectKept,
  getStatus,
  postFile,
  putFile,
  randomBody,
  type SentFile,
} from '../support/http.ts';
import { connect } from '../support/raw-http.ts';

describe('haystack start: stopping', () => {
  const cli = useCli();

  it('SIGTERM syncs everything, exits 0, and a restart reads every file back', async () => {
    const dir = await cli.tempDir();
    const first = await cli.start(dir, ['--fsync', 'never']);
    const { url } = first;

    // --fsync never: only the stop itself puts these on disk, and no DELETE /sync is sent.
    const files: SentFile[] = [];
    const types = ['text/plain', 'image/jpeg', undefined, 'application/json; charset=utf-8'];
    for (let i = 0; i < 24; i++) {
      files.push(await postFile(url, randomBody((i * 7919) % 70_000), types[i % types.length]));
    }
    files.push(await postFile(url, new Uint8Array(0), 'text/plain'));
    const [retired, old] = files.splice(3, 2) as [SentFile, SentFile];
    await deleteFile(url, retired.key);
    const replacement = await putFile(url, old.key, randomBody(1234), 'image/webp');
    files.push(replacement);
    // The highest key ever handed out is then retired: the next key must still be above it.
    const last = await postFile(url, randomBody(10), 'text/plain');
    await deleteFile(url, last.key);
    const before = await getStatus(url);

    const exit = await cli.stop(first);
    expect(exit.code, exit.stdout).toBe(0);
    expect(logMessages(exit.stdout).at(-1)).toMatch(STOPPED);
    // Nothing went wrong, so nothing was logged as an error (nor a stack trace).
    expect(loggedErrors(exit.stdout)).toEqual([]);

    expect(before.liveNeedles).toBe(files.length);
    const second = await cli.start(dir);
    const gone = [retired.key, old.key, last.key];
    await expectKept(second.url, { live: files, gone, before, lastKey: last.key });
  });

  it('lets a request in flight finish, refuses new connections, then exits 0', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const body = randomBody(5000);

    // An upload the server is handling (it answered 100 Continue) with half its body sent.
    const upload = await connect(server.url);
    await upload.write(
      'POST /file HTTP/1.1\r\nHost: test\r\nContent-Type: image/gif\r\n' +
        `Content-Length: ${body.byteLength}\r\nExpect: 100-continue\r\n\r\n`,
    );
    expect((await upload.readResponse()).status).toBe(100);
    await upload.write(body.subarray(0, 2500));

    server.child.kill('SIGTERM');
    await server.waitForLine(/SIGTERM/);
    // The listening socket is closed by now: a new connection is refused.
    await expect(connect(server.url)).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await upload.write(body.subarray(2500));
    const answer = await upload.readResponse();
    expect(answer.status, answer.body.toString()).toBe(201);
    expect(answer.headers.connection).toBe('close');
    const { key } = JSON.parse(answer.body.toString()) as { key: number };
    await upload.closed;

    const exit = await server.exited;
    expect(exit.code, exit.stdout).toBe(0);
    expect(logMessages(exit.stdout).at(-1)).toMatch(STOPPED);

    const restarted = await cli.start(dir);
    await expectFile(restarted.url, { key, bytes: body, contentType: 'image/gif' });
  });

  it('hangs up on connections with no request in flight instead of waiting for them', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const keptAlive = await connect(server.url);
    await keptAlive.write('GET /status HTTP/1.1\r\nHost: test\r\n\r\n');
    const answer = await keptAlive.readResponse();
    expect(answer.status).toBe(200);
    expect(answer.headers.connection).toBe('keep-alive');
    const silent = await connect(server.url); // never sends a byte
    const halfHeaders = await connect(server.url);
    await halfHeaders.write('GET /status HTTP/1.1\r\nHo');
    // The server has surely seen both: a request on a third connection was answered after them.
    expect((await fetch(`${server.url}/status`)).status).toBe(200);

    const exit = await cli.stop(server);
    expect(exit.code, exit.stdout).toBe(0);
    // Had they held the stop, it would have ended with the grace period and said so.
    expect(logMessages(exit.stdout)).not.toContainEqual(expect.stringMatching(/grace period/));
    await Promise.all([keptAlive.closed, silent.closed, halfHeaders.closed]);
  });

  it('a second signal while stopping exits at once, non-zero', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const upload = await connect(server.url);
    await upload.write(
      'POST /file HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\nExpect: 100-continue\r\n\r\n',
    );
    expect((await upload.readResponse()).status).toBe(100);

    server.child.kill('SIGINT');
    await server.waitForLine(/SIGINT/);
    server.child.kill('SIGINT'); // the upload still holds the graceful stop
    const exit = await server.exited;
    expect(exit.code).toBe(130);
    const messages = logMessages(exit.stdout);
    expect(messages).not.toContainEqual(expect.stringMatching(STOPPED));
    expect(messages.at(-1)).toMatch(/SIGINT received again: exiting now/);
    upload.abort();

    // Its lock is stale now (its process is gone): the next start takes the directory over.
    const next = await cli.start(dir);
    expect((await getStatus(next.url)).liveNeedles).toBe(0);
  });
});
