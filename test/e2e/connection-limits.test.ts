import { describe, expect, it } from 'vitest';
import { closedOf } from '../support/attacks.ts';
import { useCli } from '../support/cli.ts';
import { connect, openSocket } from '../support/raw-http.ts';

const MAX_CONNECTIONS = 20;

describe('haystack start --max-connections', () => {
  const cli = useCli();

  it('refuses a client past the limit at once, and serves again once the header timeout drops the silent ones', async () => {
    const dir = await cli.tempDir();
    // The header timeout only has to outlast opening 21 local connections; it bounds how long
    // the test waits for the silent ones to go.
    const server = await cli.start(dir, [
      '--max-connections',
      String(MAX_CONNECTIONS),
      '--headers-timeout',
      '3s',
    ]);
    // Stored on a connection that closes at once, so that no keep-alive one holds a place.
    const upload = await connect(server.url);
    await upload.write(
      'POST /file HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello',
    );
    const stored = await upload.readResponse();
    expect(stored.status, stored.body.toString()).toBe(201);
    const { key } = JSON.parse(stored.body.toString()) as { key: number };
    await upload.closed;

    const silent = await Promise.all(
      Array.from({ length: MAX_CONNECTIONS }, () => openSocket(server.url)),
    );
    let silentClosed = 0;
    for (const socket of silent) {
      socket.once('close', () => silentClosed++);
      socket.resume(); // so that a close by the server is seen
    }

    // The kernel accepts it, the server closes it without a word: no hanging.
    const refused = await openSocket(server.url);
    const refusedBytes: Buffer[] = [];
    refused.on('data', (chunk: Buffer) => refusedBytes.push(chunk));
    refused.write('GET /status HTTP/1.1\r\nHost: x\r\n\r\n');
    await closedOf(refused);
    expect(Buffer.concat(refusedBytes).length).toBe(0);
    // It was refused because the silent ones held every place, not because they had gone.
    expect(silentClosed).toBe(0);

    await Promise.all(silent.map(closedOf));
    const probe = await fetch(`${server.url}/file/${key}`);
    expect(probe.status).toBe(200);
    expect(await probe.text()).toBe('hello');
  });
});
