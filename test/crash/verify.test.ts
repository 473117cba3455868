import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openVolumeStore, verifyDataDir } from '../../adapters/volume/index.ts';
import { INDEX_ENTRY_SIZE, INDEX_HEADER_SIZE } from '../../adapters/volume/index-file.ts';
import { HEADER_SIZE } from '../../adapters/volume/needle.ts';
import type { FileInfo } from '../../storage/index.ts';
import { useCli } from '../support/cli.ts';
import { postFile, randomBody } from '../support/http.ts';

interface FileState {
  bytes: Buffer;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** Every file under `dir` with its bytes and times: what "verify changed nothing" compares. */
async function snapshot(dir: string): Promise<Map<string, FileState>> {
  const out = new Map<string, FileState>();
  for (const name of (await readdir(dir)).sort()) {
    const file = path.join(dir, name);
    const info = await stat(file);
    out.set(name, {
      bytes: await readFile(file),
      size: info.size,
      mtimeMs: info.mtimeMs,
      ctimeMs: info.ctimeMs,
    });
  }
  return out;
}

function expectUnchanged(before: Map<string, FileState>, after: Map<string, FileState>): void {
  expect([...after.keys()]).toEqual([...before.keys()]);
  for (const [name, was] of before) {
    const now = after.get(name);
    expect(now, name).toBeDefined();
    expect(now?.bytes.equals(was.bytes), `bytes of ${name}`).toBe(true);
    expect({ size: now?.size, mtimeMs: now?.mtimeMs, ctimeMs: now?.ctimeMs }, name).toEqual({
      size: was.size,
      mtimeMs: was.mtimeMs,
      ctimeMs: was.ctimeMs,
    });
  }
}

/** A closed data directory with a few files, one deleted and one replaced. */
async function makeData(dir: string): Promise<FileInfo[]> {
  const store = await openVolumeStore({ dir });
  try {
    const infos: FileInfo[] = [];
    for (let i = 0; i < 6; i++) {
      infos.push(await store.put({ body: randomBytes(1000 + i * 100), contentType: 'image/png' }));
    }
    await store.delete((infos[1] as FileInfo).key);
    infos.push(await store.replace((infos[2] as FileInfo).key, { body: randomBytes(10) }));
    return infos;
  } finally {
    await store.close();
  }
}

async function flipByte(file: string, at: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const { buffer } = await handle.read(Buffer.alloc(1), 0, 1, at);
    await handle.write(Buffer.from([(buffer[0] ?? 0) ^ 0xff]), 0, 1, at);
  } finally {
    await handle.close();
  }
}

