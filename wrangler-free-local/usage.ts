import { commands } from './commands.ts';
import { DRAIN_GRACE_MS } from './drain.ts';
import { type OptionSpec, option, optionNames, shownDefault } from './options.ts';

/** The usage, made from the tables of commands and options so that it cannot drift from them. */

const WIDTH = 80;
const HELP_INDENT = '      ';

/** `--data DIR`, `--read-only`: how an option is written. */
export const optionSynopsis = (spec: OptionSpec) =>
  spec.type === 'string' ? `${spec.flag} ${spec.value}` : spec.flag;

/** Each '\n'-separated paragraph of `text` in lines of at most `WIDTH`, after `indent`. */
function wrap(text: string, indent: string): string[] {
  const lines: string[] = [];
  for (const paragraph of text.split('\n')) {
    let line = '';
    for (const word of paragraph.split(' ')) {
      if (line !== '' && indent.length + line.length + 1 + word.length > WIDTH) {
        lines.push(indent + line);
        line = word;
      } else {
        line = line === '' ? word : `${line} ${word}`;
      }
    }
    lines.push(indent + line);
  }
  return lines;
}

/** Rows of cells, each column as wide as its widest cell plus two spaces. */
function columns(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length + 2);
    });
  }
  return rows.map((row) =>
    `  ${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('')}`.trimEnd(),
  );
}

function commandsSection(): string[] {
  return columns([
    ...commands.map((c) => [c.name, c.summary]),
    ['help', 'Show this text (also -h, --help).'],
  ]);
}

/** Each command's name, then its flags, wrapped under one another. */
function optionsByCommand(): string[] {
  const width = Math.max(...commands.map((c) => c.name.length)) + 4;
  return commands.flatMap((c) => {
    const flags = c.options.map((name) => option(name).flag).join(' ');
    const [first = '', ...rest] = wrap(flags, ' '.repeat(width));
    return [`  ${c.name.padEnd(width - 2)}${first.trimStart()}`, ...rest];
  });
}

function optionsSection(): string[] {
  const specs = optionNames.map(option);
  const rows = columns([
    ['option', 'variable', 'default'],
    ...specs.map((spec) => [optionSynopsis(spec), spec.env, shownDefault(spec)]),
  ]);
  const [header = '', ...lines] = rows;
  return [header, ...specs.flatMap((spec, i) => [lines[i] ?? '', ...wrap(spec.help, HELP_INDENT)])];
}

const switches = optionNames
  .map(option)
  .filter((spec) => spec.type === 'boolean')
  .map((spec) => spec.flag);

export const usage = `Usage: haystack <command> [options]
       haystack --version   (also -v): the version
       haystack --help      (also -h, help): this text

A Haystack blob store: files are appended as needles to large volume files
(.dat) and found through a small index (.idx), served over HTTP.

Commands:
${commandsSection().join('\n')}

The options each command takes:
${optionsByCommand().join('\n')}

Options (each also from its environment variable, which a flag overrides):
${optionsSection().join('\n')}

${wrap(`The switches, ${switches.join(', ')}, are on when given; their variables take 1, true, 0 or false.`, '').join('\n')}

Stopping: Ctrl+C or SIGTERM stops taking connections, lets requests in flight
finish (for up to ${DRAIN_GRACE_MS / 1000} s), then syncs and closes the store. A second signal
exits at once.

Exit status: 0 done, 1 failed (for example the data directory is in use by
another server), 2 bad command line.

Examples:
  npm start -- --data /srv/haystack --port 8080
  HAYSTACK_DATA=/srv/haystack HAYSTACK_PORT=0 npx haystack start
  HAYSTACK_ADMIN_TOKEN=$(openssl rand -hex 24) haystack start --require-cookie
  npm run reload -- --data /srv/haystack
`;
