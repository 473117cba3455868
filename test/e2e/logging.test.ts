import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import type { RequestLogFields } from '../../handlers/logger.ts';
import { StoreError } from '../../storage/index.ts';
import { errorLog, UserError } from '../../wrangler-free-local/errors.ts';
import { BATCH_CHARS } from '../../wrangler-free-local/log-destination.ts';
import { createLogger, type Logger, logFormatFor } from '../../wrangler-free-local/logger.ts';
import { loggableConfig } from '../../wrangler-free-local/options.ts';
import {
  type Exit,
  type LogRecord,
  logMessages,
  logRecord,
  logRecords,
  repoRoot,
  useCli,
} from '../support/cli.ts';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

/**
 * What `haystack start` prints: its log, on stdout, as JSON lines (pino's) when stdout is not a
 * terminal and readable when it is, at the level `--log-level` or HAYSTACK_LOG_LEVEL sets.
 */

const INFO = 30;
const ERROR = 50;
const DEBUG = 20;

/** A leftover of a crashed upload: the store removes it at start-up and logs that, at info. */
const LEFTOVER = 'upload-0123456789abcdef.spool';

/** A request line's fields, as handlers/observe.ts gives them. */
function requestFields(reqId: string | undefined): RequestLogFields {
  return {
    reqId,
    method: 'GET',
    route: '/file/{id}',
    path: '/file/1',
    status: 404,
    bytes: 61,
    received: 0,
    durationMs: 1.857,
  };
}

/** Every line of `stdout` is a log record: none is lost to another format. */
function allRecords(stdout: string): LogRecord[] {
  const lines = stdout.split('\n');
  expect(lines.pop(), 'the output ends with a newline').toBe('');
  return lines.map((line) => {
    const record = logRecord(line);
    expect(record, line).toBeDefined();
    return record as LogRecord;
  });
}

