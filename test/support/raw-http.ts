import net from 'node:net';

/**
 * HTTP/1.1 by hand over one TCP connection, for what fetch cannot do on purpose: stop half-way
 * through a body, wait for `100 Continue` (proof the server is handling the request), read part
 * of a response and hang up.
 */
export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawConnection {
  socket: net.Socket;
  write(data: string | Uint8Array): Promise<void>;
  /**
   * The next response (an interim `100 Continue` counts); its body is read by Content-Length, or
   * to the end of the connection without one. Chunked bodies are not supported.
   */
  readResponse(): Promise<RawResponse>;
  /** Resolves once at least `n` bytes arrived in total (headers included). */
  waitForBytes(n: number): Promise<void>;
  /** Resolves when the server closes the connection. */
  closed: Promise<void>;
  /** Hang up at once (RST when possible), as a client that goes away does. */
  abort(): void;
}

export async function connect(url: string): Promise<RawConnection> {
  return wrap(await openSocket(url));
}

/**
 * A plain TCP connection to `url`, resolved once connected. Errors after that (the server may
 * reset it: that is the point of many of these tests) are swallowed; watch 'close' instead.
 */
export function openSocket(url: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: hostname, port: Number(port) });
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      socket.on('error', () => {});
      resolve(socket);
    });
  });
}

function wrap(socket: net.Socket): RawConnection {
  let buffer = Buffer.alloc(0);
  let received = 0;
  let ended = false;
  const waiters = new Set<() => void>();
  const poke = () => {
    for (const waiter of [...waiters]) waiter();
  };
  socket.on('data', (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    received += chunk.length;
    poke();
  });
  const closed = new Promise<void>((resolve) => {
    socket.once('close', () => {
      ended = true;
      poke();
      resolve();
    });
  });

  /** Waits until `take` returns a value; `take` may consume from `buffer`. */
  function until<T>(take: () => T | undefined, what: string): Promise<T> {
    return new Promise((resolve, reject) => {
      const attempt = () => {
        let value: T | undefined;
        try {
          value = take();
        } catch (err) {
          waiters.delete(attempt);
          reject(err);
          return;
        }
        if (value !== undefined) {
          waiters.delete(attempt);
          resolve(value);
        } else if (ended) {
          waiters.delete(attempt);
          reject(new Error(`connection closed before ${what}`));
        }
      };
      waiters.add(attempt);
      attempt();
    });
  }

  return {
    socket,
    write: (data) =>
      new Promise((resolve, reject) =>
        socket.write(data, (err) => (err ? reject(err) : resolve())),
      ),
    readResponse: () =>
      until(() => {
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return undefined;
        const [statusLine = '', ...lines] = buffer
          .subarray(0, end)
          .toString('latin1')
          .split('\r\n');
        const status = Number(statusLine.split(' ')[1]);
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
        }
        const declared = headers['content-length'];
        // Without a Content-Length the body runs to the end of the connection.
        if (declared === undefined && status !== 100 && status !== 304 && !ended) return undefined;
        const length =
          status === 100 || status === 304
            ? 0
            : declared === undefined
              ? buffer.length - end - 4
              : Number(declared);
        if (buffer.length < end + 4 + length) return undefined;
        const body = buffer.subarray(end + 4, end + 4 + length);
        buffer = buffer.subarray(end + 4 + length);
        return { status, headers, body };
      }, 'a complete response'),
    waitForBytes: (n) =>
      until(() => (received >= n ? true : undefined), `${n} bytes`).then(() => {}),
    closed,
    abort: () => socket.resetAndDestroy(),
  };
}
