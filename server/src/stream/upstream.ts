import { createHash, randomBytes } from 'node:crypto';
import net from 'node:net';
import type { Endpoint } from '../runners/runner.js';
import { ReusedReads } from './reused-reads.js';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export function acceptKey(key: string): string {
  return createHash('sha1').update(key + GUID).digest('base64');
}

/**
 * Opens a WebSocket to a session's websockify as a client (subprotocol "binary", no
 * extensions, so frames can later be piped to and from the browser as they are).
 * Resolves with the socket, its reads (see ReusedReads: `data` events until the relay takes
 * them over) and any bytes that came after the 101 response.
 */
export function openUpstream(endpoint: Endpoint, signal: AbortSignal): Promise<{ socket: net.Socket; reads: ReusedReads; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const reads = new ReusedReads();
    const socket = net.connect({ host: endpoint.host, port: endpoint.port, onread: { buffer: reads.next, callback: reads.deliver } });
    reads.attach(socket);
    const key = randomBytes(16).toString('base64');
    let received = Buffer.alloc(0);
    let settled = false;
    const onAbort = () => fail(new Error('timed out'));
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener('abort', onAbort);
      socket.destroy();
      reject(err);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('close', () => fail(new Error('closed before the WebSocket upgrade')));
    socket.setNoDelay(true);
    socket.once('connect', () => {
      socket.write(
        [
          'GET / HTTP/1.1',
          `Host: ${endpoint.host}:${endpoint.port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          `Sec-WebSocket-Key: ${key}`,
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Protocol: binary',
          '',
          '',
        ].join('\r\n'),
      );
    });
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) {
        if (received.length > 8192) fail(new Error('the upgrade response is too large'));
        return;
      }
      socket.off('data', onData);
      socket.pause();
      socket.removeAllListeners('error').removeAllListeners('close');
      const head = received.subarray(0, end).toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head)?.[1];
      const accept = /\r\nsec-websocket-accept:\s*(\S+)/i.exec(head)?.[1];
      if (status !== '101') return fail(new Error(`websockify answered ${status ?? 'garbage'} instead of 101`));
      if (accept !== acceptKey(key)) return fail(new Error('websockify answered with a wrong Sec-WebSocket-Accept'));
      settled = true;
      signal.removeEventListener('abort', onAbort);
      resolve({ socket, reads, rest: received.subarray(end + 4) });
    };
    socket.on('data', onData);
  });
}
