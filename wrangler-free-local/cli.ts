#!/usr/bin/env node
import { parseCommandLine } from './config.ts';
import { runReload } from './reload.ts';
import { runStart } from './start.ts';
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
  case 'run':
    if (commandLine.command === 'start') await runStart(commandLine.config);
    else await runReload(commandLine.config);
    break;
}
