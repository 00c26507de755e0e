/**
 * The first close frame among a server's (unmasked) WebSocket frames, if it sent one: for
 * tests that read a raw socket to see how, and why, Sortie closed it.
 */
export function closeFrameIn(bytes: Buffer): { code: number; reason: string } | undefined {
  let offset = 0;
  while (offset + 2 <= bytes.length) {
    let length = bytes[offset + 1]! & 0x7f;
    let start = offset + 2;
    if (length === 126) [length, start] = [bytes.readUInt16BE(offset + 2), offset + 4];
    else if (length === 127) [length, start] = [Number(bytes.readBigUInt64BE(offset + 2)), offset + 10];
    if ((bytes[offset]! & 0x0f) === 0x8) return { code: bytes.readUInt16BE(start), reason: bytes.subarray(start + 2, start + length).toString() };
    offset = start + length;
  }
  return undefined;
}
