import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { expectFile, getStatus, postFile, randomBody } from '../support/http.ts';
import { download, pattern, rss, sha256Of, upload, watchTransfer } from '../support/transfer.ts';

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

const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

describe('haystack start: large files stream through in flat memory', () => {
  const cli = useCli();

  it(`uploads (declared and chunked) and downloads ${FILE_SIZE / MiB} MiB, whole and ranged, with RSS growth under ${RSS_GROWTH_BOUND / MiB} MiB`, async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir, ['--max-body', '1G']);
    const { url, pid } = server;

    // Warm up the streamed paths (over the 1 MiB gathered in memory) so the baseline includes
    // the code and buffers any request needs, then take the baseline.
    const warm = await upload(url, 3 * MiB, pattern(0, 3 * MiB));
    expect(warm.status, warm.text).toBe(201);
    const warmKey = (JSON.parse(warm.text) as { key: number }).key;
    expect((await download(url, warmKey)).bytes).toBe(3 * MiB);
    expect((await download(url, warmKey, { range: 'bytes=5-2000000' })).status).toBe(206);
    const baseline = rss(pid);

    const sent = createHash('sha256');
    const { result: stored, peakRss: uploadPeak } = await watchTransfer(pid, () =>
      upload(url, FILE_SIZE, pattern(0, FILE_SIZE, { hash: sent })),
    );
    expect(stored.status, stored.text).toBe(201);
    const { key, size } = JSON.parse(stored.text) as { key: number; size: number };
    expect(size).toBe(FILE_SIZE);
    const sentHash = sent.digest('hex');

    const { result: whole, peakRss: downloadPeak } = await watchTransfer(pid, () =>
      download(url, key),
    );
    expect(whole.status).toBe(200);
    expect(whole.headers['content-length']).toBe(String(FILE_SIZE));
    expect(whole.bytes).toBe(FILE_SIZE);
    expect(whole.sha256).toBe(sentHash);

    // A range from an odd offset deep in the file, to near its end.
    const start = 37 * MiB + 12_345;
    const end = FILE_SIZE - 1_001;
    const { result: ranged, peakRss: rangePeak } = await watchTransfer(pid, () =>
      download(url, key, { range: `bytes=${start}-${end}` }),
    );
    expect(ranged.status).toBe(206);
    expect(ranged.headers['content-range']).toBe(`bytes ${start}-${end}/${FILE_SIZE}`);
    expect(ranged.bytes).toBe(end - start + 1);
    expect(ranged.sha256).toBe(sha256Of(pattern(start, end - start + 1)));

    // A chunked upload (no Content-Length): spooled to disk past 1 MiB, then copied in.
    const sentChunked = createHash('sha256');
    const { result: chunkedStored, peakRss: chunkedPeak } = await watchTransfer(pid, () =>
      upload(url, undefined, pattern(0, FILE_SIZE, { hash: sentChunked })),
    );
    expect(chunkedStored.status, chunkedStored.text).toBe(201);
    const chunkedInfo = JSON.parse(chunkedStored.text) as { key: number; size: number };
    expect(chunkedInfo.size).toBe(FILE_SIZE);
    const chunkedBack = await download(url, chunkedInfo.key);
    expect(chunkedBack.sha256).toBe(sentChunked.digest('hex'));

    const growth = {
      upload: uploadPeak - baseline,
      download: downloadPeak - baseline,
      range: rangePeak - baseline,
      chunked: chunkedPeak - baseline,
    };
    const report = `baseline ${mib(baseline)}; peak growth: upload ${mib(growth.upload)}, download ${mib(growth.download)}, range ${mib(growth.range)}, chunked upload ${mib(growth.chunked)}`;
    console.log(`streaming-memory: ${FILE_SIZE / MiB} MiB file, ${report}`);
    expect(growth.upload, report).toBeLessThan(RSS_GROWTH_BOUND);
    expect(growth.download, report).toBeLessThan(RSS_GROWTH_BOUND);
    expect(growth.range, report).toBeLessThan(RSS_GROWTH_BOUND);
    expect(growth.chunked, report).toBeLessThan(RSS_GROWTH_BOUND);
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
      yield* pattern(0, half, { chunkSize: 256 * 1024, hash: sent });
      await resume;
      yield* pattern(half, size - half, { chunkSize: 256 * 1024, hash: sent });
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
    const back = await download(url, info.key);
    expect(back.bytes).toBe(size);
    expect(back.sha256).toBe(sent.digest('hex'));
    expect((await getStatus(url)).liveNeedles).toBe(21);
  });
});
