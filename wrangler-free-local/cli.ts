#!/usr/bin/env node
import { parseCommandLine } from './config.ts';
import { usage } from './usage.ts';

/**
 * `haystack <command> [options]`. Exit status: 0 done, 1 failed, 2 bad command line (with the
 * usage on stderr); `help` prints the usage on stdout.
 */
const commandLine = parseCommandLine(process.argv.slice(2), process.env);

switch (commandLine.action) {
  case 'help':
    process.stdout.write(usage);
    break;
  case 'usage-error':
    process.stderr.write(`haystack: ${commandLine.message}\n\n${usage}`);
    process.exitCode = 2;
    break;
  // The store and the app load only for the command that needs them: help and usage errors
  // stay fast and work even where they could not load.
  case 'run':
    if (commandLine.command === 'start') {
      const { runStart } = await import('./start.ts');
      await runStart(commandLine.config);
    } else if (commandLine.command === 'compact') {
      const { runCompact } = await import('./compact.ts');
      await runCompact(commandLine.config);
    } else if (commandLine.command === 'verify') {
      const { runVerify } = await import('./verify.ts');
      await runVerify(commandLine.config);
    } else {
      const { runReload } = await import('./reload.ts');
      await runReload(commandLine.config);
    }
    break;
}
