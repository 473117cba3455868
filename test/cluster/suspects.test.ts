import { describe, expect, it } from 'vitest';
import type { NodeRow } from '../../adapters/cluster/directory/types.ts';
import { Suspects } from '../../adapters/cluster/suspects.ts';

const row = (id: string, registeredAt: number): NodeRow => ({
  id,
  url: `http://127.0.0.1:1/${id}`,
  up: true,
  lastHeartbeat: new Date(registeredAt),
  registeredAt: new Date(registeredAt),
  bytesFree: 1,
});

describe('Suspects', () => {
  it('keeps a failed node suspect for the node timeout', () => {
    let now = 0;
    const suspects = new Suspects(2000, () => now);
    suspects.add('a', new Date(100));
    expect(suspects.list()).toEqual(['a']);
    now = 1999;
    expect(suspects.has('a')).toBe(true);
    now = 2000;
    expect(suspects.has('a')).toBe(false);
  });

  it('trusts again at once a node that registered again since it failed', () => {
    const suspects = new Suspects(60_000, () => 0);
    suspects.add('a', new Date(100));
    suspects.add('b', new Date(100));
    suspects.forgiveRestarted([row('a', 100), row('b', 100)]);
    expect(suspects.list()).toEqual(['a', 'b']);
    suspects.forgiveRestarted([row('a', 5000), row('b', 100)]);
    expect(suspects.list()).toEqual(['b']);
  });

  it('keeps a suspect whose registration it never saw until the timeout', () => {
    const suspects = new Suspects(60_000, () => 0);
    suspects.add('a');
    suspects.forgiveRestarted([row('a', 5000)]);
    expect(suspects.has('a')).toBe(true);
  });
});
