import { readFile } from 'node:fs/promises';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { Hono } from 'hono';
import * as v from 'valibot';
import { describe, expect, it } from 'vitest';
import { createMemoryStore, type MemoryStoreOptions } from '../../adapters/memory/memory-store.ts';
import { volumeIdText } from '../../handlers/admin-routes.ts';
import { createApp } from '../../handlers/index.ts';
import { openApiDocument } from '../../handlers/openapi.ts';
import { parseContentLength, parseContentType, parseFileId } from '../../handlers/schemas.ts';
import {
  type BlobStore,
  MAX_CONTENT_TYPE_LENGTH,
  MAX_KEY,
  StoreError,
  type StoreErrorCode,
} from '../../storage/index.ts';
import { DelegatingStore, type StoreMethod } from '../support/delegating-store.ts';
import { connect } from '../support/raw-http.ts';
import { useVolumeStores } from '../support/volume-stores.ts';
import { listen, MAX_BODY } from './helpers.ts';

/**
 * `/openapi.json` against the app: the document is valid OpenAPI 3.1, and every operation in it
 * has cases here that make real requests for each status it documents; each answer's status,
 * headers, media type and JSON body are checked against what the document says. An operation
 * the document gains without a case here, or a case for something it does not document, fails.
 */

const TOKEN = 'openapi-test-token';
const AUTH = { Authorization: `Bearer ${TOKEN}` };

type HonoApp = ReturnType<typeof createApp>;
/** Where a case sends its requests: the app itself, or a parent app it is mounted in. */
interface App {
  request(url: string, init?: RequestInit): Response | Promise<Response>;
}
type Json = { [name: string]: unknown };
interface Answer {
  description: string;
  headers?: Record<string, { required?: boolean }>;
  content?: Record<string, { schema?: Json }>;
}
interface Operation {
  operationId: string;
  responses: Record<string, Answer>;
}
interface OpenApi {
  openapi: string;
  info: { version: string };
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation | Json[]>>;
  components: { schemas: Record<string, Json>; securitySchemes?: Json };
}

const appOver = (store: BlobStore): HonoApp =>
  createApp({ store, maxBody: MAX_BODY, adminToken: TOKEN, onUnexpectedError: () => {} });

const probe = appOver(createMemoryStore());
const served = await probe.request('/openapi.json');
const document = (await served.json()) as OpenApi;

/** Where the tests mount the app in a parent, as the README's program does. */
const MOUNT = '/media';

/** A parent app with `app` mounted at `at`, the way createApp is meant to be mounted. */
function mountedIn(app: HonoApp, at = MOUNT): Hono {
  const parent = new Hono();
  parent.route(at, app);
  return parent;
}

const mountedServed = await mountedIn(appOver(createMemoryStore())).request(
  `${MOUNT}/openapi.json`,
);
const mountedDocument = (await mountedServed.json()) as OpenApi;
/** Where the mounted document says its paths are. */
const serverUrl = mountedDocument.servers?.[0]?.url ?? '';

/**
 * Whether the app has a route at `path`: the operating routes built beside this one (metrics,
 * health, readiness, the page) are documented already, and their cases run once they exist.
 */
async function routeExists(path: string): Promise<boolean> {
  const res = await probe.request(path);
  if (res.status !== 404) return true;
  const body = (await res.json()) as { error: { code: string } };
  return body.error.code !== 'no_route';
}

const OPERATING_PATHS = ['/metrics', '/healthz', '/readyz', '/ui'];
const routeMissing = new Map<string, boolean>();
for (const path of OPERATING_PATHS) routeMissing.set(path, !(await routeExists(path)));

const METHODS = ['GET', 'HEAD', 'PUT', 'POST', 'DELETE', 'OPTIONS', 'PATCH'] as const;

