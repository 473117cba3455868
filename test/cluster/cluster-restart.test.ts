import { describe, expect, it } from 'vitest';
import { readStatus } from '../../scripts/torture/cluster-status.ts';
import { useClusterFixture } from './support/cluster-fixture.ts';

/**
 * Writes stay available while R nodes are up (CLUSTER.md), also right after a node that a
 * gateway saw fail came back: the gateway must not keep avoiding it for new logical volumes
 * once it registered again. A long node timeout (20 s) keeps the Directory from noticing the
 * kills by itself within the test, so only the gateway's own view of the failures is at play.
 */
const clusters = useClusterFixture('haystack-cluster-restart-');

async function post(gateway: string, body: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`${gateway}/file`, {
    method: 'POST',
    body,
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, text: await res.text() };
}

describe('a node back from a kill', () => {
  it('takes new logical volumes at once: a write with R nodes up succeeds', async () => {
    const f = await clusters.fixture({
      token: 'cluster-restart-test-token-0123456789',
      replicas: 3,
      nodeTimeout: '20',
      nodes: 4,
      gateways: 1,
    });
    await f.startAll();
    const gateway = f.gatewayUrl(0);
    const indexOf = async (id: string) => {
      const status = await readStatus(gateway);
      const url = status.nodes.find((node) => node.id === id)?.url;
      return f.nodeUrls().indexOf(url ?? '');
    };
    const replicasOf = async (volume: number) => {
      const status = await readStatus(gateway);
      const row = status.logicalVolumes.find((v) => v.id === volume);
      return Promise.all((row?.replicas ?? []).map((r) => indexOf(r.node)));
    };

    const first = await post(gateway, 'first');
    expect(first.status, first.text).toBe(201);
    const v1 = (JSON.parse(first.text) as { volume: number }).volume;
    const [a] = await replicasOf(v1);
    expect(a).toBeGreaterThanOrEqual(0);

    // Node a dies: the next write fails on it, and the gateway goes on on the three others.
    await f.killNode(a as number);
    const second = await post(gateway, 'second');
    expect(second.status, second.text).toBe(201);
    const v2 = (JSON.parse(second.text) as { volume: number }).volume;
    const onV2 = await replicasOf(v2);
    expect(onV2).not.toContain(a);

    // Node a comes back (registered once it listens); a node of the new volume dies.
    await f.startNode(a as number);
    const b = onV2[0] as number;
    await f.killNode(b);
    // Up now: a and the two others, R = 3. The write must go through on them.
    const third = await post(gateway, 'third');
    expect(third.status, third.text).toBe(201);
    const onV3 = await replicasOf((JSON.parse(third.text) as { volume: number }).volume);
    expect(onV3).not.toContain(b);
  });
});
