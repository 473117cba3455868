import type { Server, ServerResponse } from 'node:http';
import type { getRequestListener } from '@hono/node-server';
import type { ConnectionTable } from './connections.ts';

/** Where `wrap` leaves a handler's promise: on its response, for `responseClosed`. */
const HANDLER = Symbol('haystack.handler');

type TrackedResponse = ServerResponse & { [HANDLER]?: Promise<unknown> | undefined };

/** What `app.fetch` is to @hono/node-server: its second argument holds `outgoing`. */
export type FetchCallback = Parameters<typeof getRequestListener>[0];

/** How long a graceful stop waits for requests in flight before it closes their connections. */
export const DRAIN_GRACE_MS = 10_000;

/** After the grace period, how long to wait for handlers whose connections were closed. */
const SETTLE_MS = 5_000;

export interface DrainResult {
  /** Connections still open at the end of the grace period, closed without waiting more. */
  forced: number;
  /** Handlers still running after the connections were closed and `SETTLE_MS` passed. */
  abandoned: number;
}

export interface RequestTracker {
  /**
   * Wraps @hono/node-server's fetch callback so that the graceful stop also waits for the
   * promises it returns: each is kept on its response (`env.outgoing`), for `responseClosed`.
   */
  wrap(fetch: FetchCallback): FetchCallback;
  /**
   * Call when a response closes. One that closed before it was ended (its client went away, or
   * the stop closed its connection) may leave its handler running, for example a write waiting
   * for its fsync: from then on the stop waits for that handler too. A response that was ended
   * needs nothing: @hono/node-server ends it only after the handler's promise resolved.
   */
  responseClosed(res: ServerResponse): void;
  /** Whether a stop has begun: new responses must then say `Connection: close`. */
  readonly draining: boolean;
  /**
   * Stops `server` accepting connections, lets requests in flight finish (answering them with
   * `Connection: close`), closes idle keep-alive connections, and after `graceMs` closes what is
   * left. Resolves once no connection is open and no handler runs.
   */
  drain(server: Server, connections: ConnectionTable, graceMs?: number): Promise<DrainResult>;
}

/**
 * Tracks what a graceful stop has to wait for: unfinished HTTP responses (including bodies still
 * streaming out), from the connection table, and handler promises (which may outlive their
 * connection, for example a write waiting for its fsync after the client went away). A handler
 * is in flight while its response is unfinished, so only those that outlive their response are
 * counted: nothing is allocated or chained per request for the ones that end normally.
 */
export function requestTracker(): RequestTracker {
  let handlers = 0;
  let draining = false;
  let wake: (() => void) | undefined;
  let unfinished = () => 0;

  const settled = () => {
    if (wake && handlers === 0 && unfinished() === 0) wake();
  };
  // One callback for every handler that outlived its response, not a closure each.
  const handlerDone = () => {
    handlers--;
    settled();
  };

  return {
    wrap(fetch) {
      return (request, env) => {
        const result = fetch(request, env);
        if (result instanceof Promise) (env.outgoing as TrackedResponse)[HANDLER] = result;
        return result;
      };
    },

    responseClosed(res) {
      const tracked = res as TrackedResponse;
      const handler = tracked[HANDLER];
      if (handler === undefined) return;
      tracked[HANDLER] = undefined;
      if (res.writableEnded) return;
      handlers++;
      handler.then(handlerDone, handlerDone);
    },

    get draining() {
      return draining;
    },

    async drain(server, connections, graceMs = DRAIN_GRACE_MS) {
      draining = true;
      unfinished = () => {
        let count = 0;
        for (const { responses } of connections.open.values()) count += responses.length;
        return count;
      };
      connections.onChange = () => {
        // The connection a response used may be idle now; without this a keep-alive client
        // would hold the stop until its socket times out.
        setImmediate(() => server.closeIdleConnections());
        settled();
      };
      for (const [socket, { responses }] of connections.open) {
        // Connections with no request in progress: idle keep-alive ones, and also those that
        // never sent a request or only part of its headers, which Node's closeIdleConnections()
        // leaves open. Nothing was asked on them that could be answered: hang up now.
        if (responses.length === 0) socket.destroy();
        for (const res of responses) if (!res.headersSent) res.setHeader('connection', 'close');
      }
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const idle = new Promise<void>((resolve) => {
        wake = resolve;
        settled();
      });
      const allDone = Promise.all([closed, idle]);

      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), graceMs);
      });
      const first = await Promise.race([allDone, graceOver]);
      clearTimeout(timer);
      if (first !== 'timeout') return { forced: 0, abandoned: 0 };

      const forced = connections.open.size;
      server.closeAllConnections();
      for (const socket of connections.open.keys()) socket.destroy();
      const settleOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), SETTLE_MS);
      });
      const second = await Promise.race([allDone, settleOver]);
      clearTimeout(timer);
      return { forced, abandoned: second === 'timeout' ? handlers : 0 };
    },
  };
}
