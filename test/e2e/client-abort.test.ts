import { describe, expect, it } from 'vitest';
import { loggedErrors, useCli } from '../support/cli.ts';
import { expectFile, getStatus, postFile, randomBody } from '../support/http.ts';
import { connect } from '../support/raw-http.ts';

describe('haystack start: clients that misbehave do not bring it down', () => {
  const cli = useCli();

  it('survives uploads and downloads cut off half-way, and garbage, then stops cleanly', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const { url } = server;
    const big = await postFile(url, randomBody(8 * 1024 * 1024), 'video/mp4');

    // An upload the server is reading (it sent 100 Continue), cut off with half its body sent.
    const upload = await connect(url);
    await upload.write(
      'POST /file HTTP/1.1\r\nHost: test\r\nContent-Length: 100000\r\nExpect: 100-continue\r\n\r\n',
    );
    expect((await upload.readResponse()).status).toBe(100);
    await upload.write(randomBody(50_000));
    upload.abort();

    // A download cut off once its first bytes arrived, with most of the file still to send.
    const download = await connect(url);
    await download.write(`GET /file/${big.key} HTTP/1.1\r\nHost: test\r\n\r\n`);
    await download.waitForBytes(1);
    download.abort();

    // Not HTTP at all: the server answers 400 and hangs up.
    const garbage = await connect(url);
    await garbage.write('\x00\x01 NOT HTTP\r\n\r\n');
    expect((await garbage.readResponse()).status).toBe(400);
    await garbage.closed;

    // Still serving, nothing half-written became a file.
    expect(server.running()).toBe(true);
    await expectFile(url, big);
    expect((await getStatus(url)).liveNeedles).toBe(1);

    // A graceful stop waits for the handlers of the cut-off requests: none crashed the process.
    const exit = await cli.stop(server);
    expect(exit.code, exit.stdout).toBe(0);
    expect(loggedErrors(exit.stdout)).toEqual([]);
    expect(exit.stdout).not.toMatch(/uncaught|unhandled/i);
  });
});
