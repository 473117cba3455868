import { execFileSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import { afterEach, describe, expect, it } from 'vitest';
import { createApp } from '../../handlers/index.ts';
import type { StoreStatus, VolumeStatus } from '../../storage/index.ts';
import { type Listening, listen } from '../http/helpers.ts';
import { deleteFile, postFile, putFile, randomBody } from '../support/http.ts';
import { useVolumeStores } from '../support/volume-stores.ts';

const ADMIN_TOKEN = 'status-page-test-token-0123456789';
const VOLUME_SIZE = 8 * 1024;
const MAX_BODY = 4 * VOLUME_SIZE;
const SCREENSHOT = fileURLToPath(new URL('../../test-artifacts/status-page.png', import.meta.url));

/** Debian's `chromium` (what CI installs), or the one CHROMIUM_PATH names, or one on the PATH. */
function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM_PATH, '/usr/bin/chromium'];
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue;
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {}
  }
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8' }).trim();
      if (found !== '') return found;
    } catch {}
  }
  return undefined;
}

const executablePath = findChromium();

/** A figure cell as the browser has it: its exact value and the text a person reads. */
interface Cell {
  value: string | null;
  text: string;
}

// Just what the page functions below touch: the tests compile without the DOM's types.
interface DomElement {
  getAttribute(name: string): string | null;
  readonly textContent: string | null;
  querySelectorAll(selector: string): Iterable<DomElement>;
}

function cellsOf(elements: DomElement[]): Record<string, Cell>[] {
  return elements.map((element) =>
    Object.fromEntries(
      [...element.querySelectorAll('[data-figure]')].map((cell) => [
        cell.getAttribute('data-figure') ?? '',
        { value: cell.getAttribute('data-value'), text: (cell.textContent ?? '').trim() },
      ]),
    ),
  );
}

function expectVolumeShown(shown: Record<string, Cell>, volume: VolumeStatus): void {
  const what = `volume ${volume.id}`;
  expect(shown.id?.value, what).toBe(String(volume.id));
  for (const field of [
    'bytes',
    'liveNeedles',
    'deletedNeedles',
    'liveBytes',
    'garbageBytes',
  ] as const) {
    expect(Number(shown[field]?.value), `${what} ${field}`).toBe(volume[field]);
  }
  expect(shown.liveNeedles?.text, what).toBe(String(volume.liveNeedles));
  expect(shown.deletedNeedles?.text, what).toBe(String(volume.deletedNeedles));
  expect(Number(shown.garbageRatio?.value), `${what} garbageRatio`).toBe(volume.garbageRatio);
  expect(shown.garbageRatio?.text, what).toBe(`${(volume.garbageRatio * 100).toFixed(1)}%`);
  expect(Number(shown.fill?.value), `${what} fill`).toBe(volume.bytes / VOLUME_SIZE);
  const state = volume.readOnly ? 'read-only' : volume.sealed ? 'sealed' : 'writable';
  expect(shown.state?.value, what).toBe(state);
}

describe('GET /ui in a real browser', () => {
  const stores = useVolumeStores('haystack-status-page-');
  let server: Listening | undefined;
  let browser: Browser | undefined;

  afterEach(async () => {
    await browser?.close();
    await server?.close();
    browser = undefined;
    server = undefined;
  });

  if (executablePath === undefined) {
    it.skip('needs a Chromium binary (none at $CHROMIUM_PATH, /usr/bin/chromium or on the PATH; .ci/run installs it)', () => {});
    return;
  }

  it('shows what GET /status says after writes, deletes and replaces, loading nothing else', {
    timeout: 180_000,
  }, async () => {
    const store = await stores.open({ volumeSize: VOLUME_SIZE });
    const app = createApp({ store, maxBody: MAX_BODY, adminToken: ADMIN_TOKEN });
    server = await listen(app.fetch);
    const { base } = server;

    // About 1.5 KiB a file in 8 KiB volumes: the files spread over several volumes.
    const files = [];
    for (let i = 0; i < 14; i++) files.push(await postFile(base, randomBody(1200 + i * 37), 'x/a'));
    for (const file of files.slice(0, 4)) await deleteFile(base, file.key);
    for (const file of files.slice(6, 9)) await putFile(base, file.key, randomBody(900), 'x/b');
    await postFile(base, randomBody(0), 'x/empty');
    // One file larger than a volume: a volume of its own, filled past 100%.
    await postFile(base, randomBody(VOLUME_SIZE + 100), 'x/big');
    const marked = await fetch(`${base}/admin/volumes/1/readonly`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(marked.status).toBe(200);
    await marked.arrayBuffer();

    browser = await chromium.launch({ executablePath, args: ['--no-sandbox'], headless: true });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    const answer = await page.goto(`${base}/ui`, { waitUntil: 'load' });
    expect(answer?.status()).toBe(200);

    const res = await fetch(`${base}/status`);
    expect(res.status).toBe(200);
    const status = (await res.json()) as StoreStatus;
    expect(status.volumeSize).toBe(VOLUME_SIZE);
    expect(status.volumes.length).toBeGreaterThanOrEqual(4);
    expect(status.deletedNeedles).toBeGreaterThan(0);
    expect(status.volumes.some((v) => v.readOnly)).toBe(true);
    expect(status.volumes.some((v) => v.bytes > VOLUME_SIZE)).toBe(true);

    const rowIds = await page
      .locator('tr[data-volume]')
      .evaluateAll((rows: DomElement[]) => rows.map((row) => row.getAttribute('data-volume')));
    expect(rowIds).toEqual(status.volumes.map((v) => String(v.id)));
    const rows = await page.locator('tr[data-volume]').evaluateAll(cellsOf);
    for (const [i, volume] of status.volumes.entries()) expectVolumeShown(rows[i] ?? {}, volume);

    const [totals] = await page.locator('#totals').evaluateAll(cellsOf);
    expect(Number(totals?.volumes?.value)).toBe(status.volumes.length);
    for (const field of [
      'bytes',
      'liveNeedles',
      'deletedNeedles',
      'liveBytes',
      'garbageBytes',
      'garbageRatio',
      'nextKey',
      'volumeSize',
    ] as const) {
      expect(Number(totals?.[field]?.value), `total ${field}`).toBe(status[field]);
    }
    expect(totals?.nextKey?.text).toBe(String(status.nextKey));

    // The page is one HTML answer: no style sheet, script, font, image or icon was fetched.
    expect(requested).toEqual([`${base}/ui`]);

    await mkdir(new URL('../../test-artifacts/', import.meta.url), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    console.log(`status page screenshot: ${SCREENSHOT}`);
  });
});
