import * as v from 'valibot';
import type { VolumeAdmin } from '../storage/index.ts';
import { requireBearerToken } from './bearer-token.ts';
import type { AppEnv } from './env.ts';
import { errorsAsErrors, HttpError } from './errors.ts';
import { jsonAnswer } from './json-answer.ts';
import { readSmallBody } from './request-body.ts';

export { BEARER_TOKEN } from './bearer-token.ts';

/**
 * Operator routes under `/admin`: compaction and marking volumes read-only. `createApp` mounts
 * them only when an admin token is configured, behind `requireAdminToken`.
 */

/** Lets a request through only with `Authorization: Bearer <admin token>` (see requireBearerToken). */
export function requireAdminToken(token: string) {
  return requireBearerToken(token, {
    realm: 'haystack admin',
    routes: 'admin routes',
    what: 'admin token',
  });
}

const VOLUME_RULE = 'a volume id is an integer from 1 up, without sign or leading zeros';

/** A volume id in a path or a query string. */
export const volumeIdText = v.pipe(
  v.string(VOLUME_RULE),
  v.regex(/^[1-9][0-9]{0,15}$/, VOLUME_RULE),
  v.transform(Number),
  v.safeInteger(VOLUME_RULE),
);

/**
 * The optional JSON body of `POST /admin/compact`. Unknown fields are refused: a misspelt
 * `volume` must not quietly compact every volume.
 */
export const compactBody = v.strictObject({
  volume: v.optional(v.pipe(v.number(VOLUME_RULE), v.safeInteger(VOLUME_RULE), v.minValue(1))),
});

/** More than any sensible compact request: `{"volume": 123}` is a dozen bytes. */
const ADMIN_BODY_LIMIT = 4096;

/**
 * POST /admin/compact, optionally naming one volume (query `volume=N` or JSON `{"volume": N}`).
 * Answers once the compaction is done, with a report per compacted volume. Without `volumes`
 * (a store that has none) it answers 501 `not_supported`.
 */
export function compactVolumes(volumes: VolumeAdmin | undefined) {
  return errorsAsErrors<AppEnv>(async (c) => {
    const query = c.req.query('volume');
    const fromQuery = query === undefined ? undefined : parseOrBadRequest(volumeIdText, query);
    const text = new TextDecoder().decode(await readSmallBody(c, ADMIN_BODY_LIMIT));
    const fromBody =
      text.trim() === '' ? undefined : parseOrBadRequest(compactBody, parseJson(text)).volume;
    if (fromQuery !== undefined && fromBody !== undefined && fromQuery !== fromBody) {
      throw new HttpError(
        'bad_request',
        `the query names volume ${fromQuery} and the body volume ${fromBody}`,
      );
    }
    if (volumes === undefined) {
      throw new HttpError('not_supported', 'this store has no volumes to compact');
    }
    return jsonAnswer(c, { compacted: await volumes.compact(fromQuery ?? fromBody) }, 200);
  });
}

/**
 * POST /admin/volumes/{id}/readonly: the volume takes no more appends, for good. Answers its
 * status, with `readOnly: true` (marked by an operator) and `sealed: true` (takes no appends).
 */
export function markVolumeReadOnly(volumes: VolumeAdmin | undefined) {
  return errorsAsErrors<AppEnv>(async (c) => {
    const id = parseOrBadRequest(volumeIdText, c.req.param('id'));
    if (volumes === undefined) {
      throw new HttpError('not_supported', 'this store has no volumes to mark read-only');
    }
    return jsonAnswer(c, await volumes.setVolumeReadOnly(id), 200);
  });
}

function parseOrBadRequest<S extends v.GenericSchema>(schema: S, input: unknown): v.InferOutput<S> {
  const result = v.safeParse(schema, input);
  if (!result.success) {
    throw new HttpError('bad_request', result.issues[0]?.message ?? 'invalid input');
  }
  return result.output;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new HttpError('bad_request', 'the body is not JSON, such as {"volume": 2}');
  }
}
