import type { Context } from 'hono';
import { stampHeaders } from './exchange.ts';

const encoder = new TextEncoder();

/**
 * A JSON answer with a declared length, built on a plain header record (see exchange.ts):
 * what every JSON answer of the app, errors included, is made with, so that its bytes are
 * counted without the wrapper reading `res.headers`.
 */
export function jsonAnswer(
  c: Context,
  json: unknown,
  status: number,
  headers?: Record<string, string>,
): Response {
  const body = encoder.encode(JSON.stringify(json));
  const record: Record<string, string> = {
    'Content-Type': 'application/json',
    'Content-Length': String(body.byteLength),
    ...headers,
  };
  return new Response(body, { status, headers: stampHeaders(c, record, body.byteLength) });
}
