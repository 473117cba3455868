import type { Context, Env, ErrorHandler, Handler, Next } from 'hono';
import { asError } from './errors.ts';
import {
  beginExchange,
  clearStamp,
  receivedBytes,
  requestIdFrom,
  stampedLength,
} from './exchange.ts';
import type { Logger, RequestLogFields } from './logger.ts';
import type { MetricsSource } from './metrics/index.ts';
import { METHOD_LABELS, methodIndex, type RouteTally } from './metrics/route-tally.ts';
import { requestPath } from './request-path.ts';

/** Longest path a log line carries, in characters; the rest is cut. */
export const MAX_LOGGED_PATH = 1024;

/** Longest Content-Length counted: 15 digits is beyond any body the app takes. */
const CONTENT_LENGTH = /^[0-9]{1,15}$/;

export interface ObserveSettings {
  /** Where the tallies go; none when the app has no registry (operatingRoutes off, none given). */
  metrics: MetricsSource | undefined;
  logger: Logger | undefined;
  /** Answers a thrown error: the app's error handler, called here so the status is known. */
  onError: ErrorHandler;
}

/**
 * Wraps a route's one handler (see by-method.ts: no middleware chain) so that it, and nothing
 * else per request, measures the request, sets `X-Request-Id`, answers a throw with the app's
 * error handler, tallies the route's metrics and writes the log line. `route` is the label: a
 * pattern, never the request's path.
 */
export function requestObserver({ metrics, logger, onError }: ObserveSettings) {
  return <E extends Env>(
    route: string,
    handler: Handler<E>,
  ): ((c: Context<E>, next: Next) => Promise<Response>) => {
    const tally = metrics?.route(route);
    return async (c, next) => {
      const started = performance.now();
      const requestId = requestIdFrom(c.req.header('x-request-id'), logger !== undefined);
      beginExchange(c, requestId);
      let res: Response;
      let failure: Error | undefined;
      try {
        res = (await handler(c, next)) as Response;
      } catch (thrown) {
        failure = asError(thrown);
        clearStamp(c);
        res = await onError(failure, c as unknown as Context);
      }
      const seconds = (performance.now() - started) / 1000;
      const sent = sentBytes(c, res, requestId);
      finish(c, route, tally, logger, res.status, seconds, sent, requestId, failure);
      return res;
    };
  };
}

/** What the answer's body declares, with its request id set; HEAD sends no body. */
function sentBytes(c: Context, res: Response, requestId: string | undefined): number {
  const stamped = stampedLength(c);
  let length = stamped;
  if (stamped === undefined) {
    // An answer not built by stampHeaders (rare paths): its headers are read and set here.
    if (requestId !== undefined) {
      try {
        res.headers.set('X-Request-Id', requestId);
      } catch {
        // immutable headers (a Response passed through from fetch): it goes without the id
      }
    }
    length = declaredLength(res.headers.get('content-length'));
  }
  return c.req.method === 'HEAD' ? 0 : (length ?? 0);
}

function declaredLength(header: string | null | undefined): number {
  return header != null && CONTENT_LENGTH.test(header) ? Number(header) : 0;
}

function finish(
  c: Context,
  route: string,
  tally: RouteTally | undefined,
  logger: Logger | undefined,
  status: number,
  seconds: number,
  sent: number,
  requestId: string | undefined,
  failure: Error | undefined,
): void {
  const method = methodIndex(c.req.method);
  const received = receivedBytes(c);
  tally?.record(method, status, seconds, received, sent);
  if (logger === undefined) return;
  if (status < 500 && logger.isLevelEnabled?.('info') === false) return;
  const fields: RequestLogFields & { err?: Error } = {
    reqId: requestId,
    method: METHOD_LABELS[method] ?? 'other',
    route,
    // As sent, still percent-encoded: a decoded one could put a line break into a log line.
    path: requestPath(c.req.url).slice(0, MAX_LOGGED_PATH),
    status,
    bytes: sent,
    received,
    durationMs: Math.round(seconds * 1e6) / 1e3,
  };
  try {
    if (status >= 500) {
      if (failure !== undefined) fields.err = failure;
      logger.error(fields, 'request');
    } else if (logger.request) {
      logger.request(fields);
    } else {
      logger.info(fields, 'request');
    }
  } catch {
    // A failing logger must not fail an answer that is ready.
  }
}
