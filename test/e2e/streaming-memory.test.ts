import { createCipheriv, createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { expectFile, getStatus, postFile, randomBody } from '../support/http.ts';

const MiB = 1024 * 1024;

/**
 * Large files go through the server as streams: an upload of declared length is written to its
 * reserved place in the volume as it arrives, a download is read from the volume piece by piece.
 * So the server's resident memory must not grow with the file. These tests move a file of
 * FILE_SIZE through the real server (a child process) and watch its RSS; a server that gathered
 * the body in memory would grow by at least the file's size, four times the bound.
 */
const FILE_SIZE = 256 * MiB;
const RSS_GROWTH_BOUND = 64 * MiB;

/** The file's bytes: AES-256-CTR of zeros under a fixed key, a seeded PRNG any range of which
 * can be generated again, so no test holds the file in memory. */
const KEY = createHash('sha256').update('haystack streaming-memory test').digest();

function* pattern(offset: number, length: number, chunkSize = MiB): Generator<Buffer> {
  const block = Math.floor(offset / 16);
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(block), 8);
  const cipher = createCipheriv('aes-256-ctr', KEY, iv);
  const zeros = Buffer.alloc(chunkSize);
  const skip = offset - block * 16;
  if (skip > 0) cipher.update(zeros.subarray(0, skip));
  for (let left = length; left > 0; ) {
    const n = Math.min(left, chunkSize);
    yield cipher.update(zeros.subarray(0, n));
    left -= n;
  }
}

function sha256Of(chunks: Iterable<Buffer>): string {
  const hash = createHash('sha256');
  for (const chunk of chunks) hash.update(chunk);
  return hash.digest('hex');
}

/** Passes chunks through, hashing them: the sha256 of what was actually sent. */
function* hashing(chunks: Iterable<Buffer>, hash: ReturnType<typeof createHash>) {
  for (const chunk of chunks) {
    hash.update(chunk);
    yield chunk;
  }
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  bytes: number;
  sha256: string;
  text: string;
}

/** Sends `body` (an iterable of chunks, with backpressure) with a Content-Length. */
function upload(
  url: string,
  length: number,
  body: Iterable<Buffer> | AsyncIterable<Buffer>,
): Promise<Answer> {
  const req = http.request(`${url}/file`, {
    method: 'POST',
    headers: { 'content-length': length, 'content-type': 'video/mp4' },
    agent: false,
  });
  const answer = readAnswer(req);
  return pipeline(Readable.from(body, { objectMode: false }), req).then(() => answer);
}

function download(url: string, path: string, headers: http.OutgoingHttpHeaders = {}) {
  const req = http.request(`${url}${path}`, { headers, agent: false });
  req.end();
  return readAnswer(req);
}

/** The response to `req`, its body hashed on the fly (only a short body is kept, as text). */
function readAnswer(req: http.ClientRequest): Promise<Answer> {
  return new Promise((resolve, reject) => {
    req.once('error', reject);
    req.once('response', (res) => {
      const hash = createHash('sha256');
      let bytes = 0;
      let text = '';
      res.on('data', (chunk: Buffer) => {
        hash.update(chunk);
        bytes += chunk.byteLength;
        if (text.length < 4096) text += chunk.toString('latin1');
      });
      res.once('error', reject);
      res.once('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          bytes,
          sha256: hash.digest('hex'),
          text,
        }),
      );
    });
  });
}

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const text = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(text);
  if (!match) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(match[1]) * 1024;
}

/**
 * The child's peak RSS while `transfer` runs: VmRSS sampled every 50 ms, and the kernel's own
 * high-water mark (VmHWM) when it could be reset first (writing 5 to clear_refs), which also
 * catches a peak between two samples.
 */
async function peakRss(pid: number, transfer: () => Promise<void>): Promise<number> {
  let hwmReset = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    hwmReset = false;
  }
  let peak = statusField(pid, 'VmRSS');
  const timer = setInterval(() => {
    peak = Math.max(peak, statusField(pid, 'VmRSS'));
  }, 50);
  try {
    await transfer();
  } finally {
    clearInterval(timer);
  }
  peak = Math.max(peak, statusField(pid, 'VmRSS'));
  if (hwmReset) peak = Math.max(peak, statusField(pid, 'VmHWM'));
  return peak;
}

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

