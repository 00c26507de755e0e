import { execFileSync, fork, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { canConnect } from '../../server/test/support/ports.js';
import { sleep, waitFor } from '../../server/test/support/wait.js';

/**
 * Every child the bench starts, so one cleanup can end them all on exit, error or
 * SIGINT. Children run in their own process group (detached) so that websockify's
 * per-connection forks go with it: we signal the group we created, by its id.
 */
const children = new Set<ChildProcess>();
/** Scratch directories to remove however the bench ends. */
const tempDirs = new Set<string>();

export function registerTempDir(dir: string): string {
  tempDirs.add(dir);
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

export function track(child: ChildProcess): ChildProcess {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

export function killAll(signal: NodeJS.Signals = 'SIGTERM'): void {
  for (const child of children) {
    if (child.pid === undefined) continue;
    try {
      process.kill(-child.pid, signal);
    } catch {
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  }
}

/** Ends the children now and, if any ignore SIGTERM, with SIGKILL shortly after. */
export async function shutdown(): Promise<void> {
  killAll('SIGTERM');
  const deadline = Date.now() + 2000;
  while (children.size > 0 && Date.now() < deadline) await sleep(50);
  if (children.size > 0) killAll('SIGKILL');
}

let installed = false;
let signalled: NodeJS.Signals | undefined;
/** The signal that is stopping the bench, if any (measurements then fail on purpose). */
export const interruptedBy = () => signalled;

/** On Ctrl-C, SIGTERM or a crash, take the children down before exiting. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    killAll('SIGKILL');
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      signalled = signal;
      console.error(`\n${signal}: stopping children`);
      void shutdown().finally(() => process.exit(130));
    });
  }
}


/** Spawns a program in its own process group, keeping the tail of its stderr for error messages. */
export function spawnTracked(command: string, args: string[], options: SpawnOptions = {}): ChildProcess & { stderrTail: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], detached: true, ...options });
  let tail = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    tail = (tail + chunk.toString()).slice(-4000);
  });
  track(child);
  return Object.assign(child, { stderrTail: () => tail });
}

const TSX_IMPORT = ['--import', 'tsx'];

/** Forks one of the bench's TypeScript helpers (through tsx) with an IPC channel. */
export function forkTs(file: string, env: NodeJS.ProcessEnv = {}, execArgv: string[] = [], tsx = true): IpcChild {
  const child = fork(path.resolve(file), [], {
    execArgv: [...(tsx ? TSX_IMPORT : []), ...execArgv],
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    detached: true,
  });
  track(child);
  return new IpcChild(child);
}

/** Request/response over a forked child's IPC channel: `{id, type, ...}` → `{id, ...}`. */
export class IpcChild {
  private next = 1;
  private readonly waiting = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void }>();
  private readonly firstMessage: Promise<any>;

  constructor(readonly child: ChildProcess) {
    child.on('error', () => {}); // a send to a child that just exited; request() reports it
    let resolveFirst!: (v: any) => void;
    let rejectFirst!: (e: Error) => void;
    this.firstMessage = new Promise((res, rej) => ((resolveFirst = res), (rejectFirst = rej)));
    let sawFirst = false;
    child.on('message', (msg: any) => {
      if (!sawFirst) {
        sawFirst = true;
        if (msg?.error) rejectFirst(new Error(msg.error));
        else resolveFirst(msg);
        return;
      }
      const w = this.waiting.get(msg?.id);
      if (!w) return;
      this.waiting.delete(msg.id);
      if (msg.error) w.reject(new Error(msg.error));
      else w.resolve(msg);
    });
    child.once('exit', (code, signal) => {
      const err = new Error(`child ${child.pid} exited (code ${code}, signal ${signal})`);
      if (!sawFirst) rejectFirst(err);
      for (const w of this.waiting.values()) w.reject(err);
      this.waiting.clear();
    });
  }

  /** The child's first message: its "ready" report (for example the port it listens on). */
  ready<T>(timeoutMs = 20_000): Promise<T> {
    return withTimeout(this.firstMessage, timeoutMs, 'child did not report ready');
  }

  request<T>(type: string, body: object = {}): Promise<T> {
    const id = this.next++;
    return withTimeout(
      new Promise<T>((resolve, reject) => {
        if (!this.child.connected) return reject(new Error(`child ${this.child.pid} is gone`));
        this.waiting.set(id, { resolve, reject });
        this.child.send({ id, type, ...body }, (err) => {
          if (!err) return;
          this.waiting.delete(id);
          reject(err);
        });
      }),
      10_000,
      `child did not answer "${type}"`,
    );
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
    }),
  ]);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(port: number, timeoutMs: number, alive: () => boolean = () => true): Promise<void> {
  await waitFor(
    async () => {
      if (await canConnect(port)) return true;
      if (!alive()) throw new Error(`process meant to listen on ${port} exited`);
      return false;
    },
    { what: `something listening on 127.0.0.1:${port}`, timeoutMs },
  );
}

/** User+system CPU seconds of a process (not its children) from /proc/<pid>/stat. */
export function procCpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK) on Linux x86-64

/** Busy and total jiffies across all CPUs, from /proc/stat, to show how saturated the machine was. */
export function machineCpu(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0);
  const total = v.reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Scheduler accounting summed over a process's threads, from /proc/<pid>/task/<tid>/schedstat:
 * seconds on a CPU and seconds runnable but waiting for one (run-queue delay).
 */
export function procSchedstat(pid: number): { runSeconds: number; waitSeconds: number } {
  let run = 0;
  let wait = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const [r, w] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').trim().split(/\s+/).map(Number);
      run += r ?? 0;
      wait += w ?? 0;
    } catch {
      /* thread ended */
    }
  }
  return { runSeconds: run / 1e9, waitSeconds: wait / 1e9 };
}

/** Live children of a process (websockify's per-connection forks). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Restricts a running process and all its threads (and future children) to the given CPUs. */
export function pin(pid: number, cpus: string): void {
  execFileSync('taskset', ['-a', '-p', '-c', cpus, String(pid)], { stdio: 'ignore' });
}

/** User and system CPU seconds and minor page faults of one process, from /proc/<pid>/stat. */
export function procStat(pid: number): { user: number; system: number; minorFaults: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { user: Number(f[11]) / CLOCK_TICKS, system: Number(f[12]) / CLOCK_TICKS, minorFaults: Number(f[7]) };
}
