import { execFile, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Endpoint, LaunchSpec, Workload, WorkloadEvent } from '../runner.js';
import { displayLockPath, displaySocketPath, FIRST_DISPLAY } from './ports.js';
import { tcpAccepts, vncAnswers, xServerAccepts } from './probe.js';
import { isLeaderRunning, killProcessesWithArgs, readProcStat, spawnGroupLeader, terminateGroups } from './process-group.js';
import {
  appRecipe,
  HOST,
  keymapCommand,
  websockifyRecipe,
  xvncRecipe,
  type ClipboardPolicy,
  type InheritedFile,
  type ProcessRecipe,
  type SandboxTools,
  type SessionPlan,
} from './recipes.js';
import {
  BWRAP_MISSING,
  hostSystemPaths,
  requireProgram,
  resolveAppProgram,
  resolveProgram,
  SANDBOX_HOME,
  SANDBOX_PATH,
  SANDBOX_X11_DIR,
  type SessionUser,
} from './sandbox.js';
import { noteInLog, openSessionLog, tailLog } from './session-log.js';
import {
  ensureStateDir,
  hasAllRoles,
  displayDirPath,
  displaySocketFilePath,
  homeDirPath,
  homesDirPath,
  logFilePath,
  userHomeDirPath,
  userHomesDirPath,
  removeSessionFiles,
  ROLES,
  writePrivateFile,
  vncSocketPath,
  writeStateFile,
  type ProcessRecord,
  type Role,
  type SessionRecord,
} from './state-file.js';
import { newCookie } from './xauth.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

/** What a session needs from the runner that holds it: settings, allocations and the event sink. */
export interface SessionHost {
  readonly stateDir: string;
  /** The desktop's size and depth until a viewer resizes it (`WIDTHxHEIGHTxDEPTH`). */
  readonly screen: string;
  /** How often to probe a starting session's VNC endpoint. */
  readonly readyPollMs: number;
  /** More host folders the sandbox must not show. */
  readonly hiddenPaths: readonly string[];
  readonly log: Logger;
  /** A closed runner reports nothing more and leaves its sessions running for the next one. */
  readonly closed: boolean;
  emit(event: WorkloadEvent): void;
  /** `count` free TCP ports on HOST, reserved for this session until the runner forgets it. */
  claimPorts(count: number): Promise<number[]>;
  /** The lowest free display from `from`, reserved likewise. */
  claimDisplay(from: number): number;
  releaseDisplay(display: number): void;
  /** The unprivileged user apps run as when Sortie is root (created the first time). */
  sessionUser(): SessionUser;
}

const execFileAsync = promisify(execFile);
/** setxkbmap takes a few milliseconds; this only catches a hung one. */
const KEYMAP_TIMEOUT_MS = 10_000;
/** Xvnc normally opens its display in well under a second; this only catches a hung one. */
const DISPLAY_START_TIMEOUT_MS = 10_000;
/** Tries before giving up when another X server grabs a display between our check and Xvnc. */
const DISPLAY_ATTEMPTS = 5;
const INFRA_HINT =
  ' (the local runner needs Xvnc, from Debian\'s tigervnc-standalone-server, and websockify installed and on PATH; ./scripts/setup.sh installs them)';

/**
 *   launching ──all three started──▶ starting ──VNC and WebSocket answer──▶ ready
 *       │                               │                                   │
 *       └──── a process died ─────────▶ ended ◀────── a process died ───────┘
 *
 * An adopted session enters at starting, ready or ended, as its state file and its
 * processes say. stop() may come in any phase; from then on the session reports nothing.
 */
type Phase = 'launching' | 'starting' | 'ready' | 'ended';

/**
 * One session's three host processes, the local stand-in for the pod's app container and VNC
 * sidecar: Xvnc (X server and VNC server) and websockify on 127.0.0.1, and the sandboxed app
 * on that display.
 *
 * Each process is the leader of its own process group (so killing the group also kills what
 * it forked) in a new session, so it outlives Sortie; its pid and start time go into the
 * state file before it may run, so the next Sortie can adopt or clean it up.
 */
