import { execFile } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../support/tmp.ts';

const run = promisify(execFile);

/** The repository under test: this file is test/e2e/package.test.ts. */
const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
/** The repository's own TypeScript, so the check does not depend on what the project installs. */
const tsc = path.join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

/**
 * The program of the README's library section: the first `ts` block after its heading, so that
 * what the README shows is what runs here.
 */
async function readmeExample(): Promise<string> {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.indexOf('\n## Use it as a library');
  expect(section, 'the README has its library section').toBeGreaterThan(0);
  const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(section));
  expect(block, 'the library section shows a program').not.toBeNull();
  return block?.[1] ?? '';
}

/** A command's output, or a failure that shows it (npm and tsc say what went wrong there). */
async function sh(command: string, args: string[], cwd: string, env = {}): Promise<string> {
  try {
    const { stdout } = await run(command, args, {
      cwd,
      env: { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const { stdout, stderr } = err as { stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}:\n${stdout}\n${stderr}`, {
      cause: err,
    });
  }
}

/**
 * The package in someone else's project: `npm pack` (its prepack builds dist/), a new project
 * that installs the tarball with hono and @hono/node-server from the registry, the README's
 * program as its server.ts (createApp mounted under /media in a parent Hono app, served by
 * @hono/node-server, driven by the package's client), type-checked under `strict` by the
 * repository's TypeScript, compiled and run with node. The program asserts the bytes itself
 * (node:assert) and prints the store's counts last.
 */
describe('the packed package in a new project', { timeout: 10 * 60_000 }, () => {
  let root = '';
  let project = '';

  beforeAll(async () => {
    root = await makeTempDir('haystack-package-');
    project = path.join(root, 'project');
    await mkdir(project);
  }, 10 * 60_000);
  afterAll(() => removeTempDir(root));

  it('installs from the tarball, type-checks under strict and serves under /media to the client', async () => {
    await sh('npm', ['pack', '--pack-destination', root, '--silent'], repoRoot);
    const tarball = (await readdir(root)).find((name) => name.endsWith('.tgz'));
    expect(tarball, 'npm pack made a tarball').toBeDefined();

    const ours = JSON.parse(await readFile(path.join(repoRoot, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      devDependencies: Record<string, string>;
    };
    const manifest = {
      name: 'haystack-consumer',
      private: true,
      type: 'module',
      dependencies: {
        'haystack-store': `file:../${tarball}`,
        hono: ours.devDependencies.hono,
        '@hono/node-server': ours.dependencies['@hono/node-server'],
      },
      devDependencies: { '@types/node': ours.devDependencies['@types/node'] },
    };
    const tsconfig = {
      compilerOptions: {
        target: 'ES2023',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        types: ['node'],
        strict: true,
        // The package's declarations are checked too, not only the program's use of them.
        skipLibCheck: false,
        outDir: 'out',
      },
      files: ['server.ts'],
    };
    await writeFile(path.join(project, 'package.json'), JSON.stringify(manifest, null, 2));
    await writeFile(path.join(project, 'tsconfig.json'), JSON.stringify(tsconfig, null, 2));
    await writeFile(path.join(project, 'server.ts'), await readmeExample());

    await sh('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], project);
    await sh(process.execPath, [tsc, '-p', project], project);

    const dataDir = path.join(root, 'data');
    const out = await sh(process.execPath, [path.join(project, 'out', 'server.js')], project, {
      DATA_DIR: dataDir,
    });
    const lastLine = out.trim().split('\n').at(-1) ?? '';
    expect(JSON.parse(lastLine)).toEqual({ liveNeedles: 0, deletedNeedles: 2 });
    // The store really was the installed package's, on disk where the program was told.
    expect((await readdir(dataDir)).some((name) => name.endsWith('.dat'))).toBe(true);
  });
});
