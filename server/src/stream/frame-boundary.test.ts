import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameBoundary } from './frame-boundary.js';
import { encodeFrame } from './ws-frames.js';

// Frames of every header size: 7-bit, 16-bit and 64-bit lengths, empty, masked and not.
const frames = [
  encodeFrame(Buffer.alloc(5, 1), false),
  encodeFrame(Buffer.alloc(0), false),
  encodeFrame(Buffer.alloc(300, 2), false),
  encodeFrame(Buffer.alloc(70_000, 3), false),
  encodeFrame(Buffer.alloc(9, 4), true),
];
const stream = Buffer.concat(frames);
const ends = frames.reduce<number[]>((acc, f) => [...acc, (acc.at(-1) ?? 0) + f.length], []);

test('knows whether a stream split anywhere stands between frames', () => {
  for (const split of [1, 2, 3, 7, 8, 9, 300, 315, 70_000, stream.length - 1]) {
    const boundary = new FrameBoundary();
    boundary.advance(stream.subarray(0, split));
    assert.equal(boundary.atBoundary, ends.includes(split), `after ${split} bytes`);
    boundary.advance(stream.subarray(split));
    assert.ok(boundary.atBoundary, 'the whole stream ends on a frame');
  }
});

test('says how much of the frame in flight is still to come, once its header is in', () => {
  const boundary = new FrameBoundary();
  boundary.advance(stream.subarray(0, ends[2]! + 10 + 1000)); // 1000 bytes into the 70 000-byte frame (10-byte header)
  assert.equal(boundary.untilBoundary, 70_000 - 1000);
  const partial = new FrameBoundary();
  partial.advance(stream.subarray(0, ends[2]! + 3)); // its 64-bit length not yet complete
  assert.equal(partial.untilBoundary, undefined);
});

test('stops at the first frame end when asked, and finds none in the middle of a frame', () => {
  const boundary = new FrameBoundary();
  boundary.advance(stream.subarray(0, 10)); // inside the 300-byte frame
  assert.equal(boundary.advance(stream.subarray(10, 100), true), -1);
  assert.equal(boundary.advance(stream.subarray(100), true), ends[2]! - 100);
  assert.ok(boundary.atBoundary);
});
