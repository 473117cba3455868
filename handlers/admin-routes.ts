import type { Context } from 'hono';
import { createFactory } from 'hono/factory';
import * as v from 'valibot';
import { StoreError } from '../storage/index.ts';
import type { AppEnv } from './env.ts';
import { errorResponse } from './errors.ts';

/**
 * Operator routes under `/admin`: compaction and marking volumes read-only. `createApp` mounts
 * them only when an admin token is configured, behind `requireAdminToken`.
 */

const factory = createFactory<AppEnv>();
const encoder = new TextEncoder();

/** What the challenge of a 401 says (RFC 6750 section 3). */
const REALM = 'Bearer realm="haystack admin"';

/**
 * Lets a request through only with `Authorization: Bearer <token>`; anything else gets 401
 * `unauthorized` with a `WWW-Authenticate` challenge, before the route (or its 404 or 405) is
 * known, so that a stranger learns nothing of the admin routes. The token is compared in
 * constant time.
 */
export function requireAdminToken(token: string) {
  const expected = encoder.encode(token);
  return factory.createMiddleware(async (c, next) => {
    const given = bearerToken(c.req.header('authorization'));
    if (given === undefined) {
      return errorResponse(
        c,
        'unauthorized',
        'admin routes need the header Authorization: Bearer <admin token>',
        { 'WWW-Authenticate': REALM },
      );
    }
    if (!constantTimeEqual(expected, encoder.encode(given))) {
      return errorResponse(c, 'unauthorized', 'the admin token is not right', {
        'WWW-Authenticate': `${REALM}, error="invalid_token"`,
      });
    }
    await next();
  });
}

/** The credentials of `Bearer <token>` (the scheme is case-insensitive, RFC 9110 11.1). */
function bearerToken(header: string | undefined): string | undefined {
  return header === undefined ? undefined : /^Bearer +([^ ]+) *$/i.exec(header)?.[1];
}

/**
 * Whether two byte strings are equal, in a time that depends only on `expected` (the secret's
 * length, which does not change), never on where `given` first differs. node:crypto's
 * timingSafeEqual is not used so that the handlers run on any fetch-compatible host.
 */
export function constantTimeEqual(expected: Uint8Array, given: Uint8Array): boolean {
  let diff = expected.byteLength ^ given.byteLength;
  for (let i = 0; i < expected.byteLength; i++) {
    diff |= (expected[i] as number) ^ (given[i] ?? 0);
  }
  return diff === 0;
}

const VOLUME_RULE = 'a volume id is an integer from 1 up, without sign or leading zeros';

/** A volume id in a path or a query string. */
const volumeIdText = v.pipe(
  v.string(VOLUME_RULE),
  v.regex(/^[1-9][0-9]{0,15}$/, VOLUME_RULE),
  v.transform(Number),
  v.safeInteger(VOLUME_RULE),
);

/**
 * The optional JSON body of `POST /admin/compact`. Unknown fields are refused: a misspelt
 * `volume` must not quietly compact every volume.
 */
const compactBody = v.strictObject({
  volume: v.optional(v.pipe(v.number(VOLUME_RULE), v.safeInteger(VOLUME_RULE), v.minValue(1))),
});

/** More than any sensible compact request: `{"volume": 123}` is a dozen bytes. */
const ADMIN_BODY_LIMIT = 4096;

/**
 * POST /admin/compact, optionally naming one volume (query `volume=N` or JSON `{"volume": N}`).
 * Answers once the compaction is done, with a report per compacted volume.
 */
export const compactVolumes = factory.createHandlers(async (c) => {
  const query = c.req.query('volume');
  const fromQuery = query === undefined ? undefined : parseOrBadRequest(volumeIdText, query);
  const text = await readSmallBody(c);
  const fromBody =
    text.trim() === '' ? undefined : parseOrBadRequest(compactBody, parseJson(text)).volume;
  if (fromQuery !== undefined && fromBody !== undefined && fromQuery !== fromBody) {
    throw new StoreError(
      'bad_request',
      `the query names volume ${fromQuery} and the body volume ${fromBody}`,
    );
  }
  const volume = fromQuery ?? fromBody;
  const { store } = c.var;
  if (store.compact === undefined) {
    return errorResponse(c, 'not_supported', 'this store has no volumes to compact');
  }
  return c.json({ compacted: await store.compact(volume) }, 200);
});

/** POST /admin/volumes/{id}/readonly: the volume takes no more appends, for good. */
export const markVolumeReadOnly = factory.createHandlers(async (c) => {
  const id = parseOrBadRequest(volumeIdText, c.req.param('id'));
  const { store } = c.var;
  if (store.setVolumeReadOnly === undefined) {
    return errorResponse(c, 'not_supported', 'this store has no volumes to mark read-only');
  }
  return c.json(await store.setVolumeReadOnly(id), 200);
});

function parseOrBadRequest<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (!result.success) {
    throw new StoreError('bad_request', result.issues[0]?.message ?? 'invalid input');
  }
  return result.output;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new StoreError('bad_request', 'the body is not JSON, such as {"volume": 2}');
  }
}

/** The request body as text, refused with `too_large` past `ADMIN_BODY_LIMIT` bytes. */
async function readSmallBody(c: Context<AppEnv>): Promise<string> {
  const body = c.req.raw.body;
  if (body === null) return '';
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = '';
  let bytes = 0;
  try {
    for (;;) {
      const result = await reader.read().catch((err: unknown) => {
        throw new StoreError('bad_request', 'the request body was cut off', { cause: err });
      });
      if (result.done) return text + decoder.decode();
      bytes += result.value.byteLength;
      if (bytes > ADMIN_BODY_LIMIT) {
        throw new StoreError(
          'too_large',
          `an admin request body is at most ${ADMIN_BODY_LIMIT} bytes`,
        );
      }
      text += decoder.decode(result.value, { stream: true });
    }
  } finally {
    await reader.cancel().catch(() => {});
    reader.releaseLock();
  }
}
