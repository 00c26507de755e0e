import { WebSocket } from 'ws';
import { withTimeout } from './procs.js';
import { onWebSocket, RfbViewer } from '../../server/test/support/rfb.js';

/**
 * The load generator: plain `ws` clients, as close to a browser's noVNC as Node gets.
 * Masking keys are all zero (ws then skips the XOR), which keeps the client's own CPU
 * use down on a small machine; the bytes on the wire are still valid masked frames.
 */
const CLIENT_OPTIONS = {
  perMessageDeflate: false,
  generateMask: (mask: Buffer) => mask.fill(0),
} as const;

export function openStream(url: string): Promise<WebSocket> {
  return withTimeout(
    new Promise<WebSocket>((resolve, reject) => {
      const ws = new WebSocket(url, ['binary'], CLIENT_OPTIONS);
      ws.binaryType = 'nodebuffer';
      ws.once('open', () => {
        // ws sets TCP_NODELAY already; say so, since Nagle would ruin the latency figures.
        (ws as unknown as { _socket: import('node:net').Socket })._socket.setNoDelay(true);
        // Open the VNC conversation (the relay may take part in it), then hand over a clean stream.
        const transport = onWebSocket(ws);
        const viewer = new RfbViewer(transport);
        viewer
          .greet()
          .then(({ offered }) => viewer.authenticate(offered))
          .then((accepted) => {
            transport.detach();
            if (!accepted) return reject(new Error(`${url}: the server refused authentication`));
            if (transport.bytes.rest().length > 0) return reject(new Error(`${url}: unexpected bytes after the RFB handshake`));
            resolve(ws);
          }, reject);
      });
      ws.once('error', reject);
      ws.once('close', (code, reason) => reject(new Error(`${url}: closed during the handshake (${code} ${reason.toString()})`)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`${url}: HTTP ${res.statusCode} instead of a WebSocket`)));
    }),
    15_000,
    `WebSocket ${url} did not open`,
  );
}

export function openStreams(url: string, count: number): Promise<WebSocket[]> {
  return openStreamsTo(Array.from({ length: count }, () => url));
}

/** One stream to each URL, in order (for example one per session). */
export async function openStreamsTo(urls: string[]): Promise<WebSocket[]> {
  const out: WebSocket[] = [];
  try {
    // Batches of 10: websockify forks a process per connection.
    for (let i = 0; i < urls.length; i += 10) {
      out.push(...(await Promise.all(urls.slice(i, i + 10).map((url) => openStream(url)))));
    }
    return out;
  } catch (err) {
    closeStreams(out);
    throw err;
  }
}

export function closeStreams(streams: WebSocket[]): void {
  for (const ws of streams) ws.terminate();
}

/** Fails the measurement (rather than hanging) if a stream closes under it. */
function watchClose(streams: WebSocket[], reject: (err: Error) => void): () => void {
  const onClose = (code: number, reason: Buffer) => reject(new Error(`stream closed mid-measurement (${code} ${reason.toString()})`));
  const onError = (err: Error) => reject(err);
  for (const ws of streams) {
    ws.on('close', onClose);
    ws.on('error', onError);
  }
  return () => {
    for (const ws of streams) {
      ws.off('close', onClose);
      ws.off('error', onError);
      ws.removeAllListeners('message');
    }
  };
}

export interface ThroughputResult {
  /** Payload bytes echoed back, summed over streams. */
  bytes: number;
  seconds: number;
  mbPerSec: number;
}

/**
 * Pushes `bytesPerStream` of `frameSize` binary frames through each stream's echo, keeping
 * at most `window` bytes in flight per stream, and times until every byte is back.
 * MB/s counts echoed payload (10^6 bytes), one direction.
 */
