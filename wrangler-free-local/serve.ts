import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { openVolumeStore } from '../adapters/volume/index.ts';
import { createApp } from '../handlers/index.ts';
import type { ConnectionLimits } from './connection-limits.ts';
import type { DrainResult } from './drain.ts';
import { errorLog, UserError } from './errors.ts';
import { createHttpServer } from './http-server.ts';
import { componentLog, type Logger } from './logger.ts';
import type { Config } from './options.ts';

export interface RunningServer {
  /** Where it listens, with the actual port (the one the OS picked for `--port 0`). */
  url: string;
  /** Absolute path of the data directory. */
  dataDir: string;
  /**
   * Graceful stop: drain HTTP (see `drain.ts`), then close the store, which syncs it. The
   * listening socket is closed before this returns its promise.
   */
  stop(graceMs?: number): Promise<DrainResult>;
}

/**
 * Opens the store (which takes the data directory's lock), builds the app on it and listens.
 * Rejects with the store's `locked` error when another server owns the directory, and with a
 * `UserError` when the address cannot be listened on; the store is closed again in that case.
 */
export async function startServer(config: Config, logger: Logger): Promise<RunningServer> {
  const dataDir = path.resolve(config.data);
  const store = await openVolumeStore({
    dir: dataDir,
    fsync: config.fsync,
    volumeSize: config.volumeSize,
    readOnly: config.readOnly,
    cacheSize: config.cacheSize,
    ...(config.compactAt === undefined ? {} : { compactAt: config.compactAt }),
    log: componentLog(logger, 'store'),
  });
  const app = createApp({
    store,
    maxBody: config.maxBody,
    requireCookie: config.requireCookie,
    inlineActive: config.inlineActive,
    adminToken: config.adminToken,
    // One line per request, at error with its cause for a 5xx.
    logger,
  });

  let listening: Listening;
  try {
    listening = await listenOn(app.fetch, config, logger);
  } catch (err) {
    await store.close().catch(() => {});
    throw err;
  }

  const modes = [
    config.readOnly && 'read-only (writes answer 403)',
    config.requireCookie && 'cookies required (/file/{key},{cookie})',
    config.inlineActive && 'HTML, SVG, XML and PDF files served inline (still sandboxed)',
    config.adminToken !== undefined && 'admin routes on (/admin, bearer token)',
  ].filter(Boolean);
  if (modes.length > 0) logger.info({ modes }, modes.join('; '));

  return {
    url: listening.url,
    dataDir,
    async stop(graceMs) {
      const result = await listening.drain(graceMs);
      await store.close();
      return result;
    },
  };
}

/** What `listenOn` answers: the URL with the actual port, and the graceful stop of HTTP. */
export interface Listening {
  url: string;
  drain(graceMs?: number): Promise<DrainResult>;
}

/** The connection settings and address every serving command takes. */
export type ListenConfig = Pick<
  Config,
  'port' | 'host' | 'maxConnections' | 'maxPipeline' | 'headersTimeout' | 'idleTimeout'
>;

/**
 * Serves `fetch` on `config.host` and `config.port` with the connection limits. Rejects with a
 * `UserError` when the address cannot be listened on.
 */
export async function listenOn(
  fetch: (request: Request) => Response | Promise<Response>,
  config: ListenConfig,
  logger: Logger,
): Promise<Listening> {
  const limits: ConnectionLimits = {
    maxConnections: config.maxConnections,
    maxPipeline: config.maxPipeline,
    headersTimeoutMs: config.headersTimeout,
    idleTimeoutMs: config.idleTimeout,
  };
  // The Host an HTTP/1.0 request without one is taken to have named.
  const defaultHost = config.host.includes(':') ? `[${config.host}]` : config.host;
  const { server, drain } = createHttpServer(fetch, limits, defaultHost);
  await listen(server, config.port, config.host);
  // From here on a server error is logged, never fatal: it is not tied to one request.
  server.on('error', (err) => logger.error(...errorLog(err, 'server error')));
  const { port } = server.address() as AddressInfo;
  return { url: `http://${defaultHost}:${port}`, drain };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => reject(listenError(err, port, host));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

function listenError(err: NodeJS.ErrnoException, port: number, host: string): Error {
  const where = `${host} port ${port}`;
  switch (err.code) {
    case 'EADDRINUSE':
      return new UserError(`cannot listen on ${where}: the port is in use`, { cause: err });
    case 'EACCES':
      return new UserError(`cannot listen on ${where}: permission denied`, { cause: err });
    case 'EADDRNOTAVAIL':
      return new UserError(`cannot listen on ${where}: not an address of this machine`, {
        cause: err,
      });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new UserError(`cannot listen on ${where}: unknown host`, { cause: err });
    default:
      return err;
  }
}
