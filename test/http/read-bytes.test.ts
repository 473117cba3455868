import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openVolumeStore, type VolumeStore } from '../../adapters/volume/index.ts';
import { createApp } from '../../handlers/index.ts';
import { connect, type RawConnection } from '../support/raw-http.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';
import { type Listening, listen } from './helpers.ts';

/**
 * Whatever the read path does with its buffers (slab slices today; a pool would reuse them), the
 * bytes answered must be the file's: a buffer reused while a response still holds part of it
 * answers another file's bytes, the worst failure a store can have. Many concurrent 64 KiB reads
 * over a real server and raw sockets, pipelined, with clients that read at once, clients that
 * stop reading until the others are done (their responses wait in the server's buffers), and
 * clients that hang up half-way.
 */

const SIZE = 64 * 1024;
const FILES = 48;

/** File `n`'s bytes: a pattern of `n`, so any byte of another file shows. */
function contentOf(n: number): Buffer {
  const bytes = Buffer.allocUnsafe(SIZE);
  let x = (n + 1) * 2654435761;
  for (let i = 0; i < SIZE; i += 4) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    bytes.writeUInt32LE(x, i);
  }
  return bytes;
}

let dir: string;
let store: VolumeStore;
let server: Listening;
const keys: number[] = [];

beforeEach(async () => {
  dir = await makeTempDir('haystack-read-bytes-');
  store = await openVolumeStore({ dir, fsync: 'never' });
  keys.length = 0;
  for (let n = 0; n < FILES; n++) {
    keys.push((await store.put({ body: contentOf(n) })).key);
  }
  server = await listen(createApp({ store, maxBody: 1 << 20 }).fetch);
});

afterEach(async () => {
  await server.close();
  await store.close();
  await removeTempDir(dir);
});

/** `count` pipelined GETs of files chosen by `pick`, sent at once on one connection. */
async function pipelined(count: number, pick: (i: number) => number) {
  const connection = await connect(server.base);
  const files = Array.from({ length: count }, (_, i) => pick(i) % FILES);
  const requests = files.map((n) => `GET /file/${keys[n]} HTTP/1.1\r\nHost: test\r\n\r\n`);
  await connection.write(requests.join(''));
  return { connection, files };
}

async function expectFiles(connection: RawConnection, files: number[]): Promise<void> {
  for (const n of files) {
    const response = await connection.readResponse();
    expect(response.status).toBe(200);
    expect(response.body.byteLength).toBe(SIZE);
    // Compared whole, but reported briefly: the first differing byte.
    const expected = contentOf(n);
    if (!response.body.equals(expected)) {
      const at = response.body.findIndex((byte, i) => byte !== expected[i]);
      expect.fail(`file ${n}: byte ${at} differs`);
    }
  }
}

describe('64 KiB reads under load', () => {
  it('answer every file its own bytes, with slow, fast and aborted clients at once', async () => {
    // Slow clients: 8 MiB of answers each, more than the kernel's socket buffers hold (up to
    // 4 MiB sent and a receive window that does not grow while nothing is read), not read yet:
    // the server's writes to them wait, holding its buffers.
    const slow = await Promise.all(
      Array.from({ length: 4 }, (_, c) => pipelined(128, (i) => c * 7 + i)),
    );
    for (const { connection } of slow) connection.socket.pause();
    // Aborted clients: hang up once the first answer has begun to arrive.
    const aborted = await Promise.all(
      Array.from({ length: 8 }, (_, c) => pipelined(16, (i) => c * 5 + i * 3)),
    );
    // Fast clients, meanwhile: every answer read and checked as it comes.
    const fast = Promise.all(
      Array.from({ length: 16 }, async (_, c) => {
        const { connection, files } = await pipelined(12, (i) => c * 11 + i * 13);
        await expectFiles(connection, files);
        connection.socket.end();
      }),
    );
    await Promise.all(
      aborted.map(async ({ connection }) => {
        await connection.waitForBytes(SIZE / 2);
        connection.abort();
      }),
    );
    await fast;
    // The slow clients read now: what waited in buffers all along must still be right.
    for (const { connection } of slow) connection.socket.resume();
    await Promise.all(
      slow.map(async ({ connection, files }) => {
        await expectFiles(connection, files);
        connection.socket.end();
      }),
    );
    // And the server still answers right after all that.
    const after = await pipelined(FILES, (i) => i);
    await expectFiles(after.connection, after.files);
    after.connection.socket.end();
  });
});