/** Each documented path: the methods the app takes there, and a URL that reaches it. */
const PATHS: Record<string, { allow: string[]; url: string; admin?: true }> = {
  '/file': { allow: ['POST'], url: '/file' },
  '/file/{id}': { allow: ['GET', 'HEAD', 'PUT', 'DELETE'], url: '/file/1' },
  '/sync': { allow: ['DELETE'], url: '/sync' },
  '/status': { allow: ['GET', 'HEAD'], url: '/status' },
  '/metrics': { allow: ['GET', 'HEAD'], url: '/metrics' },
  '/healthz': { allow: ['GET', 'HEAD'], url: '/healthz' },
  '/readyz': { allow: ['GET', 'HEAD'], url: '/readyz' },
  '/openapi.json': { allow: ['GET', 'HEAD'], url: '/openapi.json' },
  '/ui': { allow: ['GET', 'HEAD'], url: '/ui' },
  '/admin/compact': { allow: ['POST'], url: '/admin/compact', admin: true },
  '/admin/volumes/{id}/readonly': {
    allow: ['POST'],
    url: '/admin/volumes/1/readonly',
    admin: true,
  },
};

/** What a case may use: apps over fresh stores, each its own. */
interface Tools {
  /** An app over a new volume store. */
  volumeApp(): Promise<App>;
  memoryApp(options?: MemoryStoreOptions): App;
  /** An app over a volume store whose `method` rejects with `code`. */
  failing(method: StoreMethod, code: StoreErrorCode): Promise<App>;
  /** An app over a volume store that was closed. */
  closedApp(): Promise<App>;
  /** POSTs three bytes: the stored file's key and ETag. */
  stored(app: App): Promise<{ key: number; etag: string }>;
}

interface Case {
  /** `METHOD /path` as the document names the operation. */
  operation: string;
  status: number;
  name: string;
  run: (tools: Tools) => Promise<Response>;
}

const cases: Case[] = [];
function on(operation: string, status: number, name: string, run: Case['run']): void {
  cases.push({ operation, status, name, run });
}

const send = (app: App, method: string, url: string, init: RequestInit = {}) =>
  app.request(url, { ...init, method });
const bytes = (length: number) => new Uint8Array(length).fill(7);

// POST /file
on('POST /file', 201, 'stored', async (t) =>
  send(await t.volumeApp(), 'POST', '/file', {
    body: 'png!',
    headers: { 'Content-Type': 'image/png' },
  }),
);
on('POST /file', 400, 'a Content-Type that is no media type', async (t) =>
  send(await t.volumeApp(), 'POST', '/file', {
    body: 'x',
    headers: { 'Content-Type': '<b>' },
  }),
);
on('POST /file', 403, 'a read-only store', async (t) =>
  send(t.memoryApp({ readOnly: true }), 'POST', '/file', { body: 'x' }),
);
on('POST /file', 413, 'over the limit', async (t) =>
  send(await t.volumeApp(), 'POST', '/file', { body: bytes(MAX_BODY + 1) }),
);
on('POST /file', 500, 'a failing disk', async (t) =>
  send(await t.failing('put', 'io_error'), 'POST', '/file', { body: 'x' }),
);
on('POST /file', 503, 'a closed store', async (t) =>
  send(await t.closedApp(), 'POST', '/file', { body: 'x' }),
);
on('POST /file', 507, 'a full disk', async (t) =>
  send(await t.failing('put', 'no_space'), 'POST', '/file', { body: 'x' }),
);

// GET and HEAD /file/{id}
for (const method of ['GET', 'HEAD']) {
  const op = `${method} /file/{id}`;
  on(op, 200, 'by key', async (t) => {
    const app = await t.volumeApp();
    const { key } = await t.stored(app);
    return send(app, method, `/file/${key}`);
  });
  on(op, 304, 'If-None-Match with its ETag', async (t) => {
    const app = await t.volumeApp();
    const { key, etag } = await t.stored(app);
    return send(app, method, `/file/${key}`, { headers: { 'If-None-Match': etag } });
  });
  on(op, 400, 'a key with a leading zero', async (t) =>
    send(await t.volumeApp(), method, '/file/007'),
  );
  on(op, 404, 'no such key', async (t) => send(await t.volumeApp(), method, '/file/999'));
  on(op, 500, 'corrupt bytes', async (t) =>
    send(await t.failing(method === 'GET' ? 'get' : 'head', 'corrupt'), method, '/file/1'),
  );
  on(op, 503, 'a closed store', async (t) => send(await t.closedApp(), method, '/file/1'));
}
on('GET /file/{id}', 206, 'a range', async (t) => {
  const app = await t.volumeApp();
  const { key } = await t.stored(app);
  return send(app, 'GET', `/file/${key}`, { headers: { Range: 'bytes=0-1' } });
});
on('GET /file/{id}', 416, 'a range past the end', async (t) => {
  const app = await t.volumeApp();
  const { key } = await t.stored(app);
  return send(app, 'GET', `/file/${key}`, { headers: { Range: 'bytes=100-' } });
});

