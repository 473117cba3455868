import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root: the CLI runs from here, as `npm start` would. */
export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/** The line `haystack start` prints once it listens (see wrangler-free-local/start.ts). */
const LISTENING = /^haystack listening on (http:\/\/\S+) \(data (.+)\)$/m;

/** How long a child may take to print its listening line or to exit before it is a failure. */
const WAIT_LIMIT_MS = 60_000;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * A CLI child process: `node --import tsx wrangler-free-local/cli.ts ...args`, so that its pid is
 * the server itself and a SIGKILL hits it, not a wrapper. Every child is tracked, so that
 * `killAll` can leave none behind whatever happened.
 */
export class CliProcess {
  static readonly #running = new Set<CliProcess>();
  readonly child: ChildProcess;
  readonly exited: Promise<Exit>;
  #stdout = '';
  #stderr = '';

  constructor(args: readonly string[]) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', 'wrangler-free-local/cli.ts', ...args],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: cleanEnv() },
    );
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stdout += chunk;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      this.#stderr += chunk;
    });
    CliProcess.#running.add(this);
    this.exited = new Promise<Exit>((resolve, reject) => {
      this.child.once('error', reject);
      this.child.once('close', (code, signal) => {
        CliProcess.#running.delete(this);
        resolve({ code, signal, stdout: this.#stdout, stderr: this.#stderr });
      });
    });
    this.exited.catch(() => {});
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** SIGKILL: no handler runs, nothing is flushed that was not already. */
  async kill(): Promise<Exit> {
    this.child.kill('SIGKILL');
    return this.exited;
  }

  /** Kills every child still running and waits for them. */
  static async killAll(): Promise<void> {
    const left = [...CliProcess.#running];
    for (const run of left) run.child.kill('SIGKILL');
    await Promise.allSettled(left.map((run) => run.exited));
  }
}

export class ServerProcess extends CliProcess {
  url = '';

  /** `start --data dir --port 0 ...extra`, resolved once it listens. */
  static async start(dir: string, extra: readonly string[]): Promise<ServerProcess> {
    const server = new ServerProcess(['start', '--data', dir, '--port', '0', ...extra]);
    const listening = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no listening line in time')), WAIT_LIMIT_MS);
      const check = () => {
        const match = LISTENING.exec(server.stdout);
        if (match?.[1]) {
          clearTimeout(timer);
          server.child.stdout?.off('data', check);
          resolve(match[1]);
        }
      };
      server.child.stdout?.on('data', check);
      server.exited.then(() => {
        clearTimeout(timer);
        reject(new Error('the server exited before listening'));
      });
    });
    try {
      server.url = await listening;
    } catch (err) {
      const exit = await server.kill();
      throw new Error(
        `${(err as Error).message} (exit ${exit.code ?? exit.signal})\n--- stderr\n${exit.stderr}`,
      );
    }
    return server;
  }

  /** SIGTERM: the graceful stop, which syncs everything. */
  async stop(): Promise<Exit> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** Runs a CLI command to its end (`reload`, `verify`). */
export async function runCli(args: readonly string[]): Promise<Exit> {
  const run = new CliProcess(args);
  const timer = setTimeout(() => run.child.kill('SIGKILL'), WAIT_LIMIT_MS);
  try {
    return await run.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The parent's environment without HAYSTACK_* variables: the flags say everything. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('HAYSTACK_')) env[name] = value;
  }
  return env;
}