describe('haystack verify (command)', () => {
  const cli = useCli();

  it('exits 0 on a clean directory, with the summary, and changes nothing', async () => {
    const dir = await cli.tempDir();
    await makeData(dir);
    const before = await snapshot(dir);
    const run = await cli.run(['verify', '--data', dir]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^\s+volumes\s+1$/m);
    expect(run.stdout).toMatch(/^\s+live\s+5$/m);
    expect(run.stdout).toMatch(/^\s+deleted\s+2$/m);
    expect(run.stdout).toMatch(/^\s+problems\s+0$/m);
    expect(run.stdout).toMatch(/haystack verify: OK$/m);
    expectUnchanged(before, await snapshot(dir));
  });

  it('exits 1 on a flipped byte, naming the volume, offset and key, and changes nothing', async () => {
    const dir = await cli.tempDir();
    const infos = await makeData(dir);
    const victim = infos[3] as FileInfo;
    await flipByte(path.join(dir, '1.dat'), victim.offset + HEADER_SIZE + 9 + 500);
    const before = await snapshot(dir);
    const run = await cli.run(['verify', '--data', dir]);
    expect(run.code, run.stdout).toBe(1);
    expect(run.stdout).toMatch(/^\s+problems\s+1$/m);
    expect(run.stdout).toContain(`volume 1, offset ${victim.offset}, key ${victim.key}:`);
    expect(run.stdout).toMatch(/problem\(s\) found$/m);
    expectUnchanged(before, await snapshot(dir));
  });

  it('does not count an index that lags behind its volume as a problem', async () => {
    const dir = await cli.tempDir();
    await makeData(dir);
    // Keep 3 of the 9 entries, and half of a fourth: what a crash before the index sync leaves.
    await truncate(path.join(dir, '1.idx'), INDEX_HEADER_SIZE + 3 * INDEX_ENTRY_SIZE + 7);
    const before = await snapshot(dir);
    const run = await cli.run(['verify', '--data', dir]);
    expect(run.code, run.stdout).toBe(0);
    expect(run.stdout).toContain('index lags by 6 entries');
    expect(run.stdout).toMatch(/haystack verify: OK$/m);
    expectUnchanged(before, await snapshot(dir));
  });

  it('runs while the server writes, without the lock, and finds nothing wrong', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    for (let i = 0; i < 20; i++) await postFile(server.url, randomBody(i * 3000), 'text/plain');
    let writing = true;
    const writer = (async () => {
      let count = 0;
      while (writing) {
        await postFile(server.url, randomBody((count++ % 7) * 20_000), 'image/jpeg');
      }
      return count;
    })();
    const run = await cli.run(['verify', '--data', dir]);
    writing = false;
    expect(await writer).toBeGreaterThan(0);
    expect(run.code, run.stdout).toBe(0);
    expect(run.stdout).toMatch(/^\s+problems\s+0$/m);
    expect(server.running()).toBe(true);
    expect((await cli.stop(server)).code).toBe(0);
  });

  it('fails clearly on a directory that does not exist, and does not create it', async () => {
    const dir = await cli.tempDir();
    const missing = path.join(dir, 'missing');
    const run = await cli.run(['verify', '--data', missing]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/no such directory/);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('verifyDataDir', () => {
  const cli = useCli();

  async function indexEntries(dir: string): Promise<Buffer> {
    return readFile(path.join(dir, '1.idx'));
  }

  it('reports an index entry pointing at another needle, naming its key', async () => {
    const dir = await cli.tempDir();
    const infos = await makeData(dir);
    const idx = await indexEntries(dir);
    // Entry 4 (the file infos[4]) says it is at infos[3]'s offset.
    const at = INDEX_HEADER_SIZE + 4 * INDEX_ENTRY_SIZE;
    idx.writeUInt32LE((infos[3] as FileInfo).offset / 8, at + 8);
    await writeFile(path.join(dir, '1.idx'), idx);
    const report = await verifyDataDir({ dir });
    expect(report.problems).toContainEqual(
      expect.objectContaining({
        volume: 1,
        offset: (infos[3] as FileInfo).offset,
        key: (infos[4] as FileInfo).key,
        message: expect.stringMatching(/does not match the needle there/),
      }),
    );
  });

  it('reports an index entry pointing past the end of the volume', async () => {
    const dir = await cli.tempDir();
    await makeData(dir);
    const { size } = await stat(path.join(dir, '1.dat'));
    await truncate(path.join(dir, '1.dat'), size - 40); // the last tombstone goes
    const report = await verifyDataDir({ dir });
    expect(report.problems).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/past the end of the volume/) }),
    ]);
  });

  it('reports an index of another volume', async () => {
    const dir = await cli.tempDir();
    const other = await cli.tempDir();
    await makeData(dir);
    await makeData(other);
    await writeFile(path.join(dir, '1.idx'), await readFile(path.join(other, '1.idx')));
    const report = await verifyDataDir({ dir });
    expect(report.problems).toEqual([
      expect.objectContaining({ volume: 1, message: expect.stringMatching(/another volume/) }),
    ]);
  });

  it('notes a torn tail and a missing index, without a problem', async () => {
    const dir = await cli.tempDir();
    const infos = await makeData(dir);
    const last = infos.at(-1) as FileInfo;
    await rm(path.join(dir, '1.idx'));
    await truncate(path.join(dir, '1.dat'), last.offset + 20); // half of a header
    const report = await verifyDataDir({ dir });
    expect(report.problems).toEqual([]);
    expect(report.notes.map((n) => n.message)).toEqual([
      expect.stringMatching(/^no index file/),
      expect.stringMatching(/^torn tail of 20 bytes/),
    ]);
  });

  it('notes unwritten space and a needle whose write stopped early, reports real damage', async () => {
    const dir = await cli.tempDir();
    const infos = await makeData(dir);
    const [, , , a, b, c] = infos as [FileInfo, FileInfo, FileInfo, FileInfo, FileInfo, FileInfo];
    await rm(path.join(dir, '1.idx'));
    const volume = await readFile(path.join(dir, '1.dat'));
    // a: never written at all (zeros); b: its data and checksum cut off (zeros from the middle).
    volume.fill(0, a.offset, b.offset);
    volume.fill(0, b.offset + HEADER_SIZE + 9 + 600, c.offset);
    await writeFile(path.join(dir, '1.dat'), volume);
    expect((await verifyDataDir({ dir })).problems).toEqual([]);

    await flipByte(path.join(dir, '1.dat'), c.offset + HEADER_SIZE + 12);
    const report = await verifyDataDir({ dir });
    expect(report.problems).toEqual([
      expect.objectContaining({ volume: 1, offset: c.offset, key: c.key }),
    ]);
    expect(report.notes).toHaveLength(3); // no index, a's space, b's unfinished write
  });
});
