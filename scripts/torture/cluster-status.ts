import { setTimeout as sleep } from 'node:timers/promises';
import { REQUEST_TIMEOUT_MS } from './content.ts';

/** `GET /status` of a gateway, the parts the harness reads (CLUSTER.md). */
export interface ClusterStatusAnswer {
  nodes: { id: string; url: string; state: 'up' | 'down' }[];
  logicalVolumes: {
    id: number;
    state: 'writable' | 'read-only';
    reason: string | null;
    replicas: { node: string; state: 'ok' | 'down' | 'catching-up' }[];
  }[];
  nextKey?: number;
}

export async function readStatus(gateway: string): Promise<ClusterStatusAnswer> {
  const res = await fetch(`${gateway}/status`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  if (res.status !== 200) {
    throw new Error(`GET ${gateway}/status answered ${res.status}: ${await res.text()}`);
  }
  return (await res.json()) as ClusterStatusAnswer;
}

/** How often a wait reads the status again: it waits for the heartbeats, not for time. */
const POLL_MS = 100;

/**
 * Reads `GET /status` of `gateway()` until `done` holds; rejects after `limitMs` with the last
 * status (or error) in the message. The gateway is asked again on each poll, so a caller may
 * pass one that changes.
 */
export async function waitForStatus(
  gateway: () => string,
  what: string,
  done: (status: ClusterStatusAnswer) => boolean,
  limitMs: number,
): Promise<ClusterStatusAnswer> {
  const deadline = performance.now() + limitMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const status = await readStatus(gateway());
      if (done(status)) return status;
      last = JSON.stringify(status);
    } catch (err) {
      last = String(err);
    }
    if (performance.now() > deadline) {
      throw new Error(`waited ${limitMs} ms for ${what}; last status: ${last.slice(0, 4000)}`);
    }
    await sleep(POLL_MS);
  }
}

/** The status's node of this URL (a node's advertised URL is its listening URL here). */
export function nodeByUrl(status: ClusterStatusAnswer, url: string) {
  return status.nodes.find((node) => node.url === url);
}

/** Every node of `urls` is as `state` says in the status. */
export function nodesAre(
  status: ClusterStatusAnswer,
  urls: readonly string[],
  state: 'up' | 'down',
): boolean {
  return urls.every((url) => nodeByUrl(status, url)?.state === state);
}

/** Every node is up and every replica of every logical volume `ok`. */
export function allHealthy(status: ClusterStatusAnswer, nodeUrls: readonly string[]): boolean {
  return (
    nodesAre(status, nodeUrls, 'up') &&
    status.logicalVolumes.every((volume) => volume.replicas.every((r) => r.state === 'ok'))
  );
}