export class LocalSession {
  private readonly children: ChildProcess[] = [];
  /** A process died while launch() was still starting the others; `role`'s log explains it. */
  private launchFailure?: { what: string; role: Role };
  private endReason?: string;
  private stopRequested = false;
  private launching?: Promise<void>;
  /** Killing the rest after a process died on its own; resolves, never rejects. */
  private ending?: Promise<void>;
  private stopping?: Promise<void>;
  private readinessTimer?: NodeJS.Timeout;

  private constructor(
    private readonly host: SessionHost,
    readonly record: SessionRecord,
    private phase: Phase,
    /** Adopted sessions were started by an earlier Sortie: no 'exit' events, so they are polled. */
    private readonly adopted: boolean,
    /** When the clock for "ready after N ms" started. */
    private readonly since: number,
    /** The app's clipboard setting and name, for launch(); an adopted session keeps what it started with. */
    private readonly app: { clipboard: ClipboardPolicy; name: string } = { clipboard: 'none', name: 'Sortie' },
  ) {}

  /** A session about to be launched by this runner; launch() starts it. */
  static forLaunch(host: SessionHost, spec: LaunchSpec): LocalSession {
    const record: SessionRecord = {
      version: 1,
      sessionId: spec.sessionId,
      workloadName: spec.workloadName,
      appId: spec.app.id,
      userId: spec.userId,
      startedAt: new Date().toISOString(),
      display: 0,
      vncPort: 0,
      wsPort: 0,
      processes: [],
      ...(spec.app.persistent_home ? { home: userHomeDirPath(host.stateDir, spec.userId) } : {}),
    };
    return new LocalSession(host, record, 'launching', false, Date.now(), { clipboard: spec.app.clipboard, name: spec.app.name });
  }

  /** A session an earlier Sortie started, from its state file; adopt() decides its phase. */
  static fromRecord(host: SessionHost, record: SessionRecord): LocalSession {
    return new LocalSession(host, record, 'ended', true, Date.parse(record.startedAt) || Date.now());
  }

  get sessionId(): string {
    return this.record.sessionId;
  }

  /** What start() reports for this session. */
  workload(): Workload {
    const { sessionId } = this;
    switch (this.phase) {
      case 'ready':
        return { sessionId, state: 'ready', endpoint: this.endpoint() };
      case 'ended':
        return { sessionId, state: 'ended', reason: this.endReason ?? 'The session ended' };
      default:
        return { sessionId, state: 'starting' };
    }
  }

  /**
   * Starts the three processes and resolves once all are running (readiness is reported
   * later as an event). On failure everything started is killed and its files removed.
   */
  async launch(command: readonly string[], secret: string | undefined): Promise<void> {
    this.launching = this.startProcesses(command, secret);
    try {
      await this.launching;
    } catch (err) {
      this.phase = 'ended';
      await this.killAll();
      removeSessionFiles(this.host.stateDir, this.sessionId);
      if (!this.stopRequested) {
        this.host.log.warn({ sessionId: this.sessionId, appId: this.record.appId, reason: (err as Error).message }, 'local session failed to launch');
      }
      throw err;
    }
  }

  /** Takes over a session from its state file: resumes it if every process still runs, else ends it. */
  async adopt(): Promise<Workload> {
    const { record, sessionId } = this;
    const complete = hasAllRoles(record);
    const dead = record.processes.filter((p) => !isLeaderRunning(p));
    if (complete && dead.length === 0) {
      this.phase = record.readyAt ? 'ready' : 'starting';
      this.host.log.info({ sessionId, state: this.phase, pids: record.processes.map((p) => p.pid) }, 'adopted local session');
      if (this.phase === 'starting') this.pollReadiness();
      return this.workload();
    }
    this.endReason = complete
      ? `${dead.map((p) => p.name).join(', ')} exited while Sortie was not running`
      : 'Sortie stopped while the session was starting';
    await this.killAll();
    this.host.log.info({ sessionId, reason: this.endReason }, 'local session found ended');
    return this.workload();
  }

  /** For adopted sessions, whose processes are not our children: ends the session if one is gone. */
  checkLiveness(): void {
    if (!this.adopted || (this.phase !== 'starting' && this.phase !== 'ready')) return;
    const gone = this.record.processes.find((p) => !isLeaderRunning(p));
    // An adopted process is not our child: its exit code is not ours to know.
    if (gone) this.processEnded(gone, `${gone.name} exited`);
  }

