import { MAX_KEY } from '../../storage/index.ts';
import { HaystackError } from './haystack-error.ts';

/**
 * How a call names a file: its key, its file id `{key},{cookie}` (8 hex digits, as the server
 * writes it), or what `put` and `replace` answered (its `fid`).
 */
export type FileRef = number | string | { readonly fid: string };

/** A file ref checked: the key, the cookie when given, and the path segment that names it. */
export interface ParsedRef {
  key: number;
  cookie: number | undefined;
  /** `{key}` or `{key},{cookie}`, safe to put in a path as it is. */
  segment: string;
}

const FILE_ID = /^([1-9][0-9]{0,15})(?:,([0-9a-fA-F]{8}))?$/;

/**
 * Checks a ref before it goes into a URL: only a key in range, optionally with a cookie of 8 hex
 * digits, is one, so nothing a caller passes (`../admin`, `1?x`, `%2F`) can reach another path.
 * Anything else is `bad_key` (status 0: the server was not asked), as the server would answer.
 */
export function parseFileRef(ref: FileRef): ParsedRef {
  if (typeof ref === 'number') {
    if (Number.isSafeInteger(ref) && ref >= 1)
      return { key: ref, cookie: undefined, segment: `${ref}` };
    throw badKey(String(ref));
  }
  const text = typeof ref === 'string' ? ref : typeof ref?.fid === 'string' ? ref.fid : undefined;
  const match = text === undefined ? null : FILE_ID.exec(text);
  const key = Number(match?.[1]);
  if (!match || key > MAX_KEY) throw badKey(text === undefined ? typeof ref : text);
  const hex = match[2];
  return {
    key,
    cookie: hex === undefined ? undefined : Number.parseInt(hex, 16),
    segment: hex === undefined ? `${key}` : `${key},${hex.toLowerCase()}`,
  };
}

/** The file id of a key and cookie, as the server writes it. */
export function fileIdOf(key: number, cookie: number): string {
  return `${key},${cookie.toString(16).padStart(8, '0')}`;
}

function badKey(shown: string): HaystackError {
  const text = shown.length > 40 ? `${shown.slice(0, 40)}…` : shown;
  return new HaystackError(
    0,
    'bad_key',
    `${JSON.stringify(text)} names no file: a key is an integer from 1 to ${MAX_KEY}, a file id {key},{cookie} with 8 hex digits`,
  );
}
