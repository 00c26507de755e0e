import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Bytes a process group's TCP connections to one port carried, by connection (local port). */
export type WireSnapshot = Map<string, { sent: number; received: number }>;

/**
 * The browser's established TCP connections to 127.0.0.1:`port`, with the kernel's own
 * counts of payload bytes sent (acked) and received on each (`ss -ti`, tcp_info). That is
 * the WebSocket stream as it crosses the wire: RFB data plus WebSocket framing (not IP/TCP
 * headers). Only sockets owned by a process named `owner` (chromium) are counted.
 */
export async function wireSnapshot(port: number, owner = 'chromium'): Promise<WireSnapshot> {
  const { stdout } = await run('ss', ['-tinpH', 'state', 'established', `( dport = :${port} )`]);
  const out: WireSnapshot = new Map();
  let current: string | undefined;
  for (const line of stdout.split('\n')) {
    if (!line.trim()) continue;
    if (!/^\s/.test(line)) {
      const fields = line.trim().split(/\s+/);
      // Recv-Q Send-Q Local:Port Peer:Port users:(...)
      current = line.includes(`(("${owner}"`) ? fields[2] : undefined;
      continue;
    }
    if (!current) continue;
    const sent = /bytes_acked:(\d+)/.exec(line)?.[1];
    const received = /bytes_received:(\d+)/.exec(line)?.[1];
    out.set(current, { sent: Number(sent ?? 0), received: Number(received ?? 0) });
    current = undefined;
  }
  return out;
}

/** What the connections carried between two snapshots (a connection opened in between counts from zero), and how many carried anything. */
export function wireDelta(before: WireSnapshot, after: WireSnapshot): { sent: number; received: number; connections: number } {
  let sent = 0;
  let received = 0;
  let connections = 0;
  for (const [key, now] of after) {
    const then = before.get(key) ?? { sent: 0, received: 0 };
    sent += now.sent - then.sent;
    received += now.received - then.received;
    if (now.sent !== then.sent || now.received !== then.received) connections++;
  }
  return { sent, received, connections };
}
