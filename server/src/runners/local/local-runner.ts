import type { ChildProcess } from 'node:child_process';
import { chownSync, closeSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import type { App } from '../../catalog/app.js';
import { InputError } from '../../errors.js';
import type { Endpoint, LaunchSpec, Runner, Workload, WorkloadEvent } from '../runner.js';
import { localCapacity } from './capacity.js';
import { displayLockPath, displaySocketPath, findFreeDisplay, findFreePorts, FIRST_DISPLAY } from './ports.js';
import { vncAnswers, tcpAccepts, xServerAccepts } from './probe.js';
import { isLeaderRunning, killProcessesWithArgs, readProcStat, spawnGroupLeader, terminateGroups, type GateMode } from './process-group.js';
import {
  BWRAP_MISSING,
  ensureSessionUser,
  hostSystemPaths,
  requireProgram,
  resolveAppProgram,
  resolveProgram,
  SANDBOX_HOME,
  SANDBOX_PATH,
  sandboxArgv,
  sandboxEnvironment,
  type SessionUser,
} from './sandbox.js';
import { noteInLog, openSessionLog, tailLog } from './session-log.js';
import { newCookie, writeXauthority } from './xauth.js';
import {
  ensureStateDir,
  homeDirPath,
  homesDirPath,
  isSafeSessionId,
  logFilePath,
  passwordFilePath,
  readStateFile,
  readStateFiles,
  removeSessionFiles,
  ROLES,
  writeStateFile,
  xauthFilePath,
  type ProcessRecord,
  type Role,
  type SessionRecord,
  type StateFileEntry,
} from './state-file.js';

export interface LocalRunnerOptions {
  /** One `<sessionId>.json` (processes, display, ports) and `<sessionId>.log` per session. */
  stateDir: string;
  logger: Logger;
  /** How often to probe a starting session's VNC endpoint. Default 100 ms. */
  readyPollMs?: number;
  /** Xvfb's `-screen 0` geometry. Default `1280x800x24`. */
  screen?: string;
  /** How often to check that adopted sessions' processes (not our children) still run. Default 1000 ms. */
  livenessPollMs?: number;
  /** When Sortie runs as root, apps run as this unprivileged user (created if missing). Default `sortie-session`. */
  sessionUser?: string;
  /** More host folders the sandbox must not show (the state dir and its parent always are hidden). */
  hiddenPaths?: readonly string[];
}

/** Every port a session opens listens here only; the stream relay is its one client. */
const HOST = '127.0.0.1';
/** Xvfb normally opens its display in well under a second; this only catches a hung one. */
const XVFB_START_TIMEOUT_MS = 10_000;
/** Tries before giving up when another X server grabs a display between our check and Xvfb. */
const DISPLAY_ATTEMPTS = 5;
const INFRA_HINT = ' (the local runner needs Xvfb, x11vnc and websockify installed and on PATH)';

type Phase = 'launching' | 'starting' | 'ready' | 'ended';

interface Session {
  record: SessionRecord;
  phase: Phase;
  /** Adopted sessions were started by an earlier Sortie: no 'exit' events, so they are polled. */
  adopted: boolean;
  /** Processes this runner spawned, for detaching their 'exit' listeners. */
  children: ChildProcess[];
  /** When the clock for "ready after N ms" started. */
  since: number;
  /** A process died while launch() was still starting the others. */
  launchFailure?: string;
  /** Whose log explains launchFailure. */
  launchFailureRole?: Role;
  endReason?: string;
  stopRequested: boolean;
  launching?: Promise<void>;
  /** Killing the rest after a process died on its own; resolves, never rejects. */
  ending?: Promise<void>;
  stopping?: Promise<void>;
  readinessTimer?: NodeJS.Timeout;
}

/**
 * Runs each session as four host processes, the local stand-in for the pod's app container
 * and VNC sidecar: Xvfb, x11vnc and websockify on 127.0.0.1, and the app on that display.
 *
 * Each process is the leader of its own process group (so killing the group also kills what
 * it forked) in a new session, so it outlives Sortie; its pid and start time go into a state
 * file before launch() resolves, so the next Sortie can adopt or clean it up.
 *
 * State files are removed only by stop(), also for sessions that ended on their own or were
 * found dead at start(): the service calls stop() for every ended session, and until it does
 * the file keeps stop() and a repeated start() giving the same answer.
 */
export class LocalRunner implements Runner {
  readonly kind = 'local' as const;
  private readonly sessions = new Map<string, Session>();
  private readonly displaysTaken = new Set<number>();
  private readonly portsTaken = new Set<number>();
  private readonly readyPollMs: number;
  private readonly livenessPollMs: number;
  private readonly screen: string;
  private readonly log: Logger;
  private onEvent: (event: WorkloadEvent) => void = () => {};
  private livenessTimer?: NodeJS.Timeout;
  private closed = false;
  private sessionUser?: SessionUser;

  constructor(private readonly options: LocalRunnerOptions) {
    this.readyPollMs = options.readyPollMs ?? 100;
    this.livenessPollMs = options.livenessPollMs ?? 1000;
    this.screen = options.screen ?? '1280x800x24';
    this.log = options.logger;
  }

  validate(app: App): void {
    if (!app.command || app.command.length === 0) {
      throw new InputError(`App "${app.id}" has no "command", which the local runner needs to start it`);
    }
  }

  /** Sessions this machine can hold at once (memory and shared memory); see capacity.ts. */
  capacity(): number {
    return localCapacity(this.screen).sessions;
  }

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    this.onEvent = onEvent;
    this.closed = false;
    ensureStateDir(this.options.stateDir);
    // Deliberately not unref'd: a watching runner keeps the process alive until close().
    this.livenessTimer ??= setInterval(() => this.checkAdoptedSessions(), this.livenessPollMs);
    // In parallel: cleaning up a dead session may wait seconds for a stubborn process.
    return Promise.all(
      readStateFiles(this.options.stateDir).map((entry) => {
        const known = this.sessions.get(entry.sessionId);
        return known ? workloadOf(known) : this.adopt(entry);
      }),
    );
  }

  async launch(spec: LaunchSpec): Promise<void> {
    this.validate(spec.app);
    const { sessionId } = spec;
    if (!isSafeSessionId(spec.sessionId)) {
      throw new Error(`Session id "${sessionId}" cannot be used by the local runner: it must be a plain file name`);
    }
    if (this.sessions.has(sessionId)) throw new Error(`Session ${sessionId} is already running`);
    const secret = streamSecretOf(spec);
    const session: Session = {
      record: {
        version: 1,
        sessionId,
        workloadName: spec.workloadName,
        appId: spec.app.id,
        userId: spec.userId,
        startedAt: new Date().toISOString(),
        display: 0,
        vncPort: 0,
        wsPort: 0,
        processes: [],
      },
      phase: 'launching',
      adopted: false,
      children: [],
      since: Date.now(),
      stopRequested: false,
    };
    this.sessions.set(sessionId, session);
    session.launching = this.startProcesses(session, spec.app.command!, secret);
    try {
      await session.launching;
    } catch (err) {
      session.phase = 'ended';
      await this.killAll(session);
      this.forget(session);
      if (!session.stopRequested) {
        this.log.warn({ sessionId, appId: spec.app.id, reason: (err as Error).message }, 'local session failed to launch');
      }
      throw err;
    }
  }

  stop(sessionId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (!session) return this.stopUnknown(sessionId);
    session.stopping ??= this.stopSession(session);
    return session.stopping;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.livenessTimer);
    this.livenessTimer = undefined;
    for (const session of this.sessions.values()) {
      clearTimeout(session.readinessTimer);
      for (const child of session.children) child.removeAllListeners('exit');
    }
  }

  // ---- launch -------------------------------------------------------------------------

  private async startProcesses(session: Session, command: readonly string[], secret: string | undefined): Promise<void> {
    const { stateDir } = this.options;
    const { record } = session;
    ensureStateDir(stateDir);
    // Everything that can be found missing is looked for before the first process starts.
    const programs = {
      xvfb: infraProgram('Xvfb'),
      x11vnc: infraProgram('x11vnc'),
      websockify: infraProgram('websockify'),
    };
    const sandbox = this.sandboxTools(command);
    const [vncPort, wsPort] = (await findFreePorts(2, this.portsTaken)) as [number, number];
    record.vncPort = vncPort;
    record.wsPort = wsPort;
    this.portsTaken.add(vncPort).add(wsPort);
    this.checkLaunch(session);

    const xauthority = xauthFilePath(stateDir, record.sessionId);
    const cookie = newCookie();
    await this.startXvfb(session, programs.xvfb, xauthority, cookie);
    const display = `:${record.display}`;
    await this.startProcess(session, 'x11vnc', 'x11vnc', [
      programs.x11vnc, '-display', display, '-rfbport', String(vncPort),
      // -noipv6: -localhost alone also listens on [::1]. Not -quiet: it hides why x11vnc
      // failed (e.g. "shmget: No space left on device"); its output has a log of its own.
      '-localhost', '-noipv6', '-forever', '-shared', '-norc',
      ...this.vncAuthArgs(record.sessionId, secret),
    ], infraEnvironment({ XAUTHORITY: xauthority }));
    await this.startProcess(session, 'websockify', 'websockify', [
      programs.websockify, `${HOST}:${wsPort}`, `${HOST}:${vncPort}`,
    ], infraEnvironment());

    const home = this.prepareHome(record.sessionId, record.display, cookie, sandbox.user);
    const argv = sandboxArgv({
      ...sandbox,
      hide: [stateDir, homesDirPath(stateDir), path.dirname(stateDir), ...(this.options.hiddenPaths ?? [])],
      home,
      display: record.display,
      env: sandboxEnvironment(record.display, process.env.LANG || 'C.UTF-8'),
    });
    await this.startProcess(session, 'app', path.basename(command[0]!), argv, infraEnvironment(), 'parent');

    this.checkLaunch(session);
    session.phase = 'starting';
    this.log.info(
      {
        sessionId: record.sessionId,
        appId: record.appId,
        display: record.display,
        vncPort,
        wsPort,
        pids: record.processes.map((p) => p.pid),
      },
      'local session launched',
    );
    this.pollReadiness(session);
  }

  /** bwrap, and when Sortie is root setpriv and the session user; throws a message a person can act on. */
  private sandboxTools(command: readonly string[]) {
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
    this.sessionUser ??= ensureSessionUser(this.options.sessionUser ?? 'sortie-session');
    return { bwrap, systemPaths, command: resolved, setpriv, user: this.sessionUser };
  }

  /**
   * The session's home: empty, owned by the user the app runs as, holding a copy of the
   * display's cookie (the original stays readable by Sortie only).
   */
  private prepareHome(sessionId: string, display: number, cookie: Buffer, user: SessionUser | undefined): string {
    const home = homeDirPath(this.options.stateDir, sessionId);
    // Only Sortie may enter the folder of homes; each sandbox sees its own home only.
    mkdirSync(homesDirPath(this.options.stateDir), { recursive: true, mode: 0o700 });
    rmSync(home, { recursive: true, force: true });
    mkdirSync(home, { mode: 0o700 });
    if (user) chownSync(home, user.uid, user.gid);
    writeXauthority(path.join(home, '.Xauthority'), display, cookie, user);
    return home;
  }

  /**
   * The secret goes through a file x11vnc deletes after reading, never through argv, where
   * every local user could read it with ps.
   */
  private vncAuthArgs(sessionId: string, secret: string | undefined): string[] {
    if (secret === undefined) return ['-nopw'];
    const file = passwordFilePath(this.options.stateDir, sessionId);
    writeFileSync(file, `${secret}\n`, { mode: 0o600 });
    return ['-passwdfile', `rm:${file}`];
  }

  private async startXvfb(session: Session, program: string, xauthority: string, cookie: Buffer): Promise<void> {
    const { record } = session;
    let from = FIRST_DISPLAY;
    for (let attempt = 1; ; attempt++) {
      const display = findFreeDisplay(this.displaysTaken, from);
      this.displaysTaken.add(display);
      record.display = display;
      // The first trace on disk, before any process exists.
      writeStateFile(this.options.stateDir, record);
      rmSync(xauthority, { force: true });
      writeXauthority(xauthority, display, cookie);
      const xvfb = await this.startProcess(session, 'xvfb', 'Xvfb', [
        program, `:${display}`, '-screen', '0', this.screen, '-nolisten', 'tcp', '-auth', xauthority,
      ], infraEnvironment());
      if (await this.waitForDisplay(session, display)) return;

      const tail = this.logTail(session, 'xvfb');
      if (attempt < DISPLAY_ATTEMPTS && /already active/i.test(tail)) {
        // Another X server took the display after findFreeDisplay looked; move on.
        record.processes = record.processes.filter((p) => p !== xvfb);
        session.launchFailure = undefined;
        session.launchFailureRole = undefined;
        this.displaysTaken.delete(display);
        from = display + 1;
        continue;
      }
      throw new Error(withLog(`Cannot start the display: ${session.launchFailure}`, tail));
    }
  }

  /** True once Xvfb accepts connections; false if it died first. */
  private async waitForDisplay(session: Session, display: number): Promise<boolean> {
    const deadline = Date.now() + XVFB_START_TIMEOUT_MS;
    for (;;) {
      if (session.launchFailure) return false;
      if (session.stopRequested) this.checkLaunch(session);
      if (await xServerAccepts(displaySocketPath(display))) return true;
      if (Date.now() > deadline) {
        throw new Error(
          withLog(`Xvfb did not open display :${display} within ${XVFB_START_TIMEOUT_MS / 1000} s`, this.logTail(session, 'xvfb')),
        );
      }
      await sleep(50);
    }
  }

  private async startProcess(
    session: Session,
    role: Role,
    name: string,
    argv: readonly string[],
    env: NodeJS.ProcessEnv,
    mode: GateMode = 'exec',
  ): Promise<ProcessRecord> {
    this.checkLaunch(session);
    const { stateDir } = this.options;
    const logFd = openSessionLog(logFilePath(stateDir, session.record.sessionId, role));
    let gated;
    try {
      noteInLog(logFd, `starting ${name}: ${argv.join(' ')}`);
      gated = await spawnGroupLeader(argv, logFd, env, mode);
    } catch (err) {
      throw new Error(spawnFailure(argv[0] ?? name, err as NodeJS.ErrnoException));
    } finally {
      closeSync(logFd);
    }
    const { child } = gated;
    // Read before any later tick: until Node reaps it, even a process that already exited
    // keeps its /proc entry (as a zombie).
    const proc: ProcessRecord = { role, name, pid: child.pid!, startTime: readProcStat(child.pid!)?.startTime };
    session.record.processes.push(proc);
    session.children.push(child);
    child.once('exit', (code, signal) => this.processEnded(session, proc, describeExit(name, code, signal)));
    // Recorded before it may run: a crash from here on leaves a pid the next Sortie can kill.
    writeStateFile(stateDir, session.record);
    gated.release();
    return proc;
  }

  /** Throws, ending the launch, if stop() was called or a process already died. */
  private checkLaunch(session: Session): void {
    if (session.stopRequested) throw new Error('The session was stopped while it was starting');
    if (session.launchFailure) {
      throw new Error(
        withLog(`${session.launchFailure} while the session was starting`, this.logTail(session, session.launchFailureRole)),
      );
    }
  }

  // ---- readiness and liveness ---------------------------------------------------------

  private pollReadiness(session: Session): void {
    const { record } = session;
    const stillStarting = () => session.phase === 'starting' && !session.stopRequested && !this.closed;
    const tick = async () => {
      session.readinessTimer = undefined;
      if (!stillStarting()) return;
      const up = (await vncAnswers(HOST, record.vncPort)) && (await tcpAccepts(HOST, record.wsPort));
      if (!stillStarting()) return;
      if (!up) {
        session.readinessTimer = setTimeout(tick, this.readyPollMs);
        return;
      }
      session.phase = 'ready';
      record.readyAt = new Date().toISOString();
      try {
        writeStateFile(this.options.stateDir, record);
      } catch (err) {
        // Only costs a re-probe after a restart.
        this.log.warn({ sessionId: record.sessionId, err: (err as Error).message }, 'cannot record readiness');
      }
      this.log.info({ sessionId: record.sessionId, ms: Date.now() - session.since }, 'local session ready');
      this.onEvent({ type: 'ready', sessionId: record.sessionId, endpoint: endpointOf(record) });
    };
    session.readinessTimer = setTimeout(tick, 0);
  }

  private checkAdoptedSessions(): void {
    for (const session of this.sessions.values()) {
      if (!session.adopted || (session.phase !== 'starting' && session.phase !== 'ready')) continue;
      const gone = session.record.processes.find((p) => !isLeaderRunning(p));
      // An adopted process is not our child: its exit code is not ours to know.
      if (gone) this.processEnded(session, gone, `${gone.name} exited`);
    }
  }

  /** One of the session's processes ended on its own: end the session and say why. */
  private processEnded(session: Session, proc: ProcessRecord, what: string): void {
    if (this.closed || session.stopRequested || session.phase === 'ended') return;
    if (session.phase === 'launching') {
      if (session.launchFailure === undefined) {
        session.launchFailure = what;
        session.launchFailureRole = proc.role;
      }
      return;
    }
    const { sessionId } = session.record;
    const wasReady = session.phase === 'ready';
    session.phase = 'ended';
    clearTimeout(session.readinessTimer);
    // The tail is read now, before the others' shutdown chatter is appended.
    const event: WorkloadEvent =
      proc.role === 'app' && wasReady
        ? { type: 'exited', sessionId, reason: what }
        : {
            type: 'failed',
            sessionId,
            reason: withLog(wasReady ? what : `${what} before the session became ready`, this.logTail(session, proc.role)),
          };
    session.endReason = event.reason;
    session.ending = this.killAll(session).then(() => {
      if (this.closed || session.stopRequested) return;
      if (event.type === 'exited') this.log.info({ sessionId, reason: what }, 'local session exited');
      else this.log.warn({ sessionId, reason: event.reason }, 'local session failed');
      this.onEvent(event);
    });
  }

  // ---- adoption ----------------------------------------------------------------------

  private async adopt(entry: StateFileEntry): Promise<Workload> {
    const { sessionId } = entry;
    if (!entry.record) {
      // Nothing to kill without pids; stop() removes the file.
      this.log.warn({ sessionId, problem: entry.problem }, 'unreadable local session state file');
      return { sessionId, state: 'ended', reason: `Its state file cannot be read: ${entry.problem}` };
    }
    const record = entry.record;
    const session: Session = {
      record,
      phase: 'ended',
      adopted: true,
      children: [],
      since: Date.parse(record.startedAt) || Date.now(),
      stopRequested: false,
    };
    this.sessions.set(sessionId, session);
    this.displaysTaken.add(record.display);
    this.portsTaken.add(record.vncPort).add(record.wsPort);

    const complete = ROLES.every((role) => record.processes.some((p) => p.role === role));
    const dead = record.processes.filter((p) => !isLeaderRunning(p));
    if (complete && dead.length === 0) {
      session.phase = record.readyAt ? 'ready' : 'starting';
      this.log.info({ sessionId, state: session.phase, pids: record.processes.map((p) => p.pid) }, 'adopted local session');
      if (session.phase === 'starting') {
        this.pollReadiness(session);
        return { sessionId, state: 'starting' };
      }
      return { sessionId, state: 'ready', endpoint: endpointOf(record) };
    }

    session.endReason = complete
      ? `${dead.map((p) => p.name).join(', ')} exited while Sortie was not running`
      : 'Sortie stopped while the session was starting';
    await this.killAll(session);
    this.log.info({ sessionId, reason: session.endReason }, 'local session found ended');
    return { sessionId, state: 'ended', reason: session.endReason };
  }

  // ---- stopping ----------------------------------------------------------------------

  private async stopSession(session: Session): Promise<void> {
    session.stopRequested = true;
    clearTimeout(session.readinessTimer);
    for (const child of session.children) child.removeAllListeners('exit');
    // launch() notices stopRequested at its next step and cleans up what it started.
    await session.launching?.catch(() => {});
    await session.ending;
    await this.killAll(session);
    this.forget(session);
    this.log.info({ sessionId: session.record.sessionId }, 'local session stopped');
  }

  /** A session only on disk (unknown to this runner, e.g. its state file was unreadable). */
  private async stopUnknown(sessionId: string): Promise<void> {
    if (!isSafeSessionId(sessionId)) return;
    const entry = readStateFile(this.options.stateDir, sessionId);
    if (entry?.record) await terminateGroups(entry.record.processes);
    await this.killSandbox(sessionId);
    removeSessionFiles(this.options.stateDir, sessionId);
    if (entry) this.log.info({ sessionId }, 'local session stopped');
  }

  private async killAll(session: Session): Promise<void> {
    const { record } = session;
    try {
      const stubborn = await terminateGroups(record.processes);
      if (stubborn.length > 0) {
        this.log.error({ sessionId: record.sessionId, pids: stubborn.map((p) => p.pid) }, 'local session processes would not die');
      }
      await this.killSandbox(record.sessionId);
      removeStaleDisplayFiles(record);
    } catch (err) {
      this.log.error({ sessionId: record.sessionId, err: (err as Error).message }, 'cannot kill local session processes');
    }
  }

  /** A sandbox that outlived its bwrap (see processesWithArgs); normally there is none. */
  private async killSandbox(sessionId: string): Promise<void> {
    const stubborn = await killProcessesWithArgs(['--bind', homeDirPath(this.options.stateDir, sessionId), SANDBOX_HOME]);
    if (stubborn.length > 0) this.log.error({ sessionId, pids: stubborn }, 'local session sandbox would not die');
  }

  private forget(session: Session): void {
    const { record } = session;
    removeSessionFiles(this.options.stateDir, record.sessionId);
    this.displaysTaken.delete(record.display);
    this.portsTaken.delete(record.vncPort);
    this.portsTaken.delete(record.wsPort);
    if (this.sessions.get(record.sessionId) === session) this.sessions.delete(record.sessionId);
  }

  /** The last lines `role` wrote; without a role, those of the last process that wrote any. */
  private logTail(session: Session, role?: Role): string {
    const { stateDir } = this.options;
    const { sessionId } = session.record;
    if (role) return tailLog(logFilePath(stateDir, sessionId, role));
    for (const r of [...ROLES].reverse()) {
      const tail = tailLog(logFilePath(stateDir, sessionId, r));
      if (tail !== '') return tail;
    }
    return '';
  }
}