// PUT /file/{id}
on('PUT /file/{id}', 200, 'replaced', async (t) => {
  const app = await t.volumeApp();
  const { key } = await t.stored(app);
  return send(app, 'PUT', `/file/${key}`, { body: 'new' });
});
on('PUT /file/{id}', 400, 'a bad key', async (t) =>
  send(await t.volumeApp(), 'PUT', '/file/0x1', { body: 'x' }),
);
on('PUT /file/{id}', 403, 'a read-only store', async (t) =>
  send(await t.failing('replace', 'read_only'), 'PUT', '/file/1', { body: 'x' }),
);
on('PUT /file/{id}', 404, 'no such key', async (t) =>
  send(await t.volumeApp(), 'PUT', '/file/999', { body: 'x' }),
);
on('PUT /file/{id}', 413, 'over the limit', async (t) => {
  const app = await t.volumeApp();
  const { key } = await t.stored(app);
  return send(app, 'PUT', `/file/${key}`, { body: bytes(MAX_BODY + 1) });
});
on('PUT /file/{id}', 500, 'a failing disk', async (t) =>
  send(await t.failing('replace', 'io_error'), 'PUT', '/file/1', { body: 'x' }),
);
on('PUT /file/{id}', 503, 'a closed store', async (t) =>
  send(await t.closedApp(), 'PUT', '/file/1', { body: 'x' }),
);
on('PUT /file/{id}', 507, 'a full disk', async (t) =>
  send(await t.failing('replace', 'no_space'), 'PUT', '/file/1', { body: 'x' }),
);

// DELETE /file/{id}
on('DELETE /file/{id}', 200, 'deleted', async (t) => {
  const app = await t.volumeApp();
  const { key } = await t.stored(app);
  return send(app, 'DELETE', `/file/${key}`);
});
on('DELETE /file/{id}', 400, 'a bad file id', async (t) =>
  send(await t.volumeApp(), 'DELETE', '/file/1,xyz'),
);
on('DELETE /file/{id}', 403, 'a read-only store', async (t) =>
  send(await t.failing('delete', 'read_only'), 'DELETE', '/file/1'),
);
on('DELETE /file/{id}', 404, 'no such key', async (t) =>
  send(await t.volumeApp(), 'DELETE', '/file/999'),
);
on('DELETE /file/{id}', 500, 'a failing disk', async (t) =>
  send(await t.failing('delete', 'io_error'), 'DELETE', '/file/1'),
);
on('DELETE /file/{id}', 503, 'a closed store', async (t) =>
  send(await t.closedApp(), 'DELETE', '/file/1'),
);
on('DELETE /file/{id}', 507, 'a full disk', async (t) =>
  send(await t.failing('delete', 'no_space'), 'DELETE', '/file/1'),
);

// DELETE /sync
on('DELETE /sync', 200, 'synced', async (t) => {
  const app = await t.volumeApp();
  await t.stored(app);
  return send(app, 'DELETE', '/sync');
});
on('DELETE /sync', 500, 'a failing disk', async (t) =>
  send(await t.failing('sync', 'io_error'), 'DELETE', '/sync'),
);
on('DELETE /sync', 503, 'a closed store', async (t) =>
  send(await t.closedApp(), 'DELETE', '/sync'),
);

// GET and HEAD for the store's status and the operating routes
for (const method of ['GET', 'HEAD']) {
  on(`${method} /status`, 200, 'a volume store with a file', async (t) => {
    const app = await t.volumeApp();
    await t.stored(app);
    return send(app, method, '/status');
  });
  on(`${method} /status`, 500, 'a failing disk', async (t) =>
    send(await t.failing('status', 'io_error'), method, '/status'),
  );
  on(`${method} /status`, 503, 'a closed store', async (t) =>
    send(await t.closedApp(), method, '/status'),
  );
  on(`${method} /metrics`, 200, 'scraped', async (t) => {
    const app = await t.volumeApp();
    await t.stored(app);
    return send(app, method, '/metrics');
  });
  on(`${method} /healthz`, 200, 'serving', async (t) => send(t.memoryApp(), method, '/healthz'));
  on(`${method} /readyz`, 200, 'takes writes', async (t) =>
    send(await t.volumeApp(), method, '/readyz'),
  );
  on(`${method} /readyz`, 503, 'a read-only store', async (t) =>
    send(t.memoryApp({ readOnly: true }), method, '/readyz'),
  );
  on(`${method} /openapi.json`, 200, 'the document', async (t) =>
    send(t.memoryApp(), method, '/openapi.json'),
  );
  on(`${method} /ui`, 200, 'the page', async (t) => send(await t.volumeApp(), method, '/ui'));
}

