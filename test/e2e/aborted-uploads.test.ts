import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { expectFile, postFile, randomBody, type SentFile } from '../support/http.ts';
import { connect, type RawConnection } from '../support/raw-http.ts';

const MiB = 1024 * 1024;
const TOKEN = 'e2e-admin-token-0123456789abcdef';

interface Status {
  bytes: number;
  garbageBytes: number;
  volumes: Array<{ id: number }>;
}

async function status(url: string): Promise<Status> {
  const res = await fetch(`${url}/status`);
  expect(res.status).toBe(200);
  return (await res.json()) as Status;
}

/** Asks /status until it shows what `done` waits for: each answer is the event, not a timer. */
async function statusUntil(url: string, done: (s: Status) => boolean, what: string) {
  for (let asked = 0; asked < 10_000; asked++) {
    const s = await status(url);
    if (done(s)) return s;
  }
  throw new Error(`/status never showed ${what}: ${JSON.stringify(await status(url))}`);
}

/** A POST that declares `length` bytes and sends 10 of them. */
async function declareAndStall(url: string, length: number, expectContinue = false) {
  const upload = await connect(url);
  const expect100 = expectContinue ? 'Expect: 100-continue\r\n' : '';
  await upload.write(
    `POST /file HTTP/1.1\r\nHost: test\r\nContent-Length: ${length}\r\n${expect100}\r\n`,
  );
  // The interim answer proves the server is handling the request before it is cut off.
  if (expectContinue) expect((await upload.readResponse()).status).toBe(100);
  await upload.write(randomBody(10));
  return upload;
}

async function volumeFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((name) => name.endsWith('.dat')).sort();
}

async function openDescriptors(pid: number): Promise<number | undefined> {
  return readdir(`/proc/${pid}/fd`).then(
    (fds) => fds.length,
    () => undefined, // not Linux: a figure for the log only
  );
}

describe('haystack start: uploads that declare a large length and go away', () => {
  const cli = useCli();

  it('make no volumes, leave holes that /status counts (after a restart too), and /admin/compact reclaims them', async () => {
    const dir = await cli.tempDir();
    let server = await cli.start(dir, ['--volume-size', '8M', '--admin-token', TOKEN]);
    const descriptorsAtStart = await openDescriptors(server.pid);

    // The attack, small: bursts of 70 uploads declaring 4 MiB each, 10 bytes sent, then gone.
    for (let burst = 0; burst < 5; burst++) {
      const uploads: RawConnection[] = await Promise.all(
        Array.from({ length: 70 }, () => declareAndStall(server.url, 4 * MiB, true)),
      );
      for (const upload of uploads) upload.abort();
      await Promise.all(uploads.map((upload) => upload.closed));
    }
    const afterBursts = await status(server.url);
    expect(afterBursts.volumes.map((v) => v.id)).toEqual([1]);
    expect(await volumeFiles(dir)).toEqual(['1.dat']);

    // Holes that stay: an upload streaming into its reserved space, a small file stored behind
    // it, then the upload cut off.
    const kept: SentFile[] = [];
    const hole = 1.5 * MiB;
    for (let round = 0; round < 4; round++) {
      const before = await status(server.url);
      const upload = await declareAndStall(server.url, hole);
      await statusUntil(server.url, (s) => s.bytes >= before.bytes + hole, 'the reservation');
      kept.push(await postFile(server.url, randomBody(100)));
      upload.abort();
      await statusUntil(
        server.url,
        (s) => s.garbageBytes >= before.garbageBytes + hole,
        'the hole as garbage',
      );
    }
    const holes = await status(server.url);
    expect(holes.volumes.map((v) => v.id)).toEqual([1]);
    expect(holes.garbageBytes).toBeGreaterThan(4 * hole);
    expect(holes.garbageBytes).toBeLessThan(holes.bytes);
    const descriptorsAtEnd = await openDescriptors(server.pid);

    // Counted the same after a restart: the holes are gaps between the index's entries.
    const stopped = await cli.stop(server);
    expect(stopped.code, stopped.stderr).toBe(0);
    expect(await volumeFiles(dir)).toEqual(['1.dat']);
    server = await cli.start(dir, ['--volume-size', '8M', '--admin-token', TOKEN]);
    expect(await status(server.url)).toMatchObject({
      bytes: holes.bytes,
      garbageBytes: holes.garbageBytes,
    });

    const compacted = await fetch(`${server.url}/admin/compact`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(compacted.status).toBe(200);
    const { compacted: reports } = (await compacted.json()) as {
      compacted: Array<{ volume: number; reclaimedBytes: number; bytesAfter: number }>;
    };
    expect(reports).toMatchObject([
      { volume: 1, reclaimedBytes: holes.garbageBytes, inPlace: true },
    ]);
    const after = await status(server.url);
    expect(after).toMatchObject({ garbageBytes: 0, bytes: holes.bytes - holes.garbageBytes });
    // Compacted in place: mostly holes, so no new volume was started for it.
    expect(await volumeFiles(dir)).toEqual(['1.dat']);
    for (const file of kept) await expectFile(server.url, file);

    console.log(
      `aborted-uploads: 350 aborted 4 MiB uploads -> volumes ${afterBursts.volumes.length}, bytes ${afterBursts.bytes}; ` +
        `4 holes of 1.5 MiB -> bytes ${holes.bytes}, garbageBytes ${holes.garbageBytes}; ` +
        `descriptors ${descriptorsAtStart} at start, ${descriptorsAtEnd} after; ` +
        `compact reclaimed ${reports[0]?.reclaimedBytes}, bytes now ${after.bytes}`,
    );
  });
});
