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
 * Lets a request through only with `Authorization: Bearer <token>` (Hono's `bearerAuth`, which
 * compares in constant time and never touches the body); anything else is a 401 `unauthorized`
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
    token,
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