// POST /admin/compact
const admin = (app: App, url: string, init: RequestInit = {}) =>
  send(app, 'POST', url, { ...init, headers: { ...AUTH, ...init.headers } });
on('POST /admin/compact', 200, 'a volume with garbage', async (t) => {
  const app = await t.volumeApp();
  const { key } = await t.stored(app);
  await t.stored(app);
  expect((await send(app, 'DELETE', `/file/${key}`)).status).toBe(200);
  return admin(app, '/admin/compact');
});
on('POST /admin/compact', 400, 'a body of unknown fields', async (t) =>
  admin(await t.volumeApp(), '/admin/compact', { body: '{"volumes": 1}' }),
);
on('POST /admin/compact', 401, 'no token', async (t) =>
  send(await t.volumeApp(), 'POST', '/admin/compact'),
);
on('POST /admin/compact', 404, 'no such volume', async (t) =>
  admin(await t.volumeApp(), '/admin/compact?volume=99'),
);
on('POST /admin/compact', 500, 'a failing disk', async (t) =>
  admin(await t.failing('compact', 'io_error'), '/admin/compact'),
);
on('POST /admin/compact', 501, 'a store without volumes', async (t) =>
  admin(t.memoryApp(), '/admin/compact'),
);
on('POST /admin/compact', 503, 'a closed store', async (t) =>
  admin(await t.closedApp(), '/admin/compact'),
);

// POST /admin/volumes/{id}/readonly
const READONLY = 'POST /admin/volumes/{id}/readonly';
on(READONLY, 200, 'marked', async (t) => admin(await t.volumeApp(), '/admin/volumes/1/readonly'));
on(READONLY, 400, 'a bad volume id', async (t) =>
  admin(await t.volumeApp(), '/admin/volumes/01/readonly'),
);
on(READONLY, 401, 'a wrong token', async (t) =>
  send(await t.volumeApp(), 'POST', '/admin/volumes/1/readonly', {
    headers: { Authorization: 'Bearer not-the-token' },
  }),
);
on(READONLY, 403, 'a read-only store', async (t) =>
  admin(await t.failing('setVolumeReadOnly', 'read_only'), '/admin/volumes/1/readonly'),
);
on(READONLY, 404, 'no such volume', async (t) =>
  admin(await t.volumeApp(), '/admin/volumes/99/readonly'),
);
on(READONLY, 500, 'a failing disk', async (t) =>
  admin(await t.failing('setVolumeReadOnly', 'io_error'), '/admin/volumes/1/readonly'),
);
on(READONLY, 501, 'a store without volumes', async (t) =>
  admin(t.memoryApp(), '/admin/volumes/1/readonly'),
);
on(READONLY, 503, 'a closed store', async (t) =>
  admin(await t.closedApp(), '/admin/volumes/1/readonly'),
);

// Every method a path does not take: 405 (behind the token on admin paths).
for (const [path, { allow, url, admin: guarded }] of Object.entries(PATHS)) {
  for (const method of METHODS.filter((m) => !allow.includes(m))) {
    on(`${method} ${path}`, 405, `Allow: ${allow.join(', ')}`, async (t) =>
      send(t.memoryApp(), method, url, guarded ? { headers: AUTH } : {}),
    );
    if (guarded) {
      on(`${method} ${path}`, 401, 'no token', async (t) => send(t.memoryApp(), method, url));
    }
  }
}

/** The document's operations, as `METHOD /path`. */
function documentedOperations(doc: OpenApi): Map<string, Operation> {
  const operations = new Map<string, Operation>();
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      if (method !== 'parameters')
        operations.set(`${method.toUpperCase()} ${path}`, op as Operation);
    }
  }
  return operations;
}

const operations = documentedOperations(document);

