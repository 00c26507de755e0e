/**
 * Follows where frame boundaries fall in a stream of WebSocket frames that is relayed as raw
 * chunks, without copying or keeping any of it: only the current frame's header bytes and
 * how much of its payload is still to come. The relay needs this to put a close frame of its
 * own between two of websockify's frames instead of into the middle of one.
 */
export class FrameBoundary {
  private readonly header = Buffer.alloc(14);
  private headerHave = 0;
  /** Payload bytes of the current frame not yet seen. */
  private remaining = 0;

  /** True when everything seen so far ends exactly at the end of a frame. */
  get atBoundary(): boolean {
    return this.headerHave === 0 && this.remaining === 0;
  }

  /** Bytes still needed to finish the current frame, if its header is complete (else undefined). */
  get untilBoundary(): number | undefined {
    return this.headerHave === 0 ? this.remaining : undefined;
  }

  /**
   * Takes in `chunk`. With `stopAtBoundary`, stops at the first frame end and returns how many
   * bytes of `chunk` that took (the rest is not taken in); returns -1 if no frame ended in it.
   */
  advance(chunk: Buffer, stopAtBoundary = false): number {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining > 0) {
        const take = Math.min(this.remaining, chunk.length - offset);
        this.remaining -= take;
        offset += take;
      } else {
        this.header[this.headerHave++] = chunk[offset++]!;
        const size = headerSize(this.header, this.headerHave);
        if (size === undefined || this.headerHave < size) continue;
        this.remaining = payloadLength(this.header);
        this.headerHave = 0;
      }
      if (stopAtBoundary && this.atBoundary) return offset;
    }
    return stopAtBoundary ? -1 : offset;
  }
}

/** The full size of a header from its first bytes, once they say it. */
function headerSize(header: Buffer, have: number): number | undefined {
  if (have < 2) return undefined;
  const length = header[1]! & 0x7f;
  const mask = header[1]! & 0x80 ? 4 : 0;
  return 2 + (length === 126 ? 2 : length === 127 ? 8 : 0) + mask;
}

function payloadLength(header: Buffer): number {
  const length = header[1]! & 0x7f;
  if (length === 126) return header.readUInt16BE(2);
  if (length === 127) return Number(header.readBigUInt64BE(2));
  return length;
}
