import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { repoRoot } from '../support/cli.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * `npm run cluster`'s script as a user runs it: PostgreSQL, 3 nodes and a gateway start, a file
 * goes in and comes back through the printed URL, and SIGTERM leaves no process behind.
 */

/** The script's line once the cluster serves (importing the script would run it). */
const READY = /^haystack cluster ready: (http:\/\/\S+)$/;

/** pid -> parent pid of every process now. */
async function parents(): Promise<Map<number, number>> {
  const map = new Map<number, number>();
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await readFile(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      map.set(Number(entry), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  return map;
}

/** Every process below `root` (children, their children...). */
async function descendants(root: number): Promise<number[]> {
  const map = await parents();
  const found: number[] = [];
  let frontier = [root];
  while (frontier.length > 0) {
    const next = [...map].filter(([, ppid]) => frontier.includes(ppid)).map(([pid]) => pid);
    found.push(...next);
    frontier = next;
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * The processes of `pids` still running, with their command lines. A child's own helpers (the
 * esbuild service of tsx) end when their parent's pipe closes, just after it: they get up to 5 s.
 */
async function leftOver(pids: readonly number[]): Promise<string[]> {
  const running = async () => {
    const left: string[] = [];
    for (const pid of pids) {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
      if (stat === '' || stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
      left.push(`${pid} ${cmdline.replaceAll('\0', ' ').trim()}`);
    }
    return left;
  };
  for (let waited = 0; waited < 5000; waited += 100) {
    if ((await running()).length === 0) return [];
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return running();
}

/** Processes whose command line names `text`. */
async function mentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

describe('npm run cluster', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  let started: number[] = [];

  afterEach(async () => {
    if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    for (const pid of started) if (alive(pid)) process.kill(pid, 'SIGKILL');
    if (dir) {
      for (const pid of await mentioning(dir)) process.kill(pid, 'SIGKILL');
      await removeTempDir(dir);
    }
    child = undefined;
    dir = undefined;
    started = [];
  });

  it('starts PostgreSQL, 3 nodes and a gateway, serves a file, and SIGTERM stops every one', async () => {
    dir = await makeTempDir('haystack-cluster-script-');
    // As root PostgreSQL runs as the postgres user, which must reach its folder in here.
    await chmod(dir, 0o755);
    const data = path.join(dir, 'data');
    const script = spawn(
      process.execPath,
      ['--import', 'tsx', 'scripts/cluster.ts', '--nodes', '3', '--port', '0', '--data', data],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = script;
    let stdout = '';
    let stderr = '';
    script.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
    });
    script.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
      script.once('close', (code, signal) => resolve({ code, signal })),
    );

    // Waits for the ready line (or the script's end), at most 25 s on a busy machine.
    const url = await new Promise<string>((resolve, reject) => {
      const limit = setTimeout(
        () => reject(new Error(`no ready line:\n${stdout}\n${stderr}`)),
        25_000,
      );
      const check = () => {
        const line = stdout.split('\n').find((l) => READY.test(l));
        if (line) {
          clearTimeout(limit);
          resolve(READY.exec(line)?.[1] ?? '');
        }
      };
      script.stdout?.on('data', check);
      void exited.then(() => {
        clearTimeout(limit);
        reject(new Error(`the script exited before it was ready:\n${stdout}\n${stderr}`));
      });
    });
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(stdout).toMatch(/Directory {2}postgres:\/\/haystack@127\.0\.0\.1:\d+\/haystack/);
    const tokenMode = (await stat(path.join(data, 'token'))).mode & 0o777;
    expect(tokenMode).toBe(0o600);

    const body = new Uint8Array(70_000).map((_, i) => (i * 7 + 3) & 0xff);
    const posted = await fetch(`${url}/file`, {
      method: 'POST',
      body,
      headers: { 'Content-Type': 'application/x-test' },
    });
    expect(posted.status, await posted.clone().text()).toBe(201);
    const { key } = (await posted.json()) as { key: number };
    const read = await fetch(`${url}/file/${key}`);
    expect(read.status).toBe(200);
    expect(read.headers.get('content-type')).toBe('application/x-test');
    expect(new Uint8Array(await read.arrayBuffer())).toEqual(body);
    const status = (await (await fetch(`${url}/status`)).json()) as {
      nodes: { state: string }[];
      logicalVolumes: { replicas: unknown[] }[];
    };
    expect(status.nodes.map((n) => n.state)).toEqual(['up', 'up', 'up']);
    expect(status.logicalVolumes[0]?.replicas).toHaveLength(3);

    // PostgreSQL (and runuser as root), 3 nodes, the gateway: every one below the script.
    started = await descendants(script.pid as number);
    const postmaster = Number(
      (await readFile(path.join(data, 'postgres', 'pgdata', 'postmaster.pid'), 'utf8')).split(
        '\n',
      )[0],
    );
    expect(started).toContain(postmaster);
    expect(started.length).toBeGreaterThanOrEqual(5);

    script.kill('SIGTERM');
    const exit = await exited;
    expect(exit, stderr).toEqual({ code: 0, signal: null });
    expect(stdout).toMatch(/^haystack cluster stopped$/m);
    expect(await leftOver(started), stderr).toEqual([]);
    expect(await mentioning(dir)).toEqual([]);
  }, 40_000);
});
