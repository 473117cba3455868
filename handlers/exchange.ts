import type { Context } from 'hono';

/**
 * What the per-request wrapper (observe.ts) and the handlers tell each other, kept on Hono's
 * Context under symbols: no per-request object, and no `c.set`, which makes a Map per request.
 * The handlers on the hot path build their answers with plain header records (see
 * file-routes.ts); `stampHeaders` puts the request id into such a record before the Response is
 * made, and leaves its length here, so that the wrapper never reads `res.headers` (on
 * @hono/node-server that turns the record into a `Headers` object, converted back header by
 * header when written).
 */
const REQUEST_ID = Symbol('haystack.requestId');
const STAMPED_LENGTH = Symbol('haystack.stampedLength');
const RECEIVED = Symbol('haystack.received');

interface Slots {
  [REQUEST_ID]?: string | undefined;
  [STAMPED_LENGTH]?: number | undefined;
  [RECEIVED]?: number;
}

/** Longest request id honoured, in characters: one a log line can carry whole. */
export const MAX_REQUEST_ID = 200;

/**
 * Ids made here: this process's random prefix (60 bits, 12 base-32 characters, so that ids of
 * gateways and restarts do not meet) and a counter, `3kq9v0d1x2mf-1a`, as chi's RequestID does.
 * A UUID per request cost a read about 0.5 us and a longer header to check (docs/PERFORMANCE.md);
 * an id needs to be unique, not unguessable: it names a log line, it grants nothing.
 */
let prefix = '';
let made = 0;

function makeRequestId(): string {
  // Made at the first request, not when loaded: some fetch hosts (workers) refuse random values
  // outside a request.
  if (prefix === '') {
    const random = crypto.getRandomValues(new Uint8Array(12));
    prefix = Array.from(random, (byte) => (byte & 31).toString(32)).join('');
  }
  made += 1;
  return `${prefix}-${made.toString(36)}`;
}

/**
 * The client's `X-Request-Id` when it is 1 to 200 visible ASCII characters (`[!-~]`), so it can
 * go into a header and a log line as it is; anything else is replaced by a fresh id when `make`
 * (there is a log for the id to find), else there is none.
 */
export function requestIdFrom(header: string | undefined, make: boolean): string | undefined {
  if (header === undefined || header.length === 0 || header.length > MAX_REQUEST_ID) {
    return make ? makeRequestId() : undefined;
  }
  for (let i = 0; i < header.length; i++) {
    const char = header.charCodeAt(i);
    if (char < 0x21 || char > 0x7e) return make ? makeRequestId() : undefined;
  }
  return header;
}

export function beginExchange(c: Context, requestId: string | undefined): void {
  const slots = c as Slots;
  slots[REQUEST_ID] = requestId;
  slots[STAMPED_LENGTH] = undefined;
  slots[RECEIVED] = 0;
}

/** Counts request body bytes the upload code read (whatever the client declared). */
export function countReceived(c: Context, bytes: number): void {
  const slots = c as Slots;
  if (slots[RECEIVED] !== undefined) slots[RECEIVED] += bytes;
}

/** Request body bytes read so far. */
export function receivedBytes(c: Context): number {
  return (c as Slots)[RECEIVED] ?? 0;
}

/** The id the wrapper gave this request, if it runs under one. */
export function requestIdOf(c: Context): string | undefined {
  return (c as Slots)[REQUEST_ID];
}

/**
 * Adds `X-Request-Id` to the plain header record of an answer with a body of `length` bytes,
 * and tells the wrapper so. Returns the same record.
 */
export function stampHeaders(
  c: Context,
  headers: Record<string, string>,
  length: number,
): Record<string, string> {
  const slots = c as Slots;
  // Only under the wrapper (which sets RECEIVED): the replica routes build answers this way too.
  if (slots[RECEIVED] === undefined) return headers;
  const id = slots[REQUEST_ID];
  if (id !== undefined) headers['X-Request-Id'] = id;
  slots[STAMPED_LENGTH] = length;
  return headers;
}

/** The length `stampHeaders` recorded; undefined when the answer was not stamped. */
export function stampedLength(c: Context): number | undefined {
  return (c as Slots)[STAMPED_LENGTH];
}

/** Forgets a stamp: the answer it was for was not sent (the handler threw after making it). */
export function clearStamp(c: Context): void {
  (c as Slots)[STAMPED_LENGTH] = undefined;
}
