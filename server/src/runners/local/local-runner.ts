import { existsSync, rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import type { Logger } from 'pino';
import type { App } from '../../catalog/app.js';
import { InputError, NotFoundError } from '../../errors.js';
import type { HomeFiles, LaunchSpec, Runner, UserHomes, Workload, WorkloadEvent } from '../runner.js';
import { localCapacity } from './capacity.js';
import { LocalHomeFiles } from './home-files.js';
import { killSandbox, LocalSession, type SessionHost } from './local-session.js';
import { findFreeDisplay, findFreePorts } from './ports.js';
import { terminateGroups } from './process-group.js';
import { DEFAULT_SCREEN, vncSecretOf } from './recipes.js';
import { ensureSessionUser, type SessionUser } from './sandbox.js';
import {
  ensureStateDir,
  homeDirPath,
  isSafeSessionId,
  userHomeDirPath,
  readStateFile,
  readStateFiles,
  removeSessionFiles,
  type StateFileEntry,
} from './state-file.js';

export interface LocalRunnerOptions {
  /** One `<sessionId>.json` (processes, display, ports) and one log per process and session. */
  stateDir: string;
  logger: Logger;
  /** How often to probe a starting session's VNC endpoint. Default 100 ms. */
  readyPollMs?: number;
  /** The desktop's size and depth until a viewer resizes it. Default `1280x800x24`. */
  screen?: string;
  /** How often to check that adopted sessions' processes (not our children) still run. Default 1000 ms. */
  livenessPollMs?: number;
  /** When Sortie runs as root, apps run as this unprivileged user (created if missing). Default `sortie-session`. */
  sessionUser?: string;
  /** More host folders the sandbox must not show (the state dir and its parent always are hidden). */
  hiddenPaths?: readonly string[];
}

/**
 * Runs each session as host processes (see local-session.ts), and is the registry that
 * keeps them apart: which sessions exist, and which displays and ports they hold. Sessions
 * outlive Sortie; start() adopts them from their state files.
 *
 * State files are removed only by stop(), also for sessions that ended on their own or were
 * found dead at start(): the service calls stop() for every ended session, and until it does
 * the file keeps stop() and a repeated start() giving the same answer.
 */
export class LocalRunner implements Runner {
  readonly kind = 'local' as const;
  private readonly sessions = new Map<string, LocalSession>();
  private readonly displaysTaken = new Set<number>();
  private readonly portsTaken = new Set<number>();
  private readonly livenessPollMs: number;
  private readonly log: Logger;
  private readonly host: SessionHost;
  private onEvent: (event: WorkloadEvent) => void = () => {};
  private livenessTimer?: NodeJS.Timeout;
  private closed = false;
  private sessionUser?: SessionUser;
  /** The file API's way into a session's home, for sessions this runner holds. */
  readonly files: HomeFiles;

  constructor(private readonly options: LocalRunnerOptions) {
    this.livenessPollMs = options.livenessPollMs ?? 1000;
    this.log = options.logger;
    const runner = this;
    this.host = {
      stateDir: options.stateDir,
      screen: options.screen ?? DEFAULT_SCREEN,
      readyPollMs: options.readyPollMs ?? 100,
      hiddenPaths: options.hiddenPaths ?? [],
      log: options.logger,
      get closed() {
        return runner.closed;
      },
      emit: (event) => this.onEvent(event),
      claimPorts: async (count) => {
        const ports = await findFreePorts(count, this.portsTaken);
        for (const port of ports) this.portsTaken.add(port);
        return ports;
      },
      claimDisplay: (from) => {
        const display = findFreeDisplay(this.displaysTaken, from);
        this.displaysTaken.add(display);
        return display;
      },
      releaseDisplay: (display) => this.displaysTaken.delete(display),
      sessionUser: () => (this.sessionUser ??= ensureSessionUser(options.sessionUser ?? 'sortie-session')),
    };
    this.files = new LocalHomeFiles({
      homeOf: (sessionId) => {
        if (!this.sessions.has(sessionId) || !isSafeSessionId(sessionId)) throw new NotFoundError(`The local runner holds no session "${sessionId}"`);
        return this.sessions.get(sessionId)!.record.home ?? homeDirPath(options.stateDir, sessionId);
      },
      // What the app runs as: the session user when Sortie is root, else Sortie's own user (in a user namespace).
      owner: () => (process.getuid?.() === 0 ? this.host.sessionUser() : undefined),
    });
  }

  readonly homes: UserHomes = {
    delete: async (userId) => {
      const home = userHomeDirPath(this.options.stateDir, userId);
      if (!existsSync(home)) return false;
      // rm does not follow the links the app may have left in it.
      rmSync(home, { recursive: true, force: true, maxRetries: 3 });
      return true;
    },
  };

  validate(app: App): void {
    if (!app.command || app.command.length === 0) {
      throw new InputError(`App "${app.id}" has no "command", which the local runner needs to start it`);
    }
  }

  /** Sessions this machine can hold at once (memory, displays); see capacity.ts. */
  capacity(): number {
    return localCapacity(this.host.screen).sessions;
  }

  /**
   * Two starting desktops per core: 200 launches at once on 2 cores, all starting together,
   * kept /healthz near a second (p99 0.9-1.1 s); a handful at a time keeps it in milliseconds.
   */
  startLimit(): number {
    return Math.max(2, availableParallelism() * 2);
  }

  async start(onEvent: (event: WorkloadEvent) => void): Promise<Workload[]> {
    this.onEvent = onEvent;
    this.closed = false;
    ensureStateDir(this.options.stateDir);
    // Deliberately not unref'd: a watching runner keeps the process alive until close().
    this.livenessTimer ??= setInterval(() => {
      for (const session of this.sessions.values()) session.checkLiveness();
    }, this.livenessPollMs);
    // In parallel: cleaning up a dead session may wait seconds for a stubborn process.
    return Promise.all(
      readStateFiles(this.options.stateDir).map((entry) => {
        const known = this.sessions.get(entry.sessionId);
        return known ? known.workload() : this.adopt(entry);
      }),
    );
  }

  /** The sessions this runner holds: on SQLite one Sortie owns the state folder, so nobody else starts any. */
  async list(): Promise<Workload[]> {
    return [...this.sessions.values()].map((session) => session.workload());
  }

  async launch(spec: LaunchSpec): Promise<void> {
    this.validate(spec.app);
    const { sessionId } = spec;
    if (!isSafeSessionId(sessionId)) {
      throw new Error(`Session id "${sessionId}" cannot be used by the local runner: it must be a plain file name`);
    }
    if (this.sessions.has(sessionId)) throw new Error(`Session ${sessionId} is already running`);
    const secret = vncSecretOf(spec);
    const session = LocalSession.forLaunch(this.host, spec);
    this.sessions.set(sessionId, session);
    try {
      await session.launch(spec.app.command!, secret);
    } catch (err) {
      this.forget(session);
      throw err;
    }
  }

  async stop(sessionId: string): Promise<void> {
    const session = this.sessions.get(sessionId);
    if (!session) return this.stopUnknown(sessionId);
    await session.stop();
    this.forget(session);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.livenessTimer);
    this.livenessTimer = undefined;
    for (const session of this.sessions.values()) session.detach();
  }

  private async adopt(entry: StateFileEntry): Promise<Workload> {
    const { sessionId } = entry;
    if (!entry.record) {
      // Nothing to kill without pids; stop() removes the file.
      this.log.warn({ sessionId, problem: entry.problem }, 'unreadable local session state file');
      return { sessionId, state: 'ended', reason: `Its state file cannot be read: ${entry.problem}` };
    }
    const { record } = entry;
    const session = LocalSession.fromRecord(this.host, record);
    this.sessions.set(sessionId, session);
    this.displaysTaken.add(record.display);
    // vncPort is 0 (a socket) but for sessions of earlier versions.
    for (const port of [record.vncPort, record.wsPort]) if (port > 0) this.portsTaken.add(port);
    return session.adopt();
  }

  /** A session only on disk (unknown to this runner, e.g. its state file was unreadable). */
  private async stopUnknown(sessionId: string): Promise<void> {
    if (!isSafeSessionId(sessionId)) return;
    const entry = readStateFile(this.options.stateDir, sessionId);
    if (entry?.record) await terminateGroups(entry.record.processes);
    await killSandbox(this.host, sessionId);
    removeSessionFiles(this.options.stateDir, sessionId);
    if (entry) this.log.info({ sessionId }, 'local session stopped');
  }

  /** Gives back the session's display and ports; its files are gone already. */
  private forget(session: LocalSession): void {
    const { record } = session;
    this.displaysTaken.delete(record.display);
    this.portsTaken.delete(record.vncPort);
    this.portsTaken.delete(record.wsPort);
    if (this.sessions.get(record.sessionId) === session) this.sessions.delete(record.sessionId);
  }
}
