import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * The open connections of an HTTP server and, for each, its unfinished responses: the one being
 * sent and those queued behind it by pipelining.
 *
 * Everything about a connection is forgotten when its socket closes. Node emits 'close' for the
 * response being sent on a dead socket, but never for the ones queued behind it: whoever keeps
 * them until their 'close' keeps them (and the bodies they buffered) for good.
 */
export interface ConnectionTable {
  /** Every open connection, with its unfinished responses, oldest first. */
  readonly open: ReadonlyMap<Socket, { readonly responses: readonly ServerResponse[] }>;
  /**
   * Counts a new request's response on its connection, or closes the connection and answers
   * false when `maxPipeline` of its responses are unfinished already; the request must then not
   * reach the app. Nothing else bounds what one client may have queued: Node parses every
   * request of a packet before any is answered.
   */
  admit(req: IncomingMessage, res: ServerResponse): boolean;
  /** Calls `then` once `socket` has no unfinished response, or is closed. */
  whenIdle(socket: Socket, then: () => void): void;
  /** Called whenever a response finishes or a connection closes. */
  onChange: (() => void) | undefined;
}

interface Connection {
  responses: ServerResponse[];
  idleWaiters: (() => void)[] | undefined;
}

/** Follows `server`'s connections; call before it listens. */
export function watchConnections(server: Server, maxPipeline: number): ConnectionTable {
  const connections = new Map<Socket, Connection>();

  const table: ConnectionTable = {
    open: connections,
    admit(req, res) {
      const connection = connections.get(req.socket);
      if (!connection) return false; // its socket closed already
      if (connection.responses.length >= maxPipeline) {
        req.socket.destroy();
        return false;
      }
      connection.responses.push(res);
      res.on('close', onResponseClose);
      return true;
    },
    whenIdle(socket, then) {
      const connection = connections.get(socket);
      if (!connection || connection.responses.length === 0) return then();
      connection.idleWaiters ??= [];
      connection.idleWaiters.push(then);
    },
    onChange: undefined,
  };

  const wakeIdle = (connection: Connection) => {
    const waiters = connection.idleWaiters;
    connection.idleWaiters = undefined;
    if (waiters) for (const waiter of waiters) waiter();
  };

  // One listener for every response, not a closure per request: the read path is hot.
  function onResponseClose(this: ServerResponse) {
    const connection = connections.get(this.req.socket);
    if (connection) {
      const { responses } = connection;
      // Answers finish in order: this is nearly always the first.
      const index = responses.indexOf(this);
      if (index >= 0) responses.splice(index, 1);
      if (responses.length === 0) wakeIdle(connection);
    }
    table.onChange?.();
  }

  server.on('connection', (socket: Socket) => {
    const connection: Connection = { responses: [], idleWaiters: undefined };
    connections.set(socket, connection);
    socket.once('close', () => {
      connections.delete(socket);
      for (const res of connection.responses) abandonQueued(res);
      wakeIdle(connection);
      table.onChange?.();
    });
  });

  return table;
}

/**
 * A response still queued behind another when its connection died. Node never ends it: emit its
 * 'close' as Node does for the one it was sending, so that whatever feeds it stops (a streamed
 * file body is cancelled and lets go of its volume, which compaction may have replaced).
 */
function abandonQueued(res: ServerResponse): void {
  // Attached: Node closes it. Ended: it holds only buffers, which go with it.
  if (res.socket || res.writableEnded || res.destroyed) return;
  res.destroy();
  res.emit('close');
}