describe('haystack start: its log', () => {
  const cli = useCli();

  /**
   * A start that logs a line at info (the store's removal of a leftover), then fails to listen,
   * at error (the port is `first`'s), and exits 1 on its own: no wait for anything but its exit.
   */
  async function startOnTakenPort(
    port: string,
    extra: readonly string[] = [],
    env?: Record<string, string>,
  ): Promise<Exit> {
    const dir = await cli.tempDir();
    await writeFile(path.join(dir, LEFTOVER), 'half an upload');
    return cli.run(['start', '--data', dir, '--port', port, ...extra], env);
  }

  it('is JSON lines on stdout with time, level and msg: start-up with its url and data, then the stop', async () => {
    const dir = await cli.tempDir();
    const server = await cli.start(dir);
    const exit = await cli.stop(server);
    expect(exit.code, exit.stdout).toBe(0);
    expect(exit.stderr).toBe('');

    const records = allRecords(exit.stdout);
    for (const record of records) {
      expect(new Date(record.time).toISOString(), record.msg).toBe(record.time);
      expect(record.pid).toBe(server.pid);
    }
    const [listening, ...rest] = records;
    expect(listening).toMatchObject({
      level: INFO,
      msg: `haystack listening on ${server.url} (data ${server.dataDir})`,
      url: server.url,
      dataDir: dir,
    });
    expect(rest.map((r) => [r.level, r.msg])).toEqual([
      [
        INFO,
        'SIGTERM received (send it again to exit at once): no new connections; requests in flight may finish, then everything is synced and closed',
      ],
      [INFO, 'haystack stopped (data synced)'],
    ]);
    expect(rest.at(-1)?.exitCode).toBe(0);
  });

  it("logs a line per request while it runs, each request's own, kept through a kill -9", async () => {
    const server = await cli.start(await cli.tempDir());
    const ids = ['first-request', 'second-request', 'third-request'];
    for (const id of ids) {
      const res = await fetch(`${server.url}/file/12345`, { headers: { 'X-Request-Id': id } });
      expect(res.status).toBe(404);
      expect(res.headers.get('x-request-id')).toBe(id);
      await res.arrayBuffer();
    }
    const requestLines = () => logRecords(server.stdout()).filter((r) => r.msg === 'request');
    // Batched, so out within the batch's time: waited for, not timed.
    await vi.waitFor(() => expect(requestLines()).toHaveLength(ids.length), { timeout: 30_000 });
    expect(requestLines()).toEqual(
      ids.map((reqId) =>
        expect.objectContaining({
          level: INFO,
          reqId,
          method: 'GET',
          route: '/file/{id}',
          path: '/file/12345',
          status: 404,
        }),
      ),
    );
    const exit = await cli.crash(server);
    expect(logRecords(exit.stdout).filter((r) => r.msg === 'request')).toHaveLength(ids.length);
  });

  it('--log-level warn keeps the trouble alone; silent logs nothing; info (the default) shows the rest', async () => {
    const first = await cli.start(await cli.tempDir());
    const port = new URL(first.url).port;
    const [atInfo, atWarn, silent] = await Promise.all([
      startOnTakenPort(port),
      startOnTakenPort(port, ['--log-level', 'warn']),
      startOnTakenPort(port, ['--log-level=silent']),
    ]);
    for (const run of [atInfo, atWarn, silent]) expect(run.code, run.stdout).toBe(1);

    const removed = `removed ${LEFTOVER}, left by a crash`;
    const refused = expect.stringMatching(/^cannot start: cannot listen on .* the port is in use$/);
    expect(allRecords(atInfo.stdout).map((r) => [r.level, r.msg])).toEqual([
      [INFO, removed],
      [ERROR, refused],
    ]);
    expect(logRecords(atInfo.stdout)[0]?.component).toBe('store');
    expect(allRecords(atWarn.stdout).map((r) => [r.level, r.msg])).toEqual([[ERROR, refused]]);
    expect(silent.stdout).toBe('');
  });

  it('HAYSTACK_LOG_LEVEL sets it too, and the flag wins over it', async () => {
    const first = await cli.start(await cli.tempDir());
    const port = new URL(first.url).port;
    const [fromEnv, warnFromEnv, flagWins] = await Promise.all([
      startOnTakenPort(port, ['--admin-token', 'a-secret-admin-token-1234'], {
        HAYSTACK_LOG_LEVEL: 'debug',
      }),
      startOnTakenPort(port, [], { HAYSTACK_LOG_LEVEL: 'warn' }),
      startOnTakenPort(port, ['--log-level', 'info'], { HAYSTACK_LOG_LEVEL: 'debug' }),
    ]);

    // At debug: the options in effect first, a secret only as set.
    const [options] = allRecords(fromEnv.stdout);
    expect(options).toMatchObject({ level: DEBUG, msg: 'options in effect' });
    expect(options?.options).toMatchObject({
      port: Number(port),
      logLevel: 'debug',
      adminToken: '(set)',
      fsync: 'always',
    });
    expect(fromEnv.stdout).not.toContain('a-secret-admin-token');
    expect(logMessages(fromEnv.stdout).slice(1)).toEqual([
      `removed ${LEFTOVER}, left by a crash`,
      expect.stringMatching(/^cannot start: /),
    ]);

    expect(logRecords(warnFromEnv.stdout).map((r) => r.level)).toEqual([ERROR]);
    expect(logRecords(flagWins.stdout).map((r) => r.level)).toEqual([INFO, ERROR]);
  });

  it('a bad level is a usage error, exit 2, whether from the flag or the variable', async () => {
    const dir = await cli.tempDir();
    const levels = 'fatal, error, warn, info, debug, trace, silent';
    const cases: Array<[string[], Record<string, string>, string]> = [
      [['--log-level', 'loud'], {}, `--log-level must be one of ${levels}, got "loud"`],
      [['--log-level', 'INFO'], {}, `--log-level must be one of ${levels}, got "INFO"`],
      [
        [],
        { HAYSTACK_LOG_LEVEL: '30' },
        `HAYSTACK_LOG_LEVEL (environment) must be one of ${levels}, got "30"`,
      ],
      [['--log-level'], {}, '--log-level needs a value'],
    ];
    const runs = await Promise.all(
      cases.map(([args, env]) => cli.run(['start', '--data', dir, '--port', '0', ...args], env)),
    );
    runs.forEach((run, i) => {
      const [args, env, reason] = cases[i] ?? [];
      const what = JSON.stringify([args, env]);
      expect(run.code, what).toBe(2);
      expect(run.stderr, what).toBe(`haystack: ${reason}\nsee haystack --help\n`);
      expect(run.stdout, what).toBe('');
    });
    // The commands that print reports do not log, so they take no level.
    const reload = await cli.run(['reload', '--data', dir, '--log-level', 'warn']);
    expect(reload.code).toBe(2);
    expect(reload.stderr).toContain('reload does not take --log-level');
  });

  // util-linux's `script` runs the command on a pseudo-terminal: stdout is then a TTY.
  const hasScript = spawnSync('script', ['--version']).status === 0;

  it.skipIf(!hasScript)('is readable, not JSON, when stdout is a terminal', async () => {
    const first = await cli.start(await cli.tempDir());
    const dir = await cli.tempDir();
    const command = [
      JSON.stringify(process.execPath),
      '--import tsx wrangler-free-local/cli.ts start --data',
      JSON.stringify(dir),
      '--port',
      new URL(first.url).port,
    ].join(' ');
    const child = spawn('script', ['-qec', command, '/dev/null'], {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: '1', HAYSTACK_LOG_LEVEL: undefined },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code, output).toBe(1);
    const lines = output.split(/\r?\n/).filter((line) => line !== '');
    expect(lines, output).toContainEqual(
      expect.stringMatching(/^\[\d\d:\d\d:\d\d\.\d{3}\] ERROR: cannot start: cannot listen on /),
    );
    for (const line of lines) expect(logRecord(line), line).toBeUndefined();
  });
});

