import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { spawnTracked, waitForPort } from './procs.js';
import { freePorts } from '../../server/test/support/ports.js';
import { sleep, waitFor } from '../../server/test/support/wait.js';

const run = promisify(execFile);

export type StackName = 'old' | 'new';

/** A desktop served over VNC-in-WebSocket, as the sidecar serves it, run as plain processes. */
export interface VncStack {
  name: StackName;
  /** What runs, for the report. */
  description: string;
  display: string;
  /** websockify's port on 127.0.0.1. */
  wsPort: number;
  /** The X/VNC server processes (for CPU readings). */
  pids: { label: string; pid: number }[];
  websockifyPid: number;
}

export const SCREEN = { width: 1280, height: 800, depth: 24 };

/**
 * The old sidecar (docker/vnc-sidecar/start.sh before 56996e7): Xvfb, then x11vnc on it,
 * with the script's exact flags, and no VNC_PASSWORD (so `-nopw`).
 */
export async function startOldStack(): Promise<VncStack> {
  const display = freeDisplay();
  const n = display.slice(1);
  const [vncPort, wsPort] = (await freePorts(2)) as [number, number];
  const xvfb = spawnTracked('Xvfb', [display, '-screen', '0', `${SCREEN.width}x${SCREEN.height}x${SCREEN.depth}`, '-nolisten', 'tcp']);
  await waitFor(() => {
    if (xvfb.exitCode !== null) throw new Error(`Xvfb ${display} exited: ${xvfb.stderrTail()}`);
    return existsSync(`/tmp/.X11-unix/X${n}`);
  }, { what: `Xvfb ${display}`, timeoutMs: 30_000 });
  const x11vnc = spawnTracked('x11vnc', ['-display', display, '-rfbport', String(vncPort), '-localhost', '-forever', '-shared', '-nopw']);
  await waitForPort(vncPort, 30_000, () => x11vnc.exitCode === null).catch((err: Error) => {
    throw new Error(`x11vnc did not start: ${err.message}\n${x11vnc.stderrTail()}`);
  });
  const websockifyPid = await startWebsockify(wsPort, vncPort);
  return {
    name: 'old',
    websockifyPid,
    description: `Xvfb ${display} + x11vnc -localhost -forever -shared -nopw + websockify`,
    display,
    wsPort,
    pids: [{ label: 'Xvfb', pid: xvfb.pid! }, { label: 'x11vnc', pid: x11vnc.pid! }],
  };
}

/**
 * Today's sidecar (docker/vnc-sidecar/start.sh): one Xvnc under the same 640 MiB address-space
 * cap and with the same flags, clipboard `both`, no VNC_PASSWORD (so `-SecurityTypes None`).
 */
export async function startNewStack(): Promise<VncStack> {
  const display = freeDisplay();
  const n = display.slice(1);
  const [vncPort, wsPort] = (await freePorts(2)) as [number, number];
  const xvnc = spawnTracked('bash', [
    '-c',
    'ulimit -v 655360 || exit 1; exec "$@"',
    'xvnc',
    'Xvnc', display, '-geometry', `${SCREEN.width}x${SCREEN.height}`, '-depth', String(SCREEN.depth), '-nolisten', 'tcp',
    '-rfbport', String(vncPort), '-interface', '127.0.0.1', '-UseIPv6=0', '-SecurityTypes', 'None',
    '-UseBlacklist=0', '-AlwaysShared', '-AcceptSetDesktopSize=1',
    '-AcceptCutText=1', '-SetPrimary=1', '-SendCutText=1', '-SendPrimary=1', '-AllowOverride=', '-noclipboard',
  ]);
  await waitFor(() => {
    if (xvnc.exitCode !== null) throw new Error(`Xvnc ${display} exited: ${xvnc.stderrTail()}`);
    return existsSync(`/tmp/.X11-unix/X${n}`);
  }, { what: `Xvnc ${display}`, timeoutMs: 30_000 });
  await waitForPort(vncPort, 30_000, () => xvnc.exitCode === null).catch((err: Error) => {
    throw new Error(`Xvnc did not listen: ${err.message}\n${xvnc.stderrTail()}`);
  });
  // As start.sh does since 8d7d707, before any viewer connects (a failure is only told there too).
  await run('setxkbmap', ['-display', display, '-symbols', 'pc+us']).catch(() => {});
  const websockifyPid = await startWebsockify(wsPort, vncPort);
  return {
    name: 'new',
    websockifyPid,
    description: `Xvnc ${display} (sidecar flags, ulimit -v 655360, setxkbmap pc+us) + websockify`,
    display,
    wsPort,
    pids: [{ label: 'Xvnc', pid: xvnc.pid! }],
  };
}

