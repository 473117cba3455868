import { type Config, type OptionName, optionNames } from './options.ts';

/**
 * Every command of `haystack <command>`, once: the parser looks a command up here and runs that
 * entry's own `run`, so a word that is not in this table can only be a usage error. A new
 * command (the cluster's `node` and `gateway`) is one more entry.
 */
export interface CommandSpec<K extends OptionName> {
  name: string;
  /** One line in the usage, of at most 66 characters (80 columns). */
  summary: string;
  /** The options it takes; any other flag is a usage error, any other variable is ignored. */
  options: readonly K[];
  run(config: Pick<Config, K>): Promise<void>;
}

export type Command = CommandSpec<OptionName>;

/** Keeps `run`'s config to the options the command takes. */
const command = <const K extends OptionName>(spec: CommandSpec<K>): Command => spec;

// Each command's module loads only when it runs: help and usage errors stay fast, and work even
// where the store could not load.
export const commands: readonly Command[] = [
  command({
    name: 'start',
    summary: 'Serve the store over HTTP until Ctrl+C or SIGTERM.',
    options: optionNames,
    run: async (config) => (await import('./start.ts')).runStart(config),
  }),
  command({
    name: 'reload',
    summary: 'Rebuild every index (.idx) from the volumes (.dat); server stopped.',
    options: ['data'],
    run: async (config) => (await import('./reload.ts')).runReload(config),
  }),
  command({
    name: 'verify',
    summary: 'Check every needle and index, changing nothing; exit 1 on problems.',
    options: ['data'],
    run: async (config) => (await import('./verify.ts')).runVerify(config),
  }),
  command({
    name: 'compact',
    summary: 'Rewrite every volume without its deleted needles; server stopped.',
    options: ['data', 'fsync', 'volumeSize'],
    run: async (config) => (await import('./compact.ts')).runCompact(config),
  }),
];

/** The command named exactly `name`, if there is one. */
export function findCommand(name: string): Command | undefined {
  return commands.find((c) => c.name === name);
}
