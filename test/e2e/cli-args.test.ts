import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { useCli } from '../support/cli.ts';
import { getStatus, postFile, randomBody } from '../support/http.ts';

const USAGE = /Usage: haystack <command>/;

describe('haystack: command line and environment', () => {
  const cli = useCli();

  it('--help, -h and help print the usage on stdout and exit 0', async () => {
    const runs = await Promise.all([
      cli.run(['--help']),
      cli.run(['-h']),
      cli.run(['help']),
      cli.run(['start', '--help']),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(USAGE);
      expect(run.stderr).toBe('');
    }
    const [help] = runs;
    const words = ['--data', '--port', '--host', '--max-body', '--fsync', 'reload'];
    words.push('--read-only', '--require-cookie', '--admin-token');
    for (const word of words) {
      expect(help?.stdout).toContain(word);
    }
    const variables = ['DATA', 'PORT', 'HOST', 'MAX_BODY', 'FSYNC'];
    variables.push('READ_ONLY', 'REQUIRE_COOKIE', 'ADMIN_TOKEN');
    for (const variable of variables) {
      expect(help?.stdout).toContain(`HAYSTACK_${variable}`);
    }
    // --fsync never must say what it gives up.
    expect(help?.stdout).toMatch(/LOSE WRITES THAT WERE ALREADY ACKNOWLEDGED/);
    // A token given as a flag is visible to every user: the usage must say so.
    expect(help?.stdout).toMatch(/flags show in ps/);
  });

  it('a bad command line gets the usage and the problem on stderr, and exit 2', async () => {
    const dir = await cli.tempDir();
    const cases: Array<[string[], RegExp]> = [
      [['start', '--port', 'abc'], /--port must be an integer from 0 to 65535, got "abc"/],
      [['start', '--port', '70000'], /--port must be an integer from 0 to 65535/],
      [['start', '--port=-1'], /--port must be an integer/],
      [['start', '--fsync', 'sometimes'], /--fsync must be "always" or "never", got "sometimes"/],
      [['start', '--max-body', '12X'], /--max-body must be a byte count/],
      [['start', '--bogus'], /Unknown option '--bogus'/],
      [['start', '--port'], /--port/],
      [['launch'], /unknown command "launch"/],
      [['start', 'now'], /unexpected argument "now"/],
      [[], /no command/],
    ];
    const runs = await Promise.all(
      cases.map(([args]) => cli.run([...args, '--data', path.join(dir, 'never')])),
    );
    runs.forEach((run, i) => {
      const [args, problem] = cases[i] as [string[], RegExp];
      expect(run.code, args.join(' ')).toBe(2);
      expect(run.stderr, args.join(' ')).toMatch(USAGE);
      expect(run.stderr, args.join(' ')).toMatch(problem);
      expect(run.stdout, args.join(' ')).toBe('');
    });
  });

  it('takes its options from the environment, and a flag wins over its variable', async () => {
    const dir = await cli.tempDir();
    const fromEnv = cli.spawn(['start'], { HAYSTACK_DATA: dir, HAYSTACK_PORT: '0' });
    const listening = await fromEnv.waitForLine(
      /^haystack listening on http:\/\/127\.0\.0\.1:(\d+) \(data (.+)\)$/,
    );
    expect(Number(listening[1])).toBeGreaterThan(0);
    expect(Number(listening[1])).not.toBe(8080);
    expect(listening[2]).toBe(dir);
    const stopped = await cli.stop(fromEnv);
    expect(stopped.code, JSON.stringify(stopped)).toBe(0);

    // Every variable is bad or elsewhere; the flags override them all.
    const other = await cli.tempDir();
    const flags = cli.spawn(
      [
        'start',
        `--data=${other}`,
        '--port=0',
        '--host',
        '127.0.0.1',
        '--fsync=always',
        '--max-body=10',
      ],
      {
        HAYSTACK_DATA: dir,
        HAYSTACK_PORT: 'abc',
        HAYSTACK_HOST: 'no such host',
        HAYSTACK_FSYNC: 'sometimes',
        HAYSTACK_MAX_BODY: 'lots',
      },
    );
    const [, url = ''] = await flags.waitForLine(/^haystack listening on (\S+) \(data (.+)\)$/);
    expect(flags.stdout()).toContain(`(data ${other})`);
    await postFile(url, randomBody(10));
    const over = await fetch(`${url}/file`, { method: 'POST', body: randomBody(11) });
    expect(over.status).toBe(413);
    await over.arrayBuffer();
    expect((await cli.stop(flags)).code).toBe(0);
  });

  it('a bad environment variable is named in the error, exit 2', async () => {
    const run = await cli.run(['start'], { HAYSTACK_FSYNC: 'sometimes', HAYSTACK_PORT: '0' });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/HAYSTACK_FSYNC .*must be "always" or "never"/);
    expect(run.stderr).toMatch(USAGE);
  });

  it('HAYSTACK_MAX_BODY takes a K/M/G suffix (powers of 1024)', async () => {
    const dir = await cli.tempDir();
    const server = cli.spawn(['start', '--data', dir], {
      HAYSTACK_PORT: '0',
      HAYSTACK_MAX_BODY: '1K',
    });
    const [, url = ''] = await server.waitForLine(/^haystack listening on (\S+) /);
    await postFile(url, randomBody(1024), 'image/png');
    const over = await fetch(`${url}/file`, { method: 'POST', body: randomBody(1025) });
    expect(over.status).toBe(413);
    await over.arrayBuffer();
    expect((await getStatus(url)).liveNeedles).toBe(1);
  });

  it('says so when the port is taken, exit 1', async () => {
    const dir = await cli.tempDir();
    const first = await cli.start(dir);
    const port = new URL(first.url).port;
    const second = await cli.run(['start', '--data', await cli.tempDir(), '--port', port]);
    expect(second.code).toBe(1);
    expect(second.stderr).toMatch(new RegExp(`port ${port}.*in use`));
    expect(second.stderr).not.toMatch(/\n\s+at /);
  });
});
