import http from 'node:http';
import { afterAll, describe, expect, it, type TestContext } from 'vitest';
import {
  type Cli,
  LISTENING,
  loggedErrors,
  logMessages,
  type ServerRun,
  useCli,
} from '../support/cli.ts';
import { buildFaultyIo, type FaultyDisk, faultyDisk } from '../support/faulty-io.ts';
import {
  deleteFile,
  expectFile,
  expectGone,
  getStatus,
  postFile,
  putFile,
  randomBody,
  type SentFile,
} from '../support/http.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * A disk that fails with EIO: the server runs as a child process with an LD_PRELOAD shim
 * (test/support/faulty-io) that makes writes and/or flushes (fsync, fdatasync) of its volume
 * (`.dat`) or index (`.idx`) files fail while a trigger file exists. Every write below that is
 * meant to meet the failing disk is checked to fail, so the shim cannot silently miss.
 */
const shimDir = await makeTempDir('haystack-faulty-io-');
const library = await buildFaultyIo(shimDir);
afterAll(() => removeTempDir(shimDir));

function requireShim(ctx: TestContext): string {
  if (library) return library;
  return ctx.skip(
    process.platform === 'linux'
      ? 'no C compiler (cc) to build the LD_PRELOAD shim'
      : 'the LD_PRELOAD shim needs Linux',
  );
}

/** Above the store's 1 MiB: streamed to the volume as it arrives, through the thread pool. */
const LARGE = 2 * 1024 * 1024 + 123;

/**
 * What the client knows about every key: files it was told are stored, keys it was told are
 * deleted or replaced, keys whose delete or replace failed (still there whole, or gone), and the
 * bodies of uploads that failed (a key nobody was told about holds one of them whole, or nothing).
 */
interface Known {
  files: Map<number, SentFile>;
  gone: Set<number>;
  unsure: Map<number, SentFile>;
  failed: Array<Omit<SentFile, 'key'>>;
}

function known(): Known {
  return { files: new Map(), gone: new Set(), unsure: new Map(), failed: [] };
}

interface Answer {
  status: number;
  code: string | undefined;
  message: string;
  text: string;
}

async function send(
  url: string,
  method: string,
  path: string,
  body?: Uint8Array<ArrayBuffer>,
  contentType?: string,
): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method,
    ...(body === undefined ? {} : { body }),
    headers: contentType === undefined ? {} : { 'content-type': contentType },
  });
  const text = await res.text();
  return { status: res.status, ...parseError(text), text };
}

/**
 * An upload on a connection of its own. The store answers a streamed upload it cannot write
 * before reading all of it, and the connection is then closed (though the answer said
 * keep-alive): a pooled connection would fail the next request sent on it.
 */
function sendAlone(
  url: string,
  method: string,
  path: string,
  body: Uint8Array<ArrayBuffer>,
  contentType: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      `${url}${path}`,
      { method, agent: false, headers: { 'content-type': contentType } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          text += chunk;
        });
        res.on('error', reject);
        res.on('end', () => {
          const json = parseError(text);
          resolve({ status: res.statusCode ?? 0, ...json, text });
        });
      },
    );
    // The server may stop reading the body once it has answered: that is not a failure here.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ECONNRESET') reject(err);
    });
    req.end(body);
  });
}

function parseError(text: string): { code: string | undefined; message: string } {
  try {
    const json = JSON.parse(text) as { error?: { code?: string; message?: string } };
    return { code: json.error?.code, message: json.error?.message ?? '' };
  } catch {
    return { code: undefined, message: '' }; // not JSON: the caller's checks fail on it
  }
}

/** The store's answer to a failing disk: 500 `io_error`, in JSON, without a stack trace. */
function expectIoError(answer: Answer, what: string): void {
  expect(answer.status, `${what}: ${answer.text}`).toBe(500);
  expect(answer.code, `${what}: ${answer.text}`).toBe('io_error');
  expect(answer.text).not.toMatch(/\n\s+at /);
}

/** A POST meant to fail; its body is remembered, as it may be on disk all the same. */
async function failingPost(
  url: string,
  state: Known,
  bytes: Uint8Array<ArrayBuffer>,
  contentType: string,
): Promise<Answer> {
  state.failed.push({ bytes, contentType });
  const answer =
    bytes.byteLength > 1024 * 1024
      ? await sendAlone(url, 'POST', '/file', bytes, contentType)
      : await send(url, 'POST', '/file', bytes, contentType);
  expectIoError(answer, `POST of ${bytes.byteLength} bytes`);
  return answer;
}

