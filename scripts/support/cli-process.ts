import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Runs the CLI (`wrangler-free-local/cli.ts`) as a child process: the one runner of the e2e tests
 * (test/support/cli.ts builds `useCli` on it) and of the crash loop (scripts/torture/).
 */

/** The repository root: the CLI runs from here, as `npm start` would. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The default ceiling for waiting on a child's output, so a hung child fails with its output in
 * the message instead of at a test timeout with nothing. Nothing here waits for time to pass: it
 * waits for a line or an exit, and this only bounds how long that may take.
 */
export const WAIT_LIMIT_MS = 30_000;

/**
 * The message of the line `haystack start` and `node` log once they listen (`(gateway)` for a
 * gateway); `waitForLine` matches a log line by its message.
 */
export const LISTENING = /^haystack listening on (http:\/\/\S+) \((?:data (.+)|gateway)\)$/;

/** The message of the line it logs after a graceful stop. */
export const STOPPED = /^haystack stopped/;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * How much of each stream a run keeps: a server logs a line per request, and a benchmark's
 * million requests would otherwise pile up in this process (past V8's longest string). Past
 * twice this, the oldest whole lines are dropped down to this much.
 */
const KEPT_OUTPUT = 16 * 1024 * 1024;

export interface CliRun {
  readonly child: ChildProcess;
  readonly pid: number;
  /** What the child wrote so far: all of it, or its last `KEPT_OUTPUT` characters or so. */
  stdout(): string;
  stderr(): string;
  /**
   * Resolves with the first complete line of `stream` that matches, past or future (a log line
   * by its message: `^haystack listening on` matches the JSON line that says it); rejects when
   * the child exits without one, or after `limitMs`.
   */
  waitForLine(
    pattern: RegExp,
    stream?: 'stdout' | 'stderr',
    limitMs?: number,
  ): Promise<RegExpMatchArray>;
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

/** One line of the server's log (pino's JSON): `level` (30 info, 40 warn...), `time`, `msg`... */
export type LogRecord = Record<string, unknown> & { level: number; time: string; msg: string };

/** The line as a log record, if it is one. */
export function logRecord(line: string): LogRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const record: unknown = JSON.parse(line);
    if (typeof record !== 'object' || record === null) return undefined;
    const { level, time, msg } = record as Record<string, unknown>;
    const ok = typeof level === 'number' && typeof time === 'string' && typeof msg === 'string';
    return ok ? (record as LogRecord) : undefined;
  } catch {
    return undefined;
  }
}

/** Every complete line of `output` that is a log record (a program's other lines are skipped). */
export function logRecords(output: string): LogRecord[] {
  return output.split('\n').flatMap((line) => logRecord(line) ?? []);
}

/** What a pattern is matched against: a log record's message, any other line as it is. */
const lineText = (line: string): string => logRecord(line)?.msg ?? line;

/** Every child spawned here that has not exited yet, for `killAll`. */
const running = new Set<CliRun>();

/**
 * Runs the CLI as `node --import tsx wrangler-free-local/cli.ts ...args`, so that the child's pid
 * is the server itself (a SIGKILL hits it, not a wrapper). The child's environment is the
 * parent's without any HAYSTACK_* variable (the flags say everything), plus `env`. `nodeArgs` go
 * to node after tsx and before the script (a benchmark's `--expose-gc` and `.ts` preloads).
 * `detached` puts the child in a process group of its own, so that a Ctrl+C at the terminal
 * reaches only the parent, which then stops its children in the order it chooses
 * (`npm run cluster`).
 */
