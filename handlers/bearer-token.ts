import { bearerAuth } from 'hono/bearer-auth';

/**
 * RFC 6750's token characters (b64token): what an `Authorization: Bearer` token may hold, and so
 * what an admin or cluster token is made of.
 */
export const BEARER_TOKEN = /^[A-Za-z0-9._~+/-]+=*$/;

/** Throws unless `token` is one a bearer header can carry; an empty token would let anyone in. */
export function checkBearerToken(name: string, token: string): void {
  if (!BEARER_TOKEN.test(token)) {
    throw new RangeError(
      `${name} must be non-empty, of letters, digits and - . _ ~ + / (then = padding)`,
    );
  }
}

/**
 * Whether `given` is `expected`, in time that depends on their lengths only, never on where they
 * differ. Hono's own comparison hashes both with Web Crypto's SHA-256 first: about 66 us of CPU
 * a call here, against a few for this, and a store node checks the token of every replica call
 * (three per write of a cluster).
 */
export function sameToken(expected: string, given: string): boolean {
  let difference = expected.length ^ given.length;
  const length = Math.max(expected.length, given.length);
  for (let i = 0; i < length; i++) {
    // Past the end of the shorter one, charCodeAt is NaN, and NaN | 0 is 0.
    difference |= (expected.charCodeAt(i) | 0) ^ (given.charCodeAt(i) | 0);
  }
  return difference === 0;
}

/**
 * Lets a request through only with `Authorization: Bearer <token>` (Hono's `bearerAuth` for the
 * header, `sameToken` for the comparison; the body is never touched); anything else is a 401 `unauthorized`
 * with a `WWW-Authenticate` challenge, before the route (or its 404 or 405) is known, so that a
 * stranger learns nothing of the routes behind it. A malformed header is a 401 too, not
 * bearerAuth's 400: to a stranger every refusal looks alike. `what` names the token in messages
 * ("admin token"), `routes` the routes it guards ("admin routes").
 */
export function requireBearerToken(
  token: string,
  { realm, routes, what }: { realm: string; routes: string; what: string },
) {
  return bearerAuth({
    verifyToken: (given) => sameToken(token, given),
    realm,
    noAuthenticationHeader: {
      message: `${routes} need the header Authorization: Bearer <${what}>`,
    },
    invalidAuthenticationHeader: {
      message: () =>
        new Response(`the Authorization header is not "Bearer <${what}>"`, { status: 401 }),
    },
    invalidToken: { message: `the ${what} is not right` },
  });
}
