import { describe, expect, it, vi } from 'vitest';
import { noneMatchHits, parseEntityTags, planRange, planRangedRead } from '../../handlers/range.ts';
import { bodyBytes, bytes, expectError, setup, upload } from './helpers.ts';

const TEN = bytes(0, 1, 2, 3, 4, 5, 6, 7, 8, 9);

async function withFile(data: Uint8Array<ArrayBuffer> = TEN) {
  const fixture = setup();
  const stored = await upload(fixture.app, data, { 'content-type': 'application/x-test' });
  const get = (headers: Record<string, string>) =>
    fixture.app.request(`/file/${stored.key}`, { headers });
  return { ...fixture, stored, get };
}

describe('If-None-Match', () => {
  it.each([
    ['the exact ETag', (etag: string) => etag],
    ['the ETag marked weak', (etag: string) => `W/${etag}`],
    ['a list holding it', (etag: string) => `"nope", ${etag} , "other"`],
    ['*', () => '*'],
  ])('answers 304 with ETag and Cache-Control and no body for %s', async (_, header) => {
    const { get, stored, store } = await withFile();
    const read = vi.spyOn(store, 'get');
    const res = await get({ 'if-none-match': header(stored.etag) });
    expect(res.status).toBe(304);
    expect(res.headers.get('etag')).toBe(stored.etag);
    expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    expect(res.body).toBeNull();
    expect(read).not.toHaveBeenCalled();
  });

  it.each([
    ['another ETag', '"not-this-one"'],
    ['a malformed value', 'not-quoted'],
  ])('answers 200 with the file for %s', async (_, header) => {
    const { get } = await withFile();
    const res = await get({ 'if-none-match': header });
    expect(res.status).toBe(200);
    expect(await bodyBytes(res)).toEqual(TEN);
  });

  it('answers 304 to HEAD too', async () => {
    const { app, stored } = await withFile();
    const res = await app.request(`/file/${stored.key}`, {
      method: 'HEAD',
      headers: { 'if-none-match': stored.etag },
    });
    expect(res.status).toBe(304);
  });

  it('wins over Range', async () => {
    const { get, stored } = await withFile();
    const res = await get({ 'if-none-match': stored.etag, range: 'bytes=0-1' });
    expect(res.status).toBe(304);
  });

  it('does not hide a missing key: * on a deleted file is 404', async () => {
    const { app, stored, get } = await withFile();
    await app.request(`/file/${stored.key}`, { method: 'DELETE' });
    await expectError(await get({ 'if-none-match': '*' }), 404, 'not_found');
  });
});

