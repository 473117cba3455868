import { access, writeFile } from 'node:fs/promises';
import { readOnlyMarkerPath } from './data-dir.ts';
import { syncDirectory } from './fs-util.ts';
import { diskError } from './store-errors.ts';
import type { Volume } from './volume.ts';

/** An operator marked the volume read-only: `N.readonly` exists. */
export async function isMarkedReadOnly(dir: string, id: number): Promise<boolean> {
  return access(readOnlyMarkerPath(dir, id)).then(
    () => true,
    () => false,
  );
}

/** Marks a volume read-only for good: the marker is on disk before appends stop. */
export async function markReadOnly(dir: string, volume: Volume): Promise<void> {
  if (volume.readOnly) return;
  const marker = readOnlyMarkerPath(dir, volume.id);
  await writeFile(marker, '').catch((err: unknown) => {
    throw diskError(err);
  });
  await syncDirectory(marker);
  volume.readOnly = true; // appends to come go to a new volume
}
