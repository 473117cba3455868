import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { logMessages, logRecords, repoRoot, useCli } from '../support/cli.ts';
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

  it('a bad command line gets its one-line reason and a pointer to --help on stderr, exit 2', async () => {
    const dir = await cli.tempDir();
    const cases: Array<[string[], string]> = [
      [['start', '--port', 'abc'], '--port must be an integer from 0 to 65535, got "abc"'],
      [['start', '--port', '70000'], '--port must be an integer from 0 to 65535, got "70000"'],
      [['start', '--port=-1'], '--port must be an integer from 0 to 65535, got "-1"'],
      [['start', '--fsync', 'sometimes'], '--fsync must be "always" or "never", got "sometimes"'],
      [
        ['start', '--max-body', '12X'],
        '--max-body must be a byte count, optionally with a K, M or G suffix (KiB, MiB, GiB), got "12X"',
      ],
      // Two bad values: the first is the reason, on one line.
      [
        ['start', '--port', 'abc', '--fsync', 'x'],
        '--port must be an integer from 0 to 65535, got "abc"',
      ],
      // parseArgs's own problems, in the same words as ours.
      [['start', '--bogus'], 'unknown option --bogus'],
      [['start', '--bogus=1'], 'unknown option --bogus'],
      [['start', '-x'], 'unknown option -x'],
      [['start', '--port'], '--port needs a value'],
      [['start', '--read-only=true'], '--read-only is a switch and takes no value'],
      [
        ['start', '--host', '--port', '0'],
        '--host needs a value (write --host=VALUE for one that starts with -)',
      ],
      // Not echoed: a token may start with -.
      [
        ['start', '--admin-token', '-secret-token-1234567890'],
        '--admin-token needs a value (write --admin-token=VALUE for one that starts with -)',
      ],
      [['reload', '--port', '1'], 'reload does not take --port'],
      [['verify', '--read-only'], 'verify does not take --read-only'],
      [['launch'], 'unknown command "launch"'],
      [['start', 'now'], 'unexpected argument "now"'],
      [[], 'no command given'],
    ];
    const runs = await Promise.all(
      // The data first: a flag without its value must be last.
      cases.map(([args]) => cli.run(['--data', path.join(dir, 'never'), ...args])),
    );
    runs.forEach((run, i) => {
      const [args, reason] = cases[i] as [string[], string];
      const what = args.join(' ');
      expect(run.code, what).toBe(2);
      expect(run.stderr, what).toBe(`haystack: ${reason}\nsee haystack --help\n`);
      expect(run.stdout, what).toBe('');
    });
  });

  it('an unknown command is a usage error, never run as another command', async () => {
    const dir = await cli.tempDir();
    const missing = path.join(dir, 'missing');
    // Names an object lookup would find, near misses of real commands, and nothing at all.
    const names = ['launch', 'toString', 'constructor', '__proto__', 'Start', 'reload ', ''];
    const runs = await Promise.all(names.map((name) => cli.run([name, '--data', missing])));
    runs.forEach((run, i) => {
      const name = names[i] as string;
      expect(run.code, name).toBe(2);
      expect(run.stderr, name).toBe(
        `haystack: unknown command ${JSON.stringify(name)}\nsee haystack --help\n`,
      );
      expect(run.stdout, name).toBe('');
    });
    // Not even start's directory, nor reload's "no such directory".
    await expect(stat(missing)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('--version and -v print the package version on stdout and exit 0', async () => {
    const { version } = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8'));
    const runs = await Promise.all([
      cli.run(['--version']),
      cli.run(['-v']),
      cli.run(['start', '--version']),
    ]);
    for (const run of runs) {
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toBe(`haystack ${version}\n`);
      expect(run.stderr).toBe('');
    }
  });

  it('reads only the variables of the options a command takes', async () => {
    const dir = await cli.tempDir();
    const run = await cli.run(['reload', '--data', path.join(dir, 'missing')], {
      HAYSTACK_PORT: 'abc',
      HAYSTACK_FSYNC: 'sometimes',
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot reload .*missing: no such directory/);
  });

  it('--compact-at says its range in the help and in its errors', async () => {
    const help = await cli.run(['--help']);
    // Its entry, up to the next option, with the wrapping undone.
    const entry = help.stdout.split('\n  --compact-at ')[1]?.split('\n  --')[0] ?? '';
    expect(entry.replace(/\s+/g, ' ')).toContain('above 0, at most 1');
    const cases: Array<[string[], Record<string, string>, string]> = [
      [
        ['--compact-at', '1.5'],
        {},
        '--compact-at must be a share above 0 and at most 1, such as 0.3, got "1.5"',
      ],
      [['--compact-at', '0.0'], {}, '--compact-at must be above 0 and at most 1, got "0.0"'],
      [
        [],
        { HAYSTACK_COMPACT_AT: '2' },
        'HAYSTACK_COMPACT_AT (environment) must be a share above 0 and at most 1, such as 0.3, got "2"',
      ],
    ];
    const dir = await cli.tempDir();
    for (const [args, env, reason] of cases) {
      const run = await cli.run(['start', '--data', dir, '--port', '0', ...args], env);
      expect(run.code).toBe(2);
      expect(run.stderr).toBe(`haystack: ${reason}\nsee haystack --help\n`);
    }
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
    expect(run.stderr).toBe(
      'haystack: HAYSTACK_FSYNC (environment) must be "always" or "never", got "sometimes"\n' +
        'see haystack --help\n',
    );
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
    const [refused] = logRecords(second.stdout).filter((r) => r.msg.startsWith('cannot start'));
    expect(refused?.msg, second.stdout).toMatch(new RegExp(`port ${port}.*in use`));
    // The user's mistake, not a bug: its message and code, no stack.
    expect(refused?.err, second.stdout).toMatchObject({ type: 'UserError' });
    expect(refused?.err).not.toHaveProperty('stack');
  });

  it('a start that cannot listen leaves no new data directory behind, and an old one as it was', async () => {
    const first = await cli.start(await cli.tempDir());
    const port = new URL(first.url).port;
    const parent = await cli.tempDir();
    const fresh = path.join(parent, 'new', 'deeper');
    const empty = path.join(parent, 'empty');
    const used = path.join(parent, 'used');
    await mkdir(empty);
    await mkdir(used);
    await writeFile(path.join(used, 'notes.txt'), 'kept');
    const runs = await Promise.all([
      cli.run(['start', '--data', fresh, '--port', port]),
      // TEST-NET-1 (RFC 5737): never an address of this machine, and no DNS lookup.
      cli.run([
        'start',
        '--data',
        path.join(parent, 'other'),
        '--host',
        '192.0.2.1',
        '--port',
        '0',
      ]),
      cli.run(['start', '--data', empty, '--port', port]),
      cli.run(['start', '--data', used, '--port', port]),
    ]);
    for (const run of runs) {
      expect(run.code, run.stdout).toBe(1);
      expect(logMessages(run.stdout), run.stdout).toContainEqual(
        expect.stringMatching(/^cannot start: cannot listen on /),
      );
    }
    expect((await readdir(parent)).sort()).toEqual(['empty', 'used']);
    expect(await readdir(empty)).toEqual([]);
    // A directory that held something keeps it (and the volume the store made there).
    expect(await readdir(used)).toContain('notes.txt');
    expect(await readFile(path.join(used, 'notes.txt'), 'utf8')).toBe('kept');
  });

  it('start on a data path that is a regular file says so, exit 1, and changes nothing', async () => {
    const dir = await cli.tempDir();
    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a data directory');
    const [onFile, under] = await Promise.all([
      cli.run(['start', '--data', file, '--port', '0']),
      cli.run(['start', '--data', path.join(file, 'data'), '--port', '0']),
    ]);
    expect(onFile.code).toBe(1);
    expect(logMessages(onFile.stdout)).toEqual([`cannot start ${file}: not a directory`]);
    expect(under.code).toBe(1);
    expect(logMessages(under.stdout)).toEqual([
      `cannot start ${path.join(file, 'data')}: ${file} is not a directory`,
    ]);
    // Both are whole log lines on stdout, nothing on stderr.
    expect([onFile.stderr, under.stderr]).toEqual(['', '']);
    expect(logRecords(onFile.stdout)[0]?.level).toBe(50);
    expect(await readFile(file, 'utf8')).toBe('not a data directory');
    expect(await readdir(dir)).toEqual(['a-file']);
  });
});
