import { Hono } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { describe, expect, it } from 'vitest';
import { createErrorHandler, HttpError } from '../../handlers/errors.ts';
import { createApp } from '../../handlers/index.ts';
import { StoreError } from '../../storage/index.ts';
import { expectError, setup } from './helpers.ts';

/** An app whose one route throws what it is given, answered by the app's error handler. */
function throwing(thrown: unknown) {
  const reported: unknown[] = [];
  const app = new Hono();
  app.onError(createErrorHandler((err) => reported.push(err)));
  app.get('/x', () => {
    throw thrown;
  });
  return { app, reported };
}

describe('the one error handler', () => {
  it('answers an HttpError with its code, message and headers, and reports nothing', async () => {
    const { app, reported } = throwing(
      new HttpError('range_not_satisfiable', 'outside', {
        headers: { 'Content-Range': 'bytes */3' },
      }),
    );
    const res = await app.request('/x');
    expect(await expectError(res, 416, 'range_not_satisfiable')).toBe('outside');
    expect(res.headers.get('content-range')).toBe('bytes */3');
    expect(reported).toEqual([]);
  });

  it('answers a StoreError with its code; a 5xx one is also reported', async () => {
    const corrupt = new StoreError('corrupt', 'needle 7 is damaged');
    const { app, reported } = throwing(corrupt);
    expect(await expectError(await app.request('/x'), 500, 'corrupt')).toBe('needle 7 is damaged');
    expect(reported).toEqual([corrupt]);
  });

  it("maps Hono's HTTPException to the JSON shape, keeping its challenge header", async () => {
    const res401 = new Response('go away', {
      status: 401,
      headers: { 'WWW-Authenticate': 'Bearer realm="x"' },
    });
    const { app, reported } = throwing(new HTTPException(401, { res: res401 }));
    const res = await app.request('/x');
    expect(await expectError(res, 401, 'unauthorized')).toBe('go away');
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="x"');

    const tooLarge = throwing(new HTTPException(413, { message: 'Payload Too Large' }));
    expect(await expectError(await tooLarge.app.request('/x'), 413, 'too_large')).toBe(
      'Payload Too Large',
    );
    expect(reported).toEqual([]);
  });

  it('answers an HTTPException of a status it has no code for, and any other error, with a generic 500 that is reported', async () => {
    const odd = new HTTPException(418, { message: 'teapot' });
    const bug = new TypeError('x is undefined');
    for (const thrown of [odd, bug]) {
      const { app, reported } = throwing(thrown);
      expect(await expectError(await app.request('/x'), 500, 'internal')).toBe(
        'internal server error',
      );
      expect(reported).toEqual([thrown]);
    }
  });
});

describe('the admin token', () => {
  const TOKEN = 'abcdefghijklmnop0123456789-._~+/=';

  it('takes any bearer token of RFC 6750 characters', async () => {
    const { app } = setup({ adminToken: TOKEN });
    const res = await app.request('/admin/volumes/1/readonly', {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    // Past the token: the memory store has no volumes.
    await expectError(res, 501, 'not_supported');
  });

  it.each(['with space', 'semi;colon', 'quote"d', 'bang!'])(
    'refuses %j at creation: no bearer header could carry it',
    (token) => {
      expect(() => setup({ adminToken: `${token}-0123456789abcdef` })).toThrow(RangeError);
    },
  );

  it('refuses a malformed Authorization header with 401, as a wrong token', async () => {
    const app = createApp({ store: setup().store, maxBody: 10, adminToken: TOKEN });
    for (const authorization of ['Bearer a b', 'Bearer "quoted"', 'Bearer   ', 'Bearer']) {
      const res = await app.request('/admin/compact', {
        method: 'POST',
        headers: { authorization },
      });
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer\b/);
      await expectError(res, 401, 'unauthorized');
    }
  });
});