const DOC_ID = 'https://haystack.invalid/openapi.json';
const ajv = new Ajv2020.default({ strict: true, allErrors: true });
// Only the schemas are compiled; the rest of the document is where they are found.
ajv.addKeyword('paths');
ajv.addKeyword('components');
ajv.addSchema({ $id: DOC_ID, paths: document.paths, components: document.components });

/** The document's schema for the JSON answer of `operation` under `status`, compiled. */
function answerValidator(operation: string, status: number) {
  const [method = '', path = ''] = operation.split(' ');
  const pointer = ['paths', path, method.toLowerCase(), 'responses', String(status)]
    .concat(['content', 'application/json', 'schema'])
    .map((part) => part.replaceAll('~', '~0').replaceAll('/', '~1'))
    .join('/');
  return ajv.compile({ $ref: `${DOC_ID}#/${pointer}` });
}

const essence = (type: string | null) => (type ?? '').split(';')[0]?.trim().toLowerCase() ?? '';

/** Checks an answer against what the document says of its operation and status. */
async function expectDocumented({ operation, status }: Case, res: Response): Promise<void> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  const answer = operations.get(operation)?.responses[String(status)];
  if (answer === undefined) throw new Error(`${operation} documents no ${status}`);
  for (const [name, header] of Object.entries(answer.headers ?? {})) {
    if (header.required) expect(res.headers.get(name), `header ${name}`).not.toBeNull();
  }
  const types = Object.keys(answer.content ?? {});
  if (operation.startsWith('HEAD ') || types.length === 0) {
    expect(text).toBe('');
    return;
  }
  const type = essence(res.headers.get('content-type'));
  expect(types.includes(type) || types.includes('*/*'), `${type} is one of ${types}`).toBe(true);
  if (type === 'application/json') {
    const validate = answerValidator(operation, status);
    const body: unknown = JSON.parse(text);
    expect(validate(body), JSON.stringify(validate.errors)).toBe(true);
    // The 500s here are injected store failures: `internal` would be a bug on the way.
    expect(body).not.toMatchObject({ error: { code: 'internal' } });
  }
}

/** `doc` passes an OpenAPI 3.1 validator, with nothing to say. */
async function expectOpenApi31(doc: OpenApi): Promise<void> {
  const validator = new Validator();
  const result = await validator.validate(doc as unknown as Json);
  expect(result.errors ?? []).toEqual([]);
  expect(result.valid).toBe(true);
  expect(validator.version).toBe('3.1');
}

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toMatch(/^application\/json/);
    await expectOpenApi31(document);
  });

  it("carries the package's version", async () => {
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    expect(document.info.version).toBe(pkg.version);
  });

  it('documents the admin routes and their bearer auth only when the app has a token', async () => {
    const res = await createApp({ store: createMemoryStore(), maxBody: MAX_BODY }).request(
      '/openapi.json',
    );
    const plain = (await res.json()) as OpenApi;
    await expectOpenApi31(plain);
    expect(Object.keys(plain.paths).filter((p) => p.startsWith('/admin'))).toEqual([]);
    expect(plain.components.securitySchemes).toBeUndefined();
    expect(
      Object.keys(document.paths)
        .filter((p) => p.startsWith('/admin'))
        .sort(),
    ).toEqual(['/admin/compact', '/admin/volumes/{id}/readonly']);
    expect(document.components.securitySchemes).toEqual({
      adminToken: expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    });
  });

  it('documents exactly the paths the app has, each with every method', () => {
    expect(Object.keys(document.paths).sort()).toEqual(Object.keys(PATHS).sort());
    for (const [path, item] of Object.entries(document.paths)) {
      expect(
        Object.keys(item)
          .filter((k) => k !== 'parameters')
          .map((m) => m.toUpperCase()),
      ).toEqual(expect.arrayContaining([...METHODS]));
      for (const method of PATHS[path]?.allow ?? []) {
        expect((item[method.toLowerCase()] as Operation).responses).not.toHaveProperty('405');
      }
    }
  });

  it('has a case for every status of every operation, and none for what it does not document', () => {
    const covered = new Set(cases.map(({ operation, status }) => `${operation} ${status}`));
    const documented = new Set<string>();
    for (const [operation, op] of operations) {
      for (const status of Object.keys(op.responses)) documented.add(`${operation} ${status}`);
    }
    expect([...documented].filter((entry) => !covered.has(entry))).toEqual([]);
    expect([...covered].filter((entry) => !documented.has(entry))).toEqual([]);
  });
});

