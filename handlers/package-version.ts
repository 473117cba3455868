import { readFile } from 'node:fs/promises';

/**
 * The package's version, from the nearest package.json above this module: the repository's
 * when run from source (handlers/) or built (dist/handlers/), the installed package's own under
 * node_modules. For `haystack --version` and the status page.
 */
export async function packageVersion(): Promise<string> {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    const text = await readFile(new URL('package.json', dir), 'utf8').catch(() => undefined);
    const version: unknown = text === undefined ? undefined : JSON.parse(text).version;
    if (typeof version === 'string') return version;
    if (dir.pathname === '/') throw new Error('no package.json with a version above the handlers');
  }
}
