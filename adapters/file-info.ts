import { type FileInfo, type Key, MAX_KEY, StoreError } from '../storage/index.ts';

/** Strong ETag of a file: content under a key never changes, and the cookie tells stores apart. */
export function etagOf(key: number, cookie: number): string {
  return `"${key}-${cookie.toString(16).padStart(8, '0')}"`;
}

export function fileInfo(fields: Omit<FileInfo, 'etag'>): FileInfo {
  return { ...fields, etag: etagOf(fields.key, fields.cookie) };
}

/** Cookies drawn from the system's CSPRNG in batches: one call per 1,024 files. */
const cookiePool = new Uint32Array(1024);
let nextCookie = cookiePool.length;

/**
 * A random 32-bit cookie. With cookies required, the cookie is what stops a stranger from reading
 * files by guessing ids, so it must not be predictable from cookies a client has seen: it comes
 * from the CSPRNG, not Math.random (whose state a few outputs give away). Web Crypto's, so that
 * the adapters without a filesystem run on any fetch-compatible host.
 */
export function randomCookie(): number {
  if (nextCookie === cookiePool.length) {
    globalThis.crypto.getRandomValues(cookiePool);
    nextCookie = 0;
  }
  return cookiePool[nextCookie++] as number;
}

/** A key of the port: an integer from 1 to 2^53-1; anything else is `bad_key`. */
export function checkKey(key: Key): void {
  if (!Number.isSafeInteger(key) || key < 1 || key > MAX_KEY) {
    throw new StoreError('bad_key', `a key is an integer from 1 to ${MAX_KEY}, got ${key}`);
  }
}

/** Whether `cookie` can be a file's cookie at all (a 32-bit unsigned integer). */
export function isCookie(cookie: number): boolean {
  return Number.isInteger(cookie) && cookie >= 0 && cookie <= 0xffff_ffff;
}

/** A replica write's key and cookie, as the caller chose them: a key of the port, a 32-bit cookie. */
export function checkReplicaId(key: Key, cookie: number): void {
  checkKey(key);
  if (!isCookie(cookie)) {
    throw new StoreError('bad_request', `a cookie is a 32-bit unsigned integer, got ${cookie}`);
  }
}
