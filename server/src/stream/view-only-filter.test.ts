import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { MaskedFrameDecoder, MAX_MESSAGE_BYTES, RfbInputFilter, UncheckedInput, ViewOnlyInbound } from './view-only-filter.js';
import { encodeFrame } from './ws-frames.js';

const setEncodings = Buffer.from([2, 0, 0, 2, 0, 0, 0, 0, 0xff, 0xff, 0xfe, 0xcc]);
const updateRequest = Buffer.from([3, 1, 0, 0, 0, 0, 4, 0, 3, 0]);
const key = Buffer.from([4, 1, 0, 0, 0, 0, 0, 0x61]);
const pointer = Buffer.from([5, 1, 0, 10, 0, 20]);
const pixelFormat = Buffer.concat([Buffer.from([0, 0, 0, 0]), Buffer.alloc(16, 7)]);
const continuous = Buffer.from([150, 1, 0, 0, 0, 0, 4, 0, 3, 0]);
const fence = Buffer.from([248, 0, 0, 0, 0x80, 0, 0, 3, 2, 0xaa, 0xbb]);
const xvp = Buffer.from([250, 0, 1, 2]);
const qemuKey = Buffer.from([255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e]);

function cutText(text: string): Buffer {
  const head = Buffer.alloc(8);
  head[0] = 6;
  head.writeUInt32BE(text.length, 4);
  return Buffer.concat([head, Buffer.from(text, 'latin1')]);
}

function extendedClipboard(bytes: number): Buffer {
  const head = Buffer.alloc(8);
  head[0] = 6;
  head.writeInt32BE(-bytes, 4);
  return Buffer.concat([head, Buffer.alloc(bytes, 0x11)]);
}

function desktopSize(screens: number): Buffer {
  const head = Buffer.from([251, 0, 0x04, 0, 0x03, 0, screens, 0]);
  return Buffer.concat([head, Buffer.alloc(16 * screens, 1)]);
}

/** Everything the filter lets through for `chunks`, after ClientInit. */
function pass(chunks: Buffer[]): Buffer {
  const filter = new RfbInputFilter();
  const out = [Buffer.from([1]), ...chunks].flatMap((chunk) => filter.push(chunk));
  return Buffer.concat(out).subarray(1);
}

describe('the view-only input filter', () => {
  test('forwards what asks for pictures and drops every input message', () => {
    const stream = [pixelFormat, key, setEncodings, pointer, updateRequest, cutText('secret'), continuous, extendedClipboard(20), fence, desktopSize(2), xvp, qemuKey, updateRequest];
    assert.deepEqual(pass([Buffer.concat(stream)]), Buffer.concat([pixelFormat, setEncodings, updateRequest, continuous, fence, updateRequest]));
  });

  test('gives the same answer when every message arrives a byte at a time', () => {
    const whole = Buffer.concat([key, setEncodings, cutText('typed'), pointer, updateRequest, desktopSize(1), fence]);
    const bytes = [...whole].map((b) => Buffer.from([b]));
    assert.deepEqual(pass(bytes), Buffer.concat([setEncodings, updateRequest, fence]));
  });

  test('forces ClientInit to "shared", so a watcher cannot push the owner off', () => {
    const filter = new RfbInputFilter();
    assert.deepEqual(Buffer.concat(filter.push(Buffer.from([0]))), Buffer.from([1]));
  });

  test('skips a large dropped clipboard without keeping it', () => {
    const filter = new RfbInputFilter();
    filter.push(Buffer.from([1]));
    const big = cutText('x'.repeat(60_000));
    for (let at = 0; at < big.length; at += 1000) assert.deepEqual(filter.push(big.subarray(at, at + 1000)), []);
    assert.deepEqual(Buffer.concat(filter.push(updateRequest)), updateRequest);
    assert.deepEqual(filter.counts, { forwarded: 1, dropped: 1 });
  });

  test('refuses an unknown message type, an oversize message and a bad fence', () => {
    for (const [bytes, words] of [
      [Buffer.from([7, 0, 0, 0]), /type 7/],
      [Buffer.from([253, 0, 0, 0]), /type 253/],
      [Buffer.from([255, 9]), /subtype 9/],
      [extendedClipboard(MAX_MESSAGE_BYTES), /more than the 65536/],
      [Buffer.from([2, 0, 0x40, 0]), /more than the 65536/],
      [Buffer.from([248, 0, 0, 0, 0, 0, 0, 0, 65]), /64 RFB allows/],
    ] as const) {
      const filter = new RfbInputFilter();
      filter.push(Buffer.from([1]));
      assert.throws(() => filter.push(bytes), (err: Error) => err instanceof UncheckedInput && words.test(err.message));
    }
  });
});

describe('the masked frame decoder', () => {
  test('unmasks data split anywhere, across frames, and passes control frames whole', () => {
    const data: Buffer[] = [];
    const control: [number, string][] = [];
    const decoder = new MaskedFrameDecoder({ data: (p) => data.push(p), control: (op, p) => control.push([op, p.toString()]) });
    const wire = Buffer.concat([encodeFrame(Buffer.from('hello '), true), encodeFrame(Buffer.from('ping'), true, 0x9), encodeFrame(Buffer.alloc(300, 0x41), true), encodeFrame(Buffer.from('bye'), true, 0x8)]);
    for (let at = 0; at < wire.length; at += 7) decoder.push(wire.subarray(at, at + 7));
    assert.equal(Buffer.concat(data).toString(), `hello ${'A'.repeat(300)}`);
    assert.deepEqual(control, [
      [0x9, 'ping'],
      [0x8, 'bye'],
    ]);
  });

  test('refuses unmasked and text frames', () => {
    const decoder = () => new MaskedFrameDecoder({ data: () => {}, control: () => {} });
    assert.throws(() => decoder().push(encodeFrame(Buffer.from('x'), false)), /unmasked/);
    assert.throws(() => decoder().push(encodeFrame(Buffer.from('x'), true, 0x1)), /text frame/);
  });
});

describe('the view-only direction of a stream', () => {
  test('sends on re-framed messages only, and reports a violation once', async () => {
    const client = new PassThrough();
    const upstream = new PassThrough();
    const inbound = new ViewOnlyInbound(client, upstream);
    const sent: Buffer[] = [];
    upstream.on('data', (chunk: Buffer) => sent.push(chunk));
    const violations: string[] = [];
    inbound.pushPayload(Buffer.from([0]));
    inbound.start((reason) => violations.push(reason));
    // A KeyEvent split across two frames, a request in the second.
    client.write(encodeFrame(key.subarray(0, 3), true));
    client.write(encodeFrame(Buffer.concat([key.subarray(3), updateRequest]), true));
    await new Promise((resolve) => setImmediate(resolve));
    const payloads: Buffer[] = [];
    new MaskedFrameDecoder({ data: (p) => payloads.push(p), control: () => {} }).push(Buffer.concat(sent));
    assert.deepEqual(Buffer.concat(payloads), Buffer.concat([Buffer.from([1]), updateRequest]));
    client.write(encodeFrame(Buffer.from([9]), true));
    client.write(encodeFrame(Buffer.from([9]), true));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(violations, ['The viewer sent VNC message type 9, which the relay does not know']);
  });
});
