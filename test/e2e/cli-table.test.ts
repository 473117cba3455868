import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { commands, findCommand } from '../../wrangler-free-local/commands.ts';
import { option, optionNames, shownDefault } from '../../wrangler-free-local/options.ts';
import { optionSynopsis } from '../../wrangler-free-local/usage.ts';
import { repoRoot, useCli } from '../support/cli.ts';

/** The option and command tables against what users read: `--help` and the README. */

const specs = optionNames.map(option);

/** The rows of the README's flag table: `| flag | environment | default | ... |`. */
async function readmeFlagRows(): Promise<string[][]> {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const start = readme.indexOf('| flag | environment | default |');
  expect(start, 'the README has its flag table').toBeGreaterThan(-1);
  const lines = readme.slice(start).split('\n');
  const rows: string[][] = [];
  // Past the header and its | --- | line, up to the first line that is no table row.
  for (const line of lines.slice(2)) {
    if (!line.startsWith('|')) break;
    rows.push(
      line
        .split('|')
        .slice(1, -1)
        .map((cell) => cell.trim().replaceAll('`', '')),
    );
  }
  return rows;
}

describe('haystack: the option and command tables', () => {
  const cli = useCli();

  it("the README's flag table lists every option, in order, with its variable and default", async () => {
    const rows = await readmeFlagRows();
    expect(rows.map(([flag, env, shown]) => [flag, env, shown])).toEqual(
      specs.map((spec) => [optionSynopsis(spec), spec.env, shownDefault(spec)]),
    );
  });

  it('--help lists every option on one line with its variable and default, columns aligned', async () => {
    const help = await cli.run(['--help']);
    expect(help.code).toBe(0);
    const lines = help.stdout.split('\n');
    const header = lines.find((line) => /^ {2}option +variable +default$/.test(line));
    expect(header, help.stdout).toBeDefined();
    const variableAt = header?.indexOf('variable') ?? -1;
    const defaultAt = header?.indexOf('default') ?? -1;
    for (const spec of specs) {
      const synopsis = optionSynopsis(spec);
      const line = lines.find((l) => l.startsWith(`  ${synopsis} `));
      expect(line, synopsis).toBeDefined();
      expect(line?.indexOf(spec.env), synopsis).toBe(variableAt);
      expect(line?.slice(defaultAt), synopsis).toBe(shownDefault(spec));
      // Nothing but spaces between the columns.
      expect(line?.slice(2 + synopsis.length, variableAt).trim(), synopsis).toBe('');
    }
    // Help lines are indented below the columns and fit 80 columns.
    for (const line of lines) expect(line.length, line).toBeLessThanOrEqual(80);
  });

  it('--help lists every command with its summary and the options it takes', async () => {
    const help = await cli.run(['--help']);
    const lines = help.stdout.split('\n');
    const byCommand = help.stdout.slice(help.stdout.indexOf('The options each command takes:'));
    for (const command of commands) {
      const summary = lines.find((line) => line.startsWith(`  ${command.name} `));
      expect(summary?.slice(2 + command.name.length).trim(), command.name).toBe(command.summary);
      // Its flags: on its line in that section and on the indented lines under it.
      const block = byCommand.split('\n');
      const at = block.findIndex((line) => line.startsWith(`  ${command.name} `));
      const own = [block[at] ?? ''];
      for (const line of block.slice(at + 1)) {
        if (!/^ {5,}-/.test(line)) break;
        own.push(line);
      }
      const flags = own.join(' ').trim().split(/\s+/).slice(1);
      expect(flags, command.name).toEqual(command.options.map((name) => option(name).flag));
    }
  });

  it('a command is found by its exact name only', () => {
    for (const command of commands) expect(findCommand(command.name)).toBe(command);
    for (const name of ['', 'help', 'toString', 'constructor', '__proto__', 'START', ' start']) {
      expect(findCommand(name), name).toBeUndefined();
    }
  });
});
