/**
 * The package's version, from the nearest package.json above this module: the repository's
 * when run from source (handlers/) or built (dist/handlers/), the installed package's own under
 * node_modules. For `haystack --version`, the status page and the OpenAPI document. Node's file
 * system is reached through `process.getBuiltinModule`, which a bundler does not follow, so the
 * handlers still bundle for a fetch host (test/portability); there the version is `unknown`.
 */
export async function packageVersion(): Promise<string> {
  const fs =
    typeof process === 'undefined' ? undefined : process.getBuiltinModule?.('node:fs/promises');
  if (fs === undefined) return 'unknown';
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    const text = await fs.readFile(new URL('package.json', dir), 'utf8').catch(() => undefined);
    const version: unknown = text === undefined ? undefined : JSON.parse(text).version;
    if (typeof version === 'string') return version;
    if (dir.pathname === '/') throw new Error('no package.json with a version above the handlers');
  }
}
