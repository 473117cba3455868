import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import {
  deleteFile,
  expectFile,
  expectKept,
  getStatus,
  postFile,
  putFile,
  randomBody,
  type SentFile,
} from '../support/http.ts';
import { filesEndingWith } from '../support/tmp.ts';

/** The number on a summary line such as `  live             12`. */
function summaryValue(stdout: string, label: string): number {
  const match = new RegExp(`^\\s*${label}\\s+(\\d+)`, 'm').exec(stdout);
  if (!match) throw new Error(`no "${label}" line in the reload summary:\n${stdout}`);
  return Number(match[1]);
}

describe('haystack reload', () => {
  const cli = useCli();

  it('rebuilds deleted index files to the same live set, and the next key stays above', async () => {
    const dir = await cli.tempDir();
    const first = await cli.start(dir);
    const { url } = first;
    const live: SentFile[] = [];
    const types = ['image/png', 'text/html; charset=utf-8', undefined];
    for (let i = 0; i < 30; i++) {
      live.push(await postFile(url, randomBody((i * 4099) % 50_000), types[i % types.length]));
    }
    live.push(await postFile(url, new Uint8Array(0), 'text/plain'));
    const retired: number[] = [];
    for (const index of [20, 10, 2]) {
      const [file] = live.splice(index, 1) as [SentFile];
      await deleteFile(url, file.key);
      retired.push(file.key);
    }
    for (const index of [5, 0]) {
      const [file] = live.splice(index, 1) as [SentFile];
      live.push(await putFile(url, file.key, randomBody(777), 'image/avif'));
      retired.push(file.key);
    }
    // The highest key ever issued ends up deleted.
    const last = await postFile(url, randomBody(5), 'text/plain');
    await deleteFile(url, last.key);
    retired.push(last.key);

    const etags = new Map<number, string | null>();
    for (const file of live) etags.set(file.key, await expectFile(url, file));
    const before = await getStatus(url);
    expect((await cli.stop(first)).code).toBe(0);

    const indexes = await filesEndingWith(dir, '.idx');
    expect(indexes.length).toBeGreaterThan(0);
    expect((await filesEndingWith(dir, '.dat')).length).toBeGreaterThan(0);
    await Promise.all(indexes.map((file) => rm(path.join(dir, file))));

    const reload = await cli.run(['reload', '--data', dir]);
    expect(reload.code, reload.stderr).toBe(0);
    expect(reload.stdout).toMatch(/reload/);
    expect(summaryValue(reload.stdout, 'volumes')).toBeGreaterThan(0);
    expect(summaryValue(reload.stdout, 'live')).toBe(live.length);
    expect(summaryValue(reload.stdout, 'deleted')).toBe(retired.length);
    expect(summaryValue(reload.stdout, 'corrupt skipped')).toBe(0);
    expect(summaryValue(reload.stdout, 'needles scanned')).toBeGreaterThanOrEqual(live.length);
    expect(summaryValue(reload.stdout, 'bytes')).toBeGreaterThan(0);
    expect(reload.stdout).toMatch(/^\s*time\s+\d/m);
    // stderr is not a terminal here: no progress line.
    expect(reload.stderr).not.toContain('\r');
    expect(await filesEndingWith(dir, '.idx')).toEqual(indexes);

    const second = await cli.start(dir);
    const kept = { live, gone: retired, before, lastKey: last.key };
    expect(await expectKept(second.url, kept)).toEqual(etags);
  });

  it('reports a corrupt needle in the middle, skips it and keeps every other file', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const files: SentFile[] = [];
    for (let i = 0; i < 5; i++) {
      files.push(await postFile(server.url, randomBody(10_000), 'image/png'));
    }
    const victim = await postFile(server.url, randomBody(10_000), 'image/png');
    files.push(await postFile(server.url, randomBody(10_000), 'image/png'));
    const { offset } = victim.json;
    expect((await cli.stop(server)).code).toBe(0);

    const volumes = await filesEndingWith(dir, '.dat');
    expect(volumes).toHaveLength(1);
    const handle = await open(path.join(dir, volumes[0] ?? ''), 'r+');
    try {
      // A byte in the middle of the victim's data: its header is intact, its checksum is not.
      const at = offset + 5000;
      const { buffer } = await handle.read(Buffer.alloc(1), 0, 1, at);
      await handle.write(Buffer.from([(buffer[0] ?? 0) ^ 0xff]), 0, 1, at);
    } finally {
      await handle.close();
    }
    for (const index of await filesEndingWith(dir, '.idx')) await rm(path.join(dir, index));

    const reload = await cli.run(['reload', '--data', dir]);
    expect(reload.code, reload.stderr).toBe(0);
    expect(summaryValue(reload.stdout, 'corrupt skipped')).toBe(1);
    expect(summaryValue(reload.stdout, 'live')).toBe(files.length);
    expect(summaryValue(reload.stdout, 'problems')).toBe(1);
    expect(reload.stdout).toMatch(/^\s+volume \d+, offset \d+: \S/m);

    const restarted = await cli.start(dir);
    for (const file of files) await expectFile(restarted.url, file);
    const res = await fetch(`${restarted.url}/file/${victim.key}`);
    await res.arrayBuffer();
    expect([404, 500]).toContain(res.status); // never its damaged bytes
  });

  it('is refused while a server owns the directory, and the server carries on', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const file = await postFile(server.url, randomBody(300), 'image/jpeg');

    const reload = await cli.run(['reload', '--data', dir]);
    expect(reload.code).toBe(1);
    expect(reload.stderr).toMatch(/lock/i);
    expect(reload.stderr).toContain(String(server.pid));
    expect(reload.stderr).not.toMatch(/\n\s+at /);
    expect(reload.stdout).toBe('');

    expect(server.running()).toBe(true);
    await expectFile(server.url, file);
    expect((await cli.stop(server)).code).toBe(0);
  });

  it('fails clearly on a directory that does not exist', async () => {
    const dir = await cli.tempDir();
    const reload = await cli.run(['reload', '--data', path.join(dir, 'missing')]);
    expect(reload.code).toBe(1);
    expect(reload.stderr).toMatch(/no such directory/);
  });
});