describe('mounted in a parent app', () => {
  /** The document a request for `url` gets from `parent`, with its answer. */
  const documentAt = async (parent: Hono, url: string, init?: RequestInit) => {
    const res = await parent.request(url, init);
    const text = await res.text();
    expect(res.status, text).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBe(Buffer.byteLength(text));
    return JSON.parse(text) as OpenApi;
  };
  const serversAt = async (parent: Hono, url: string, init?: RequestInit) =>
    (await documentAt(parent, url, init)).servers;
  const appOverMemory = () => appOver(createMemoryStore());

  it('names the mount as its server; paths and schemas are those of the app unmounted', async () => {
    expect(mountedServed.status).toBe(200);
    expect(serverUrl).toBe(MOUNT);
    expect(mountedDocument.servers).toEqual([{ url: MOUNT }]);
    const { servers: _, ...rest } = mountedDocument;
    expect(rest).toEqual(document);
    expect(mountedDocument).toEqual(
      openApiDocument({ version: document.info.version, admin: true, prefix: MOUNT }),
    );
    await expectOpenApi31(mountedDocument);
  });

  it('has no servers unmounted or mounted at the root, which OpenAPI reads as /', async () => {
    expect(document).not.toHaveProperty('servers');
    expect(await serversAt(mountedIn(appOverMemory(), '/'), '/openapi.json')).toBeUndefined();
  });

  it("answers every documented path under the server URL, and none at the parent's root", async () => {
    const parent = mountedIn(appOverMemory());
    for (const [path, { allow, url, admin }] of Object.entries(PATHS)) {
      const init = { method: allow[0] ?? 'GET', headers: admin ? AUTH : {} };
      const under = await parent.request(`${serverUrl}${url}`, init);
      // Only the parent's notFound answers plain text: every answer of the app's is JSON or a file.
      expect(await under.text(), `${path} under ${serverUrl}`).not.toBe('404 Not Found');
      const root = await parent.request(url, init);
      expect(root.status, `${path} at the root`).toBe(404);
      expect(await root.text()).toBe('404 Not Found');
    }
  });

  it('tells the mount as the route has it, however the request spells its path', async () => {
    const parent = mountedIn(appOverMemory());
    for (const url of [
      '/media/openapi.json?prefix=//evil.example',
      '/%6Dedia/openapi.json',
      '/media/openapi%2Ejson',
    ]) {
      expect(await serversAt(parent, url), url).toEqual([{ url: '/media' }]);
    }
    const nested = new Hono().basePath('/api');
    nested.route('/media/', appOverMemory());
    expect(await serversAt(nested, '/api/media/openapi.json')).toEqual([{ url: '/api/media' }]);
    const lenient = new Hono({ strict: false });
    lenient.route('/media', appOverMemory());
    expect(await serversAt(lenient, '/media/openapi.json/')).toEqual([{ url: '/media' }]);
  });

  it('over a real server, takes nothing from the Host or forwarding headers; HEAD has the length', async () => {
    const server = await listen(mountedIn(appOverMemory()).fetch);
    try {
      const connection = await connect(server.base);
      await connection.write(
        'GET /media/openapi.json HTTP/1.1\r\nHost: evil.example\r\n' +
          'X-Forwarded-Host: evil.example\r\nX-Forwarded-Prefix: /evil\r\nConnection: close\r\n\r\n',
      );
      const { status, headers, body } = await connection.readResponse();
      expect(status).toBe(200);
      expect(body.toString()).not.toContain('evil');
      expect((JSON.parse(body.toString()) as OpenApi).servers).toEqual([{ url: MOUNT }]);
      expect(Number(headers['content-length'])).toBe(body.byteLength);
      const head = await fetch(`${server.base}${MOUNT}/openapi.json`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(body.byteLength));
      expect(await head.text()).toBe('');
    } finally {
      await server.close();
    }
  });

  describe('under a mount the client can vary', () => {
    /** The server URL resolves on the origin the document came from, and reaches the app there. */
    const expectReachable = async (parent: Hono, url: string) => {
      expect(url).toMatch(/^\/(?!\/)/);
      const status = new URL(`${url}/status`, 'https://store.example/');
      expect(status.origin).toBe('https://store.example');
      const res = await parent.request(`${status.pathname}${status.search}`);
      expect(res.status, `${url}/status`).toBe(200);
      expect(await res.json()).toMatchObject({ volumes: expect.any(Array) });
    };

    it("gives each request its own tenant's prefix, keeping none", async () => {
      const parent = mountedIn(appOverMemory(), '/:tenant');
      // Interleaved, twice over: a document kept for one prefix would show under another.
      const tenants = Array.from({ length: 50 }, (_, i) => `tenant-${i}`);
      for (const round of [1, 2]) {
        for (const tenant of tenants) {
          expect(await serversAt(parent, `/${tenant}/openapi.json`), `round ${round}`).toEqual([
            { url: `/${tenant}` },
          ]);
        }
      }
      await expectReachable(parent, '/tenant-7');
    });

    it('keeps a hostile prefix to a same-origin path that leads back to the app', async () => {
      const parent = mountedIn(appOverMemory(), '/:tenant');
      // What the request's path is, and the server URL it must give.
      const spellings: [string, string][] = [
        ['/caf%C3%A9%20x', '/caf%C3%A9%20x'],
        ['/café x', '/caf%C3%A9%20x'],
        ['/a"b', '/a%22b'],
        ['/<script>', '/%3Cscript%3E'],
        ["/x'y", "/x'y"],
        ['/%5Cevil.example', '/%5Cevil.example'],
        ['/a%2Fb', '/a%2Fb'],
        ['/100%25', '/100%25'],
      ];
      for (const [sent, expected] of spellings) {
        const doc = await documentAt(parent, `${sent}/openapi.json`);
        expect(doc.servers, sent).toEqual([{ url: expected }]);
        expect(doc.paths).toEqual(document.paths);
        await expectReachable(parent, expected);
      }
    });

    it('writes a prefix that begins with // so that it cannot name another host', async () => {
      const parent = mountedIn(appOverMemory(), '/:tenant{.+}');
      const servers = await serversAt(parent, '//evil.example/openapi.json');
      expect(servers).toEqual([{ url: '/.//evil.example' }]);
      await expectReachable(parent, '/.//evil.example');
    });
  });
});

