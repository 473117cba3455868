#!/usr/bin/env node
import { parseCommandLine } from './command-line.ts';

/**
 * `haystack <command> [options]`. Exit status: 0 done, 1 failed, 2 bad command line (its reason
 * on stderr); `--help` prints the usage and `--version` the version, on stdout.
 */
const commandLine = parseCommandLine(process.argv.slice(2), process.env);

switch (commandLine.action) {
  case 'help': {
    const { usage } = await import('./usage.ts');
    process.stdout.write(usage);
    break;
  }
  case 'version': {
    const { packageVersion } = await import('../handlers/package-version.ts');
    process.stdout.write(`haystack ${await packageVersion()}\n`);
    break;
  }
  case 'usage-error':
    // The reason alone: the whole usage would push it off the screen.
    process.stderr.write(`haystack: ${commandLine.message}\nsee haystack --help\n`);
    process.exitCode = 2;
    break;
  case 'run':
    await commandLine.command.run(commandLine.config);
    break;
}