describe('Range', () => {
  it.each([
    ['bytes=2-5', 2, 5],
    ['bytes=0-0', 0, 0],
    ['bytes=7-', 7, 9],
    ['bytes=-3', 7, 9],
    ['bytes=-100', 0, 9], // a suffix longer than the file is the whole file
    ['bytes=5-1000', 5, 9], // an end past the file is cut to it
    ['bytes=9-9', 9, 9],
    ['BYTES=2-3', 2, 3], // the unit is case-insensitive
    ['bytes=2-3,', 2, 3], // empty list elements are allowed
  ])('%s answers 206 with bytes %i-%i', async (range, start, end) => {
    const { get, stored, store } = await withFile();
    const head = vi.spyOn(store, 'head');
    const read = vi.spyOn(store, 'get');
    const res = await get({ range });
    expect(res.status).toBe(206);
    expect(res.headers.get('content-range')).toBe(`bytes ${start}-${end}/10`);
    expect(res.headers.get('content-length')).toBe(String(end - start + 1));
    expect(res.headers.get('content-type')).toBe('application/x-test');
    expect(res.headers.get('etag')).toBe(stored.etag);
    expect(await bodyBytes(res)).toEqual(TEN.slice(start, end + 1));
    // The size comes from head; only the range is read.
    expect(head).toHaveBeenCalledWith(stored.key, undefined);
    expect(read).toHaveBeenCalledWith(stored.key, { start, end }, undefined);
  });

  it.each(['bytes=10-', 'bytes=10-20', 'bytes=100-', 'bytes=-0'])(
    '%s answers 416 with Content-Range bytes */10 and a JSON error',
    async (range) => {
      const { get, store } = await withFile();
      const read = vi.spyOn(store, 'get');
      const res = await get({ range });
      expect(res.headers.get('content-range')).toBe('bytes */10');
      await expectError(res, 416, 'range_not_satisfiable');
      expect(read).not.toHaveBeenCalled();
    },
  );

  it.each([
    'bytes=0-1,3-4', // several ranges
    'bytes=5-3', // last before first
    'bytes=-',
    'bytes=a-b',
    'bytes=1-2-3',
    'items=0-1', // unknown unit
    'bytes 0-1',
    'bytes=',
  ])('ignores %j and answers 200 with the whole file', async (range) => {
    const { get } = await withFile();
    const res = await get({ range });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-range')).toBeNull();
    expect(await bodyBytes(res)).toEqual(TEN);
  });

  it('on a zero-byte file, bytes=0- is unsatisfiable (416 bytes */0)', async () => {
    const { get } = await withFile(new Uint8Array(0));
    const res = await get({ range: 'bytes=0-' });
    expect(res.headers.get('content-range')).toBe('bytes */0');
    await expectError(res, 416, 'range_not_satisfiable');
  });

  it('on a zero-byte file, a suffix range gets the (empty) whole file', async () => {
    const { get } = await withFile(new Uint8Array(0));
    const res = await get({ range: 'bytes=-5' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('0');
  });

  it('answers 404 for a missing key, whatever the range', async () => {
    const { app } = setup();
    await expectError(
      await app.request('/file/3', { headers: { range: 'bytes=0-1' } }),
      404,
      'not_found',
    );
  });
});

describe('If-Range', () => {
  it('applies the range when the strong ETag matches', async () => {
    const { get, stored } = await withFile();
    const res = await get({ range: 'bytes=0-1', 'if-range': stored.etag });
    expect(res.status).toBe(206);
    expect(await bodyBytes(res)).toEqual(bytes(0, 1));
  });

  it.each([
    ['another ETag', () => '"other"'],
    ['the same ETag marked weak', (etag: string) => `W/${etag}`],
    ['a date', () => 'Wed, 21 Oct 2015 07:28:00 GMT'],
  ])('sends the whole file for %s', async (_, ifRange) => {
    const { get, stored } = await withFile();
    const res = await get({ range: 'bytes=0-1', 'if-range': ifRange(stored.etag) });
    expect(res.status).toBe(200);
    expect(await bodyBytes(res)).toEqual(TEN);
  });

  it('does not turn an unsatisfiable range into a 416 when it does not hold', async () => {
    const { get } = await withFile();
    expect((await get({ range: 'bytes=50-', 'if-range': '"other"' })).status).toBe(200);
  });
});

describe('range.ts', () => {
  it('parseEntityTags reads lists, the wildcard, weak tags and commas inside tags', () => {
    expect(parseEntityTags('*')).toBe('*');
    expect(parseEntityTags('"a"')).toEqual(['"a"']);
    expect(parseEntityTags(' "a" ,W/"b",, "c,d"')).toEqual(['"a"', 'W/"b"', '"c,d"']);
    expect(parseEntityTags('a')).toBeUndefined();
    expect(parseEntityTags('"a" "b"')).toBeUndefined();
    expect(parseEntityTags('"a')).toBeUndefined();
    expect(parseEntityTags('')).toBeUndefined();
  });

  it('noneMatchHits compares weakly', () => {
    expect(noneMatchHits('W/"x"', '"x"')).toBe(true);
    expect(noneMatchHits('"x"', 'W/"x"')).toBe(true);
    expect(noneMatchHits('"y"', '"x"')).toBe(false);
    expect(noneMatchHits(undefined, '"x"')).toBe(false);
  });

  it('planRange handles huge numbers without overflow', () => {
    expect(planRange('bytes=0-99999999999999999999999', 5)).toEqual({
      kind: 'partial',
      start: 0,
      end: 4,
    });
    expect(planRange('bytes=99999999999999999999999-', 5)).toEqual({ kind: 'unsatisfiable' });
    expect(planRange('bytes=-99999999999999999999999', 5)).toEqual({
      kind: 'partial',
      start: 0,
      end: 4,
    });
  });

  it('planRangedRead ignores If-Range without a Range', () => {
    expect(planRangedRead(undefined, '"a"', { size: 3, etag: '"a"' })).toEqual({ kind: 'full' });
  });
});