  /** Kills every process and removes every file of the session. Idempotent; reports nothing. */
  stop(): Promise<void> {
    this.stopping ??= this.stopNow();
    return this.stopping;
  }

  /** The runner is closing: stop listening, leave the processes running. */
  detach(): void {
    clearTimeout(this.readinessTimer);
    for (const child of this.children) child.removeAllListeners('exit');
  }

  // ---- launch -------------------------------------------------------------------------

  private async startProcesses(command: readonly string[], secret: string | undefined): Promise<void> {
    const { host, record } = this;
    ensureStateDir(host.stateDir);
    // Everything that can be found missing is looked for before the first process starts.
    const programs = {
      xvnc: infraProgram('Xvnc'),
      websockify: infraProgram('websockify'),
      prlimit: infraProgram('prlimit'),
      setxkbmap: infraProgram('setxkbmap'),
    };
    const sandbox = this.sandboxTools(command);
    // One TCP port, websockify's: VNC is on the display folder's socket (record.vncPort stays 0).
    const [wsPort] = (await host.claimPorts(1)) as [number];
    record.wsPort = wsPort;
    this.checkLaunch();

    const cookie = newCookie();
    const plan = (display: number): SessionPlan => ({
      sessionId: this.sessionId,
      stateDir: host.stateDir,
      display,
      wsPort,
      screen: host.screen,
      cookie,
      secret,
      clipboard: this.app.clipboard,
      desktopName: this.app.name,
      programs,
      sandbox,
      hiddenPaths: host.hiddenPaths,
      hostEnv: { PATH: process.env.PATH, LANG: process.env.LANG },
    });
    this.reportStep('starting');
    const planned = plan(await this.startDisplay(plan, sandbox.user));
    await this.widenKeymap(planned);
    await this.startProcess(websockifyRecipe(planned));
    this.prepareHome(sandbox.user);
    this.reportStep('app');
    await this.startProcess(appRecipe(planned));

    this.checkLaunch();
    this.phase = 'starting';
    host.log.info(
      { sessionId: this.sessionId, appId: record.appId, display: record.display, wsPort, pids: record.processes.map((p) => p.pid) },
      'local session launched',
    );
    this.pollReadiness();
  }

  /** Tells a person waiting which part of the session is starting: the desktop, then the app. */
  private reportStep(step: 'starting' | 'app'): void {
    this.host.emit({ type: 'progress', sessionId: this.sessionId, step, at: new Date().toISOString() });
  }

  /** bwrap, and when Sortie is root setpriv and the session user; throws a message a person can act on. */
  private sandboxTools(command: readonly string[]): SandboxTools {
    const bwrap = requireProgram('bwrap', BWRAP_MISSING);
    const systemPaths = hostSystemPaths();
    const program = resolveAppProgram(command[0]!, systemPaths);
    if (typeof program !== 'string') throw new Error(program.problem);
    const resolved = [program, ...command.slice(1)];
    if (process.getuid?.() !== 0) return { bwrap, systemPaths, command: resolved };
    const setpriv = requireProgram(
      'setpriv',
      'The local runner needs "setpriv" (Debian package util-linux) to run apps as an unprivileged user when Sortie runs as root',
    );
    return { bwrap, systemPaths, command: resolved, setpriv, user: this.host.sessionUser() };
  }

