import * as v from 'valibot';
import { type Key, MAX_CONTENT_TYPE_LENGTH, MAX_KEY } from '../storage/index.ts';
import { HttpError } from './errors.ts';

const KEY_RULE = `a key is a decimal integer from 1 to ${MAX_KEY}, without sign or leading zeros`;

/**
 * A key as it appears in a path. Only the canonical spelling is a key, so one file has one URL:
 * `007`, `+7`, `7.0` and `0x7` are refused rather than read as 7. Sixteen digits can exceed
 * 2^53-1; such strings round up (never down) when converted, so `maxValue` catches them all.
 */
export const keySchema = v.pipe(
  v.string(KEY_RULE),
  v.regex(/^[1-9][0-9]{0,15}$/, KEY_RULE),
  v.transform(Number),
  v.maxValue(MAX_KEY, KEY_RULE),
);

const COOKIE_RULE = 'a cookie is 8 hexadecimal digits, as in /file/{key},{cookie}';

/** The cookie part of a file id: the file's 32-bit cookie as 8 hex digits, either case. */
export const cookieSchema = v.pipe(
  v.string(COOKIE_RULE),
  v.regex(/^[0-9a-fA-F]{8}$/, COOKIE_RULE),
  v.transform((hex) => Number.parseInt(hex, 16)),
);

/** A file as a path names it: `{key}`, or `{key},{cookie}` (the Haystack/SeaweedFS file id). */
export interface FileId {
  key: Key;
  cookie?: number;
}

/**
 * Content-Length as RFC 9110 writes it (`1*DIGIT`). Leading zeros are legal there, so they are
 * accepted; signs, spaces, fractions and lists are not.
 */
export const contentLengthSchema = v.pipe(
  v.string(),
  v.regex(/^[0-9]+$/, 'Content-Length must be a non-negative decimal integer'),
  v.transform(Number),
);

/** RFC 9110 5.6.2: a token is one or more of these. */
const TOKEN = "[!#$%&'*+.^_`|~0-9A-Za-z-]+";
/** RFC 9110 5.6.4, without obs-text: stored types stay ASCII. */
const QUOTED_STRING = '"(?:[\\t\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]|\\\\[\\t\\x20-\\x7e])*"';
/**
 * RFC 9110 8.3.1: `type/subtype *( OWS ";" OWS [ name=value ] )`. Every repetition must take a
 * `;` and blanks are taken by one place only, so a failing match costs time linear in the length.
 */
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}(?:[ \\t]*;(?:[ \\t]*${TOKEN}=(?:${TOKEN}|${QUOTED_STRING}))?)*$`,
);

/**
 * Content-Type as it will be stored and sent back: a media type by HTTP's grammar, such as
 * `image/jpeg` or `text/plain; charset=utf-8`. Anything else (markup, two types joined by a comma
 * from two headers, control characters that could corrupt the header on the way back) is refused,
 * and since the grammar is ASCII the length limit counts bytes whatever an adapter stores.
 * Blank is allowed here and means "none sent".
 */
export const contentTypeSchema = v.pipe(
  v.string(),
  v.trim(),
  v.maxLength(
    MAX_CONTENT_TYPE_LENGTH,
    `Content-Type must be at most ${MAX_CONTENT_TYPE_LENGTH} bytes`,
  ),
  v.check(
    (type) => type === '' || MEDIA_TYPE.test(type),
    'Content-Type must be a media type such as image/jpeg or text/plain; charset=utf-8',
  ),
);

/** `keySchema`'s pattern: what every valid key looks like, for the fast path of `parseKey`. */
const KEY_TEXT = /^[1-9][0-9]{0,15}$/;

/**
 * Parses a path key, or throws `bad_key`. A valid key is taken by the same tests as `keySchema`
 * (pattern, then at most MAX_KEY) without valibot's result objects: every read parses one.
 */
export function parseKey(raw: unknown): Key {
  if (typeof raw === 'string' && KEY_TEXT.test(raw)) {
    const key = Number(raw);
    if (key <= MAX_KEY) return key;
  }
  const result = v.safeParse(keySchema, raw);
  if (!result.success) throw new HttpError('bad_key', firstMessage(result.issues));
  return result.output;
}

/**
 * Parses a path's file id, or throws `bad_key`: a key, optionally followed by a comma and the
 * cookie. Anything else after the comma (nothing, other lengths, non-hex, a second comma) is
 * refused rather than ignored, so that a typo never reads as a bare key.
 */
export function parseFileId(raw: unknown): FileId {
  if (typeof raw !== 'string' || !raw.includes(',')) return { key: parseKey(raw) };
  const comma = raw.indexOf(',');
  const key = parseKey(raw.slice(0, comma));
  const result = v.safeParse(cookieSchema, raw.slice(comma + 1));
  if (!result.success) throw new HttpError('bad_key', firstMessage(result.issues));
  return { key, cookie: result.output };
}

/** Parses the Content-Length header, if sent, or throws `bad_request`. */
export function parseContentLength(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const result = v.safeParse(contentLengthSchema, raw);
  if (!result.success) throw new HttpError('bad_request', firstMessage(result.issues));
  return result.output;
}

/**
 * Parses the Content-Type header, or throws `bad_request`. Absent or blank gives `undefined`, so
 * the store applies its default rather than storing an empty type.
 */
export function parseContentType(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  const result = v.safeParse(contentTypeSchema, raw);
  if (!result.success) throw new HttpError('bad_request', firstMessage(result.issues));
  return result.output === '' ? undefined : result.output;
}

function firstMessage(issues: readonly v.BaseIssue<unknown>[]): string {
  return issues[0]?.message ?? 'invalid input';
}

const VOLUME_RULE = `a volume is a decimal integer from 1 to ${MAX_KEY}, without sign or leading zeros`;

/**
 * Parses a path's logical volume, or throws `bad_request`: written as a key is (`KEY_TEXT`, at
 * most MAX_KEY), since the Directory hands both out from a bigserial.
 */
export function parseVolume(raw: unknown): number {
  if (typeof raw === 'string' && KEY_TEXT.test(raw)) {
    const volume = Number(raw);
    if (volume <= MAX_KEY) return volume;
  }
  throw new HttpError('bad_request', VOLUME_RULE);
}

const DECIMAL_COOKIE_RULE =
  'a cookie header is a decimal integer from 0 to 4294967295, without sign or leading zeros';
const DECIMAL_U32 = /^(?:0|[1-9][0-9]{0,9})$/;

/**
 * Parses a cookie sent as a header (the replica API's `X-Haystack-Cookie`): the 32-bit cookie in
 * canonical decimal. Absent gives `undefined`; anything else is `bad_request`.
 */
export function parseDecimalCookie(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  if (DECIMAL_U32.test(raw)) {
    const cookie = Number(raw);
    if (cookie <= 0xffff_ffff) return cookie;
  }
  throw new HttpError('bad_request', DECIMAL_COOKIE_RULE);
}

/**
 * Parses an optional query number in canonical decimal from `min` to `max`, or throws
 * `bad_request` naming it; absent gives `fallback`.
 */
export function parseQueryInteger(
  name: string,
  raw: string | undefined,
  { min, max, fallback }: { min: number; max: number; fallback: number },
): number {
  if (raw === undefined) return fallback;
  if (/^(?:0|[1-9][0-9]{0,15})$/.test(raw)) {
    const value = Number(raw);
    if (value >= min && value <= max) return value;
  }
  throw new HttpError(
    'bad_request',
    `${name} must be a decimal integer from ${min} to ${max}, without sign or leading zeros`,
  );
}
