import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { connect, type RawResponse } from '../support/raw-http.ts';

/** What every error must look like, including those that never reach the app. */
function expectJsonError(answer: RawResponse, status: number, code: string): void {
  const text = answer.body.toString();
  expect(answer.status, text).toBe(status);
  expect(answer.headers['content-type']).toMatch(/^application\/json/);
  expect(answer.headers.connection).toBe('close');
  const json = JSON.parse(text) as { error: { code: string; message: string } };
  expect(json.error.code).toBe(code);
  expect(json.error.message).toEqual(expect.any(String));
}

/** Sends `bytes` on a fresh connection and reads the one answer, then the connection's end. */
async function answerTo(url: string, bytes: string): Promise<RawResponse> {
  const connection = await connect(url);
  await connection.write(bytes);
  const answer = await connection.readResponse();
  await connection.closed;
  return answer;
}

describe('haystack start: requests the app never sees', () => {
  const cli = useCli();

  it('a body longer than its Content-Length: the file is answered 201 first, then the extra bytes get their 400', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const connection = await connect(server.url);
    await connection.write(
      'POST /file HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n',
    );
    const stored = await connection.readResponse();
    expect(stored.status, stored.body.toString()).toBe(201);
    const { key } = JSON.parse(stored.body.toString()) as { key: number };
    expectJsonError(await connection.readResponse(), 400, 'bad_request');
    await connection.closed;

    const read = await fetch(`${server.url}/file/${key}`);
    expect(read.status).toBe(200);
    expect(await read.text()).toBe('he');
  });

  it('answers parse errors and oversized headers in JSON, and closes', async () => {
    const dir = await cli.tempDir();
    const { url } = await cli.start(dir);
    expectJsonError(await answerTo(url, 'NOT HTTP AT ALL\r\n\r\n'), 400, 'bad_request');
    expectJsonError(
      await answerTo(url, 'GET /status HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'),
      400,
      'bad_request',
    );
    const big = 'a'.repeat(20 * 1024);
    expectJsonError(
      await answerTo(url, `GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ${big}\r\n\r\n`),
      431,
      'headers_too_large',
    );
    expectJsonError(
      await answerTo(url, `GET /status?${big} HTTP/1.1\r\nHost: x\r\n\r\n`),
      431,
      'headers_too_large',
    );
  });

  it('serves HTTP/1.0 without Host; HTTP/1.1 without Host is a JSON 400', async () => {
    const dir = await cli.tempDir();
    const { url } = await cli.start(dir);
    const old = await answerTo(url, 'GET /status HTTP/1.0\r\n\r\n');
    expect(old.status, old.body.toString()).toBe(200);
    expect(JSON.parse(old.body.toString())).toMatchObject({ liveNeedles: 0 });

    const stored = await answerTo(
      url,
      'POST /file HTTP/1.0\r\nContent-Type: text/plain\r\nContent-Length: 3\r\n\r\nabc',
    );
    expect(stored.status, stored.body.toString()).toBe(201);
    const { key } = JSON.parse(stored.body.toString()) as { key: number };
    expect(stored.headers.location).toBe(`/file/${key}`);

    expectJsonError(await answerTo(url, 'GET /status HTTP/1.1\r\n\r\n'), 400, 'bad_request');
  });

  it('a connection that sends no complete header block gets a JSON 408 after --headers-timeout', async () => {
    const dir = await cli.tempDir();
    const { url } = await cli.start(dir, ['--headers-timeout', '500ms']);
    const silent = await connect(url);
    const partial = await connect(url);
    await partial.write('GET /status HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    for (const connection of [silent, partial]) {
      expectJsonError(await connection.readResponse(), 408, 'request_timeout');
      await connection.closed;
    }
  });
});
