import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { encodeFrame } from '../stream/ws-frames.js';
import { measure, prepareForAppend } from './recording-file.js';
import { encodeHeader, FramePayloads, KIND_SEGMENT, KIND_SERVER, MAGIC, parseRecording, RECORD_HEADER, toSegments } from './recording-format.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sortie-recording-format-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function record(kind: number, at: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from(encodeHeader(kind, at, payload.length)), payload]);
}

test('records come back in order with their times, and a file cut inside a record is whole up to the record before', () => {
  const frames = Buffer.concat([encodeFrame(Buffer.from('server-init'), false), encodeFrame(Buffer.from('update-1'), false)]);
  const file = Buffer.concat([Buffer.from(MAGIC), record(KIND_SEGMENT, 0), record(KIND_SERVER, 5, frames.subarray(0, 7)), record(KIND_SERVER, 1200, frames.subarray(7))]);
  const { records, validLength } = parseRecording(file);
  assert.deepEqual(records.map((r) => [r.kind, r.at, r.payload.length]), [[KIND_SEGMENT, 0, 0], [KIND_SERVER, 5, 7], [KIND_SERVER, 1200, frames.length - 7]]);
  assert.equal(validLength, file.length);
  for (const cut of [file.length - 1, file.length - 10, MAGIC.length + RECORD_HEADER + 3]) {
    const partial = parseRecording(file.subarray(0, cut));
    assert.ok(partial.validLength <= cut);
    assert.deepEqual(partial.records.map((r) => r.at), records.slice(0, partial.records.length).map((r) => r.at));
  }
  assert.equal(parseRecording(Buffer.from('not a recording')).validLength, 0);
});

test('the player gets the RFB bytes out of frames split anywhere, at the time of the record that completes them', () => {
  const payloads = [Buffer.from('ServerInit'), Buffer.alloc(70_000, 7), Buffer.from('x')];
  const stream = Buffer.concat([...payloads.slice(0, 2).map((p) => encodeFrame(p, false)), encodeFrame(Buffer.alloc(0), false, 0x9), encodeFrame(payloads[2]!, false)]);
  const records = [record(KIND_SEGMENT, 10)];
  for (let at = 0, i = 0; at < stream.length; at += 1000, i++) records.push(record(KIND_SERVER, 10 + i, stream.subarray(at, at + 1000)));
  records.push(record(KIND_SEGMENT, 5000), record(KIND_SERVER, 5001, encodeFrame(Buffer.from('again'), false)));
  const segments = toSegments(parseRecording(Buffer.concat([Buffer.from(MAGIC), ...records])).records);
  assert.equal(segments.length, 2);
  assert.deepEqual(Buffer.concat(segments[0]!.chunks.map((c) => c.data)), Buffer.concat(payloads), 'pings carry no RFB bytes');
  assert.equal(segments[0]!.chunks[0]!.at, 10);
  assert.deepEqual(segments[1]!.chunks.map((c) => Buffer.from(c.data).toString()), ['again']);
  assert.equal(segments[1]!.at, 5000);
  // Masked frames (a browser's) are unmasked too.
  assert.deepEqual(Buffer.from(new FramePayloads().push(encodeFrame(Buffer.from('masked'), true))[0]!).toString(), 'masked');
});

test('continuing a file cuts off a broken tail; a new file starts 0600 with the magic', async () => {
  const fresh = path.join(dir, 'fresh.rec');
  assert.deepEqual(await prepareForAppend(fresh), { validLength: MAGIC.length, lastAt: 0, size: MAGIC.length });
  assert.equal(statSync(fresh).mode & 0o777, 0o600);
  const whole = Buffer.concat([Buffer.from(MAGIC), record(KIND_SEGMENT, 0), record(KIND_SERVER, 42, Buffer.alloc(3000, 1))]);
  const cut = path.join(dir, 'cut.rec');
  writeFileSync(cut, whole);
  appendFileSync(cut, record(KIND_SERVER, 99, Buffer.alloc(500)).subarray(0, 200));
  assert.deepEqual(await measure(cut), { validLength: whole.length, lastAt: 42, size: whole.length + 200 });
  assert.equal((await prepareForAppend(cut)).validLength, whole.length);
  assert.deepEqual(readFileSync(cut), whole);
  const foreign = path.join(dir, 'foreign.rec');
  writeFileSync(foreign, 'something else');
  await prepareForAppend(foreign);
  assert.deepEqual(readFileSync(foreign), Buffer.from(MAGIC));
});