  /**
   * The session's home: empty and owned by the user the app runs as (its recipe adds the
   * cookie). With a persistent home it is a link to the user's own folder instead, made on
   * first use and kept as the app leaves it; the link keeps the session's home path, which
   * the sandbox's argv names and killSandbox looks for, unique to the session.
   */
  private prepareHome(user: SessionUser | undefined): void {
    const { stateDir } = this.host;
    const home = homeDirPath(stateDir, this.sessionId);
    // Only Sortie may enter the folders of homes; each sandbox sees its own home only.
    mkdirSync(homesDirPath(stateDir), { recursive: true, mode: 0o700 });
    rmSync(home, { recursive: true, force: true });
    const kept = this.record.home;
    if (kept) {
      mkdirSync(userHomesDirPath(stateDir), { recursive: true, mode: 0o700 });
      try {
        mkdirSync(kept, { mode: 0o700 });
        if (user) chownSync(kept, user.uid, user.gid);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      symlinkSync(kept, home);
      return;
    }
    mkdirSync(home, { mode: 0o700 });
    if (user) chownSync(home, user.uid, user.gid);
  }

  /**
   * The session's display folder, empty, for the display server's sandbox to make its
   * sockets in: owned by the user it runs as, inside the state folder only Sortie enters.
   */
  private prepareDisplayDir(user: SessionUser | undefined): void {
    const dir = displayDirPath(this.host.stateDir, this.sessionId);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { mode: 0o700 });
    if (user) chownSync(dir, user.uid, user.gid);
  }

  /** Starts Xvnc on the first display it can open; resolves with that display. */
  private async startDisplay(plan: (display: number) => SessionPlan, user: SessionUser | undefined): Promise<number> {
    const { record } = this;
    let from = FIRST_DISPLAY;
    for (let attempt = 1; ; attempt++) {
      const display = this.host.claimDisplay(from);
      record.display = display;
      // The first trace on disk, before any process exists (or folder: a restart finds
      // whatever is left by the state file, which names the session).
      writeStateFile(this.host.stateDir, record);
      this.prepareDisplayDir(user);
      const xvnc = await this.startProcess(xvncRecipe(plan(display)));
      if (await this.waitForDisplay(display)) return display;

      const tail = this.logTail('xvnc');
      if (attempt < DISPLAY_ATTEMPTS && /already (active|running)/i.test(tail)) {
        // Another X server took the display after it was found free (its lock file, or its
        // abstract socket: a sandboxed one leaves no lock on the host); move on.
        record.processes = record.processes.filter((p) => p !== xvnc);
        this.launchFailure = undefined;
        this.host.releaseDisplay(display);
        from = display + 1;
        continue;
      }
      throw new Error(withLog(`Cannot start the display: ${this.launchFailure?.what}`, tail));
    }
  }

  /** See keymapCommand. A session with the narrow keymap still works, so a failure is only told. */
  private async widenKeymap(plan: SessionPlan): Promise<void> {
    const { argv, env } = keymapCommand(plan);
    try {
      await execFileAsync(argv[0]!, argv.slice(1), { env, timeout: KEYMAP_TIMEOUT_MS });
    } catch (err) {
      this.host.log.warn({ sessionId: this.sessionId, err }, 'could not widen the desktop keymap; characters beyond a US keyboard may run short');
    }
  }

  /** True once Xvnc accepts X connections; false if it died first. */
  private async waitForDisplay(display: number): Promise<boolean> {
    const deadline = Date.now() + DISPLAY_START_TIMEOUT_MS;
    for (;;) {
      if (this.launchFailure) return false;
      if (this.stopRequested) this.checkLaunch();
      if (await xServerAccepts(displaySocketFilePath(this.host.stateDir, this.sessionId, display))) return true;
      if (Date.now() > deadline) {
        throw new Error(withLog(`Xvnc did not open display :${display} within ${DISPLAY_START_TIMEOUT_MS / 1000} s`, this.logTail('xvnc')));
      }
      await sleep(50);
    }
  }

