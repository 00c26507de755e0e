import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { test } from 'node:test';
import { ReusedReads } from './reused-reads.js';

/** A server that sends `chunks` one at a time, each after the client has read the last, then ends. */
async function connectTo(chunks: Buffer[], reads: ReusedReads): Promise<{ socket: net.Socket; server: net.Server; ack: () => void }> {
  let next: (() => void) | undefined;
  const server = net.createServer((peer) => {
    let i = 0;
    next = () => {
      if (i < chunks.length) peer.write(chunks[i++]!);
      else peer.end();
    };
    next();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  const socket = net.connect({ host: '127.0.0.1', port, onread: { buffer: reads.next, callback: reads.deliver } });
  reads.attach(socket);
  return { socket, server, ack: () => next?.() };
}

const distinct = (n: number, size: number) => Array.from({ length: n }, (_, i) => Buffer.alloc(size, i + 1));

test('before relayTo, reads arrive as data events holding copies that later reads do not overwrite', async () => {
  const reads = new ReusedReads();
  const chunks = distinct(4, 1000);
  const { socket, server, ack } = await connectTo(chunks, reads);
  const got: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => {
    got.push(chunk);
    ack();
  });
  await once(socket, 'close');
  server.close();
  assert.deepEqual(Buffer.concat(got), Buffer.concat(chunks));
});

test('a chunk the sink releases is read over by the next read: one buffer for the whole stream', async () => {
  const reads = new ReusedReads();
  const chunks = distinct(5, 3000);
  const { socket, server, ack } = await connectTo(chunks, reads);
  const seen: Buffer[] = [];
  const backing = new Set<ArrayBufferLike>();
  reads.relayTo((chunk) => {
    seen.push(Buffer.from(chunk));
    backing.add(chunk.buffer);
    setImmediate(ack);
    return false;
  });
  socket.resume();
  await once(socket, 'close');
  server.close();
  assert.deepEqual(Buffer.concat(seen), Buffer.concat(chunks));
  assert.equal(backing.size, 1);
});

test('a chunk the sink keeps is never overwritten by later reads', async () => {
  const reads = new ReusedReads();
  const chunks = distinct(6, 20_000);
  const { socket, server, ack } = await connectTo(chunks, reads);
  const kept: Buffer[] = [];
  let n = 0;
  reads.relayTo((chunk) => {
    kept.push(chunk); // no copy: valid only because we say we kept it
    setImmediate(ack);
    return n++ % 2 === 0; // keep every other one; the others' buffers are reused
  });
  socket.resume();
  await once(socket, 'close');
  server.close();
  // The kept chunks (every other read) still hold what was read into them.
  const total = Buffer.concat(chunks);
  let offset = 0;
  kept.forEach((chunk, i) => {
    if (i % 2 === 0) assert.deepEqual(chunk, total.subarray(offset, offset + chunk.length), `chunk ${i}`);
    offset += chunk.length;
  });
  assert.equal(offset, total.length);
});
