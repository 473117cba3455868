import { EventEmitter } from 'node:events';
import { describe, expect, it } from 'vitest';
import { releaseAfterSend } from '../../handlers/after-send.ts';
import { releaseAfterClose, takeAfterSend } from '../../handlers/index.ts';

/** What releaseAfterClose sees of a Node response: `close`, and whether it was emitted. */
class FakeOutgoing extends EventEmitter {
  closed = false;
  close(): void {
    this.closed = true;
    this.emit('close');
  }
}

function counted() {
  const calls = { count: 0 };
  return { calls, release: () => void calls.count++ };
}

describe('the hand-off of lent bytes from the routes to the host', () => {
  it('hands a release out once, and none for a response that was left none', () => {
    const { calls, release } = counted();
    const response = releaseAfterSend(new Response('x'), release);
    expect(releaseAfterSend(new Response('y'), undefined)).toBeInstanceOf(Response);
    expect(takeAfterSend(response)).toBe(release);
    expect(takeAfterSend(response)).toBeUndefined();
    expect(takeAfterSend(new Response('z'))).toBeUndefined();
    expect(calls.count).toBe(0);
  });

  it('calls the release when the response closes, not before, for sync and async answers', async () => {
    for (const async of [false, true]) {
      const { calls, release } = counted();
      const fetch = releaseAfterClose((_request: Request, _env: { outgoing: FakeOutgoing }) => {
        const response = releaseAfterSend(new Response('bytes'), release);
        return async ? Promise.resolve(response) : response;
      });
      const outgoing = new FakeOutgoing();
      const answer = fetch(new Request('http://host/file/1'), { outgoing });
      expect(answer instanceof Promise).toBe(async);
      expect(await (await answer).text()).toBe('bytes');
      expect(calls.count).toBe(0);
      outgoing.close();
      expect(calls.count).toBe(1);
      outgoing.emit('close');
      expect(calls.count).toBe(1);
    }
  });

  it('calls it at once when the response closed before the answer was ready', async () => {
    const { calls, release } = counted();
    const outgoing = new FakeOutgoing();
    const fetch = releaseAfterClose(async (_request: Request, _env: { outgoing: FakeOutgoing }) => {
      outgoing.close(); // the client hung up while the handler worked
      return releaseAfterSend(new Response('late'), release);
    });
    await fetch(new Request('http://host/file/1'), { outgoing });
    expect(calls.count).toBe(1);
    expect(outgoing.listenerCount('close')).toBe(0);
  });

  it('adds nothing to a response without lent bytes, and passes failures through', async () => {
    const outgoing = new FakeOutgoing();
    const plain = releaseAfterClose(async () => new Response('plain'));
    await plain(new Request('http://host/status'), { outgoing });
    expect(outgoing.listenerCount('close')).toBe(0);
    const failing = releaseAfterClose(async (): Promise<Response> => {
      throw new Error('broken handler');
    });
    await expect(failing(new Request('http://host/x'), { outgoing })).rejects.toThrow(
      'broken handler',
    );
  });
});