  private async startProcess(recipe: ProcessRecipe): Promise<ProcessRecord> {
    this.checkLaunch();
    const { stateDir } = this.host;
    for (const file of recipe.files) {
      // What an earlier attempt left (a retried display) is replaced; a symlink is removed, not followed.
      rmSync(file.path, { force: true });
      writePrivateFile(file.path, file.data, file.owner);
    }
    const inheritedFd = recipe.inherited && openInherited(recipe.inherited);
    let logFd: number | undefined;
    let gated;
    try {
      logFd = openSessionLog(logFilePath(stateDir, this.sessionId, recipe.role));
      noteInLog(logFd, `starting ${recipe.name}: ${recipe.argv.join(' ')}`);
      gated = await spawnGroupLeader(recipe.argv, logFd, recipe.env, recipe.gate, inheritedFd === undefined ? [] : [inheritedFd]);
    } catch (err) {
      throw new Error(spawnFailure(recipe.argv[0] ?? recipe.name, err as NodeJS.ErrnoException));
    } finally {
      if (logFd !== undefined) closeSync(logFd);
      if (inheritedFd !== undefined) closeSync(inheritedFd);
    }
    const { child } = gated;
    // Read before any later tick: until Node reaps it, even a process that already exited
    // keeps its /proc entry (as a zombie).
    const proc: ProcessRecord = { role: recipe.role, name: recipe.name, pid: child.pid!, startTime: readProcStat(child.pid!)?.startTime };
    this.record.processes.push(proc);
    this.children.push(child);
    child.once('exit', (code, signal) => this.processEnded(proc, describeExit(recipe.name, code, signal)));
    // Recorded before it may run: a crash from here on leaves a pid the next Sortie can kill.
    writeStateFile(stateDir, this.record);
    gated.release();
    return proc;
  }

  /** Throws, ending the launch, if stop() was called or a process already died. */
  private checkLaunch(): void {
    if (this.stopRequested) throw new Error('The session was stopped while it was starting');
    if (this.launchFailure) {
      throw new Error(withLog(`${this.launchFailure.what} while the session was starting`, this.logTail(this.launchFailure.role)));
    }
  }

  // ---- readiness and endings ----------------------------------------------------------

  private pollReadiness(): void {
    const { record } = this;
    const stillStarting = () => this.phase === 'starting' && !this.stopRequested && !this.host.closed;
    const tick = async () => {
      this.readinessTimer = undefined;
      if (!stillStarting()) return;
      // A session of an earlier version, adopted while starting, had VNC on a TCP port.
      const vnc = record.vncPort > 0 ? { host: HOST, port: record.vncPort } : { path: vncSocketPath(this.host.stateDir, this.sessionId) };
      const up = (await vncAnswers(vnc)) && (await tcpAccepts(HOST, record.wsPort));
      if (!stillStarting()) return;
      if (!up) {
        this.readinessTimer = setTimeout(tick, this.host.readyPollMs);
        return;
      }
      this.phase = 'ready';
      record.readyAt = new Date().toISOString();
      try {
        writeStateFile(this.host.stateDir, record);
      } catch (err) {
        // Only costs a re-probe after a restart.
        this.host.log.warn({ sessionId: this.sessionId, err: (err as Error).message }, 'cannot record readiness');
      }
      this.host.log.info({ sessionId: this.sessionId, ms: Date.now() - this.since }, 'local session ready');
      this.host.emit({ type: 'ready', sessionId: this.sessionId, endpoint: this.endpoint() });
    };
    this.readinessTimer = setTimeout(tick, 0);
  }

  /** One of the session's processes ended on its own: end the session and say why. */
  private processEnded(proc: ProcessRecord, what: string): void {
    if (this.host.closed || this.stopRequested || this.phase === 'ended') return;
    if (this.phase === 'launching') {
      this.launchFailure ??= { what, role: proc.role };
      return;
    }
    const { sessionId } = this;
    const wasReady = this.phase === 'ready';
    this.phase = 'ended';
    clearTimeout(this.readinessTimer);
    // The tail is read now, before the others' shutdown chatter is appended.
    const event: WorkloadEvent =
      proc.role === 'app' && wasReady
        ? { type: 'exited', sessionId, reason: what }
        : {
            type: 'failed',
            sessionId,
            reason: withLog(wasReady ? what : `${what} before the session became ready`, this.logTail(proc.role)),
          };
    this.endReason = event.reason;
    this.ending = this.killAll().then(() => {
      if (this.host.closed || this.stopRequested) return;
      if (event.type === 'exited') this.host.log.info({ sessionId, reason: what }, 'local session exited');
      else this.host.log.warn({ sessionId, reason: event.reason }, 'local session failed');
      this.host.emit(event);
    });
  }

  // ---- stopping ----------------------------------------------------------------------

