import type { Server, ServerOptions } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionTable } from './connections.ts';

/** What one client, or many, may hold of the server; see the README's "Connections". */
export interface ConnectionLimits {
  maxConnections: number;
  /** Unfinished responses one connection may have (pipelining); past it, it is closed. */
  maxPipeline: number;
  /** A request's header block must be complete within this many ms of its first byte. */
  headersTimeoutMs: number;
  /**
   * A connection on which nothing moves for this many ms (no byte in, no byte of pending output
   * out) is closed, unless it is only waiting for the server's answer.
   */
  idleTimeoutMs: number;
}

/** How long an idle keep-alive connection stays open: Node's default, also nginx's order. */
export const KEEP_ALIVE_TIMEOUT_MS = 5_000;

/** Options for `http.createServer` that go with `limits`. */
export function serverOptions(limits: ConnectionLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeoutMs,
    // Node's request timeout bounds a whole request, body included, so it would cut a large
    // upload on a slow link however steadily it moves; the idle timeout bounds a stalled one.
    requestTimeout: 0,
    keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS,
    // Node checks the header timeout on this timer (30 s by default): check often enough that
    // a connection is dropped close to its deadline.
    connectionsCheckingInterval: Math.min(1_000, Math.max(50, limits.headersTimeoutMs / 4)),
    // HTTP/1.0 needs no Host; an HTTP/1.1 request without one is refused in JSON instead
    // (see client-errors.ts), not with Node's empty 400.
    requireHostHeader: false,
  };
}

/**
 * Applies what `serverOptions` cannot: the connection count, and the idle timeout, which is
 * Node's socket timeout (reset by every byte read and every write that makes progress) with the
 * decision of what to close taken here. Call before the server listens.
 */
export function applyConnectionLimits(
  server: Server,
  limits: ConnectionLimits,
  connections: ConnectionTable,
): void {
  // Past it, Node closes a new connection as soon as it is accepted.
  server.maxConnections = limits.maxConnections;
  server.timeout = limits.idleTimeoutMs;
  // With a listener here Node leaves the socket open on a timeout: close it unless the server
  // itself is still working on an answer that has nothing to send yet.
  server.on('timeout', (socket: Socket) => {
    if (!onlyWaitingForServer(socket, connections)) socket.destroy();
  });
}

/** Every request on it is read in full and nothing is waiting to be sent. */
function onlyWaitingForServer(socket: Socket, connections: ConnectionTable): boolean {
  const responses = connections.open.get(socket)?.responses;
  if (!responses || responses.length === 0) return false; // idle: keep-alive or silent
  if (socket.writableLength > 0) return false; // a slow reader
  return responses.every((res) => res.req.complete); // else a stalled upload
}
