/**
 * `npm run bench:app [-- options]`: what the store's app costs on a 1 KiB GET, piece by piece,
 * next to bare Hono, with the store out of the way: every variant answers from a stub store
 * that hands back a fixed buffer at once (a fresh FileInfo per call, as the volume store does).
 *
 * Each variant is its own server process on 127.0.0.1, pinned to CPU 1 (`taskset`), driven by
 * wrk pinned to CPU 0 (1 thread, 32 connections), as the shared benchmark does. The rounds are
 * interleaved (every variant once per round, hono-bare first, the others in a rotating order)
 * so that the machine's swings hit them alike; the table gives medians of req/s and of the CPU
 * time each server spent per answer (from /proc: less disturbed by a busy machine), and the
 * median over the rounds of each one's ratio to hono-bare's figure in the same round.
 *
 * Options: --duration 4 (seconds per measurement), --reps 5, --warmup 1 (seconds, untimed, per
 * measurement), --connections 32, --variants a,b (default all), --no-pin, --other DIR (adds
 * other:app and other:app/runner, the app and stack of the checkout in DIR).
 */
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { validator } from 'hono/validator';
import pino from 'pino';
import { createApp } from '../handlers/index.ts';
import type { BlobStore, FileInfo, FileRead } from '../storage/index.ts';
import { createHttpServer } from '../wrangler-free-local/http-server.ts';
import {
  fmt,
  loadLine,
  machineLine,
  measureRounds,
  parseArgs,
  ratioTable,
  requireWrk,
  type ServerChild,
  startServerChild,
} from './lib.ts';

const SIZE = 1024;
const BLOB = new Uint8Array(SIZE).map((_, i) => (i * 31 + 7) & 0xff);
const INFO: FileInfo = {
  key: 1,
  size: SIZE,
  volume: 1,
  offset: 32,
  cookie: 0xb15782b2,
  contentType: 'application/octet-stream',
  etag: '"1-b15782b2"',
};

/** Answers every read with the same bytes at once; the rest is never called here. */
function stubStore(): BlobStore {
  const unused = () => Promise.reject(new Error('not part of the benchmark'));
  return {
    // A fresh info per read, as the volume store builds one per read.
    get: async (): Promise<FileRead> => ({ info: { ...INFO }, body: BLOB }),
    head: async () => ({ ...INFO }),
    put: unused,
    replace: unused,
    delete: unused,
    sync: unused,
    status: unused,
    readiness: unused,
    close: async () => {},
    capabilities: {},
  };
}

/** The headers the store's app sends on a 200 of a 1 KiB octet-stream file. */
function storeHeaders(info: FileInfo): Record<string, string> {
  return {
    'Content-Type': info.contentType,
    'Content-Length': String(info.size),
    ETag: info.etag,
    'Cache-Control': 'public, max-age=31536000, immutable',
    'Accept-Ranges': 'bytes',
    'X-Content-Type-Options': 'nosniff',
    'Content-Security-Policy': "sandbox; default-src 'none'",
  };
}

const LIMITS = {
  maxConnections: 1024,
  maxPipeline: 16,
  headersTimeoutMs: 10_000,
  idleTimeoutMs: 60_000,
};

interface Variant {
  name: string;
  what: string;
  start(port: number): Server | Promise<Server>;
}

/** Plain @hono/node-server, as the shared benchmark's servers/hono-bare.mjs starts it. */
function plain(fetch: (request: Request) => Response | Promise<Response>, port: number): Server {
  const server = serve({ fetch, port, hostname: '127.0.0.1' }) as Server;
  server.keepAliveTimeout = 60_000;
  return server;
}

/** Under the local server's own stack (serve.ts: connection table, limits, drain tracker). */
function runner(fetch: (request: Request) => Response | Promise<Response>, port: number): Server {
  const { server } = createHttpServer(fetch, LIMITS, '127.0.0.1');
  server.listen(port, '127.0.0.1');
  return server;
}

