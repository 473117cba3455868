import type { Context, ErrorHandler, Handler, NotFoundHandler } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { StoreError, type StoreErrorCode } from '../storage/index.ts';
import { requestPath } from './request-path.ts';

/** Every code an error body can carry: the store's, plus those only HTTP has. */
export type ErrorCode =
  | StoreErrorCode
  | 'no_route' // no route has this path (a missing key is `not_found`)
  | 'method_not_allowed' // the path is known, the method is not
  | 'range_not_satisfiable' // the Range asks for bytes the file does not have
  | 'unauthorized' // an admin route without the right bearer token
  | 'not_supported' // the store has no such operation (an admin call on a store without volumes)
  | 'internal'; // anything unexpected; details go to the log, never to the client

/** The one table from error code to HTTP status. */
const statusByCode = {
  bad_key: 400,
  bad_request: 400,
  not_found: 404,
  too_large: 413,
  corrupt: 500,
  io_error: 500,
  no_space: 507,
  read_only: 403,
  locked: 503,
  closed: 503,
  no_route: 404,
  method_not_allowed: 405,
  range_not_satisfiable: 416,
  unauthorized: 401,
  not_supported: 501,
  internal: 500,
} as const satisfies Record<ErrorCode, ContentfulStatusCode>;

export interface ErrorBody {
  error: { code: ErrorCode; message: string };
}

export function statusOf(code: ErrorCode): ContentfulStatusCode {
  return statusByCode[code];
}

/** The JSON every error answers with, under the status its code maps to. */
export function errorResponse(
  c: Context,
  code: ErrorCode,
  message: string,
  headers?: Record<string, string>,
): Response {
  const body: ErrorBody = { error: { code, message } };
  return c.json(body, statusOf(code), headers);
}

/**
 * The app's single `onError`. A `StoreError` is an answer (its message is written for clients);
 * anything else is a bug or an outage: it is reported to the operator, and the client gets a
 * generic message, never the error's text or stack.
 */
export function createErrorHandler(onUnexpectedError: (err: unknown) => void): ErrorHandler {
  return (err, c) => {
    if (err instanceof StoreError) {
      // Damage and disk failures are answers to the client and news to the operator.
      if (statusOf(err.code) >= 500) reportSafely(onUnexpectedError, err);
      return errorResponse(c, err.code, err.message);
    }
    reportSafely(onUnexpectedError, err);
    return errorResponse(c, 'internal', 'internal server error');
  };
}

/** A failing logger must not turn a 500 into a crash. */
function reportSafely(report: (err: unknown) => void, err: unknown): void {
  try {
    report(err);
  } catch {
    // Nothing sensible is left to do: the client still gets its 500.
  }
}

export const noRoute: NotFoundHandler = (c) =>
  errorResponse(c, 'no_route', `no route for ${c.req.method} ${requestPath(c.req.url)}`);

/** Answers a known path reached with a method it does not take. */
export function methodNotAllowed(allowed: readonly string[]): Handler {
  const allow = allowed.join(', ');
  return (c) =>
    errorResponse(c, 'method_not_allowed', `${c.req.method} is not allowed here; use ${allow}`, {
      Allow: allow,
    });
}
