import { describe, expect, it } from 'vitest';
import { loggedErrors, useCli } from '../support/cli.ts';
import { expectFile, postFile, randomBody } from '../support/http.ts';

describe('haystack start: one server per data directory', () => {
  const cli = useCli();

  it('refuses a second server on the same directory, then works once the first is gone', async () => {
    const dir = await cli.tempDir();
    const first = await cli.start(dir);
    const file = await postFile(first.url, randomBody(100), 'text/plain');

    const second = await cli.run(['start', '--data', dir, '--port', '0']);
    expect(second.code).toBe(1);
    expect(second.stdout).not.toMatch(/listening/);
    const [refused] = loggedErrors(second.stdout);
    expect(refused?.msg, second.stdout).toMatch(/lock/i);
    expect(refused?.msg).toContain(String(first.pid)); // names the owner
    expect(refused?.err).not.toHaveProperty('stack'); // a message, not a stack trace
    expect(first.running()).toBe(true);
    await expectFile(first.url, file);

    expect((await cli.stop(first)).code).toBe(0);
    const third = await cli.start(dir);
    await expectFile(third.url, file);

    // kill -9 leaves the lock file behind; its owner is gone, so the next start takes it over.
    expect((await cli.crash(third)).signal).toBe('SIGKILL');
    const fourth = await cli.start(dir);
    await expectFile(fourth.url, file);
  });
});