/** A PUT meant to fail: the old file may be gone, the new content may be stored whole. */
async function failingPut(
  url: string,
  state: Known,
  key: number,
  bytes: Uint8Array<ArrayBuffer>,
): Promise<Answer> {
  const file = state.files.get(key) as SentFile;
  state.failed.push({ bytes, contentType: 'image/webp' });
  const answer = await send(url, 'PUT', `/file/${key}`, bytes, 'image/webp');
  expectIoError(answer, `PUT ${key}`);
  state.files.delete(key);
  state.unsure.set(key, file);
  return answer;
}

/** A DELETE meant to fail: the file may be there still, or gone. */
async function failingDelete(url: string, state: Known, key: number): Promise<Answer> {
  const file = state.files.get(key) as SentFile;
  const answer = await send(url, 'DELETE', `/file/${key}`);
  expectIoError(answer, `DELETE ${key}`);
  state.files.delete(key);
  state.unsure.set(key, file);
  return answer;
}

/** Files of several sizes, then a replace and a delete, all acknowledged. */
async function storeSome(url: string, state: Known, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const size = [0, 1, 4096, 70_000, 300_000, LARGE][i % 6] as number;
    const file = await postFile(url, randomBody(size), i % 2 ? 'image/png' : 'text/plain');
    state.files.set(file.key, file);
  }
  const [first, second] = [...state.files.keys()].slice(-2) as [number, number];
  const replaced = await putFile(url, first, randomBody(5000), 'image/gif');
  state.files.delete(first);
  state.gone.add(first);
  state.files.set(replaced.key, replaced);
  await deleteFile(url, second);
  state.files.delete(second);
  state.gone.add(second);
}

/**
 * Every acknowledged file reads back byte-exact, every acknowledged delete and replace is done,
 * and every other key up to `lastKey` is empty or holds one failed upload whole; the live count
 * matches. Returns how many failed writes turned out to be on disk.
 */
