import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Produces the answer to one request (the app, behind the runner's own checks). */
export type Answer = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * The open connections of an HTTP server and, for each, its unfinished responses: the one being
 * answered and those pipelined behind it.
 *
 * A connection's requests are answered one at a time, in order: the answers have to go out in
 * that order anyway, and Node parses every request of a packet before any is answered, so
 * answering them all at once would make the server read and keep every file a client asks for,
 * whether or not it ever reads them. The answer being made is always the one Node is sending
 * on the socket, which Node closes with it; the ones waiting hold no body. Everything about a
 * connection is forgotten when its socket closes (Node never emits 'close' for the responses
 * queued behind the current one on a dead socket).
 */
export interface ConnectionTable {
  /** Every open connection, with its unfinished responses, oldest (the one being made) first. */
  readonly open: ReadonlyMap<Socket, { readonly responses: readonly ServerResponse[] }>;
  /** Calls `then` once `socket` has no unfinished response, or is closed. */
  whenIdle(socket: Socket, then: () => void): void;
  /** Called whenever a response finishes or a connection closes. */
  onChange: (() => void) | undefined;
}

interface Connection {
  responses: ServerResponse[];
  idleWaiters: (() => void)[] | undefined;
}

/**
 * Follows `server`'s connections and hands their requests to `answer`, one at a time per
 * connection. A request that arrives while `maxPipeline` responses on its connection are
 * unfinished closes the connection. Call before the server listens.
 */
export function watchConnections(
  server: Server,
  {
    maxPipeline,
    answer,
    closed,
  }: {
    maxPipeline: number;
    answer: Answer;
    /** Told first whenever a response closes, finished or not. */
    closed?: (res: ServerResponse) => void;
  },
): ConnectionTable {
  const connections = new Map<Socket, Connection>();

  const table: ConnectionTable = {
    open: connections,
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
    closed?.(this);
    const socket = this.req.socket;
    const connection = connections.get(socket);
    if (connection) {
      const { responses } = connection;
      // Only the first was being answered, so only it can have finished; `shift`, unlike
      // `splice`, makes no array of what it removes.
      const index = responses[0] === this ? 0 : responses.indexOf(this);
      if (index === 0) responses.shift();
      else if (index > 0) responses.splice(index, 1);
      const next = responses[0];
      if (next === undefined) wakeIdle(connection);
      else if (index === 0 && !socket.destroyed) answer(next.req, next);
    }
    table.onChange?.();
  }

  server.on('connection', (socket: Socket) => {
    const connection: Connection = { responses: [], idleWaiters: undefined };
    connections.set(socket, connection);
    socket.once('close', () => {
      connections.delete(socket);
      wakeIdle(connection);
      table.onChange?.();
    });
  });

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const connection = connections.get(req.socket);
    if (!connection) return; // its socket closed already: nobody to answer
    const { responses } = connection;
    if (responses.length >= maxPipeline) {
      req.socket.destroy();
      return;
    }
    responses.push(res);
    res.on('close', onResponseClose);
    if (responses.length === 1) answer(req, res);
  });

  return table;
}
