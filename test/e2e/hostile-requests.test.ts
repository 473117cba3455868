import { describe, expect, it } from 'vitest';
import { loggedErrors, useCli } from '../support/cli.ts';
import { expectFile, getStatus, postFile, randomBody } from '../support/http.ts';
import { connect, type RawResponse } from '../support/raw-http.ts';

/** Hosts that @hono/node-server lets through and the WHATWG URL parser refuses. */
const BAD_HOSTS = ['999.1.1.1', '-1.0.0.1', '127.0.2147483648.1'];

/** One request over a fresh raw connection, with exactly the Host given. */
async function raw(
  url: string,
  head: string,
  body: Uint8Array | string = '',
): Promise<RawResponse> {
  const conn = await connect(url);
  try {
    await conn.write(`${head}\r\n\r\n`);
    if (body.length > 0) await conn.write(body);
    return await conn.readResponse();
  } finally {
    conn.socket.destroy();
  }
}

function json(res: RawResponse): { key?: number; error?: { code: string; message: string } } {
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  return JSON.parse(res.body.toString('utf8'));
}

describe('haystack start: a Host header the URL parser refuses', () => {
  const cli = useCli();

  it.each(BAD_HOSTS)(
    'Host %s: POST and PUT answer what they did, never 500 after a commit',
    async (host) => {
      const server = await cli.start(await cli.tempDir());
      const { url } = server;

      const posted = await raw(
        url,
        `POST /file HTTP/1.1\r\nHost: ${host}\r\nContent-Type: text/plain\r\nContent-Length: 5`,
        'hello',
      );
      expect(posted.status, posted.body.toString()).toBe(201);
      const key = json(posted).key as number;
      expect(posted.headers.location).toBe(`/file/${key}`);
      await expectFile(url, { key, bytes: Buffer.from('hello'), contentType: 'text/plain' });

      const replaced = await raw(
        url,
        `PUT /file/${key} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 3`,
        'new',
      );
      expect(replaced.status, replaced.body.toString()).toBe(200);
      const newKey = json(replaced).key as number;
      expect(replaced.headers.location).toBe(`/file/${newKey}`);
      await expectFile(url, {
        key: newKey,
        bytes: Buffer.from('new'),
        contentType: 'application/octet-stream',
      });

      const unknown = await raw(url, `GET /no/such/path HTTP/1.1\r\nHost: ${host}`);
      expect(unknown.status).toBe(404);
      expect(json(unknown).error?.code).toBe('no_route');

      // Large and chunked bodies build a web Request from the URL: refused before anything is stored.
      const before = await getStatus(url);
      const large = randomBody(400_000);
      const streamed = await raw(
        url,
        `POST /file HTTP/1.1\r\nHost: ${host}\r\nContent-Length: ${large.byteLength}`,
        large,
      );
      expect(streamed.status).toBe(400);
      expect(json(streamed).error?.code).toBe('bad_request');
      const chunked = await raw(
        url,
        `PUT /file/${newKey} HTTP/1.1\r\nHost: ${host}\r\nTransfer-Encoding: chunked`,
        '5\r\nhello\r\n0\r\n\r\n',
      );
      expect(chunked.status).toBe(400);
      expect(json(chunked).error?.code).toBe('bad_request');
      expect(await getStatus(url)).toEqual(before);
      await expectFile(url, {
        key: newKey,
        bytes: Buffer.from('new'),
        contentType: 'application/octet-stream',
      });

      expect(loggedErrors(server.stdout())).toEqual([]);
      expect(server.stdout()).not.toMatch(/error while answering|TypeError/);
      expect((await cli.stop(server)).code).toBe(0);
    },
  );
});

describe('haystack start: stored HTML and SVG never act as pages of the store', () => {
  const cli = useCli();

  it('sandboxes every file, sends active types as attachments, and refuses a type that is not a media type', async () => {
    const server = await cli.start(await cli.tempDir());
    const { url } = server;
    const page = await postFile(url, text('<script>alert(1)</script>'), 'text/html; charset=utf-8');
    const svg = await postFile(
      url,
      text('<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'),
      'image/svg+xml',
    );
    const photo = await postFile(url, randomBody(100), 'image/jpeg');

    for (const file of [page, svg]) {
      const res = await fetch(`${url}/file/${file.key}`);
      expect(res.headers.get('content-security-policy')).toBe("sandbox; default-src 'none'");
      expect(res.headers.get('content-disposition')).toBe('attachment');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(file.bytes);
    }
    const image = await fetch(`${url}/file/${photo.key}`);
    expect(image.headers.get('content-security-policy')).toBe("sandbox; default-src 'none'");
    expect(image.headers.get('content-disposition')).toBeNull();
    await image.arrayBuffer();

    const before = await getStatus(url);
    const markup = await raw(
      url,
      'POST /file HTTP/1.1\r\nHost: x\r\nContent-Type: <script>alert(1)</script>\r\nContent-Length: 2',
      'hi',
    );
    expect(markup.status).toBe(400);
    expect(json(markup).error?.code).toBe('bad_request');
    // Two Content-Type headers reach the app joined by a comma: not one media type.
    const twoTypes = await raw(
      url,
      'POST /file HTTP/1.1\r\nHost: x\r\nContent-Type: text/html\r\nContent-Type: text/plain\r\nContent-Length: 2',
      'hi',
    );
    expect(twoTypes.status).toBe(400);
    expect(json(twoTypes).error?.code).toBe('bad_request');
    expect(await getStatus(url)).toEqual(before);
    expect((await cli.stop(server)).code).toBe(0);
  });

  it('--inline-active serves active types inline, still sandboxed', async () => {
    const server = await cli.start(await cli.tempDir(), ['--inline-active']);
    const page = await postFile(server.url, text('<p>hi</p>'), 'text/html');
    const res = await fetch(`${server.url}/file/${page.key}`);
    expect(res.headers.get('content-disposition')).toBeNull();
    expect(res.headers.get('content-security-policy')).toBe("sandbox; default-src 'none'");
    await res.arrayBuffer();
    expect((await cli.stop(server)).code).toBe(0);
  });
});

function text(value: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(value);
}