describe('haystack start: large files stream through in flat memory', () => {
  const cli = useCli();

  it(`uploads and downloads ${FILE_SIZE / MiB} MiB, whole and ranged, with RSS growth under ${RSS_GROWTH_BOUND / MiB} MiB`, async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, ['--max-body', '1G']);
    const { url, pid } = server;

    // Warm up the streamed paths (over the 1 MiB gathered in memory) so the baseline includes
    // the code and buffers any request needs, then take the baseline.
    const warm = await upload(url, 3 * MiB, pattern(0, 3 * MiB));
    expect(warm.status, warm.text).toBe(201);
    const warmKey = (JSON.parse(warm.text) as { key: number }).key;
    expect((await download(url, `/file/${warmKey}`)).bytes).toBe(3 * MiB);
    expect((await download(url, `/file/${warmKey}`, { range: 'bytes=5-2000000' })).status).toBe(
      206,
    );
    const baseline = statusField(pid, 'VmRSS');

    const sent = createHash('sha256');
    let stored: Answer | undefined;
    const uploadPeak = await peakRss(pid, async () => {
      stored = await upload(url, FILE_SIZE, hashing(pattern(0, FILE_SIZE), sent));
    });
    expect(stored?.status, stored?.text).toBe(201);
    const { key, size } = JSON.parse(stored?.text ?? '') as { key: number; size: number };
    expect(size).toBe(FILE_SIZE);
    const sentHash = sent.digest('hex');

    let whole: Answer | undefined;
    const downloadPeak = await peakRss(pid, async () => {
      whole = await download(url, `/file/${key}`);
    });
    expect(whole?.status).toBe(200);
    expect(whole?.headers['content-length']).toBe(String(FILE_SIZE));
    expect(whole?.bytes).toBe(FILE_SIZE);
    expect(whole?.sha256).toBe(sentHash);

    // A range from an odd offset deep in the file, to near its end.
    const start = 37 * MiB + 12_345;
    const end = FILE_SIZE - 1_001;
    let ranged: Answer | undefined;
    const rangePeak = await peakRss(pid, async () => {
      ranged = await download(url, `/file/${key}`, { range: `bytes=${start}-${end}` });
    });
    expect(ranged?.status).toBe(206);
    expect(ranged?.headers['content-range']).toBe(`bytes ${start}-${end}/${FILE_SIZE}`);
    expect(ranged?.bytes).toBe(end - start + 1);
    expect(ranged?.sha256).toBe(sha256Of(pattern(start, end - start + 1)));

    const growth = {
      upload: uploadPeak - baseline,
      download: downloadPeak - baseline,
      range: rangePeak - baseline,
    };
    const report = `baseline ${mib(baseline)}; peak growth: upload ${mib(growth.upload)}, download ${mib(growth.download)}, range ${mib(growth.range)}`;
    console.log(`streaming-memory: ${FILE_SIZE / MiB} MiB file, ${report}`);
    expect(growth.upload, report).toBeLessThan(RSS_GROWTH_BOUND);
    expect(growth.download, report).toBeLessThan(RSS_GROWTH_BOUND);
    expect(growth.range, report).toBeLessThan(RSS_GROWTH_BOUND);
    expect(server.running()).toBe(true);
  });

  it('a large upload paused half-way does not hold up small writes and reads of other clients', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const { url } = server;
    const size = 8 * MiB; // over the 1 MiB gathered in memory: streamed into reserved space
    const half = size / 2;

    // The large upload sends half its body, then waits; no response can come before the rest.
    const sent = createHash('sha256');
    let release: () => void = () => {};
    const resume = new Promise<void>((resolve) => {
      release = resolve;
    });
    async function* paced(): AsyncGenerator<Buffer> {
      yield* hashing(pattern(0, half, 256 * 1024), sent);
      await resume;
      yield* hashing(pattern(half, size - half, 256 * 1024), sent);
    }
    let answered = false;
    const large = upload(url, size, paced()).then((answer) => {
      answered = true;
      return answer;
    });

    // The store has reserved the large file's space once /status counts it.
    while ((await getStatus(url)).bytes < size) await new Promise((r) => setTimeout(r, 20));

    // Meanwhile, other clients store and read back small files, concurrently.
    const stored = await Promise.all(
      Array.from({ length: 20 }, (_, i) => postFile(url, randomBody(100 + i * 5_000), 'x/small')),
    );
    await Promise.all(stored.map((file) => expectFile(url, file)));
    expect(answered).toBe(false); // all of that happened with the large upload half-way

    release();
    const answer = await large;
    expect(answer.status, answer.text).toBe(201);
    const info = JSON.parse(answer.text) as { key: number; offset: number; size: number };
    expect(info.size).toBe(size);
    // The small files were placed after the large file's reserved space, not made to wait for it.
    for (const file of stored) expect(file.json.offset).toBeGreaterThan(info.offset);
    const back = await download(url, `/file/${info.key}`);
    expect(back.bytes).toBe(size);
    expect(back.sha256).toBe(sent.digest('hex'));
    expect((await getStatus(url)).liveNeedles).toBe(21);
  });
});
