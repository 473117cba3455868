import type { Context, Env, ErrorHandler, Handler, NotFoundHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { StoreError, type StoreErrorCode } from '../storage/index.ts';
import { jsonAnswer } from './json-answer.ts';
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
export const statusByCode = {
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
  conflict: 409,
  unavailable: 503,
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

/**
 * How a handler fails: it throws, and the app's one error handler answers. The store throws
 * `StoreError` (the port's); the handlers throw this for what only HTTP knows (a bad key in a
 * path, a range outside the file, a route the store cannot serve), with any headers the answer
 * needs; Hono's middleware throws `HTTPException`.
 */
export class HttpError extends Error {
  readonly code: ErrorCode;
  readonly headers: Record<string, string> | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    options?: { headers?: Record<string, string>; cause?: unknown },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'HttpError';
    this.code = code;
    this.headers = options?.headers;
  }
}

/** The JSON every error answers with, under the status its code maps to. */
export function errorResponse(
  c: Context,
  code: ErrorCode,
  message: string,
  headers?: Record<string, string>,
): Response {
  const body: ErrorBody = { error: { code, message } };
  return jsonAnswer(c, body, statusOf(code), headers);
}

/** The code of an `HTTPException` from Hono's middleware, by its status. */
const codeByStatus: Readonly<Record<number, ErrorCode>> = {
  400: 'bad_request',
  401: 'unauthorized',
  404: 'no_route',
  405: 'method_not_allowed',
  413: 'too_large',
  416: 'range_not_satisfiable',
};

/** Headers of an `HTTPException`'s answer that the JSON answer keeps. */
const KEPT_HEADERS = ['WWW-Authenticate', 'Allow', 'Retry-After'];

/**
 * The app's single `onError`. A `StoreError` or `HttpError` is an answer (its message is written
 * for clients), and so is Hono's `HTTPException`, in the same JSON shape; anything else is a bug
 * or an outage: it is reported to the operator, and the client gets a generic message, never the
 * error's text or stack.
 */
export function createErrorHandler(onUnexpectedError: (err: unknown) => void): ErrorHandler {
  return async (err, c) => {
    if (err instanceof StoreError || err instanceof HttpError) {
      // Damage and disk failures are answers to the client and news to the operator.
      if (statusOf(err.code) >= 500) reportSafely(onUnexpectedError, err);
      return errorResponse(
        c,
        err.code,
        err.message,
        err instanceof HttpError ? err.headers : undefined,
      );
    }
    if (err instanceof HTTPException) {
      const res = err.getResponse();
      const code = codeByStatus[res.status];
      if (code !== undefined) {
        const message = err.message || (await res.text().catch(() => '')) || res.statusText;
        const headers: Record<string, string> = {};
        for (const name of KEPT_HEADERS) {
          const value = res.headers.get(name);
          if (value !== null) headers[name] = value;
        }
        return errorResponse(c, code, message || code, headers);
      }
    }
    reportSafely(onUnexpectedError, err);
    return errorResponse(c, 'internal', 'internal server error');
  };
}

/**
 * Hono hands only Error objects to `onError` and rethrows anything else out of `fetch()`: a
 * thrown string or a store that rejects with a plain object becomes an Error (the thrown value
 * as its `cause`), so it too is answered with a 500 in the JSON shape.
 */
export function asError(thrown: unknown): Error {
  return thrown instanceof Error ? thrown : new Error('a non-Error was thrown', { cause: thrown });
}

/**
 * A route's handler whose failures all reach `onError` (see `asError`). The try costs nothing
 * while nothing is thrown; it replaces a middleware that ran on every request.
 */
export function errorsAsErrors<E extends Env>(
  handler: (c: Context<E>) => Promise<Response>,
): Handler<E> {
  return async (c) => {
    try {
      return await handler(c);
    } catch (thrown) {
      throw asError(thrown);
    }
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

/**
 * Where unexpected errors go when the app is given neither `onUnexpectedError` nor a logger: a
 * process warning on Node (printed to stderr unless the host listens for 'warning'), the
 * platform's `reportError` on a fetch host; never console.error, so a host decides where
 * library output goes.
 */
export function logUnexpected(err: unknown): void {
  const message = 'haystack: unexpected error while serving a request';
  if (typeof process !== 'undefined' && typeof process.emitWarning === 'function') {
    process.emitWarning(message, { type: 'HaystackWarning', detail: describeError(err) });
  } else {
    (globalThis as { reportError?: (error: unknown) => void }).reportError?.(err);
  }
}

/** The stack of an error and of its causes, for a warning's detail. */
function describeError(err: unknown): string {
  const parts: string[] = [];
  let current: unknown = err;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? String(current)) : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join('\ncaused by: ');
}