  private async stopNow(): Promise<void> {
    this.stopRequested = true;
    this.detach();
    // launch() notices stopRequested at its next step and cleans up what it started.
    await this.launching?.catch(() => {});
    await this.ending;
    await this.killAll();
    removeSessionFiles(this.host.stateDir, this.sessionId);
    this.host.log.info({ sessionId: this.sessionId }, 'local session stopped');
  }

  private async killAll(): Promise<void> {
    const { record, host } = this;
    try {
      const stubborn = await terminateGroups(record.processes);
      if (stubborn.length > 0) {
        host.log.error({ sessionId: this.sessionId, pids: stubborn.map((p) => p.pid) }, 'local session processes would not die');
      }
      await killSandbox(host, this.sessionId);
      removeStaleDisplayFiles(record);
    } catch (err) {
      host.log.error({ sessionId: this.sessionId, err: (err as Error).message }, 'cannot kill local session processes');
    }
  }

  private endpoint(): Endpoint {
    return { host: HOST, port: this.record.wsPort };
  }

  /** The last lines `role` wrote; without a role, those of the last process that wrote any. */
  private logTail(role?: Role): string {
    const { stateDir } = this.host;
    if (role) return tailLog(logFilePath(stateDir, this.sessionId, role));
    for (const r of [...ROLES].reverse()) {
      const tail = tailLog(logFilePath(stateDir, this.sessionId, r));
      if (tail !== '') return tail;
    }
    return '';
  }
}

/**
 * Sandboxes that outlived their bwrap (see processesWithArgs): the app's argv names the
 * session's home, the display server's its display folder, which no other process's does.
 * Normally there is none.
 */
export async function killSandbox(host: Pick<SessionHost, 'stateDir' | 'log'>, sessionId: string): Promise<void> {
  const stubborn = [
    ...(await killProcessesWithArgs(['--bind', homeDirPath(host.stateDir, sessionId), SANDBOX_HOME])),
    ...(await killProcessesWithArgs(['--bind', displayDirPath(host.stateDir, sessionId), SANDBOX_X11_DIR])),
  ];
  if (stubborn.length > 0) host.log.error({ sessionId, pids: stubborn }, 'local session sandbox would not die');
}

function infraProgram(program: string): string {
  const found = resolveProgram(program, process.env.PATH || SANDBOX_PATH);
  if (!found) throw new Error(`Cannot start "${program}": command not found${INFRA_HINT}`);
  return found;
}

/**
 * Writes `file` (0600, created fresh), opens it for reading and deletes it: the descriptor is
 * then the only way to it. Only stdio placement cares about the number; see InheritedFile.
 */
function openInherited(file: InheritedFile): number {
  rmSync(file.path, { force: true });
  writePrivateFile(file.path, file.data, file.owner);
  try {
    return openSync(file.path, 'r');
  } finally {
    rmSync(file.path, { force: true });
  }
}

function describeExit(name: string, code: number | null, signal: NodeJS.Signals | null): string {
  return code !== null ? `${name} exited (code ${code})` : `${name} was killed (${signal})`;
}

function spawnFailure(program: string, err: NodeJS.ErrnoException): string {
  switch (err.code) {
    case 'ENOENT':
      return `Cannot start "${program}": command not found`;
    case 'EACCES':
      return `Cannot start "${program}": permission denied (is it executable?)`;
    default:
      return `Cannot start "${program}": ${err.message}`;
  }
}

function withLog(reason: string, tail: string): string {
  return tail === '' ? reason : `${reason}. Last lines of the session log:\n${tail}`;
}

/**
 * A killed (not terminated) X server of an earlier version, which ran outside any sandbox,
 * left its lock and socket in the host's /tmp, blocking the display. Today's leaves both in
 * its sandbox and display folder, gone with the session.
 */
function removeStaleDisplayFiles(record: SessionRecord): void {
  const server = record.processes.find((p) => p.role === 'xvnc' || p.role === 'xvfb');
  if (!server || isLeaderRunning(server)) return;
  let owner: number;
  try {
    owner = Number(readFileSync(displayLockPath(record.display), 'utf8').trim());
  } catch {
    return;
  }
  if (owner !== server.pid) return;
  rmSync(displayLockPath(record.display), { force: true });
  rmSync(displaySocketPath(record.display), { force: true });
}

