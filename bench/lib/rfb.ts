import { randomBytes } from 'node:crypto';

/**
 * Just enough RFB (VNC) for the bench: Sortie's relay may speak the opening of RFB itself
 * (answering the VNC password challenge upstream, offering "None" to the browser) before it
 * pipes bytes. So the echo server opens like a VNC server and the load generator like a
 * viewer; once both stand before ClientInit, everything is echoed. With a relay that only
 * pipes, the same handshake simply runs end to end.
 * RFB 3.8: https://github.com/rfbproto/rfbproto/blob/master/rfbproto.rst
 */

const VERSION = Buffer.from('RFB 003.008\n', 'latin1');
const NONE = 1;
const VNC_AUTH = 2;

/** Reads exact byte counts from a stream of chunks (TCP data or WebSocket messages). */
export class ByteQueue {
  private chunks: Buffer[] = [];
  private length = 0;
  private waiter: { n: number; resolve: (b: Buffer) => void } | undefined;

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    this.wake();
  }

  read(n: number): Promise<Buffer> {
    return new Promise((resolve) => {
      this.waiter = { n, resolve };
      this.wake();
    });
  }

  /** Whatever arrived beyond what was read. */
  rest(): Buffer {
    const all = Buffer.concat(this.chunks);
    this.chunks = [];
    this.length = 0;
    return all;
  }

  private wake(): void {
    if (!this.waiter || this.length < this.waiter.n) return;
    const all = Buffer.concat(this.chunks);
    const { n, resolve } = this.waiter;
    this.waiter = undefined;
    this.chunks = all.length > n ? [all.subarray(n)] : [];
    this.length = all.length - n;
    resolve(all.subarray(0, n));
  }
}

/** The VNC server's side: offers None and VNC authentication and accepts any answer. */
export async function serverHandshake(read: (n: number) => Promise<Buffer>, write: (b: Buffer) => void): Promise<void> {
  write(VERSION);
  const version = (await read(12)).toString('latin1');
  if (!version.startsWith('RFB 003.00')) throw new Error(`not an RFB viewer: ${JSON.stringify(version)}`);
  write(Buffer.from([2, NONE, VNC_AUTH]));
  const chosen = (await read(1))[0];
  if (chosen === VNC_AUTH) {
    write(randomBytes(16));
    await read(16); // not checked: the bench measures the relay, not the password
  } else if (chosen !== NONE) {
    throw new Error(`viewer chose security type ${chosen}`);
  }
  write(Buffer.alloc(4)); // SecurityResult: OK
}

/** The viewer's side: takes "None" (or answers a VNC challenge with zeros) and checks the result. */
export async function clientHandshake(read: (n: number) => Promise<Buffer>, write: (b: Buffer) => void): Promise<void> {
  const version = (await read(12)).toString('latin1');
  if (version !== VERSION.toString('latin1')) throw new Error(`not an RFB 3.8 server: ${JSON.stringify(version)}`);
  write(VERSION);
  const count = (await read(1))[0]!;
  if (count === 0) throw new Error('the server refused the connection');
  const offered = [...(await read(count))];
  if (offered.includes(NONE)) {
    write(Buffer.from([NONE]));
  } else if (offered.includes(VNC_AUTH)) {
    write(Buffer.from([VNC_AUTH]));
    await read(16);
    write(Buffer.alloc(16));
  } else {
    throw new Error(`no usable security type in ${offered.join(', ')}`);
  }
  const result = (await read(4)).readUInt32BE(0);
  if (result !== 0) throw new Error('the server refused authentication');
}
