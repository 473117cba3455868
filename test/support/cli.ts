import { afterEach } from 'vitest';
import {
  type CliRun,
  crash,
  type Env,
  type Exit,
  type LogRecord,
  listening,
  logRecords,
  type ServerRun,
  spawnCli,
  stop,
} from '../../scripts/support/cli-process.ts';
import { makeTempDir, removeTempDir } from './tmp.ts';

/** The log lines of a server's stdout at error or fatal (pino's 50 and 60), in order. */
export function loggedErrors(stdout: string): LogRecord[] {
  return logRecords(stdout).filter((record) => record.level >= 50);
}

/** The messages of the log lines in a server's stdout, in order. */
export function logMessages(stdout: string): string[] {
  return logRecords(stdout).map((record) => record.msg);
}

/**
 * The CLI runner of scripts/support/cli-process.ts (shared with the crash loop), plus `useCli`:
 * its children and temp dirs belong to the test that made them.
 */
export {
  type CliRun,
  type Env,
  type Exit,
  LISTENING,
  type LogRecord,
  logRecord,
  logRecords,
  repoRoot,
  type ServerRun,
  STOPPED,
  spawnCli,
} from '../../scripts/support/cli-process.ts';

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
      return listening(cli.spawn(['start', '--data', dir, '--port', '0', ...extra], env));
    },

    /** SIGTERM, then the exit; the caller checks it. */
    stop: (run: CliRun): Promise<Exit> => stop(run),

    /** SIGKILL: no handler runs, nothing is flushed that was not already. */
    crash: (run: CliRun): Promise<Exit> => crash(run),

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