const VARIANTS: Variant[] = [
  {
    name: 'hono-bare',
    what: 'shared servers/hono-bare.mjs: sync handler, c.body(blob)',
    start(port) {
      const app = new Hono();
      app.get('/file/:key', (c) =>
        c.body(BLOB, 200, { 'content-type': 'application/octet-stream' }),
      );
      return plain(app.fetch, port);
    },
  },
  {
    name: 'hono-async',
    what: 'bare Hono, async handler awaiting the stub store',
    start(port) {
      const store = stubStore();
      const app = new Hono();
      app.get('/file/:key', async (c) => {
        const { body } = await store.get(Number(c.req.param('key')));
        return c.body(body as Uint8Array<ArrayBuffer>, 200, {
          'content-type': 'application/octet-stream',
        });
      });
      return plain(app.fetch, port);
    },
  },
  {
    name: 'hono-async+headers',
    what: '+ the store app 7 headers built per request (plain-object Response)',
    start(port) {
      const store = stubStore();
      const app = new Hono();
      app.get('/file/:key', async (c) => {
        const { info, body } = await store.get(Number(c.req.param('key')));
        return new Response(body as Uint8Array<ArrayBuffer>, {
          status: 200,
          headers: storeHeaders(info),
        });
      });
      return plain(app.fetch, port);
    },
  },
  {
    name: 'hono-async+headers+validator',
    what: '+ hono/validator middleware on the param (as the app had before leanread)',
    start(port) {
      const store = stubStore();
      const app = new Hono();
      const param = validator('param', (params: Record<string, string>) => Number(params.key));
      app.get('/file/:key', param, async (c) => {
        const { info, body } = await store.get(c.req.valid('param'));
        return new Response(body as Uint8Array<ArrayBuffer>, {
          status: 200,
          headers: storeHeaders(info),
        });
      });
      return plain(app.fetch, port);
    },
  },
  {
    name: 'hono-async+headers+validator+use',
    what: '+ an app.use middleware setting 5 context vars (as the app had before leanread)',
    start(port) {
      const store = stubStore();
      const app = new Hono<{ Variables: Record<string, unknown> }>();
      app.use(async (c, next) => {
        c.set('store', store);
        c.set('maxBody', 1);
        c.set('requireCookie', false);
        c.set('inlineActive', false);
        c.set('discardBounds', {});
        try {
          await next();
        } catch (thrown) {
          throw thrown instanceof Error ? thrown : new Error('non-Error', { cause: thrown });
        }
      });
      const param = validator('param', (params: Record<string, string>) => Number(params.key));
      app.get('/file/:key', param, async (c) => {
        const { info, body } = await (c.get('store') as BlobStore).get(c.req.valid('param'));
        return new Response(body as Uint8Array<ArrayBuffer>, {
          status: 200,
          headers: storeHeaders(info),
        });
      });
      return plain(app.fetch, port);
    },
  },
  {
    name: 'app',
    what: "the store's app (createApp) over the stub, plain @hono/node-server",
    start(port) {
      return plain(createApp({ store: stubStore(), maxBody: 1 << 20 }).fetch, port);
    },
  },
  {
    name: 'app+log',
    what: 'app with a pino logger (one line per request) to /dev/null, async, 4 KiB batches',
    start(port) {
      const logger = pino(pino.destination({ dest: '/dev/null', sync: false, minLength: 4096 }));
      return plain(createApp({ store: stubStore(), maxBody: 1 << 20, logger }).fetch, port);
    },
  },
  {
    name: 'app-no-metrics',
    what: 'app with operatingRoutes: false and no registry: the wrapper without metrics',
    start(port) {
      const app = createApp({ store: stubStore(), maxBody: 1 << 20, operatingRoutes: false });
      return plain(app.fetch, port);
    },
  },
  {
    name: 'hono-bare/runner',
    what: 'hono-bare under the local server stack (connections, limits, drain tracker)',
    start(port) {
      const app = new Hono();
      app.get('/file/:key', (c) =>
        c.body(BLOB, 200, { 'content-type': 'application/octet-stream' }),
      );
      return runner(app.fetch, port);
    },
  },
  {
    name: 'app/runner',
    what: "the store's app under the local server stack: what `npm start` runs, minus the store",
    start(port) {
      return runner(createApp({ store: stubStore(), maxBody: 1 << 20 }).fetch, port);
    },
  },
];

/**
 * The store's app and the local server's stack from another checkout of this repository
 * (`--other DIR`, e.g. a `git archive` of an older commit with `storage/` and `adapters/` beside
 * it), so that before and after are measured in the same run.
 */
function otherVariants(dir: string): Variant[] {
  const load = async () => {
    const handlers = (await import(path.resolve(dir, 'handlers/index.ts'))) as {
      createApp: typeof createApp;
    };
    const http = (await import(path.resolve(dir, 'wrangler-free-local/http-server.ts'))) as {
      createHttpServer: typeof createHttpServer;
    };
    return { app: handlers.createApp({ store: stubStore(), maxBody: 1 << 20 }), http };
  };
  return [
    {
      name: 'other:app',
      what: `as app, from ${dir}`,
      start: async (port) => plain((await load()).app.fetch, port),
    },
    {
      name: 'other:app/runner',
      what: `as app/runner, from ${dir}`,
      async start(port) {
        const { app, http } = await load();
        const { server } = http.createHttpServer(app.fetch, LIMITS, '127.0.0.1');
        server.listen(port, '127.0.0.1');
        return server;
      },
    },
  ];
}

