import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';

const run = promisify(execFile);

/**
 * A throw-away PostgreSQL server for tests and for trying the cluster on one machine: `initdb`
 * into a folder, `postgres` on a free port of 127.0.0.1, trust authentication for one user. It
 * uses the PostgreSQL installed on the machine (Debian's `postgresql` package, which `.ci/run`
 * installs); as root, the server runs as the `postgres` user, since PostgreSQL refuses root.
 */
export interface LocalPostgres {
  /** `postgres://haystack@127.0.0.1:PORT/postgres`: the server's maintenance database. */
  readonly url: string;
  readonly port: number;
  /** The postmaster's pid (under `runuser` as root, not the child's own pid); for CPU accounting. */
  postmasterPid(): Promise<number | undefined>;
  /** A new empty database; answers its URL. */
  createDatabase(name?: string): Promise<string>;
  /** Stops the server (fast shutdown) and, if it made it, removes its folder. */
  stop(): Promise<void>;
}

export const POSTGRES_USER = 'haystack';

export interface StartPostgresOptions {
  /** Where the cluster's files go; default a new temp folder, removed by `stop`. */
  dir?: string;
  /** Default a free one. */
  port?: number;
  /** Off by default for tests: the Directory's own durability is PostgreSQL's, not under test. */
  fsync?: boolean;
  /** Lines of the server's log, for whoever wants them. */
  log?: (line: string) => void;
  /** The server in a process group of its own, out of reach of a Ctrl+C at the terminal. */
  detached?: boolean;
}

/** The folder of PostgreSQL's programs: `pg_config --bindir`, or Debian's newest version. */
export async function postgresBinDir(): Promise<string> {
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = (await readdir(debian)).filter((v) => /^\d+$/.test(v));
    versions.sort((a, b) => Number(b) - Number(a));
    for (const version of versions) {
      const bin = path.join(debian, version, 'bin');
      if (existsSync(path.join(bin, 'postgres'))) return bin;
    }
  }
  try {
    const { stdout } = await run('pg_config', ['--bindir']);
    const bin = stdout.trim();
    if (existsSync(path.join(bin, 'postgres'))) return bin;
  } catch {
    // not there either
  }
  throw new Error(
    'PostgreSQL is not installed: apt-get install -y postgresql (bash .ci/run does it)',
  );
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<LocalPostgres> {
  const bin = await postgresBinDir();
  const madeDir = options.dir === undefined;
  const dir = options.dir ?? (await mkdtemp(path.join(tmpdir(), 'haystack-pg-')));
  const dataDir = path.join(dir, 'pgdata');
  const asRoot = process.getuid?.() === 0;
  // As root, everything runs as the postgres user, which must own the folder.
  const command = (program: string, args: string[]): [string, string[]] =>
    asRoot
      ? ['runuser', ['-u', 'postgres', '--', path.join(bin, program), ...args]]
      : [path.join(bin, program), args];
  if (asRoot) await chownToPostgres(dir);

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    await mkdir(dataDir, { recursive: true });
    if (asRoot) await chownToPostgres(dataDir);
    const [program, args] = command('initdb', [
      '-D',
      dataDir,
      '-U',
      POSTGRES_USER,
      '-A',
      'trust',
      '-E',
      'UTF8',
      '--no-locale',
      ...(options.fsync ? [] : ['--no-sync']),
    ]);
    await run(program, args, { cwd: dir });
  }

  const port = options.port ?? (await freePort());
  const [program, args] = command('postgres', [
    '-D',
    dataDir,
    '-p',
    String(port),
    '-k',
    dir,
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `fsync=${options.fsync ? 'on' : 'off'}`,
    '-c',
    'max_connections=300',
    '-c',
    'shared_buffers=32MB',
  ]);
  const server = spawn(program, args, {
    cwd: dir,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  await readyOrExit(server, options.log);

  const url = `postgres://${POSTGRES_USER}@127.0.0.1:${port}/postgres`;
  let databases = 0;
  let stopped: Promise<void> | undefined;
  return {
    url,
    port,
    postmasterPid: () => postmasterPid(dataDir),
    async createDatabase(name = `haystack_${process.pid}_${++databases}_${Date.now()}`) {
      return createDatabase(url, name);
    },
    stop() {
      stopped ??= (async () => {
        if (server.exitCode === null && server.signalCode === null) {
          const exited = new Promise((resolve) => server.once('exit', resolve));
          // PostgreSQL's fast shutdown, to the postmaster itself: runuser does not pass it on.
          const pid = await postmasterPid(dataDir);
          if (pid === undefined) server.kill('SIGINT');
          else process.kill(pid, 'SIGINT');
          await exited;
        }
        if (madeDir) await rm(dir, { recursive: true, force: true });
      })();
      return stopped;
    },
  };
}

/** Resolves on "ready to accept connections"; rejects with the log when the server exits first. */
function readyOrExit(server: ChildProcess, log?: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const lines: string[] = [];
    let ready = false;
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line === '') continue;
        log?.(line);
        if (!ready) lines.push(line);
        if (!ready && line.includes('ready to accept connections')) {
          ready = true;
          resolve();
        }
      }
    };
    server.stdout?.on('data', onLine);
    server.stderr?.on('data', onLine);
    server.once('exit', (code, signal) => {
      if (!ready) {
        reject(
          new Error(
            `postgres exited (${signal ?? code}) before it was ready:\n${lines.join('\n')}`,
          ),
        );
      }
    });
  });
}

/** The postmaster's pid, from the first line of its `postmaster.pid`. */
async function postmasterPid(dataDir: string): Promise<number | undefined> {
  try {
    const first = (await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8')).split('\n')[0];
    const pid = Number(first);
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Makes database `name` on the server of `serverUrl`; answers its URL. */
export async function createDatabase(serverUrl: string, name: string): Promise<string> {
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`not a plain database name: ${name}`);
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    await client.query(`CREATE DATABASE ${name}`);
  } finally {
    await client.end();
  }
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

async function chownToPostgres(dir: string): Promise<void> {
  const { stdout } = await run('id', ['-u', 'postgres']);
  const { stdout: group } = await run('id', ['-g', 'postgres']);
  await chown(dir, Number(stdout.trim()), Number(group.trim()));
}

/** A port nobody listens on now (the OS's pick for port 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}
