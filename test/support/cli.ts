import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { makeTempDir, removeTempDir } from './tmp.ts';

/** The repository root: the CLI runs from here, as `npm start` would. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * A ceiling for waiting on a child's output, so a hung child fails with its output in the message
 * instead of at the test timeout with nothing. Tests never wait for time to pass: they wait for a
 * line or an exit, and this only bounds how long that may take.
 */
const WAIT_LIMIT_MS = 30_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliRun {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything the child wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first complete line of `stream` that matches, past or future. */
  waitForLine(pattern: RegExp, stream?: 'stdout' | 'stderr'): Promise<RegExpMatchArray>;
  /** Settles once the child exited and its output is all read. */
  readonly exited: Promise<Exit>;
  /** True until the child exits. */
  running(): boolean;
}

export interface ServerRun extends CliRun {
  /** `http://127.0.0.1:PORT`, as the listening line gave it. */
  url: string;
  /** The data directory, as the listening line gave it. */
  dataDir: string;
}

export type Env = Record<string, string | undefined>;

/**
 * Runs the CLI as `node --import tsx wrangler-free-local/cli.ts ...args`, so that the child's pid
 * is the server itself (a SIGKILL hits it, not a wrapper). The child's environment is the
 * parent's without any HAYSTACK_* variable, plus `env`.
 */
export function spawnCli(args: readonly string[], env: Env = {}): CliRun {
  const childEnv: Env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('HAYSTACK_')) childEnv[name] = value;
  }
  Object.assign(childEnv, env);
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'wrangler-free-local/cli.ts', ...args],
    { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  if (child.pid === undefined) throw new Error('could not spawn the CLI');

  const out = { stdout: '', stderr: '' };
  let alive = true;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    out.stdout += chunk;
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    out.stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': the output streams are drained by then.
    child.once('close', (code, signal) => {
      alive = false;
      resolve({ code, signal, stdout: out.stdout, stderr: out.stderr });
    });
  });
  // A test that never awaits `exited` must not see an unhandled rejection.
  exited.catch(() => {});

  const describe = () =>
    `args: ${args.join(' ')}\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`;

  function waitForLine(
    pattern: RegExp,
    stream: 'stdout' | 'stderr' = 'stdout',
  ): Promise<RegExpMatchArray> {
    const source = stream === 'stdout' ? child.stdout : child.stderr;
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const lines = out[stream].split('\n');
        lines.pop(); // not complete yet
        for (const line of lines) {
          const match = pattern.exec(line);
          if (match) {
            finish();
            resolve(match);
            return true;
          }
        }
        return false;
      };
      // Registered after ours above, so `out` already holds the chunk when this runs.
      const onData = () => check();
      const onExit = () => {
        if (check()) return;
        finish();
        reject(new Error(`the CLI exited before printing ${pattern} on ${stream}\n${describe()}`));
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`no line matching ${pattern} on ${stream} in time\n${describe()}`));
      }, WAIT_LIMIT_MS);
      const finish = () => {
        clearTimeout(timer);
        source?.off('data', onData);
        child.off('close', onExit);
      };
      if (check()) return;
      if (!alive) return onExit();
      source?.on('data', onData);
      child.once('close', onExit);
    });
  }

  return {
    child,
    pid: child.pid,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitForLine,
    exited,
    running: () => alive,
  };
}

/** The line `haystack start` prints once it listens. */
export const LISTENING = /^haystack listening on (http:\/\/\S+) \(data (.+)\)$/;

/** The line it prints after a graceful stop. */
export const STOPPED = /^haystack stopped/;

/**
 * Per-test CLI children and temp dirs, all cleaned up after each test, failed or not: children
 * still running get SIGKILL (and are waited for), temp dirs are removed.
 */
export function useCli() {
  const runs: CliRun[] = [];
  const dirs: string[] = [];

  afterEach(async () => {
    const left = runs.splice(0);
    for (const run of left) if (run.running()) run.child.kill('SIGKILL');
    await Promise.allSettled(left.map((run) => run.exited));
    await Promise.all(dirs.splice(0).map(removeTempDir));
  });

  const cli = {
    spawn(args: readonly string[], env?: Env): CliRun {
      const run = spawnCli(args, env);
      runs.push(run);
      return run;
    },

    /** `start --data dir --port 0 ...extra`, resolved once it listens. */
    async start(dir: string, extra: readonly string[] = [], env?: Env): Promise<ServerRun> {
      const run = cli.spawn(['start', '--data', dir, '--port', '0', ...extra], env);
      const [, url = '', dataDir = ''] = await run.waitForLine(LISTENING);
      return { ...run, url, dataDir };
    },

    /** SIGTERM, then the exit; the caller checks it. */
    async stop(run: CliRun): Promise<Exit> {
      run.child.kill('SIGTERM');
      return run.exited;
    },

    /** SIGKILL: no handler runs, nothing is flushed that was not already. */
    async crash(run: CliRun): Promise<Exit> {
      run.child.kill('SIGKILL');
      return run.exited;
    },

    /** Runs a command to its end. */
    async run(args: readonly string[], env?: Env): Promise<Exit> {
      return cli.spawn(args, env).exited;
    },

    async tempDir(): Promise<string> {
      const dir = await makeTempDir();
      dirs.push(dir);
      return dir;
    },
  };
  return cli;
}

export type Cli = ReturnType<typeof useCli>;