export function spawnCli(
  args: readonly string[],
  env: Env = {},
  nodeArgs: readonly string[] = [],
  {
    detached = false,
    bundle,
  }: {
    detached?: boolean;
    /** A bundle of the CLI (scripts/support/cli-bundle.ts) to run instead of the sources. */
    bundle?: string | undefined;
  } = {},
): CliRun {
  const childEnv: Env = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('HAYSTACK_')) childEnv[name] = value;
  }
  Object.assign(childEnv, env);
  const child = spawn(
    process.execPath,
    bundle === undefined
      ? ['--import', 'tsx', ...nodeArgs, 'wrangler-free-local/cli.ts', ...args]
      : ['--enable-source-maps', ...nodeArgs, bundle, ...args],
    { cwd: repoRoot, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'], detached },
  );
  if (child.pid === undefined) throw new Error('could not spawn the CLI');

  const out = { stdout: '', stderr: '' };
  /** How many characters of each stream were dropped from the front of `out`. */
  const dropped = { stdout: 0, stderr: 0 };
  const append = (stream: 'stdout' | 'stderr', chunk: string) => {
    let text = out[stream] + chunk;
    if (text.length > 2 * KEPT_OUTPUT) {
      const cut = text.indexOf('\n', text.length - KEPT_OUTPUT) + 1;
      if (cut > 0) {
        text = text.slice(cut);
        dropped[stream] += cut;
      }
    }
    out[stream] = text;
  };
  let alive = true;
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => append('stdout', chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => append('stderr', chunk));
  const exited = new Promise<Exit>((resolve, reject) => {
    child.once('error', reject);
    // 'close', not 'exit': the output streams are drained by then.
    child.once('close', (code, signal) => {
      alive = false;
      running.delete(run);
      resolve({ code, signal, stdout: out.stdout, stderr: out.stderr });
    });
  });
  // A caller that never awaits `exited` must not see an unhandled rejection.
  exited.catch(() => {});

  const describe = () =>
    `args: ${args.join(' ')}\n--- stdout\n${out.stdout}\n--- stderr\n${out.stderr}`;

  function waitForLine(
    pattern: RegExp,
    stream: 'stdout' | 'stderr' = 'stdout',
    limitMs = WAIT_LIMIT_MS,
  ): Promise<RegExpMatchArray> {
    const source = stream === 'stdout' ? child.stdout : child.stderr;
    return new Promise((resolve, reject) => {
      // Each complete line is looked at once: a server that logs every request writes many.
      // `scanned` counts from the stream's start, dropped characters included.
      let scanned = 0;
      const check = (): boolean => {
        const text = out[stream];
        const base = dropped[stream];
        const end = text.lastIndexOf('\n') + 1; // past it, a line not complete yet
        const lines = text.slice(Math.max(scanned - base, 0), end).split('\n');
        scanned = base + end;
        lines.pop(); // the empty rest after the last newline
        for (const line of lines) {
          const match = pattern.exec(lineText(line));
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
      }, limitMs);
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

  const run: CliRun = {
    child,
    pid: child.pid,
    stdout: () => out.stdout,
    stderr: () => out.stderr,
    waitForLine,
    exited,
    running: () => alive,
  };
  running.add(run);
  return run;
}

/** The run as a server once it printed its listening line (rejects if it exits first). */
export async function listening(run: CliRun, limitMs = WAIT_LIMIT_MS): Promise<ServerRun> {
  const [, url = '', dataDir = ''] = await run.waitForLine(LISTENING, 'stdout', limitMs);
  return { ...run, url, dataDir };
}

export interface RunOptions {
  /** Added to the child's environment. */
  env?: Env;
  /** How long to wait for the listening line, or for a command to end; default `WAIT_LIMIT_MS`. */
  limitMs?: number;
}

/**
 * `start --data dir --port 0 ...extra`, resolved once it listens. A server that does not listen
 * in time, or exits first, is killed (and waited for) before the error is thrown.
 */
export async function startServer(
  dir: string,
  extra: readonly string[] = [],
  { env, limitMs = WAIT_LIMIT_MS }: RunOptions = {},
): Promise<ServerRun> {
  const run = spawnCli(['start', '--data', dir, '--port', '0', ...extra], env);
  try {
    return await listening(run, limitMs);
  } catch (err) {
    await crash(run).catch(() => {});
    throw err;
  }
}

/** SIGTERM: the graceful stop, which syncs everything; resolves with the exit. */
export async function stop(run: CliRun): Promise<Exit> {
  run.child.kill('SIGTERM');
  return run.exited;
}

/** SIGKILL: no handler runs, nothing is flushed that was not already. */
export async function crash(run: CliRun): Promise<Exit> {
  run.child.kill('SIGKILL');
  return run.exited;
}

/**
 * Runs a command to its end (`reload`, `verify`). A child still running after `limitMs` gets
 * SIGKILL, so that a hung command ends as a failed exit instead of hanging the caller.
 */
export async function runCli(
  args: readonly string[],
  { env, limitMs = WAIT_LIMIT_MS }: RunOptions = {},
): Promise<Exit> {
  const run = spawnCli(args, env);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), limitMs);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Kills every child spawned here that is still running, and waits for them. */
export async function killAll(): Promise<void> {
  const left = [...running];
  for (const run of left) run.child.kill('SIGKILL');
  await Promise.allSettled(left.map((run) => run.exited));
}