async function expectConsistent(url: string, state: Known, lastKey: number): Promise<number> {
  let live = 0;
  let landed = 0;
  for (let key = 1; key <= lastKey; key++) {
    const file = state.files.get(key);
    if (file) {
      await expectFile(url, file);
      live++;
      continue;
    }
    if (state.gone.has(key)) {
      await expectGone(url, key);
      continue;
    }
    const res = await fetch(`${url}/file/${key}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    if (res.status === 404) continue;
    expect(res.status, `GET /file/${key}`).toBe(200);
    const type = res.headers.get('content-type');
    const same = (sent: Omit<SentFile, 'key'>) =>
      sent.contentType === type && bytes.equals(Buffer.from(sent.bytes));
    live++;
    const kept = state.unsure.get(key);
    if (kept) {
      expect(same(kept), `key ${key} holds other bytes than its file`).toBe(true);
      continue;
    }
    // A new key: one failed upload, whole, and each failed upload under one key at most.
    const index = state.failed.findIndex(same);
    expect(index, `key ${key} holds ${bytes.byteLength} bytes nobody stored whole`).not.toBe(-1);
    state.failed.splice(index, 1);
    landed++;
  }
  expect((await getStatus(url)).liveNeedles).toBe(live);
  return landed;
}

async function expectReadsWork(url: string, state: Known): Promise<void> {
  for (const file of state.files.values()) await expectFile(url, file);
  for (const key of state.gone) await expectGone(url, key);
  expect((await getStatus(url)).liveNeedles).toBeGreaterThanOrEqual(state.files.size);
}

async function nextKey(url: string): Promise<number> {
  const status = await getStatus(url);
  expect(status.nextKey).toBeTypeOf('number');
  return status.nextKey as number;
}

/**
 * A data directory with a volume, and a server on it running on the faulty disk. The first
 * server creates the volume as `1.dat.new` and links it to `1.dat`, so its descriptor never reads
 * as `.dat`; the second opens `1.dat` by name, as every later start does.
 */
async function serverOnFaultyDisk(
  cli: Cli,
  disk: FaultyDisk,
  state: Known,
  args: string[] = [],
): Promise<{ dir: string; server: ServerRun }> {
  const dir = await cli.tempDir();
  const first = await cli.start(dir, args, disk.env);
  await storeSome(first.url, state, 3);
  expect((await cli.stop(first)).code).toBe(0);
  const server = await cli.start(dir, args, disk.env);
  await storeSome(server.url, state, 6);
  return { dir, server };
}

/** After a restart on a working disk: everything acknowledged is there, and writes work. */
async function expectRestartKeepsAll(cli: Cli, dir: string, state: Known, lastKey: number) {
  const server = await cli.start(dir);
  const landed = await expectConsistent(server.url, state, lastKey);
  const next = await postFile(server.url, randomBody(777), 'text/plain');
  expect(next.key).toBeGreaterThan(lastKey);
  await expectFile(server.url, next);
  expect((await cli.stop(server)).code).toBe(0);
  return landed;
}

describe('EIO from the disk', () => {
  const cli = useCli();

  it('failing volume writes: writes answer 500 io_error, reads go on, writes work again once the disk does, and kill -9 loses nothing', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir());
    const state = known();
    const { dir, server } = await serverOnFaultyDisk(cli, disk, state);
    const url = server.url;
    const [a, b] = [...state.files.keys()] as [number, number];

    await disk.arm('write');
    const refused = await failingPost(url, state, randomBody(1000), 'image/jpeg');
    expect(refused.message).toContain('EIO');
    await failingPost(url, state, randomBody(0), 'text/plain');
    await failingPost(url, state, randomBody(300_000), 'image/jpeg');
    await failingPost(url, state, randomBody(LARGE), 'video/mp4');
    await failingPut(url, state, a, randomBody(2000));
    await failingDelete(url, state, b);
    // Nothing acknowledged needs a write: reads, status and a flush all work.
    await expectReadsWork(url, state);
    // The shim fails a call before it reaches the kernel: the refused replace and delete did
    // nothing, and never will.
    for (const [key, file] of state.unsure) {
      await expectFile(url, file);
      state.unsure.delete(key);
      state.files.set(key, file);
    }
    expect((await send(url, 'DELETE', '/sync')).status).toBe(200);
    expect(server.running()).toBe(true);
    // Each failed write's request line is at error level, with the cause.
    const failedRequests = loggedErrors(server.stdout()).filter((r) => r.msg === 'request');
    expect(failedRequests.length).toBeGreaterThan(0);
    for (const record of failedRequests) {
      expect(record).toMatchObject({ status: 500, err: { message: expect.stringMatching(/EIO/) } });
    }

    // The disk works again: so does the store, without a restart.
    await disk.disarm();
    const after = await postFile(url, randomBody(3000), 'image/png');
    state.files.set(after.key, after);
    await deleteFile(url, a);
    state.files.delete(a);
    state.gone.add(a);
    await expectReadsWork(url, state);
    const lastKey = (await nextKey(url)) - 1;

    expect((await cli.crash(server)).signal).toBe('SIGKILL');
    expect(await expectRestartKeepsAll(cli, dir, state, lastKey)).toBe(0); // nothing was written
  });

  it('a failing flush: the write answers 500 io_error, and the store takes no writes until it is restarted', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir());
    const state = known();
    const { dir, server } = await serverOnFaultyDisk(cli, disk, state);
    const url = server.url;
    const [a, b] = [...state.files.keys()] as [number, number];

    await disk.arm('sync');
    // The new needle and the tombstone of `a` reach the page cache; the fdatasync that must come
    // before the answer fails. From then on every write is refused before it writes anything.
    const refused = await failingPut(url, state, a, randomBody(2000));
    expect(refused.message).toContain('EIO');
    const next = await failingPost(url, state, randomBody(1000), 'image/jpeg');
    expect(next.message).toMatch(/restarted/);
    await failingPost(url, state, randomBody(LARGE), 'video/mp4');
    await failingDelete(url, state, b);
    expectIoError(await send(url, 'DELETE', '/sync'), 'DELETE /sync');
    await expectReadsWork(url, state);
    expect(server.running()).toBe(true);

    // The disk works again, but what the failed flush left on disk is unknown: writes stay
    // refused until a restart, which reads back what is really there. Reads go on.
    await disk.disarm();
    const still = await failingPost(url, state, randomBody(500), 'text/plain');
    expect(still.message).toMatch(/restarted/);
    await failingDelete(url, state, [...state.files.keys()][0] as number);
    await expectReadsWork(url, state);
    const lastKey = (await nextKey(url)) - 1;

    // SIGTERM: a flush proves nothing now, so the store closes without one and exits 0 (every
    // acknowledged write was flushed before it was acknowledged).
    expect((await cli.stop(server)).code).toBe(0);
    // The replace that answered 500 was written all the same, and start-up found it: a write the
    // client was not told about is there whole (or not at all, had its bytes not reached the file).
    expect(await expectRestartKeepsAll(cli, dir, state, lastKey)).toBe(1);
  });

  it('a failed DELETE /sync also stops writes until a restart', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir());
    const state = known();
    const { dir, server } = await serverOnFaultyDisk(cli, disk, state);
    const url = server.url;

    await disk.arm('sync');
    const sync = await send(url, 'DELETE', '/sync');
    expectIoError(sync, 'DELETE /sync');
    expect(sync.message).toContain('EIO');
    await disk.disarm();
    // A flush failed: anything written since the last good one may be lost, and the kernel
    // reports that only once, so a later fsync would succeed over it. No more acknowledgements.
    await failingPost(url, state, randomBody(100), 'text/plain');
    expectIoError(await send(url, 'DELETE', '/sync'), 'DELETE /sync after a failed flush');
    await expectReadsWork(url, state);
    const lastKey = (await nextKey(url)) - 1;

    expect((await cli.crash(server)).signal).toBe('SIGKILL');
    expect(await expectRestartKeepsAll(cli, dir, state, lastKey)).toBe(0);
  });

  it('with --fsync never, a failed DELETE /sync makes the shutdown fail: acknowledged writes may not be on disk', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir());
    const state = known();
    const { dir, server } = await serverOnFaultyDisk(cli, disk, state, ['--fsync', 'never']);

    await disk.arm('sync');
    expectIoError(await send(server.url, 'DELETE', '/sync'), 'DELETE /sync');
    await disk.disarm();
    const lastKey = (await nextKey(server.url)) - 1;
    // Nothing was flushed since the writes were acknowledged, and the flush failed: "data
    // synced" would be a lie, so the stop fails and says why.
    const exit = await cli.stop(server);
    expect(exit.code).toBe(1);
    expect(logMessages(exit.stdout)).toContainEqual(
      expect.stringMatching(/^error while stopping: .*flush to disk failed/),
    );
    expect(exit.stdout).not.toMatch(/data synced/);
    // The shim failed the call before the kernel saw it: the page cache still held the writes.
    expect(await expectRestartKeepsAll(cli, dir, state, lastKey)).toBe(0);
  });

  it('a failing index file: writes are still acknowledged (the volume is the truth), DELETE /sync answers 500 io_error, and a restart keeps everything', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir(), ['.idx']);
    const state = known();
    const { dir, server } = await serverOnFaultyDisk(cli, disk, state);
    const url = server.url;

    await disk.arm('all');
    await storeSome(url, state, 6);
    const sync = await send(url, 'DELETE', '/sync');
    expectIoError(sync, 'DELETE /sync');
    expect(sync.message).toContain('EIO');
    await expectReadsWork(url, state);

    // Entries that could not be written are kept and written once the disk works.
    await disk.disarm();
    expect((await send(url, 'DELETE', '/sync')).status).toBe(200);

    // Failing again, and stopped while failing: the index lags, start-up scans what it misses.
    await disk.arm('all');
    await storeSome(url, state, 4);
    const lastKey = (await nextKey(url)) - 1;
    expect((await cli.stop(server)).code).toBe(0);
    await disk.disarm();
    expect(await expectRestartKeepsAll(cli, dir, state, lastKey)).toBe(0);
  });

  it('a disk that fails flushes at start-up: the server refuses to start, saying why, and the data is intact', async (ctx) => {
    const disk = faultyDisk(requireShim(ctx), await cli.tempDir());
    const state = known();
    const { dir, server } = await serverOnFaultyDisk(cli, disk, state);
    const lastKey = (await nextKey(server.url)) - 1;
    expect((await cli.stop(server)).code).toBe(0);

    // Start-up syncs each volume before serving it (a killed server's needles may not be on
    // disk yet): with that flush failing, nothing may be served.
    await disk.arm('all');
    const run = cli.spawn(['start', '--data', dir, '--port', '0'], disk.env);
    const refused = await Promise.race([
      run.exited,
      run.waitForLine(LISTENING).then(
        () => {
          throw new Error('the server started on a disk that cannot flush');
        },
        () => run.exited, // it exited without listening
      ),
    ]);
    expect(refused.code).toBe(1);
    const [why] = loggedErrors(refused.stdout);
    expect(why?.msg, refused.stdout).toMatch(/^cannot start: .*EIO/);
    expect(why?.err).not.toHaveProperty('stack');
    await disk.disarm();
    expect(await expectRestartKeepsAll(cli, dir, state, lastKey)).toBe(0);
  });
});
