import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { pathReference } from '../../handlers/mount-prefix.ts';

/**
 * `pathReference` on any string at all (the routes give it paths; a fetch host could give it
 * anything): the OpenAPI document's server URL it makes stays on the document's origin, holds
 * only what a URL path may, and names the same path the router matched.
 */

const BASE = 'https://store.example/mounted/openapi.json';
const SAFE = /^\/(?!\/)[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/;
/** Strings near the edge: slashes, dots, backslashes, percent signs and anything else. */
const paths = fc.oneof(
  fc.string({
    unit: fc.constantFrom('/', '\\', '.', '%', '2', 'F', 'a', ' ', '?', '#', ':'),
    maxLength: 12,
  }),
  fc.string({ unit: 'grapheme', maxLength: 12 }).map((s) => `/${s}`),
  fc.string({ unit: 'binary', maxLength: 12 }),
);

describe('pathReference', () => {
  it('is the root as empty, or a path-absolute reference on the same origin', () => {
    fc.assert(
      fc.property(paths, (path) => {
        const ref = pathReference(path);
        if (ref === '') return;
        expect(ref).toMatch(SAFE);
        const resolved = new URL(`${ref}/file`, BASE);
        expect(resolved.origin).toBe('https://store.example');
        // Nothing of it is read as a host, a query or a fragment: it is all path, kept as written
        // but for dot segments (the leading `/.` of `/.//` among them), which a URL loses.
        expect(resolved.search + resolved.hash).toBe('');
        if (!/\/\.\.?(?=\/|$)/.test(ref.replace(/^\/\.(?=\/\/)/, ''))) {
          expect(resolved.pathname).toBe(`${ref.replace(/^\/\.(?=\/\/)/, '')}/file`);
        }
        expect(pathReference(ref)).toBe(ref);
      }),
      { numRuns: 3000 },
    );
  });

  it('names the path it was given: decoded, it is that path', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('%')),
        (rest) => {
          const path = `/x/${rest}`;
          expect(decodeURIComponent(pathReference(path))).toBe(path);
        },
      ),
    );
  });

  it('keeps what is encoded already, and writes a leading // as /.//', () => {
    expect(pathReference('')).toBe('');
    expect(pathReference('/')).toBe('');
    expect(pathReference('/media')).toBe('/media');
    expect(pathReference('/a%2Fb/%C3%A9')).toBe('/a%2Fb/%C3%A9');
    expect(pathReference('/100%')).toBe('/100%25');
    expect(pathReference('/\\evil.example')).toBe('/%5Cevil.example');
    expect(pathReference('//evil.example')).toBe('/.//evil.example');
    expect(pathReference('media')).toBe('/media');
  });
});
