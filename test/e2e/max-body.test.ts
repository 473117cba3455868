import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { expectFile, getStatus, postFile, randomBody } from '../support/http.ts';

/** A body fetch has to send chunked: no Content-Length, so the limit bites while it streams. */
function chunked(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
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
});
