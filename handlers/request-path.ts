/**
 * The path of a request URL as it came in (still percent-encoded), found without parsing the URL.
 * `new URL()` would also parse the host, and @hono/node-server passes on hosts from the client's
 * `Host` header that the WHATWG parser rejects (`999.1.1.1`): a route that answers with a path
 * must not fail on them, least of all after it stored a file.
 */
export function requestPath(url: string): string {
  // The path starts at the first `/` after `scheme://`; there is none in `http://host`.
  const start = url.indexOf('/', url.indexOf('://') + 3);
  if (start === -1) return '/';
  let end = start;
  while (end < url.length) {
    const char = url.charCodeAt(end);
    if (char === 0x3f || char === 0x23) break; // `?` or `#`
    end++;
  }
  return url.slice(start, end);
}
