import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { encodeClose, encodeFrame, FrameReader, FrameTooLargeError } from './ws-frames.js';

/** A masked client frame header announcing `length` bytes, as a browser would start one. */
function header(length: number): Buffer {
  const h = Buffer.alloc(14);
  h[0] = 0x82;
  h[1] = 0x80 | 127;
  h.writeBigUInt64BE(BigInt(length), 2);
  return h; // mask key all zeroes
}

test('reads exact amounts across frames and across chunks split anywhere', async () => {
  const frames = Buffer.concat([encodeFrame(Buffer.from('RFB 003.008\n'), true), encodeFrame(Buffer.from([1]), true), encodeFrame(Buffer.from([9, 9]), true)]);
  for (let split = 1; split < frames.length; split++) {
    const socket = new PassThrough();
    const reader = new FrameReader(socket);
    socket.write(frames.subarray(0, split));
    socket.write(frames.subarray(split));
    assert.equal((await reader.read(12)).toString(), 'RFB 003.008\n');
    assert.deepEqual([...(await reader.read(1))], [1]);
    const rest = reader.detach();
    assert.deepEqual([...rest.payload], [9, 9], `split at ${split}`);
    assert.equal(rest.raw.length, 0);
  }
});

test('a frame announcing more than the limit fails the read at once, before its payload arrives', async () => {
  const socket = new PassThrough();
  const reader = new FrameReader(socket, Buffer.alloc(0), 4096);
  const pending = reader.read(12);
  socket.write(header(2 ** 40)); // an "endless" frame: only its header has been sent
  await assert.rejects(pending, (err: unknown) => err instanceof FrameTooLargeError && err.limit === 4096 && /more than the 4096/.test(err.message));
  // It stopped reading: what the peer sends next is not kept anywhere.
  assert.equal(socket.listenerCount('data'), 0);
  await assert.rejects(reader.read(1), FrameTooLargeError);
});

test('a frame just within the limit is read; one byte more is refused', async () => {
  const ok = new PassThrough();
  const reader = new FrameReader(ok, Buffer.alloc(0), 100);
  ok.write(encodeFrame(Buffer.alloc(100, 7), true));
  assert.equal((await reader.read(100)).length, 100);

  const over = new PassThrough();
  const refused = new FrameReader(over, Buffer.alloc(0), 100);
  over.write(encodeFrame(Buffer.alloc(101, 7), true).subarray(0, 8));
  await assert.rejects(refused.read(1), FrameTooLargeError);
});

test('many small frames add up to the same limit', async () => {
  const socket = new PassThrough();
  const reader = new FrameReader(socket, Buffer.alloc(0), 1000);
  for (let i = 0; i < 40; i++) socket.write(encodeFrame(Buffer.alloc(50), true));
  await new Promise((r) => setImmediate(r));
  await assert.rejects(reader.read(2000), (err: unknown) => err instanceof FrameTooLargeError && err.bytes > 1000);
});

test('the bytes given with the upgrade count as well', async () => {
  const reader = new FrameReader(new PassThrough(), Buffer.concat([header(5000), Buffer.alloc(100)]), 4096);
  await assert.rejects(reader.read(1), FrameTooLargeError);
});

test('a close reason is cut to what a close frame holds, between characters', () => {
  const frame = encodeClose(4413, 'é'.repeat(100));
  assert.equal(frame[0], 0x88);
  const length = frame[1]!;
  assert.ok(length <= 125);
  const reason = frame.subarray(4, 2 + length);
  assert.equal(frame.readUInt16BE(2), 4413);
  assert.equal(reason.toString('utf8'), 'é'.repeat(61), 'whole characters only: 122 of the 123 bytes');
});