function workloadOf(session: Session): Workload {
  const { sessionId } = session.record;
  switch (session.phase) {
    case 'ready':
      return { sessionId, state: 'ready', endpoint: endpointOf(session.record) };
    case 'ended':
      return { sessionId, state: 'ended', reason: session.endReason ?? 'The session ended' };
    default:
      return { sessionId, state: 'starting' };
  }
}

/**
 * LaunchSpec is gaining `streamSecret`; until every caller passes one, a session without it
 * gets a VNC server without a password, as before.
 */
function streamSecretOf(spec: LaunchSpec): string | undefined {
  const secret = (spec as { streamSecret?: unknown }).streamSecret;
  if (secret === undefined || secret === '') return undefined;
  // x11vnc's password file gives '#' lines, "__" tokens and line breaks special meanings.
  if (typeof secret !== 'string' || !/^[!-~]+$/.test(secret) || secret.startsWith('#') || secret.includes('__')) {
    throw new Error('The stream secret must be printable ASCII without spaces, a leading "#" or "__"');
  }
  return secret;
}

function endpointOf(record: SessionRecord): Endpoint {
  return { host: HOST, port: record.wsPort };
}

/**
 * Xvfb, x11vnc and websockify get a clean environment too: nothing of Sortie's own
 * (SORTIE_JWT_SECRET, SORTIE_ADMIN_PASSWORD, ...) reaches a process a session talks to.
 */
function infraEnvironment(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH || SANDBOX_PATH, LANG: process.env.LANG || 'C.UTF-8', ...extra };
}

function infraProgram(program: string): string {
  const found = resolveProgram(program, process.env.PATH || SANDBOX_PATH);
  if (!found) throw new Error(`Cannot start "${program}": command not found${INFRA_HINT}`);
  return found;
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

/** A killed (not terminated) Xvfb leaves its lock and socket behind, blocking the display. */
function removeStaleDisplayFiles(record: SessionRecord): void {
  const xvfb = record.processes.find((p) => p.role === 'xvfb');
  if (!xvfb || isLeaderRunning(xvfb)) return;
  let owner: number;
  try {
    owner = Number(readFileSync(displayLockPath(record.display), 'utf8').trim());
  } catch {
    return;
  }
  if (owner !== xvfb.pid) return;
  rmSync(displayLockPath(record.display), { force: true });
  rmSync(displaySocketPath(record.display), { force: true });
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
