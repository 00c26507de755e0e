import { existsSync, readFileSync } from 'node:fs';
import net from 'node:net';

/** Displays below this are left to people's desktops and other tools (Xvfb-run uses :99). */
export const FIRST_DISPLAY = 100;
const LAST_DISPLAY = 999;
/** How many displays the runner can hand out: one per session. */
export const DISPLAY_COUNT = LAST_DISPLAY - FIRST_DISPLAY + 1;

export function displaySocketPath(display: number): string {
  return `/tmp/.X11-unix/X${display}`;
}

export function displayLockPath(display: number): string {
  return `/tmp/.X${display}-lock`;
}

/**
 * The displays whose abstract X socket (@/tmp/.X11-unix/X<n>) is bound on this host: the one
 * trace a sandboxed X server (another Sortie's session) leaves outside its sandbox.
 */
export function displaysWithAbstractSockets(netUnix = '/proc/net/unix'): Set<number> {
  const found = new Set<number>();
  let table: string;
  try {
    table = readFileSync(netUnix, 'utf8');
  } catch {
    return found;
  }
  for (const match of table.matchAll(/ @\/tmp\/\.X11-unix\/X(\d+)$/gm)) found.add(Number(match[1]));
  return found;
}

/** An X server (ours, a crashed one's leftovers, or someone else's) claims the display. */
function displayInUse(display: number, abstract: ReadonlySet<number>): boolean {
  return existsSync(displaySocketPath(display)) || existsSync(displayLockPath(display)) || abstract.has(display);
}

/**
 * The lowest display from `from` that no X server claims and this runner has not handed out.
 * Another program may still take it before Xvnc does; the caller retries on that.
 */
export function findFreeDisplay(taken: ReadonlySet<number>, from = FIRST_DISPLAY): number {
  const abstract = displaysWithAbstractSockets();
  for (let display = from; display <= LAST_DISPLAY; display++) {
    if (!taken.has(display) && !displayInUse(display, abstract)) return display;
  }
  throw new Error(`No free X display between :${from} and :${LAST_DISPLAY}`);
}

/**
 * `count` distinct free TCP ports on 127.0.0.1, none of them in `taken`. All probe sockets
 * stay open until every port is found so the kernel cannot hand the same one out twice.
 */
export async function findFreePorts(count: number, taken: ReadonlySet<number>): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  try {
    for (let attempt = 0; ports.length < count; attempt++) {
      if (attempt > count + 50) throw new Error('Cannot find free TCP ports on 127.0.0.1');
      const server = net.createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, resolve);
      });
      const port = (server.address() as net.AddressInfo).port;
      if (!taken.has(port)) ports.push(port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}