/**
 * How a case's app is reached: itself, and mounted in a parent at `MOUNT`, where each request
 * goes to the mounted document's server URL followed by the path the unmounted one documents
 * (the two documents' paths and schemas are the same: see "mounted in a parent app").
 */
const reaches: { name: string; reach: (app: HonoApp) => App }[] = [
  { name: 'the app', reach: (app) => app },
  {
    name: `mounted at ${MOUNT}, at the document's servers URL`,
    reach: (app) => {
      const parent = mountedIn(app);
      return { request: (url, init) => parent.request(`${serverUrl}${url}`, init) };
    },
  },
];

describe('every documented answer, from a real request', () => {
  const volumes = useVolumeStores('haystack-openapi-');

  for (const { name, reach } of reaches) {
    describe(name, () => {
      const over = (store: BlobStore) => reach(appOver(store));
      const tools: Tools = {
        volumeApp: async () => over(await volumes.open()),
        memoryApp: (options) => over(createMemoryStore(options)),
        failing: async (method, code) =>
          over(
            new DelegatingStore(await volumes.open(), {
              before: (called) => {
                if (called === method) throw new StoreError(code, `injected ${code}`);
              },
            }),
          ),
        closedApp: async () => {
          const store = await volumes.open();
          await store.close();
          return over(store);
        },
        stored: async (app) => {
          const res = await send(app, 'POST', '/file', { body: 'abc' });
          expect(res.status).toBe(201);
          return (await res.json()) as { key: number; etag: string };
        },
      };

      for (const c of cases) {
        const path = c.operation.split(' ')[1] ?? '';
        it.skipIf(routeMissing.get(path) === true)(
          `${c.operation} ${c.status}: ${c.name}`,
          async () => {
            const res = await c.run(tools);
            await expectDocumented(c, res);
            if (c.status === 405) {
              const allowed = PATHS[path]?.allow ?? [];
              expect(res.headers.get('allow')?.split(/,\s*/).sort()).toEqual([...allowed].sort());
            }
          },
        );
      }
    });
  }

  it('serves the same document over a real server, and HEAD without it', async () => {
    const server = await listen(appOver(createMemoryStore()).fetch);
    try {
      const res = await fetch(`${server.base}/openapi.json`);
      expect(res.headers.get('content-type')).toMatch(/^application\/json/);
      expect(await res.json()).toEqual(document);
      const length = res.headers.get('content-length');
      expect(Number(length)).toBe(Buffer.byteLength(JSON.stringify(document)));
      const head = await fetch(`${server.base}/openapi.json`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-type')).toMatch(/^application\/json/);
      expect(head.headers.get('content-length')).toBe(length);
      expect(await head.text()).toBe('');
    } finally {
      await server.close();
    }
  });
});

describe('the request rules it documents are the validators', () => {
  /** A parameter the document gives `path` (or its `method`), by name. */
  const parameter = (path: string, name: string, method?: string): Json => {
    const item = (document.paths[path] ?? {}) as Record<string, unknown>;
    const holder = method === undefined ? item : (item[method] as Json | undefined);
    const list = (holder?.parameters ?? []) as Json[];
    const found = list.find((p) => p.name === name);
    if (found === undefined) throw new Error(`no parameter ${name} on ${method ?? ''} ${path}`);
    return found;
  };
  const schemaOf = (path: string, name: string, method?: string) =>
    parameter(path, name, method).schema as Json;
  const accepts = (parse: () => unknown) => {
    try {
      parse();
      return true;
    } catch {
      return false;
    }
  };
  /** Strings near the edge of a rule: digits, hex, commas, signs and blanks, and anything. */
  const nearly = (alphabet: string) =>
    fc.oneof(
      fc.string({ unit: fc.constantFrom(...alphabet), maxLength: 30 }),
      fc.string({ maxLength: 30 }),
    );

  it('the file id pattern takes what parseFileId takes, the key at most MAX_KEY', () => {
    const id = parameter('/file/{id}', 'id');
    const pattern = new RegExp((id.schema as Json).pattern as string, 'u');
    expect(id.description).toContain(String(MAX_KEY));
    // Valid ids with something put before, after or inside, and near-valid ones at the maximum.
    const edit = fc.constantFrom('', '', '0', '00', '+', '-', ' ', ',', 'x', '.0');
    const ids = fc.oneof(
      nearly('0123456789abcdefABCDEFgx,+- .'),
      fc
        .tuple(edit, fc.stringMatching(/^[1-9][0-9]{0,16}(,[0-9a-fA-F]{6,9})?$/), edit)
        .map(([before, id, after]) => before + id + after),
      fc.bigInt({ min: 1n, max: 2n ** 54n }).map(String),
    );
    fc.assert(
      fc.property(ids, (id) => {
        const keyBelowMax = Number(id.split(',')[0]) <= MAX_KEY;
        expect(accepts(() => parseFileId(id))).toBe(pattern.test(id) && keyBelowMax);
      }),
      { numRuns: 2000 },
    );
  });

  it('the Content-Length pattern is what parseContentLength takes', () => {
    const pattern = new RegExp(schemaOf('/file', 'Content-Length', 'post').pattern as string);
    fc.assert(
      fc.property(nearly('0123456789+-. ,e'), (raw) => {
        expect(accepts(() => parseContentLength(raw))).toBe(pattern.test(raw));
      }),
      { numRuns: 1000 },
    );
  });

  it("the Content-Type limit is parseContentType's", () => {
    const schema = schemaOf('/file/{id}', 'Content-Type', 'put');
    expect(schema.maxLength).toBe(MAX_CONTENT_TYPE_LENGTH);
    const longest = `a/${'b'.repeat(MAX_CONTENT_TYPE_LENGTH - 2)}`;
    expect(parseContentType(longest)).toBe(longest);
    expect(accepts(() => parseContentType(`${longest}b`))).toBe(false);
  });

  it("the admin volume id pattern is the admin routes' validator", () => {
    const query = schemaOf('/admin/compact', 'volume', 'post');
    const path = schemaOf('/admin/volumes/{id}/readonly', 'id');
    expect(path).toEqual(query);
    const pattern = new RegExp(query.pattern as string);
    fc.assert(
      fc.property(nearly('0123456789+-. x'), (raw) => {
        const safe = Number.isSafeInteger(Number(raw));
        expect(v.safeParse(volumeIdText, raw).success).toBe(pattern.test(raw) && safe);
      }),
      { numRuns: 1000 },
    );
  });
});
