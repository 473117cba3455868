import type net from 'node:net';
import { openSocket } from './raw-http.ts';

/**
 * Clients that misbehave on purpose, over raw sockets: what an attacker does to the connection
 * layer, which no polite HTTP client can be made to do.
 */

/**
 * Resolves once `socket` is closed, whoever closed it. Reads (and drops) what is left to read:
 * a socket that does not read never sees the server's end.
 */
export function closedOf(socket: net.Socket): Promise<void> {
  if (socket.destroyed) return Promise.resolve();
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.resume();
  return closed;
}

/**
 * Sends `count` pipelined `GET path` in one write and reads nothing: the socket is paused at
 * once, so after the first chunk the server's answers pile up in the kernel and in the server.
 * Resolves once the server has surely parsed them all (they came in one packet and it either
 * answered the first or hung up), with the socket still open or not.
 */
export async function pipelineWithoutReading(
  url: string,
  path: string,
  count: number,
): Promise<net.Socket> {
  const socket = await openSocket(url);
  const request = `GET ${path} HTTP/1.1\r\nHost: attacker\r\n\r\n`;
  const answered = new Promise<void>((resolve) => {
    socket.once('data', () => {
      socket.pause();
      resolve();
    });
    socket.once('close', () => resolve());
  });
  socket.write(request.repeat(count));
  await answered;
  return socket;
}
