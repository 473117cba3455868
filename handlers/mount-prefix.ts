import type { Context } from 'hono';
import { routePath } from 'hono/route';
import { requestPath } from './request-path.ts';

/**
 * Where the app is mounted, seen from a request to one of its routes (`own`, its path in the app,
 * such as `/openapi.json`): `/media` under `parent.route('/media', app)`, '' when it is not
 * mounted. It is the OpenAPI document's `servers` URL, so it is made a same-origin path reference
 * whatever the request was, and nothing is read from a header (no `Host`, no `X-Forwarded-*`).
 *
 * - A fixed mount (`/media`, or a parent's `basePath`) gives its own pattern, from the route that
 *   matched: nothing of the request goes in, and every request gets the same prefix.
 * - A mount with parameters or a wildcard (`/:tenant`) gives the part of this request's own path
 *   (as sent, still percent-encoded) before its last segment, which is `own`'s: the prefix the
 *   pattern matched. A client picks it, so it is its own answer's and kept nowhere.
 *
 * `parent.mount('/media', app.fetch)` hands the app a request with the prefix taken off, so
 * there it cannot be seen; `parent.route` is how createApp is mounted.
 */
export function mountPrefix(c: Context, own: string): string {
  const pattern = routePath(c);
  if (pattern.endsWith(own)) {
    const mount = pattern.slice(0, -own.length);
    if (!/[:*]/.test(mount)) return pathReference(mount);
  }
  // A parent with `strict: false` takes `.../openapi.json/` too.
  const path = requestPath(c.req.url).replace(/(.)\/$/, '$1');
  return pathReference(path.slice(0, path.lastIndexOf('/')));
}

/** What RFC 3986 lets a path segment hold unescaped, and `/`; `%` only as `%XX`. */
const UNSAFE = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]|%(?![0-9A-Fa-f]{2})/gu;
const encoder = new TextEncoder();

/**
 * `path` as a path-absolute URL reference that a client resolves against this origin: anything
 * a path may not hold unescaped is percent-encoded (a `\` would turn into `/` in a browser), and
 * a path that begins with `//`, which would read as another host, is written `/.//` (RFC 3986
 * 5.2.4 takes the `.` away again; WHATWG URL serializes such paths the same way). '' and `/`
 * are the origin's root: ''.
 */
export function pathReference(path: string): string {
  if (path === '' || path === '/') return '';
  const escaped = (path.startsWith('/') ? path : `/${path}`).replace(UNSAFE, (char) =>
    Array.from(
      encoder.encode(char),
      (byte) => `%${byte.toString(16).toUpperCase().padStart(2, '0')}`,
    ).join(''),
  );
  return escaped.startsWith('//') ? `/.${escaped}` : escaped;
}
