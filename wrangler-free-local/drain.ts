import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/** How long a graceful stop waits for requests in flight before it closes their connections. */
export const DRAIN_GRACE_MS = 10_000;

/** After the grace period, how long to wait for handlers whose connections were closed. */
const SETTLE_MS = 5_000;

export interface DrainResult {
  /** Requests still in flight at the end of the grace period, whose connections were closed. */
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
      watched.on('request', (_req: IncomingMessage, res: ServerResponse) => {
        responses.add(res);
        if (draining) res.setHeader('connection', 'close');
        res.once('close', () => {
          responses.delete(res);
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

      const forced = responses.size;
      watched.closeAllConnections();
      const settleOver = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), SETTLE_MS);
      });
      const second = await Promise.race([allDone, settleOver]);
      clearTimeout(timer);
      return { forced, abandoned: second === 'timeout' ? handlers.size : 0 };
    },
  };
}
