import assert from 'node:assert/strict';
import { once } from 'node:events';
import WebSocket from 'ws';

/**
 * Opens `/ws/sessions/{id}` through Sortie's relay as noVNC does, checking what the relay
 * answers on its own: RFB 3.8, security "None" only, SecurityResult OK. From there the stream
 * is the caller's: `next()` answers its messages one at a time, until `release()` hands them
 * back to the socket's own `message` events.
 */
export async function openThroughRelay(url: string, headers: Record<string, string> = {}): Promise<{ ws: WebSocket; next: () => Promise<Buffer>; release: () => void }> {
  const ws = new WebSocket(url, ['binary'], { headers });
  const inbox: Buffer[] = [];
  let wake: (() => void) | undefined;
  const onMessage = (data: Buffer) => {
    inbox.push(data);
    wake?.();
  };
  ws.on('message', onMessage);
  const next = async () => {
    while (inbox.length === 0) await new Promise<void>((r) => (wake = r));
    return inbox.shift()!;
  };
  await once(ws, 'open');
  assert.equal((await next()).toString(), 'RFB 003.008\n');
  ws.send(Buffer.from('RFB 003.008\n'));
  assert.deepEqual([...(await next())], [1, 1], 'Sortie offers the browser "None" only');
  ws.send(Buffer.from([1]));
  assert.deepEqual([...(await next())], [0, 0, 0, 0], 'SecurityResult OK');
  return { ws, next, release: () => ws.off('message', onMessage) };
}