export function throughput(streams: WebSocket[], o: { bytesPerStream: number; frameSize: number; window: number }): Promise<ThroughputResult> {
  const frame = Buffer.alloc(o.frameSize, 0x5a);
  return withTimeout(
    new Promise<ThroughputResult>((resolve, reject) => {
      let unwatch = () => {};
      const fail = (err: Error) => {
        unwatch();
        reject(err);
      };
      unwatch = watchClose(streams, fail);
      let unfinished = streams.length;
      const start = process.hrtime.bigint();
      for (const ws of streams) {
        let sent = 0;
        let received = 0;
        const pump = () => {
          while (sent < o.bytesPerStream && sent - received < o.window) {
            const n = Math.min(o.frameSize, o.bytesPerStream - sent);
            ws.send(n === o.frameSize ? frame : frame.subarray(0, n), { binary: true });
            sent += n;
          }
        };
        ws.on('message', (data: Buffer) => {
          received += data.length;
          if (received >= o.bytesPerStream) {
            if (received > o.bytesPerStream) return fail(new Error(`echo returned ${received} bytes, more than the ${o.bytesPerStream} sent`));
            if (--unfinished === 0) {
              const seconds = Number(process.hrtime.bigint() - start) / 1e9;
              unwatch();
              const bytes = o.bytesPerStream * streams.length;
              resolve({ bytes, seconds, mbPerSec: bytes / 1e6 / seconds });
            }
            return;
          }
          pump();
        });
        pump();
      }
    }),
    120_000,
    'throughput run did not finish',
  );
}

/**
 * Each stream does `roundTrips` sequential ping-pongs of a `size`-byte binary message
 * (send, wait for all of it to come back, send the next); all streams run at once.
 * Resolves with every round-trip time in milliseconds.
 */
export function latency(streams: WebSocket[], o: { roundTrips: number; size: number }): Promise<Float64Array> {
  const rtts = new Float64Array(streams.length * o.roundTrips);
  let filled = 0;
  return withTimeout(
    new Promise<Float64Array>((resolve, reject) => {
      let unwatch = () => {};
      const fail = (err: Error) => {
        unwatch();
        reject(err);
      };
      unwatch = watchClose(streams, fail);
      let unfinished = streams.length;
      streams.forEach((ws, index) => {
        const msg = Buffer.alloc(o.size, index & 0xff);
        let done = 0;
        let got = 0;
        let t0 = 0n;
        const ping = () => {
          got = 0;
          t0 = process.hrtime.bigint();
          ws.send(msg, { binary: true });
        };
        ws.on('message', (data: Buffer) => {
          got += data.length;
          if (got < o.size) return; // websockify may split an echo; wait for all of it
          if (got > o.size || data[data.length - 1] !== (index & 0xff)) return fail(new Error('echo returned the wrong bytes'));
          rtts[filled++] = Number(process.hrtime.bigint() - t0) / 1e6;
          if (++done < o.roundTrips) return ping();
          if (--unfinished === 0) {
            unwatch();
            resolve(rtts);
          }
        });
        ping();
      });
    }),
    120_000,
    'latency run did not finish',
  );
}

/** Sends a patterned message and checks it comes back byte for byte. */
export async function verifyEcho(ws: WebSocket, size = 200_000): Promise<void> {
  const payload = Buffer.alloc(size);
  for (let i = 0; i < size; i++) payload[i] = (i * 31 + 7) & 0xff;
  const chunks: Buffer[] = [];
  let onClose = () => {};
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      let got = 0;
      const onMessage = (data: Buffer) => {
        chunks.push(Buffer.from(data));
        got += data.length;
        if (got >= size) {
          ws.off('message', onMessage);
          resolve();
        }
      };
      onClose = () => reject(new Error('stream closed during echo check'));
      ws.on('message', onMessage);
      ws.once('close', onClose);
      ws.send(payload, { binary: true });
    }),
    10_000,
    'echo check did not finish',
  ).finally(() => ws.off('close', onClose));
  if (!Buffer.concat(chunks).equals(payload)) throw new Error('echo check: bytes came back different');
}
