import { type IncomingMessage, type Server, type ServerResponse, STATUS_CODES } from 'node:http';
import type { Socket } from 'node:net';
import type { ConnectionTable } from './connections.ts';

/**
 * Answers to what Node refuses before the app runs (a request it cannot parse, headers over its
 * 16 KiB limit, a header block that took too long), in the app's JSON error shape. The codes
 * past `bad_request` and `too_large` exist only here: the app never sees these requests.
 */
const answers = {
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'headers_too_large',
    message: 'the request line and headers are over 16 KiB',
  },
  HPE_CHUNK_EXTENSIONS_OVERFLOW: {
    status: 413,
    code: 'too_large',
    message: 'the chunk extensions are too large',
  },
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'request_timeout',
    message: 'the request headers did not arrive in time',
  },
} as const satisfies Record<string, { status: number; code: string; message: string }>;

const malformed = { status: 400, code: 'bad_request', message: 'malformed HTTP request' };

/** Errors of the socket itself: nobody is left to answer. */
const gone = new Set(['ECONNRESET', 'EPIPE', 'ECONNABORTED', 'ETIMEDOUT']);

function errorBytes(status: number, code: string, message: string): string {
  const body = JSON.stringify({ error: { code, message } });
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n` +
    'Content-Type: application/json\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

/**
 * Takes over Node's 'clientError' answer. Node writes its (empty) answer at once, ahead of the
 * answers still owed on the connection: a file stored by a request whose body ran past its
 * Content-Length was answered 400, its 201 lost. Here those answers go first (for at most
 * `waitMs`), then the error, then the connection is closed.
 */
export function answerClientErrors(
  server: Server,
  connections: ConnectionTable,
  waitMs: number,
): void {
  const answered = new WeakSet<Socket>();
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // The parser stays failed: any later bytes come back here.
    if (answered.has(socket)) return;
    answered.add(socket);
    if ((err.code !== undefined && gone.has(err.code)) || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, code, message } = answers[err.code as keyof typeof answers] ?? malformed;
    const current = (socket as Socket & { parser?: { incoming?: IncomingMessage } }).parser
      ?.incoming;
    if (current && !current.complete) {
      // The broken bytes belong to a request in progress: its answer cannot come. Answer in its
      // place if nothing of another answer is on the wire yet.
      if (!responseStarted(socket)) socket.write(errorBytes(status, code, message));
      socket.destroySoon();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), waitMs);
    connections.whenIdle(socket, () => {
      clearTimeout(timer);
      if (socket.writable) socket.write(errorBytes(status, code, message));
      // Once written, not waiting for the client's FIN: it may never send one.
      socket.destroySoon();
    });
  });
}

function responseStarted(socket: Socket): boolean {
  const current = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
  return current?.headersSent === true;
}

/** RFC 9112 3.2: an HTTP/1.1 request must name its Host; HTTP/1.0 need not. */
export function lacksRequiredHost(req: IncomingMessage): boolean {
  return req.httpVersion === '1.1' && req.headers.host === undefined;
}

/** The JSON 400 for `lacksRequiredHost`, closing the connection as Node's own 400 would. */
export function answerMissingHost(res: ServerResponse): void {
  const body = JSON.stringify({
    error: { code: 'bad_request', message: 'an HTTP/1.1 request needs a Host header' },
  });
  res.writeHead(400, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
}
