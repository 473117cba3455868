import { createServer, type Server } from 'node:http';
import { getRequestListener } from '@hono/node-server';
import { releaseAfterClose } from '../handlers/after-send.ts';
import { answerClientErrors, answerMissingHost, lacksRequiredHost } from './client-errors.ts';
import {
  applyConnectionLimits,
  type ConnectionLimits,
  serverOptions,
} from './connection-limits.ts';
import { watchConnections } from './connections.ts';
import { type DrainResult, type FetchCallback, requestTracker } from './drain.ts';

export interface HttpServer {
  /** Not yet listening: the caller listens. */
  server: Server;
  /** Graceful stop of HTTP (see `drain.ts`). */
  drain(graceMs?: number): Promise<DrainResult>;
}

/** An app's `fetch` as this server calls it: `env` is @hono/node-server's bindings. */
export type ServedFetch = (
  request: Request,
  env: Parameters<FetchCallback>[1],
) => Response | Promise<Response>;

/**
 * The local server's HTTP stack around `fetch`: @hono/node-server's request listener behind the
 * connection checks (limits, one answer at a time per connection, client errors, a missing
 * `Host`) and the graceful-stop tracker. The bytes a store lent an answer go back to it when
 * the response closes (after-send.ts). `defaultHost` is the Host an HTTP/1.0 request without
 * one is taken to have named.
 *
 * @hono/node-server's `serve` is createServer + its request listener + listen; composing them
 * here puts the connection checks before the app.
 */
export function createHttpServer(
  fetch: ServedFetch,
  limits: ConnectionLimits,
  defaultHost: string,
): HttpServer {
  const server = createServer(serverOptions(limits));
  const tracker = requestTracker();
  const serveApp = getRequestListener(tracker.wrap(releaseAfterClose(fetch)), {
    hostname: defaultHost,
  });
  const connections = watchConnections(server, {
    maxPipeline: limits.maxPipeline,
    closed: (res) => tracker.responseClosed(res),
    answer(req, res) {
      if (tracker.draining) res.setHeader('connection', 'close');
      if (lacksRequiredHost(req)) return answerMissingHost(res);
      void serveApp(req, res);
    },
  });
  applyConnectionLimits(server, limits, connections);
  answerClientErrors(server, connections, limits.idleTimeoutMs);
  return { server, drain: (graceMs) => tracker.drain(server, connections, graceMs) };
}