// ---- the server side: `bench/app.ts --serve <variant>` prints its port and serves ----

async function serveVariant(name: string, other: string | undefined): Promise<void> {
  const all = other === undefined ? VARIANTS : [...VARIANTS, ...otherVariants(other)];
  const variant = all.find((v) => v.name === name);
  if (!variant) throw new Error(`no variant ${name}`);
  const server = await variant.start(0);
  if (!server.listening) await once(server, 'listening');
  console.log(`port ${(server.address() as AddressInfo).port}`);
  process.on('SIGTERM', () => process.exit(0));
}

// ---- the driver (bench/lib.ts) ----

interface Running extends ServerChild {
  variant: Variant;
}

async function startChild(
  variant: Variant,
  pin: boolean,
  other: string | undefined,
): Promise<Running> {
  const args = ['--serve', variant.name, ...(other === undefined ? [] : ['--other', other])];
  return { ...(await startServerChild(variant.name, 'bench/app.ts', args, { pin })), variant };
}

/** One GET, checked: 200 and the 1 KiB body; fails loudly rather than measure an error page. */
async function check(running: Running): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${running.port}/file/1`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (res.status !== 200 || body.byteLength !== SIZE || body[5] !== BLOB[5]) {
    throw new Error(`${running.variant.name}: ${res.status}, ${body.byteLength} bytes`);
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const serveName = args.get('serve');
  const otherArg = args.get('other');
  const other = typeof otherArg === 'string' ? path.resolve(otherArg) : undefined;
  if (typeof serveName === 'string') return serveVariant(serveName, other);

  const duration = Number(args.get('duration') ?? 4);
  const reps = Number(args.get('reps') ?? 5);
  const warmup = Number(args.get('warmup') ?? 1);
  const connections = Number(args.get('connections') ?? 32);
  const pin = args.get('pin') !== false;
  const names = args.get('variants');
  const all = other === undefined ? VARIANTS : [...VARIANTS, ...otherVariants(other)];
  const chosen =
    typeof names === 'string' ? all.filter((v) => names.split(',').includes(v.name)) : [...all];
  if (!chosen.some((v) => v.name === 'hono-bare')) chosen.unshift(VARIANTS[0] as Variant);
  requireWrk();

  console.log(machineLine());
  console.log(
    `1 KiB GET /file/1, wrk -t1 -c${connections} -d${duration}s (after ${warmup}s untimed), ` +
      `${reps} rounds, ${pin ? 'server on CPU 1, wrk on CPU 0' : 'unpinned'}`,
  );
  const running: Running[] = [];
  const stopAll = () => {
    for (const r of running) r.child.kill('SIGTERM');
  };
  process.once('SIGINT', () => {
    stopAll();
    process.exit(130);
  });
  try {
    for (const variant of chosen) running.push(await startChild(variant, pin, other));
    for (const r of running) await check(r);
    // hono-bare first in every round, then the others in an order rotated by one each round,
    // so that none is always measured furthest from its round's reference.
    const samples = await measureRounds(running, {
      target: { path: '/file/1' },
      seconds: duration,
      connections,
      pin,
      reps,
      warmup,
      reference: running.find((r) => r.name === 'hono-bare') as Running,
      referenceFirst: true,
      log: (round, r, sample) =>
        console.log(
          `  round ${round}  ${r.name.padEnd(34)} ${fmt(sample.rps).padStart(7)} req/s` +
            `  ${fmt(sample.cpuUs, 1).padStart(6)} us CPU/req`,
        ),
    });
    console.log(
      "\nx hono-bare: the variant's req/s over hono-bare's in the same round; (CPU): hono-bare's " +
        "CPU time per answer over the variant's, likewise; medians over the rounds",
    );
    const what = new Map(chosen.map((v) => [v.name, v.what]));
    const rows = ratioTable(
      chosen.map((v) => v.name),
      samples,
      'hono-bare',
      [],
      { labels: ['what'], cells: (name) => [what.get(name) ?? ''] },
    );
    console.log(`\n${rows}`);
    console.log(loadLine());
  } finally {
    stopAll();
  }
}

await main();
