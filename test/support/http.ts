import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';

/** A file as the client sent it, and the content type the store must give back. */
export interface SentFile {
  key: number;
  bytes: Uint8Array;
  contentType: string;
}

export interface StoredJson {
  key: number;
  size: number;
  offset: number;
  volume: number;
  flag: boolean;
  contentType?: string;
  etag?: string;
}

export interface StatusJson {
  liveNeedles: number;
  deletedNeedles: number;
  bytes: number;
  liveBytes: number;
  nextKey?: number;
  volumes: unknown[];
}

export const OCTET_STREAM = 'application/octet-stream';

export function randomBody(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(randomBytes(size));
}

/** Headers for an upload; none at all when `contentType` is undefined. */
function typeHeader(contentType: string | undefined): Record<string, string> {
  return contentType === undefined ? {} : { 'content-type': contentType };
}

/** POST /file, expecting 201; returns what the client needs to check the file later. */
export async function postFile(
  url: string,
  bytes: Uint8Array<ArrayBuffer>,
  contentType?: string,
): Promise<SentFile & { json: StoredJson; res: Response }> {
  const res = await fetch(`${url}/file`, {
    method: 'POST',
    body: bytes,
    headers: typeHeader(contentType),
  });
  const text = await res.text();
  expect(res.status, text).toBe(201);
  const json = JSON.parse(text) as StoredJson;
  expect(res.headers.get('location')).toBe(`/file/${json.key}`);
  return { key: json.key, bytes, contentType: contentType ?? OCTET_STREAM, json, res };
}

/** PUT /file/{key}, expecting 200; the new key comes back. */
export async function putFile(
  url: string,
  key: number,
  bytes: Uint8Array<ArrayBuffer>,
  contentType?: string,
): Promise<SentFile & { json: StoredJson }> {
  const res = await fetch(`${url}/file/${key}`, {
    method: 'PUT',
    body: bytes,
    headers: typeHeader(contentType),
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  const json = JSON.parse(text) as StoredJson;
  return { key: json.key, bytes, contentType: contentType ?? OCTET_STREAM, json };
}

export async function deleteFile(url: string, key: number): Promise<void> {
  const res = await fetch(`${url}/file/${key}`, { method: 'DELETE' });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  expect(JSON.parse(text)).toMatchObject({ key, flag: false });
}

/** GET /file/{key}: 200, byte-exact, with its content type and length. Returns the ETag. */
export async function expectFile(url: string, file: SentFile): Promise<string | null> {
  const res = await fetch(`${url}/file/${file.key}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  expect(res.status, `GET /file/${file.key}`).toBe(200);
  expect(res.headers.get('content-type'), `type of ${file.key}`).toBe(file.contentType);
  expect(res.headers.get('content-length'), `length of ${file.key}`).toBe(
    String(file.bytes.byteLength),
  );
  // Buffer.equals is a byte comparison, and on failure names the key instead of dumping bytes.
  expect(Buffer.from(bytes).equals(Buffer.from(file.bytes)), `bytes of ${file.key}`).toBe(true);
  return res.headers.get('etag');
}

/** GET /file/{key}: 404 with the JSON error body. */
export async function expectGone(url: string, key: number): Promise<void> {
  const res = await fetch(`${url}/file/${key}`);
  const body = (await res.json()) as { error?: { code?: string } };
  expect(res.status, `GET /file/${key}`).toBe(404);
  expect(body.error?.code).toBe('not_found');
}

export async function getStatus(url: string): Promise<StatusJson> {
  const res = await fetch(`${url}/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as StatusJson;
}

/** Runs `task` over `items`, at most `limit` at a time (the crash loop's own). */
export { eachLimited } from '../../scripts/torture/each-limited.ts';

/**
 * What a restart (or an index rebuild) must keep: every live file byte-exact with its type,
 * every retired key gone, the same live count as `before`, and the next key above `lastKey`.
 * Answers each live file's ETag, by key.
 */
export async function expectKept(
  url: string,
  kept: { live: readonly SentFile[]; gone: readonly number[]; before: StatusJson; lastKey: number },
): Promise<Map<number, string | null>> {
  const etags = new Map<number, string | null>();
  for (const file of kept.live) etags.set(file.key, await expectFile(url, file));
  for (const key of kept.gone) await expectGone(url, key);
  const after = await getStatus(url);
  expect(after.liveNeedles).toBe(kept.before.liveNeedles);
  expect(after.liveBytes).toBe(kept.before.liveBytes);
  const next = await postFile(url, randomBody(1), 'text/plain');
  expect(next.key).toBeGreaterThan(kept.lastKey);
  return etags;
}
