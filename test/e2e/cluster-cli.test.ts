import { describe, expect, it } from 'vitest';
import { freePort } from '../../scripts/support/postgres.ts';
import { loggedErrors, useCli } from '../support/cli.ts';
import { testDatabase } from '../support/postgres.ts';

/** `haystack node` and `haystack gateway` from the outside: their flags, and their secrets. */
describe('haystack node and gateway on the command line', () => {
  const cli = useCli();
  const token = 'cli-cluster-token-0123456789abcdef';

  it('need --directory and --cluster-token (or their variables): usage error, exit 2', async () => {
    for (const command of ['node', 'gateway']) {
      const noDirectory = await cli.run([command, '--cluster-token', token]);
      expect(noDirectory.code).toBe(2);
      expect(noDirectory.stderr).toContain(
        `${command} needs --directory URL (or HAYSTACK_DIRECTORY)`,
      );
      const noToken = await cli.run([command], { HAYSTACK_DIRECTORY: 'postgres://h@127.0.0.1/d' });
      expect(noToken.code).toBe(2);
      expect(noToken.stderr).toContain('needs --cluster-token T (or HAYSTACK_CLUSTER_TOKEN)');
    }
    // start takes none of the cluster's flags.
    const start = await cli.run(['start', '--directory', 'postgres://h@127.0.0.1/d']);
    expect(start.code).toBe(2);
    expect(start.stderr).toContain('start does not take --directory');
  });

  it('never echo a bad Directory URL or token, which may carry secrets', async () => {
    const bad = await cli.run([
      'gateway',
      '--directory',
      'mysql://root:hunter2@db/x',
      '--cluster-token',
      token,
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--directory must be a PostgreSQL URL');
    expect(bad.stderr).not.toContain('hunter2');
    const short = await cli.run([
      'node',
      '--cluster-token',
      'hunter2',
      '--directory',
      'postgres://h/d',
    ]);
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('--cluster-token must be at least 16 characters');
    expect(short.stderr).not.toContain('hunter2');
  });

  it('a Directory that cannot be reached: exit 1, without the password in what is printed', async () => {
    const closed = await freePort();
    for (const command of ['node', 'gateway']) {
      const dir = await cli.tempDir();
      const run = await cli.run([
        command,
        ...(command === 'node' ? ['--data', dir] : []),
        '--port',
        '0',
        '--directory',
        `postgres://haystack:hunter2secret@127.0.0.1:${closed}/nowhere`,
        '--cluster-token',
        token,
      ]);
      expect(run.code, run.stdout).toBe(1);
      const [refused] = loggedErrors(run.stdout);
      expect(refused?.msg, run.stdout).toContain('cannot start');
      expect(refused?.msg).toContain(`127.0.0.1:${closed}`);
      expect(`${run.stdout}${run.stderr}`).not.toContain('hunter2secret');
    }
  });

  it('a gateway serves the public API once nodes are there; a node serves none of it', async () => {
    const directory = await testDatabase();
    const env = { HAYSTACK_DIRECTORY: directory, HAYSTACK_CLUSTER_TOKEN: token };
    const nodeDir = await cli.tempDir();
    const { listening } = await import('../support/cli.ts').then(
      async () => import('../../scripts/support/cli-process.ts'),
    );
    const node = await listening(cli.spawn(['node', '--data', nodeDir, '--port', '0'], env));
    const gateway = await listening(cli.spawn(['gateway', '--port', '0', '--replicas', '1'], env));
    const stored = await fetch(`${gateway.url}/file`, {
      method: 'POST',
      body: 'through the gateway',
    });
    expect(stored.status).toBe(201);
    const { key } = (await stored.json()) as { key: number };
    expect(await (await fetch(`${gateway.url}/file/${key}`)).text()).toBe('through the gateway');
    // A node's public face is nothing: without the token every path is 401, with it /file is 404.
    expect((await fetch(`${node.url}/file/${key}`)).status).toBe(401);
    const withToken = await fetch(`${node.url}/file/${key}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(withToken.status).toBe(404);
    expect(((await withToken.json()) as { error: { code: string } }).error.code).toBe('no_route');
    for (const run of [gateway, node]) {
      const exit = await cli.stop(run);
      expect(exit.code, exit.stderr).toBe(0);
      expect(`${exit.stdout}${exit.stderr}`).not.toContain(directory);
    }
  });
});
