import { createHash } from 'node:crypto';

/** What a client knows of a file it sent: enough to check it without keeping its bytes. */
export interface Content {
  sha256: string;
  size: number;
  /** As the server must give it back. */
  contentType: string;
}

/** What a GET answered. */
export interface Read {
  status: number;
  sha256: string;
  size: number;
  contentType: string;
}

/** How long any check request may take before it is a failure. */
export const REQUEST_TIMEOUT_MS = 30_000;

export async function readKey(url: string, key: number): Promise<Read> {
  const res = await fetch(`${url}/file/${key}`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  const bytes = new Uint8Array(await res.arrayBuffer());
  return {
    status: res.status,
    sha256: sha256(bytes),
    size: bytes.byteLength,
    contentType: res.headers.get('content-type') ?? '',
  };
}

export function sameContent(read: Read, content: Content): boolean {
  return (
    read.sha256 === content.sha256 &&
    read.size === content.size &&
    read.contentType === content.contentType
  );
}

export function describeDifference(read: Read, content: Content): string {
  return `got ${read.size} bytes of ${read.contentType} (sha256 ${read.sha256.slice(0, 12)}), stored ${content.size} bytes of ${content.contentType} (sha256 ${content.sha256.slice(0, 12)})`;
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
