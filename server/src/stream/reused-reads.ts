import type net from 'node:net';

/** Bytes per read from websockify; its frames are at most 64 KiB. */
export const READ_SIZE = 64 * 1024;

/**
 * Reads a socket into one buffer used again and again, for `net.connect({ onread })`.
 *
 * By default Node allocates a fresh buffer for every read. At desktop-stream rates that is
 * tens of MB a second of short-lived external memory, and in a process with Sortie's heap
 * it brings a full garbage collection every few hundred milliseconds: the relay then costs
 * more CPU per GB than a bare proxy. Here a read lands in the same buffer as the last one,
 * unless the last one is still referenced by a write that has not finished (a viewer with
 * bytes waiting); only then is a new buffer taken, and the old one left to that write.
 *
 * Until `relayTo()` is called, each read is copied and emitted as an ordinary `data`
 * event, so handshake code written for plain sockets reads it as usual.
 */
export class ReusedReads {
  private buffer = Buffer.allocUnsafeSlow(READ_SIZE);
  /** The last read is still referenced elsewhere: the next read needs a buffer of its own. */
  private lent = false;
  private sink: ((chunk: Buffer) => boolean) | undefined;
  private socket: net.Socket | undefined;

  /** For `onread`: called by Node before each read for the buffer to read into. */
  readonly next = (): Buffer => {
    if (this.lent) {
      this.buffer = Buffer.allocUnsafeSlow(READ_SIZE);
      this.lent = false;
    }
    return this.buffer;
  };

  /** For `onread`: called by Node with each read. */
  readonly deliver = (bytes: number, buffer: Uint8Array): boolean => {
    const chunk = (buffer as Buffer).subarray(0, bytes);
    if (this.sink) this.lent = this.sink(chunk);
    else this.socket?.emit('data', Buffer.from(chunk));
    return true; // false would pause the socket; reading stays eager (see ViewerStream)
  };

  /** The socket whose reads these are, for the `data` events before `relayTo()`. */
  attach(socket: net.Socket): void {
    this.socket = socket;
  }

  /**
   * From now on each read goes to `sink` uncopied. The chunk is valid only until `sink`
   * returns, unless `sink` returns true: it kept a reference (e.g. a write still pending).
   */
  relayTo(sink: (chunk: Buffer) => boolean): void {
    this.sink = sink;
  }
}