describe('the runner logger', () => {
  it('shows the options in effect with every secret only as set', () => {
    const secrets = {
      adminToken: 'admin-token-0123456789',
      clusterToken: 'cluster-token-0123456789',
      directory: 'postgres://haystack:hunter2@db:5432/haystack',
    };
    const config = { port: 8080, replicas: 3, ...secrets };
    const names = ['port', 'adminToken', 'clusterToken', 'directory', 'replicas'] as const;
    expect(loggableConfig(config, names)).toEqual({
      port: 8080,
      adminToken: '(set)',
      clusterToken: '(set)',
      directory: '(set)',
      replicas: 3,
    });
    // One that is off stays off, and only the names asked for are there.
    expect(loggableConfig({ port: 1 }, ['port', 'adminToken'])).toEqual({
      port: 1,
      adminToken: undefined,
    });
  });

  it('picks the readable form for a terminal and JSON for anything else', () => {
    expect(logFormatFor({ isTTY: true })).toBe('pretty');
    expect(logFormatFor({ isTTY: false })).toBe('json');
    expect(logFormatFor({})).toBe('json');
  });

  /** What `createLogger` writes to a file, in `format`, for an info and a debug line. */
  async function written(
    format: 'json' | 'pretty',
    level: 'info' | 'debug',
    log = (logger: Logger) => {
      logger.info({ url: 'http://127.0.0.1:1' }, 'haystack listening');
      logger.debug('a detail');
    },
  ): Promise<string> {
    const dir = await makeTempDir();
    try {
      const file = path.join(dir, 'log');
      const fd = openSync(file, 'w');
      log(createLogger({ level, destination: fd, format }));
      // Synchronous: everything is in the file as soon as the calls return, before any close.
      const text = readFileSync(file, 'utf8');
      closeSync(fd);
      return text;
    } finally {
      await removeTempDir(dir);
    }
  }

  it('batches request lines, never past another line: out by the next other line, a flush, or the timer', async () => {
    const dir = await makeTempDir();
    try {
      const file = path.join(dir, 'log');
      const fd = openSync(file, 'w');
      const logger = createLogger({ level: 'info', destination: fd, format: 'json' });
      const line = (n: number) => ({ ...requestFields(`batch-${n}`), path: `/file/${n}` });
      const ids = () => allRecords(readFileSync(file, 'utf8')).map((r) => r.reqId ?? r.msg);

      logger.request?.(line(1));
      logger.request?.(line(2));
      expect(readFileSync(file, 'utf8'), 'request lines wait').toBe('');
      logger.warn({}, 'something else');
      expect(ids()).toEqual(['batch-1', 'batch-2', 'something else']);

      logger.request?.(line(3));
      logger.flush();
      expect(ids().at(-1)).toBe('batch-3');

      // A full batch goes out by itself, whole lines only, in order.
      const many = Math.ceil(BATCH_CHARS / 150) + 1;
      for (let n = 0; n < many; n++) logger.request?.(line(100 + n));
      const written = ids().slice(4);
      expect(written.length).toBeGreaterThan(0);
      expect(written).toEqual(written.map((_, i) => `batch-${100 + i}`));

      // The rest, by the timer (waited for, not timed).
      logger.request?.(line(999));
      await vi.waitFor(() => expect(ids().at(-1)).toBe('batch-999'), { timeout: 30_000 });
      expect(ids().slice(4)).toEqual([
        ...Array.from({ length: many }, (_, i) => `batch-${100 + i}`),
        'batch-999',
      ]);
      closeSync(fd);
    } finally {
      await removeTempDir(dir);
    }
  });

  it.each(['exit', 'end', 'throw'])(
    'writes the request lines still waiting when the process ends (%s)',
    (how) => {
      const count = 40;
      const child = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'test/support/log-exit-child.ts', how, String(count)],
        { cwd: repoRoot, encoding: 'utf8' },
      );
      expect(child.status).toBe(how === 'exit' ? 3 : how === 'throw' ? 1 : 0);
      if (how === 'throw') expect(child.stderr).toContain('a fatal bug');
      expect(allRecords(child.stdout).map((r) => r.reqId)).toEqual(
        Array.from({ length: count }, (_, i) => `line-${i}`),
      );
    },
  );

  it('writes JSON lines synchronously, at the level given', async () => {
    const atInfo = await written('json', 'info');
    expect(allRecords(atInfo).map((r) => [r.level, r.msg, r.url])).toEqual([
      [INFO, 'haystack listening', 'http://127.0.0.1:1'],
    ]);
    const atDebug = await written('json', 'debug');
    expect(allRecords(atDebug).map((r) => r.msg)).toEqual(['haystack listening', 'a detail']);
  });

  it('writes the readable form synchronously too: time, level, message and fields on one line', async () => {
    const text = await written('pretty', 'info');
    expect(text).toMatch(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: haystack listening \{"url":"http:\/\/127\.0\.0\.1:1"\}\n$/,
    );
  });

  it("logs a user's mistake as its message and code, a bug with its stack, each in one line", async () => {
    const mistake = new UserError('cannot listen on 127.0.0.1 port 1: the port is in use');
    const locked = new StoreError('locked', 'the data directory is in use by process 7');
    const bug = new TypeError('x is not a function\nsecond line');
    const [record, lockedRecord, bugRecord] = allRecords(
      await written('json', 'info', (logger) => {
        logger.error(...errorLog(mistake, 'cannot start'));
        logger.error(...errorLog(locked, 'cannot start'));
        logger.error(...errorLog(bug, 'error while answering a request'));
      }),
    );
    expect(record).toMatchObject({
      msg: 'cannot start: cannot listen on 127.0.0.1 port 1: the port is in use',
      err: { type: 'UserError', message: mistake.message },
    });
    expect(record?.err).not.toHaveProperty('stack');
    expect(lockedRecord?.err).toEqual({
      type: 'StoreError',
      message: locked.message,
      code: 'locked',
    });
    expect(bugRecord?.msg).toBe('error while answering a request: TypeError: x is not a function');
    expect(bugRecord?.err).toMatchObject({ type: 'TypeError', stack: bug.stack });
  });

  it("writes a request's line, by its fast path, as pino writes the same record", async () => {
    const hostile = '/file/1"\\\n\u0000\u2028é?x=<script>';
    const fields = (reqId: string | undefined, path: string) => ({ ...requestFields(reqId), path });
    const text = await written('json', 'info', (root) => {
      const gateway: Logger = root.child({ role: 'gateway' });
      for (const logger of [root, gateway]) {
        for (const args of [fields('abc-1', '/file/1'), fields(undefined, hostile)]) {
          expect(logger.request).toBeTypeOf('function');
          logger.request?.(args);
          logger.info(args, 'request');
        }
      }
    });
    const lines = text.split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(8);
    for (let i = 0; i < lines.length; i += 2) {
      // The same record, field for field and in the same order, but for the time.
      const [fast, slow] = [lines[i], lines[i + 1]].map((line) =>
        (line as string).replace(/"time":"[^"]+"/, '"time":"T"'),
      );
      expect(fast).toBe(slow);
    }
    expect(JSON.parse(lines[6] as string)).toMatchObject({ role: 'gateway', path: hostile });
    expect(JSON.parse(lines[2] as string)).not.toHaveProperty('reqId');
    // Below the level, nothing.
    expect(
      await written('json', 'info', (root) => {
        root.level = 'warn';
        root.request?.(fields('x', '/file/1'));
      }),
    ).toBe('');
  });
});