/** The sidecar runs `websockify 0.0.0.0:6080 127.0.0.1:5900`; here it listens on loopback only. */
async function startWebsockify(wsPort: number, vncPort: number): Promise<number> {
  const ws = spawnTracked('websockify', [`127.0.0.1:${wsPort}`, `127.0.0.1:${vncPort}`]);
  await waitForPort(wsPort, 15_000, () => ws.exitCode === null).catch((err: Error) => {
    throw new Error(`websockify did not start: ${err.message}\n${ws.stderrTail()}`);
  });
  return ws.pid!;
}

/** A display number nobody on this machine uses (no socket, no lock file). */
let nextDisplay = 140 + (process.pid % 50) * 4;
function freeDisplay(): string {
  for (let tries = 0; tries < 400; tries++, nextDisplay++) {
    const n = nextDisplay;
    if (!existsSync(`/tmp/.X11-unix/X${n}`) && !existsSync(`/tmp/.X${n}-lock`)) {
      nextDisplay++;
      return `:${n}`;
    }
  }
  throw new Error('no free X display number found');
}

/** The terminal the latency test types into: `cat` in an xterm, top left, fixed font (6x13 cells). */
export const TERMINAL = { title: 'bench-term', cols: 100, rows: 20 };

export interface Terminal {
  stop: () => Promise<void>;
}

/**
 * Starts xterm running `cat` at +0+0: the terminal's line discipline echoes each key, as a
 * shell prompt would, and nothing else on the screen moves. Resolves once the window is mapped.
 */
export async function startTerminal(display: string): Promise<Terminal> {
  const xterm = spawnTracked('xterm', ['-display', display, '-T', TERMINAL.title, '-geometry', `${TERMINAL.cols}x${TERMINAL.rows}+0+0`, '-e', 'cat']);
  await waitMapped(display, TERMINAL.title, () => xterm.exitCode === null);
  return {
    stop: async () => {
      if (xterm.exitCode !== null) return;
      const gone = new Promise((resolve) => xterm.once('exit', resolve));
      process.kill(-xterm.pid!, 'SIGTERM');
      await Promise.race([gone, sleep(3000)]);
    },
  };
}

/**
 * The scripted part of the scene that runs on the desktop: a second xterm opens at a fixed
 * place, prints 80 lines at 50 a second (it scrolls), moves itself 15 times 20 px to the
 * left (xterm's window operations; there is no window manager), and closes.
 */
export async function runSceneWindow(display: string): Promise<void> {
  const script = [
    'i=0; while [ $i -lt 80 ]; do i=$((i+1)); echo "scroll line $i: the quick brown fox jumps over the lazy dog"; sleep 0.02; done',
    'x=320; while [ $x -gt 20 ]; do x=$((x-20)); printf "\\033[3;%d;240t" $x; sleep 0.03; done',
    'sleep 0.2',
  ].join('; ');
  const xterm = spawnTracked('xterm', [
    '-display', display, '-T', 'bench-scene', '-geometry', '80x20+320+240',
    '-xrm', 'XTerm*allowWindowOps: true', '-xrm', 'XTerm*disallowedWindowOps: ',
    '-e', 'sh', '-c', script,
  ]);
  const code = await new Promise<number | null>((resolve) => xterm.once('exit', resolve));
  if (code !== 0) throw new Error(`the scene's xterm exited with ${code}: ${xterm.stderrTail()}`);
}

async function waitMapped(display: string, title: string, alive: () => boolean): Promise<void> {
  await waitFor(
    async () => {
      if (!alive()) throw new Error(`xterm "${title}" on ${display} exited`);
      try {
        const { stdout } = await run('xwininfo', ['-display', display, '-name', title]);
        return stdout.includes('IsViewable');
      } catch {
        return false;
      }
    },
    { what: `xterm "${title}" mapped on ${display}`, timeoutMs: 15_000 },
  );
}
