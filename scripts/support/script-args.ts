/**
 * The two checks every script of `scripts/` makes of its flags: a usage error (the message, the
 * usage, exit 2) and an integer flag within bounds. parseArgs splits the words; these word the
 * refusals alike in every script.
 */
export function scriptArgs(name: string, usage: string) {
  const fail = (message: string): never => {
    process.stderr.write(`${name}: ${message}\n\n${usage}`);
    process.exit(2);
  };

  /** `text` as an integer from `min` to `max`; `fallback` when the flag was not given. */
  const integer = (
    text: string | undefined,
    flag: string,
    { fallback, min = 0, max }: { fallback?: number; min?: number; max?: number } = {},
  ): number => {
    if (text === undefined && fallback !== undefined) return fallback;
    const value = Number(text);
    if (
      text === undefined ||
      !/^[0-9]{1,10}$/.test(text) ||
      value < min ||
      (max !== undefined && value > max)
    ) {
      const bounds = max === undefined ? `of at least ${min}` : `from ${min} to ${max}`;
      fail(`--${flag} must be an integer ${bounds}, got ${JSON.stringify(text)}`);
    }
    return value;
  };

  return { fail, integer };
}
