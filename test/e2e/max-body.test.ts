import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { expectFile, getStatus, postFile, randomBody } from '../support/http.ts';
import { connect, type RawConnection } from '../support/raw-http.ts';

/** A body fetch has to send chunked: no Content-Length, so the limit bites while it streams. */
function chunked(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

/** A raw connection with the head of a chunked POST /file sent: the body follows by writeChunk. */
async function chunkedPost(url: string): Promise<RawConnection> {
  const connection = await connect(url);
  await connection.write(
    'POST /file HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n',
  );
  return connection;
}

/** One chunk of a chunked body, framed: its size in hex, the bytes, CRLF. */
async function writeChunk(connection: RawConnection, bytes: Uint8Array): Promise<void> {
  await connection.write(`${bytes.byteLength.toString(16)}\r\n`);
  await connection.write(bytes);
  await connection.write('\r\n');
}

async function expectTooLarge(res: Response): Promise<void> {
  expect(res.status).toBe(413);
  expect(await res.json()).toMatchObject({ error: { code: 'too_large' } });
}

describe('haystack start --max-body', () => {
  const cli = useCli();

  it('answers 413 to a body over the limit, with or without Content-Length, and stores nothing', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, ['--max-body', '1000']);
    const { url } = server;
    const fits = await postFile(url, randomBody(1000), 'image/png');
    const before = await getStatus(url);

    await expectTooLarge(await fetch(`${url}/file`, { method: 'POST', body: randomBody(1001) }));
    await expectTooLarge(
      await fetch(`${url}/file`, {
        method: 'POST',
        body: chunked(randomBody(600), randomBody(600)),
        duplex: 'half',
      } as RequestInit),
    );
    await expectTooLarge(
      await fetch(`${url}/file/${fits.key}`, { method: 'PUT', body: randomBody(5000) }),
    );
    await expectTooLarge(
      await fetch(`${url}/file/${fits.key}`, {
        method: 'PUT',
        body: chunked(randomBody(999), randomBody(2)),
        duplex: 'half',
      } as RequestInit),
    );

    // Nothing was appended, nothing retired, no key used up.
    const after = await getStatus(url);
    expect(after).toEqual(before);
    await expectFile(url, fits);
    const chunkedFits = await fetch(`${url}/file`, {
      method: 'POST',
      body: chunked(randomBody(500), randomBody(500)),
      duplex: 'half',
    } as RequestInit);
    expect(chunkedFits.status).toBe(201);
    const { key } = (await chunkedFits.json()) as { key: number };
    expect(key).toBe(fits.key + 1);
    expect(server.running()).toBe(true);
  });

  it('a chunked upload far over the limit, still being sent when it is refused, gets its 413 and the connection stays usable', async () => {
    const dir = await cli.tempDir();
    const { url } = await cli.start(dir, ['--max-body', '1M']);
    const before = await getStatus(url);
    const connection = await chunkedPost(url);
    // 8 MiB in 64 KiB chunks, sent as fast as the server takes them: far past the point where
    // the server refuses the upload. Cancelling the body there used to reset the connection, and
    // the client, still sending, never read the answer.
    const chunk = randomBody(64 * 1024);
    const sending = (async () => {
      for (let i = 0; i < 128; i++) {
        await writeChunk(connection, chunk);
      }
      await connection.write('0\r\n\r\n');
    })();
    const refused = await connection.readResponse();
    expect(refused.status).toBe(413);
    expect(JSON.parse(refused.body.toString())).toMatchObject({ error: { code: 'too_large' } });
    await sending; // every byte of the body was taken, none of it stored

    // The rest of the body was read and dropped: the same connection serves the next request.
    const body = randomBody(100);
    await connection.write(
      `POST /file HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: ${body.byteLength}\r\n\r\n`,
    );
    await connection.write(body);
    const stored = await connection.readResponse();
    expect(stored.status).toBe(201);
    const { key } = JSON.parse(stored.body.toString()) as { key: number };
    await expectFile(url, { key, bytes: body, contentType: 'text/plain' });
    expect((await getStatus(url)).liveNeedles).toBe(before.liveNeedles + 1);
    connection.abort();
  });

  // How much is dropped, and for how long, is the handlers' bounds (64 MiB or 5 s): each is
  // tested alone, injected, in test/http/uploads.test.ts. Here, on the real server, only what
  // holds whatever the machine's speed: the client gets its 413, and the connection is let go.
  it('an endless body of a refused upload cannot hold the connection: 413, then closed long before 256 MiB', async () => {
    const dir = await cli.tempDir();
    const { url } = await cli.start(dir, ['--max-body', '1M']);
    const connection = await chunkedPost(url);
    const chunk = randomBody(64 * 1024);
    const response = connection.readResponse();
    let sent = 0;
    try {
      // Up to 256 MiB, four times the bound, unless the server closes the connection first.
      while (sent < 256 * 1024 * 1024) {
        await writeChunk(connection, chunk);
        sent += chunk.byteLength;
      }
    } catch {
      // EPIPE or a reset: the server closed the connection.
    }
    expect((await response).status).toBe(413);
    await connection.closed;
    expect(sent).toBeLessThan(256 * 1024 * 1024);
  });

  it('a trickling body of a refused upload cannot hold the connection: 413, then closed', async () => {
    const dir = await cli.tempDir();
    const { url } = await cli.start(dir, ['--max-body', '1K']);
    const connection = await chunkedPost(url);
    const response = connection.readResponse();
    const over = randomBody(4 * 1024);
    await writeChunk(connection, over);
    expect((await response).status).toBe(413);

    // Then a few bytes every 100 ms, far under 64 MiB, until the server hangs up. The loop's
    // ceiling only turns a server that never does into a failure instead of a hung test.
    let open = true;
    void connection.closed.then(() => {
      open = false;
    });
    const tick = randomBody(100);
    const ceiling = Date.now() + 40_000;
    try {
      while (open && Date.now() < ceiling) {
        await writeChunk(connection, tick);
        await new Promise((r) => setTimeout(r, 100));
      }
    } catch {
      // EPIPE or a reset: the server closed the connection.
    }
    expect(open).toBe(false);
  });
});
