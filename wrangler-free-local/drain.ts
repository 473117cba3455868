import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

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
  /** Wraps a fetch callback so that the graceful stop also waits for the promises it returns. */
  wrap<A extends unknown[], R>(fetch: (...args: A) => R): (...args: A) => R;
  /** Follows the responses of this server; call once, before it listens. */
  watch(server: Server): void;
  /**
   * Stops accepting connections, lets requests in flight finish (answering them with
   * `Connection: close`), closes idle keep-alive connections, and after `graceMs` closes what is
   * left. Resolves once no connection is open and no handler runs.
   */
  drain(graceMs?: number): Promise<DrainResult>;
}

/**
 * Tracks what a graceful stop has to wait for: open HTTP responses (including bodies still
 * streaming out) and handler promises (which may outlive their connection, for example a write
 * waiting for its fsync after the client went away).
 */
export function requestTracker(): RequestTracker {
  const responses = new Set<ServerResponse>();
  /** Open connections, and how many of their responses are not finished. */
  const connections = new Map<Socket, number>();
  const handlers = new Set<Promise<unknown>>();
  let server: Server | undefined;
  let draining = false;
  let wake: (() => void) | undefined;

  const settled = () => {
    if (responses.size === 0 && handlers.size === 0) wake?.();
  };

  return {
    wrap(fetch) {
      return (...args) => {
        const result = fetch(...args);
        if (result instanceof Promise) {
          handlers.add(result);
          const done = () => {
            handlers.delete(result);
            settled();
          };
          result.then(done, done);
        }
        return result;
      };
    },

    watch(watched) {
      server = watched;
      watched.on('connection', (socket: Socket) => {
        connections.set(socket, 0);
        socket.once('close', () => connections.delete(socket));
      });
      watched.on('request', (req: IncomingMessage, res: ServerResponse) => {
        const { socket } = req;
        responses.add(res);
        connections.set(socket, (connections.get(socket) ?? 0) + 1);
        if (draining) res.setHeader('connection', 'close');
        res.once('close', () => {
          responses.delete(res);
          if (connections.has(socket)) connections.set(socket, (connections.get(socket) ?? 1) - 1);
          // The connection this response used is idle now; without this a keep-alive client
          // would hold the stop until its socket times out.
          if (draining) setImmediate(() => watched.closeIdleConnections());
          settled();
        });
      });
    },

    async drain(graceMs = DRAIN_GRACE_MS) {
      if (!server) throw new Error('requestTracker: drain() before watch()');
      const watched = server;
      draining = true;
      for (const res of responses) {
        if (!res.headersSent) res.setHeader('connection', 'close');
      }
      // Connections with no request in progress: idle keep-alive ones, and also those that never
      // sent a request or only part of its headers, which Node's closeIdleConnections() leaves
      // open. Nothing was asked on them that could be answered: hang up now.
      for (const [socket, active] of connections) {
        if (active === 0) socket.destroy();
      }
      const closed = new Promise<void>((resolve) => watched.close(() => resolve()));
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

      const forced = connections.size;
      watched.closeAllConnections();
      for (const socket of connections.keys()) socket.destroy();
      const settleOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), SETTLE_MS);
      });
      const second = await Promise.race([allDone, settleOver]);
      clearTimeout(timer);
      return { forced, abandoned: second === 'timeout' ? handlers.size : 0 };
    },
  };
}
