import { parseArgs } from 'node:util';
import * as v from 'valibot';
import { type Command, findCommand } from './commands.ts';
import { type Config, configSchema, type OptionName, option, optionNames } from './options.ts';

/**
 * The command line and the environment, read once. `node:util` parseArgs only splits the words
 * (not strict: its errors are worded its own way, so the checks are made here, in ours); every
 * value, from a flag or from the environment, is checked by the table's schema, and a flag wins
 * over its variable.
 */

export type CommandLine =
  | { action: 'help' }
  | { action: 'version' }
  | { action: 'run'; command: Command; config: Config }
  | { action: 'usage-error'; message: string };

const byFlag = new Map(optionNames.map((name) => [option(name).flag.slice(2), name]));

/** The flags of every command. */
const globalFlags = {
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
} as const;

const parseArgsOptions = {
  ...Object.fromEntries(
    optionNames.map((name) => [option(name).flag.slice(2), { type: option(name).type }]),
  ),
  ...globalFlags,
};

/**
 * Reads `argv` (without node and the script) and the environment. Never throws: a bad command
 * line comes back as a `usage-error` with a one-line message fit for the user.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CommandLine {
  const { tokens } = parseArgs({
    args: [...argv],
    options: parseArgsOptions,
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  const flags = new Map<OptionName, { raw: string; value: string }>();
  const positionals: string[] = [];
  let help = false;
  let version = false;
  let problem: string | undefined;
  for (const token of tokens) {
    if (token.kind === 'positional') positionals.push(token.value);
    if (token.kind !== 'option') continue;
    if (token.name === 'help') help = true;
    else if (token.name === 'version') version = true;
    const name = byFlag.get(token.name);
    const spec = name === undefined ? undefined : option(name);
    const raw = token.rawName;
    let error: string | undefined;
    if (token.name === 'help' || token.name === 'version' || spec?.type === 'boolean') {
      if (token.value !== undefined) error = `${raw} is a switch and takes no value`;
    } else if (!spec) {
      error = `unknown option ${raw}`;
    } else if (token.value === undefined) {
      error = `${raw} needs a value`;
    } else if (!token.inlineValue && token.value.startsWith('-')) {
      // `--data --port 1`: parseArgs took the next option as the value. Not echoed: it may be
      // a token that starts with -.
      error = `${raw} needs a value (write ${raw}=VALUE for one that starts with -)`;
    }
    problem ??= error;
    if (name && spec) flags.set(name, { raw, value: token.value ?? 'true' });
  }
  // Asking for help or the version is answered even on a line that is wrong otherwise.
  if (help || positionals[0] === 'help') return { action: 'help' };
  if (version) return { action: 'version' };
  if (problem) return usageError(problem);

  const [name, ...extra] = positionals;
  if (name === undefined) return usageError('no command given');
  const command = findCommand(name);
  if (!command) return usageError(`unknown command ${JSON.stringify(name)}`);
  if (extra.length > 0) return usageError(`unexpected argument ${JSON.stringify(extra[0])}`);

  const takes = new Set<OptionName>(command.options);
  const input: Partial<Record<OptionName, string>> = {};
  const from: Partial<Record<OptionName, string>> = {};
  for (const [optionName, flag] of flags) {
    if (!takes.has(optionName)) return usageError(`${command.name} does not take ${flag.raw}`);
    input[optionName] = flag.value;
    from[optionName] = flag.raw;
  }
  // Variables of options the command does not take are not read: one environment serves all.
  for (const optionName of takes) {
    const variable = option(optionName).env;
    // An empty variable counts as unset, as shells make them easily; an empty flag is an error.
    const value = env[variable] === '' ? undefined : env[variable];
    if (input[optionName] !== undefined || value === undefined) continue;
    input[optionName] = value;
    from[optionName] = `${variable} (environment)`;
  }

  for (const needed of command.required ?? []) {
    if (input[needed] !== undefined) continue;
    const spec = option(needed);
    const value = spec.type === 'string' ? ` ${spec.value}` : '';
    return usageError(`${command.name} needs ${spec.flag}${value} (or ${spec.env})`);
  }

  // Options the command does not take get their defaults: every command sees a whole Config.
  const result = v.safeParse(configSchema, input);
  if (!result.success) {
    const [issue] = result.issues;
    const key = issue.path?.[0]?.key;
    // Name the flag or the variable the bad value came from, rather than the schema's key.
    const origin = typeof key === 'string' ? from[key as OptionName] : undefined;
    return usageError(origin ? `${origin} ${issue.message}` : issue.message);
  }
  return { action: 'run', command, config: result.output };
}

const usageError = (message: string): CommandLine => ({ action: 'usage-error', message });
