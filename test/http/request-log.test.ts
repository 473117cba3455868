import { Writable } from 'node:stream';
import { Hono } from 'hono';
import pino from 'pino';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryStore } from '../../adapters/memory/memory-store.ts';
import { createApp } from '../../handlers/index.ts';
import type { Logger } from '../../handlers/logger.ts';
import { type BlobStore, StoreError } from '../../storage/index.ts';
import { DelegatingStore } from '../support/delegating-store.ts';
import { expectError, MAX_BODY, upload } from './helpers.ts';
import { parseSamples, sampleValue } from './metrics-helpers.ts';

interface Line {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A logger that keeps every call. */
function capturingLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at =
    (level: Line['level']) =>
    (obj: object, msg?: string): void => {
      lines.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/** An id the app made: its process's prefix, a counter. */
const MADE_ID = /^[0-9a-v]{12}-[0-9a-z]+$/;

function setupLogged(store: BlobStore = createMemoryStore()) {
  const logger = capturingLogger();
  const app = createApp({ store, maxBody: MAX_BODY, logger });
  return { app, logger, store };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('the request log', () => {
  it('writes one line per request with its id, method, route, path, status, bytes and duration', async () => {
    const { app, logger } = setupLogged();
    const file = await upload(app, 'twelve bytes');
    const get = await app.request(`/file/${file.key}?x=1`);
    expect(await get.text()).toBe('twelve bytes');
    const missing = await app.request('/no/such/path');
    await missing.text();

    expect(logger.lines).toHaveLength(3);
    const [post, read, unmatched] = logger.lines as [Line, Line, Line];
    expect(post).toEqual({
      level: 'info',
      msg: 'request',
      obj: {
        reqId: expect.stringMatching(MADE_ID),
        method: 'POST',
        route: '/file',
        path: '/file',
        status: 201,
        bytes: expect.any(Number),
        received: 12,
        durationMs: expect.any(Number),
      },
    });
    expect(read.obj).toMatchObject({
      method: 'GET',
      route: '/file/{id}',
      path: `/file/${file.key}`,
      status: 200,
      bytes: 12,
      received: 0,
    });
    expect(read.obj.reqId).toBe(get.headers.get('x-request-id'));
    expect(read.obj.durationMs).toBeGreaterThanOrEqual(0);
    expect(unmatched.obj).toMatchObject({ route: 'unmatched', path: '/no/such/path', status: 404 });
    expect(unmatched.obj.reqId).toBe(missing.headers.get('x-request-id'));
    // Every request its own id.
    expect(new Set(logger.lines.map((line) => line.obj.reqId)).size).toBe(3);
  });

  it('logs a 5xx at error level with its cause, while the client sees only the generic message', async () => {
    const inner = createMemoryStore();
    const bug = new TypeError('secret detail of a bug');
    const store = new DelegatingStore(inner, { status: () => Promise.reject(bug) });
    const { app, logger } = setupLogged(store);
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {});
    const res = await app.request('/status', { headers: { 'x-request-id': 'trace-42' } });
    const message = await expectError(res, 500, 'internal');
    expect(message).toBe('internal server error');
    expect(res.headers.get('x-request-id')).toBe('trace-42');

    expect(logger.lines).toEqual([
      {
        level: 'error',
        msg: 'request',
        obj: expect.objectContaining({
          reqId: 'trace-42',
          route: '/status',
          status: 500,
          err: bug,
        }),
      },
    ]);
    // The log line is where the cause went: no warning besides.
    expect(warn).not.toHaveBeenCalled();
  });

  it('logs a store error answered 5xx (a corrupt needle) with its cause too', async () => {
    const inner = createMemoryStore();
    const corrupt = new StoreError('corrupt', 'the needle of key 1 is damaged');
    const store = new DelegatingStore(inner, { get: () => Promise.reject(corrupt) });
    const { app, logger } = setupLogged(store);
    await expectError(await app.request('/file/1'), 500, 'corrupt');
    expect(logger.lines).toHaveLength(1);
    expect(logger.lines[0]).toMatchObject({ level: 'error', obj: { status: 500, err: corrupt } });
  });

  it('at a level above info, builds no request line but still logs a 5xx', async () => {
    const inner = createMemoryStore();
    const bug = new TypeError('a bug');
    const store = new DelegatingStore(inner, { status: () => Promise.reject(bug) });
    const logger = Object.assign(capturingLogger(), {
      isLevelEnabled: (level: string) => level === 'warn' || level === 'error',
      request: vi.fn(),
    });
    const app = createApp({ store, maxBody: MAX_BODY, logger });
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/file', { method: 'POST', body: 'x' })).status).toBe(201);
    await expectError(await app.request('/status'), 500, 'internal');
    expect(logger.request).not.toHaveBeenCalled();
    expect(logger.lines).toEqual([
      { level: 'error', msg: 'request', obj: expect.objectContaining({ status: 500, err: bug }) },
    ]);
  });

  it('cuts a long path at 1024 characters', async () => {
    const { app, logger } = setupLogged();
    await app.request(`/${'a'.repeat(5000)}`);
    const [line] = logger.lines as [Line];
    expect(line.obj.path).toBe(`/${'a'.repeat(1023)}`);
  });

  it('goes on answering when the logger throws', async () => {
    const logger: Logger = {
      debug() {},
      info() {
        throw new Error('disk full');
      },
      warn() {},
      error() {
        throw new Error('disk full');
      },
    };
    const app = createApp({ store: createMemoryStore(), maxBody: MAX_BODY, logger });
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/file', { method: 'POST', body: 'x' })).status).toBe(201);
  });

  it("takes pino's logger as it is, and its lines carry time, level and the fields", async () => {
    const written: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        written.push(chunk.toString());
        done();
      },
    });
    const logger: Logger = pino({ level: 'info' }, sink);
    const app = createApp({ store: createMemoryStore(), maxBody: MAX_BODY, logger });
    const res = await app.request('/healthz', { headers: { 'X-Request-Id': 'abc' } });
    expect(res.status).toBe(200);
    const line = JSON.parse(written.join('').trim()) as Record<string, unknown>;
    expect(line).toMatchObject({
      level: 30,
      msg: 'request',
      reqId: 'abc',
      method: 'GET',
      route: '/healthz',
      path: '/healthz',
      status: 200,
    });
    expect(line.time).toEqual(expect.any(Number));
  });
});

