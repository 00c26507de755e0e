/**
 * The recording file: what the desktop sent the viewer, with when it arrived.
 *
 *   file    = MAGIC record*
 *   MAGIC   = "SORTREC1" (8 bytes)
 *   record  = kind (u8) | at (u32, big-endian) | length (u32, big-endian) | payload (length bytes)
 *
 * `at` is milliseconds since the recording started. Kinds:
 *   1 SEGMENT  a viewer connection begins (empty payload); what follows starts with the
 *              desktop's ServerInit, so a player starts a fresh RFB connection here.
 *   2 SERVER   bytes websockify sent the viewer, as relayed: unmasked WebSocket frames,
 *              cut wherever the socket's reads happened to end (a frame may span records).
 *
 * The file is only ever appended to, a record at a time, so a file cut short (Sortie
 * stopped, the disk filled) is whole up to its last complete record: readers stop there,
 * and a writer continuing the recording first cuts the broken tail off.
 *
 * Pure code over Uint8Array (no Node imports): the browser's player reads the same format.
 */

export const MAGIC = new Uint8Array([0x53, 0x4f, 0x52, 0x54, 0x52, 0x45, 0x43, 0x31]); // SORTREC1
export const RECORD_HEADER = 9;
export const KIND_SEGMENT = 1;
export const KIND_SERVER = 2;
/** No record Sortie writes is larger (a socket read is at most 64 KiB); a larger length is damage. */
export const MAX_RECORD_PAYLOAD = 4 * 1024 * 1024;

export interface RecordView {
  kind: number;
  at: number;
  payload: Uint8Array;
}

export function encodeHeader(kind: number, at: number, length: number, into: Uint8Array = new Uint8Array(RECORD_HEADER), offset = 0): Uint8Array {
  const view = new DataView(into.buffer, into.byteOffset + offset, RECORD_HEADER);
  view.setUint8(0, kind);
  view.setUint32(1, Math.max(0, Math.min(0xffff_ffff, Math.round(at))));
  view.setUint32(5, length);
  return into;
}

export function hasMagic(bytes: Uint8Array): boolean {
  if (bytes.length < MAGIC.length) return false;
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return false;
  return true;
}

/**
 * Every complete record of a recording, in order, and how many bytes they (with the magic)
 * take: past `validLength` is a record cut short, or damage, which readers ignore.
 */
export function parseRecording(bytes: Uint8Array): { records: RecordView[]; validLength: number } {
  const records: RecordView[] = [];
  if (!hasMagic(bytes)) return { records, validLength: 0 };
  let at = MAGIC.length;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  while (at + RECORD_HEADER <= bytes.length) {
    const kind = view.getUint8(at);
    const time = view.getUint32(at + 1);
    const length = view.getUint32(at + 5);
    if ((kind !== KIND_SEGMENT && kind !== KIND_SERVER) || length > MAX_RECORD_PAYLOAD) break;
    if (at + RECORD_HEADER + length > bytes.length) break;
    records.push({ kind, at: time, payload: bytes.subarray(at + RECORD_HEADER, at + RECORD_HEADER + length) });
    at += RECORD_HEADER + length;
  }
  return { records, validLength: at };
}

/**
 * The RFB bytes inside the recorded WebSocket frames: binary and continuation payloads in
 * order; pings, pongs and a close carry none. Frames may arrive cut anywhere.
 */
export class FramePayloads {
  private pending: Uint8Array = new Uint8Array(0);

  /** Takes the next recorded bytes; returns the RFB bytes of the frames they complete. */
  push(bytes: Uint8Array): Uint8Array[] {
    let buf = this.pending.length === 0 ? bytes : concat(this.pending, bytes);
    const out: Uint8Array[] = [];
    for (;;) {
      if (buf.length < 2) break;
      const opcode = buf[0]! & 0x0f;
      const masked = (buf[1]! & 0x80) !== 0;
      let length = buf[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (buf.length < 4) break;
        length = (buf[2]! << 8) | buf[3]!;
        offset = 4;
      } else if (length === 127) {
        if (buf.length < 10) break;
        const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
        length = Number(view.getBigUint64(2));
        offset = 10;
      }
      const maskAt = offset;
      if (masked) offset += 4;
      if (buf.length < offset + length) break;
      if (opcode === 0x0 || opcode === 0x2) {
        let payload = buf.slice(offset, offset + length);
        if (masked) {
          payload = Uint8Array.from(payload, (b, i) => b ^ buf[maskAt + (i & 3)]!);
        }
        out.push(payload);
      }
      buf = buf.subarray(offset + length);
    }
    this.pending = buf.slice();
    return out;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** One viewer connection of a recording: when it began and its RFB bytes with their times. */
export interface Segment {
  at: number;
  chunks: { at: number; data: Uint8Array }[];
}

/** A recording as a player wants it: segments of timed RFB bytes, WebSocket framing removed. */
export function toSegments(records: RecordView[]): Segment[] {
  const segments: Segment[] = [];
  let current: Segment | undefined;
  let frames = new FramePayloads();
  for (const record of records) {
    if (record.kind === KIND_SEGMENT) {
      current = { at: record.at, chunks: [] };
      segments.push(current);
      frames = new FramePayloads();
      continue;
    }
    if (!current) continue; // bytes without a segment start cannot be played from their beginning
    for (const data of frames.push(record.payload)) if (data.length > 0) current.chunks.push({ at: record.at, data });
  }
  return segments;
}

/** The time of the last record, which is how long the recording runs. */
export function durationOf(records: RecordView[]): number {
  return records.length === 0 ? 0 : records[records.length - 1]!.at;
}
