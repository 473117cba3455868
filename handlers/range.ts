/**
 * Conditional and ranged reads (RFC 9110 sections 13 and 14), as pure functions of header values.
 * Content under a key never changes, so its ETag is the only validator needed.
 */

/** What a GET sends: the whole file, one byte range of it, or a 416. */
export type RangePlan =
  | { kind: 'full' }
  | { kind: 'partial'; start: number; end: number }
  | { kind: 'unsatisfiable' };

const FULL: RangePlan = { kind: 'full' };
const UNSATISFIABLE: RangePlan = { kind: 'unsatisfiable' };

/** One `entity-tag`: optional `W/`, then a quoted opaque tag (which may contain commas). */
const ENTITY_TAG = /^(?:W\/)?"[\x21\x23-\x7e\x80-\xff]*"/;

/**
 * Splits an If-None-Match / If-Match value into its entity tags. Returns `'*'` for the wildcard
 * and `undefined` for a malformed value, which callers ignore as if it had not been sent.
 */
export function parseEntityTags(value: string): '*' | string[] | undefined {
  if (value.trim() === '*') return '*';
  const tags: string[] = [];
  let rest = value;
  for (;;) {
    // RFC 9110 lists allow empty elements and whitespace around commas.
    rest = rest.replace(/^[ \t,]+/, '');
    if (rest === '') return tags.length > 0 ? tags : undefined;
    const tag = ENTITY_TAG.exec(rest)?.[0];
    if (tag === undefined) return undefined;
    tags.push(tag);
    rest = rest.slice(tag.length);
    if (!/^[ \t]*(?:,|$)/.test(rest)) return undefined;
  }
}

/** Weak comparison: equal opaque tags, whether or not either is marked `W/`. */
export function weakMatch(a: string, b: string): boolean {
  return stripWeak(a) === stripWeak(b);
}

/** Strong comparison: both strong and identical. */
export function strongMatch(a: string, b: string): boolean {
  return !isWeak(a) && !isWeak(b) && a === b;
}

/** Whether an If-None-Match value matches the file's ETag, so GET and HEAD answer 304. */
export function noneMatchHits(ifNoneMatch: string | undefined, etag: string): boolean {
  if (ifNoneMatch === undefined) return false;
  const tags = parseEntityTags(ifNoneMatch);
  if (tags === undefined) return false;
  return tags === '*' || tags.some((tag) => weakMatch(tag, etag));
}

/**
 * Whether a Range may be applied under If-Range. An entity tag must match strongly; a date never
 * matches, as the store sends no Last-Modified to compare it with.
 */
export function ifRangeHolds(ifRange: string | undefined, etag: string): boolean {
  return ifRange === undefined || strongMatch(ifRange, etag);
}

/**
 * Reads a Range header against a file of `size` bytes. Only one range of `bytes` is served: a
 * missing, malformed or multi-range header gets the whole file (RFC 9110 lets a server ignore
 * Range), and a well-formed range outside the file gets a 416.
 */
export function planRange(range: string | undefined, size: number): RangePlan {
  if (range === undefined) return FULL;
  const set = /^bytes=(.*)$/i.exec(range)?.[1];
  if (set === undefined) return FULL;
  const specs = set
    .split(',')
    .map((spec) => spec.trim())
    .filter((spec) => spec !== '');
  const [spec] = specs;
  if (spec === undefined || specs.length > 1) return FULL;
  const bounds = /^([0-9]*)-([0-9]*)$/.exec(spec);
  const first = bounds?.[1];
  const last = bounds?.[2];
  if (first === undefined || last === undefined || (first === '' && last === '')) return FULL;

  if (first === '') return suffixPlan(Number(last), size);
  const start = Number(first);
  if (last !== '' && Number(last) < start) return FULL; // `5-3` is not a range at all
  if (start >= size) return UNSATISFIABLE;
  const end = last === '' ? size - 1 : Math.min(Number(last), size - 1);
  return { kind: 'partial', start, end };
}

/**
 * `bytes=-n`, the last n bytes. `-0` asks for nothing and is unsatisfiable. On an empty file any
 * other suffix is satisfiable in RFC 9110's terms, yet no `Content-Range` can describe zero bytes,
 * so the (empty) whole file is sent instead.
 */
function suffixPlan(length: number, size: number): RangePlan {
  if (length === 0) return UNSATISFIABLE;
  if (size === 0) return FULL;
  return { kind: 'partial', start: Math.max(0, size - length), end: size - 1 };
}

export function contentRange(start: number, end: number, size: number): string {
  return `bytes ${start}-${end}/${size}`;
}

/** The Content-Range a 416 carries, so the client learns the size. */
export function unsatisfiedRange(size: number): string {
  return `bytes */${size}`;
}

function isWeak(tag: string): boolean {
  return tag.startsWith('W/');
}

function stripWeak(tag: string): string {
  return isWeak(tag) ? tag.slice(2) : tag;
}

/**
 * The Range plan for a GET of a file, after If-Range: a range asked under a validator that no
 * longer matches gets the whole file (RFC 9110 13.1.5).
 */
export function planRangedRead(
  range: string | undefined,
  ifRange: string | undefined,
  file: { size: number; etag: string },
): RangePlan {
  return ifRangeHolds(ifRange, file.etag) ? planRange(range, file.size) : FULL;
}
