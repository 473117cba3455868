import type { FileInfo } from '../storage/index.ts';

/** Strong ETag of a file: content under a key never changes, and the cookie tells stores apart. */
export function etagOf(key: number, cookie: number): string {
  return `"${key}-${cookie.toString(16).padStart(8, '0')}"`;
}

export function fileInfo(fields: Omit<FileInfo, 'etag'>): FileInfo {
  return { ...fields, etag: etagOf(fields.key, fields.cookie) };
}

/** A random 32-bit cookie (Math.random is enough: it guards caches, not secrets). */
export function randomCookie(): number {
  return (Math.random() * 2 ** 32) >>> 0;
}