describe('X-Request-Id', () => {
  it('is honoured when it is 1-200 visible ASCII characters', async () => {
    const { app, logger } = setupLogged();
    for (const id of ['a', 'req-1:2/3', '!~', 'x'.repeat(200)]) {
      const res = await app.request('/healthz', { headers: { 'x-request-id': id } });
      expect(res.headers.get('x-request-id')).toBe(id);
    }
    expect(logger.lines.map((line) => line.obj.reqId)).toEqual([
      'a',
      'req-1:2/3',
      '!~',
      'x'.repeat(200),
    ]);
  });

  it('is made when absent, and replaced when too long or not visible ASCII', async () => {
    const { app, logger } = setupLogged();
    const hostile = [
      'x'.repeat(201),
      'has space',
      'tab\there',
      'ctrl\u0001char',
      'del\u007f',
      'caf\u00e9',
    ];
    for (const id of [undefined, ...hostile]) {
      const headers: Record<string, string> = id === undefined ? {} : { 'x-request-id': id };
      const res = await app.request('/healthz', { headers });
      const answered = res.headers.get('x-request-id');
      expect(answered).toMatch(MADE_ID);
    }
    const logged = logger.lines.map((line) => line.obj.reqId as string);
    expect(logged).toHaveLength(hostile.length + 1);
    for (const id of logged) expect(id).toMatch(MADE_ID);
    expect(new Set(logged).size).toBe(logged.length);
  });

  it('is set on every kind of answer: a read, a 304, a HEAD, an error and a 405', async () => {
    const { app } = setupLogged();
    const file = await upload(app, 'content');
    const answers = [
      await app.request(`/file/${file.key}`),
      await app.request(`/file/${file.key}`, { headers: { 'if-none-match': file.etag } }),
      await app.request(`/file/${file.key}`, { method: 'HEAD' }),
      await app.request(`/file/${file.key}`, { headers: { range: 'bytes=0-2' } }),
      await app.request('/file/77'),
      await app.request('/status', { method: 'POST' }),
      await app.request('/metrics'),
    ];
    expect(answers.map((res) => res.status)).toEqual([200, 304, 200, 206, 404, 405, 200]);
    for (const res of answers) expect(res.headers.get('x-request-id')).toMatch(MADE_ID);
  });

  it('without a logger, is echoed when the client sent one and not made up otherwise', async () => {
    const app = createApp({ store: createMemoryStore(), maxBody: MAX_BODY });
    const echoed = await app.request('/healthz', { headers: { 'x-request-id': 'from-lb' } });
    expect(echoed.headers.get('x-request-id')).toBe('from-lb');
    expect((await app.request('/healthz')).headers.get('x-request-id')).toBeNull();
    const hostile = await app.request('/healthz', { headers: { 'x-request-id': 'a b' } });
    expect(hostile.headers.get('x-request-id')).toBeNull();
  });
});

describe('mounted in a parent app', () => {
  it('shares the parent registry and logger; with operatingRoutes false the routes are left out', async () => {
    const registry = new Registry();
    const logger = capturingLogger();
    const store = createMemoryStore();
    const child = createApp({ store, maxBody: MAX_BODY, registry, logger, operatingRoutes: false });
    // Standalone, the operating routes are not there.
    for (const path of ['/metrics', '/healthz', '/readyz']) {
      await expectError(await child.request(path), 404, 'no_route');
    }
    const parent = new Hono();
    parent.get('/metrics', async (c) => c.text(await registry.metrics()));
    parent.route('/media', child);

    expect((await parent.request('/media/file', { method: 'POST', body: 'hey' })).status).toBe(201);
    expect((await parent.request('/media/file/1')).status).toBe(200);
    const routed = logger.lines.map((line) => [line.obj.route, line.obj.path, line.obj.status]);
    expect(routed).toEqual([
      ['unmatched', '/metrics', 404],
      ['unmatched', '/healthz', 404],
      ['unmatched', '/readyz', 404],
      // Route patterns are the app's own; the path is the whole one, mount prefix included.
      ['/file', '/media/file', 201],
      ['/file/{id}', '/media/file/1', 200],
    ]);

    const samples = parseSamples(await (await parent.request('/metrics')).text());
    const total = 'haystack_http_requests_total';
    expect(sampleValue(samples, total, { route: '/file/{id}', method: 'GET', status: '200' })).toBe(
      1,
    );
    expect(sampleValue(samples, total, { route: '/file', method: 'POST', status: '201' })).toBe(1);
  });
});
