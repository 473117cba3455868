/**
 * Large files through a server over node:http while watching the server's memory: shared by the
 * streaming-memory e2e test and `npm run bench:stream`, so the test asserts what the bench
 * measures. No vitest here: the bench runs this under tsx.
 */
import { createCipheriv, createHash, type Hash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const MiB = 1024 * 1024;

const KEY = createHash('sha256').update('haystack transfer pattern').digest();

/**
 * `length` bytes of the file from `offset`: AES-256-CTR of zeros under a fixed key, so any range
 * can be generated again and nobody holds the file in memory. Each chunk is fed to `hash` as it is
 * yielded: the sha256 of what was really sent.
 */
export function* pattern(
  offset: number,
  length: number,
  { chunkSize = MiB, hash }: { chunkSize?: number; hash?: Hash | undefined } = {},
): Generator<Buffer> {
  const block = Math.floor(offset / 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(block), 8);
  const cipher = createCipheriv('aes-256-ctr', KEY, iv);
  const zeros = Buffer.alloc(chunkSize);
  const skip = offset - block * 16;
  if (skip > 0) cipher.update(zeros.subarray(0, skip));
  for (let left = length; left > 0; ) {
    const n = Math.min(left, chunkSize);
    const chunk = cipher.update(zeros.subarray(0, n));
    hash?.update(chunk);
    yield chunk;
    left -= n;
  }
}

/** The sha256 (hex) of `chunks`, e.g. of a range of `pattern`, without keeping them. */
export function sha256Of(chunks: Iterable<Buffer>): string {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

export interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  /** Undefined when the body was not hashed. */
  sha256: string | undefined;
  /** The body's start, as text. */
  text: string;
}

/** POST /file, `body` streamed with backpressure as a large upload is, with a Content-Length or chunked. */
export function upload(
  url: string,
  /** `undefined`: no Content-Length, so the body goes chunked. */
  length: number | undefined,
  body: Iterable<Buffer> | AsyncIterable<Buffer>,
): Promise<Answer> {
  const declared = length === undefined ? {} : { 'content-length': length };
  const req = http.request(`${url}/file`, {
    method: 'POST',
    headers: { ...declared, 'content-type': 'video/mp4' },
    agent: false,
  });
  const answer = readAnswer(req, false);
  return pipeline(Readable.from(body, { objectMode: false }), req).then(
    () => answer,
    (err: unknown) => {
      answer.catch(() => {}); // the same failure, seen from the response side
      throw err;
    },
  );
}

/**
 * GET /file/{key}, whole or a `range` (a Range header value). `hash: false` skips the sha256, so a
 * benchmark without verification does not pay for it.
 */
export function download(
  url: string,
  key: number,
  { range, hash = true }: { range?: string; hash?: boolean } = {},
): Promise<Answer> {
  const headers = range === undefined ? {} : { range };
  const req = http.request(`${url}/file/${key}`, { headers, agent: false });
  req.end();
  return readAnswer(req, hash);
}

/** The response to `req`, counted and hashed as it streams: only its start is kept. */
function readAnswer(req: http.ClientRequest, hashBody: boolean): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const hash = hashBody ? createHash('sha256') : undefined;
      let bytes = 0;
      let text = '';
      res.on('data', (chunk: Buffer) => {
        hash?.update(chunk);
        bytes += chunk.byteLength;
        if (text.length < 4096) text += chunk.toString('latin1');
      });
      res.once('error', reject);
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          sha256: hash?.digest('hex'),
          text,
        }),
      );
    });
  });
}

/** The resident set size of process `pid` now, in bytes. */
export function rss(pid: number): number {
  return procStatus(pid, 'VmRSS');
}

function procStatus(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

export interface Watched<T> {
  result: T;
  /** Wall time of the transfer alone. */
  seconds: number;
  peakRss: number;
  /** Whether VmHWM could be reset, hence counted in `peakRss`. */
  hwmReset: boolean;
}

/**
 * Runs `transfer` while watching process `pid`: its peak RSS is VmRSS sampled every 50 ms and,
 * when it could be reset first (5 into clear_refs), the kernel's VmHWM, which also catches a peak
 * between two samples.
 */
export async function watchTransfer<T>(
  pid: number,
  transfer: () => Promise<T>,
): Promise<Watched<T>> {
  let hwmReset = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    hwmReset = false;
  }
  let peak = rss(pid);
  const timer = setInterval(() => {
    peak = Math.max(peak, rss(pid));
  }, 50);
  const started = performance.now();
  let result: T;
  try {
    result = await transfer();
  } finally {
    clearInterval(timer);
  }
  const seconds = (performance.now() - started) / 1000;
  peak = Math.max(peak, rss(pid));
  if (hwmReset) peak = Math.max(peak, procStatus(pid, 'VmHWM'));
  return { result, seconds, peakRss: peak, hwmReset };
}
