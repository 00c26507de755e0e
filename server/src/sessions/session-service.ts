import { randomInt, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { CatalogService } from '../catalog/catalog-service.js';
import { InputError, NotFoundError } from '../errors.js';
import { workloadName, type Endpoint, type Runner, type Workload, type WorkloadEvent } from '../runners/runner.js';
import type { SessionsTable } from '../db/schema.js';
import type { SessionRepository } from './session-repository.js';
import { isLive, toSession, type Session, type SessionStatus } from './session.js';

export interface SessionServiceOptions {
  sessions: SessionRepository;
  catalog: CatalogService;
  runner: Runner;
  /** Whether a user id an admin launches for exists; with sign-in off every id does. */
  userExists: (userId: string) => Promise<boolean>;
  logger: Logger;
  podReadyTimeoutMs: number;
  sessionTimeoutMs: number;
  now?: () => Date;
}

/** Callers get told when a session stops being live, so open streams can be closed. */
export type EndedListener = (session: Session) => void;

/**
 * Owns session state. Runners report what their workloads do; this service decides what
 * that means for the session and writes it down. Every status change goes through
 * SessionRepository.transition, so final states stay final whatever order events arrive in.
 */
export class SessionService {
  private readonly readyTimers = new Map<string, NodeJS.Timeout>();
  private readonly endedListeners: EndedListener[] = [];
  private readonly now: () => Date;
  private closed = false;

  constructor(private readonly o: SessionServiceOptions) {
    this.now = o.now ?? (() => new Date());
  }

  onEnded(listener: EndedListener): void {
    this.endedListeners.push(listener);
  }

  /**
   * Starts a session of `appId` for the caller, or for `onBehalfOf` when the caller is an
   * admin. Everything that can be checked is checked before anything is created.
   */
  async create(principal: Principal, input: { appId: string; onBehalfOf?: string }): Promise<Session> {
    const userId = principal.role === 'admin' && input.onBehalfOf ? input.onBehalfOf : principal.userId;
    if (userId !== principal.userId && !(await this.o.userExists(userId))) {
      throw new InputError(`user_id: no user with id "${userId}"`);
    }
    const app = await this.o.catalog.forLaunch(principal, input.appId);
    if (app.launch_type === 'url') {
      throw new InputError(`App "${app.id}" is a link (launch_type "url"), not something Sortie starts; open ${app.url} instead`);
    }
    this.o.runner.validate(app);

    const id = randomUUID();
    const at = this.now().toISOString();
    const row: SessionsTable = {
      id,
      user_id: userId,
      app_id: app.id,
      app_name: app.name,
      pod_name: workloadName(id),
      status: 'creating',
      reason: null,
      endpoint: null,
      created_at: at,
      updated_at: at,
      last_active_at: at,
      stream_secret: vncPassword(),
    };
    await this.o.sessions.insert(row);
    this.armReadyTimer(id, this.o.podReadyTimeoutMs);
    this.o.logger.info({ sessionId: id, appId: app.id, userId }, 'session created');

    // The API answers with `creating` at once; the workload's fate arrives as events.
    const spec = { sessionId: id, workloadName: row.pod_name, userId, app, streamSecret: row.stream_secret! };
    this.o.runner.launch(spec).catch((err: unknown) => {
      // A stop during launch (the user ended it already) also lands here; fail() then finds it final.
      this.fail(id, err instanceof Error ? err.message : String(err)).catch((failure: unknown) =>
        this.o.logger.error({ err: failure, sessionId: id }, 'could not record a failed launch'),
      );
    });
    return toSession(row);
  }

  async get(principal: Principal, id: string): Promise<Session> {
    return toSession(await this.visibleRow(principal, id));
  }

  /** The caller's sessions; an admin's list holds everyone's unless filtered. */
  async list(principal: Principal, filter: { userId?: string; status?: SessionStatus }): Promise<Session[]> {
    const userId = principal.role === 'admin' ? filter.userId : principal.userId;
    return (await this.o.sessions.list({ ...filter, userId })).map(toSession);
  }

  /** Where to dial a running session's stream, and the VNC password to answer it with. */
  async streamTarget(principal: Principal, id: string): Promise<{ session: Session; endpoint?: Endpoint; secret?: string }> {
    const row = await this.visibleRow(principal, id);
    if (row.status !== 'running' || !row.endpoint) return { session: toSession(row) };
    return { session: toSession(row), endpoint: parseEndpoint(row.endpoint), ...(row.stream_secret ? { secret: row.stream_secret } : {}) };
  }

  /** Ends a session on request. Ending one that already ended answers with it unchanged. */
  async end(principal: Principal, id: string): Promise<Session> {
    const row = await this.visibleRow(principal, id);
    return this.endById(id, row.user_id === principal.userId ? 'Ended by its user' : `Ended by ${principal.username}`);
  }

  private async endById(id: string, reason: string): Promise<Session> {
    const ended = await this.o.sessions.transition(id, 'terminated', { reason, endpoint: null });
    if (ended) {
      await this.afterEnd(ended);
      return toSession(ended);
    }
    const row = await this.o.sessions.get(id);
    if (!row) throw new NotFoundError(`No session with id "${id}"`);
    return toSession(row);
  }

  /** Someone else's session answers exactly like a missing one, so ids cannot be probed. */
  private async visibleRow(principal: Principal, id: string): Promise<SessionsTable> {
    const row = await this.o.sessions.get(id);
    if (!row || (principal.role !== 'admin' && row.user_id !== principal.userId)) throw new NotFoundError(`No session with id "${id}"`);
    return row;
  }

  /** Records that a viewer is (or was just) connected, which keeps SESSION_TIMEOUT away. */
  async touch(ids: string[]): Promise<void> {
    if (this.closed) return;
    await this.o.sessions.touch(ids, this.now().toISOString());
  }

  /** Ends live sessions idle for longer than SESSION_TIMEOUT. */
  async expireIdle(): Promise<number> {
    const cutoff = new Date(this.now().getTime() - this.o.sessionTimeoutMs).toISOString();
    const idle = await this.o.sessions.listLiveIdleSince(cutoff);
    const minutes = Math.round((this.o.sessionTimeoutMs / 60_000) * 100) / 100;
    for (const row of idle) {
      await this.endById(row.id, `Ended after ${minutes} minutes without a viewer (SESSION_TIMEOUT)`);
    }
    return idle.length;
  }

  /**
   * Makes the database and the runner agree after a start-up: workloads without a live
   * session are removed, live sessions without a workload are ended, and the rest are
   * adopted with their current state.
   */
  async reconcile(workloads: Workload[]): Promise<{ adopted: number; removed: number; ended: number }> {
    const live = new Map((await this.o.sessions.listLive()).map((row) => [row.id, row]));
    let adopted = 0;
    let removed = 0;
    let ended = 0;
    for (const workload of workloads) {
      const row = live.get(workload.sessionId);
      live.delete(workload.sessionId);
      if (!row) {
        await this.o.runner.stop(workload.sessionId);
        removed++;
      } else if (workload.state === 'ended') {
        await this.fail(row.id, workload.reason ?? 'The session stopped while Sortie was not running');
        ended++;
      } else if (workload.state === 'ready' && workload.endpoint) {
        await this.handle({ type: 'ready', sessionId: row.id, endpoint: workload.endpoint });
        adopted++;
      } else {
        const waited = this.now().getTime() - Date.parse(row.created_at);
        this.armReadyTimer(row.id, Math.max(0, this.o.podReadyTimeoutMs - waited));
        adopted++;
      }
    }
    for (const row of live.values()) {
      await this.endById(row.id, 'Its workload was gone when Sortie started again');
      ended++;
    }
    return { adopted, removed, ended };
  }

  /** Runner events land here. */
  async handle(event: WorkloadEvent): Promise<void> {
    if (this.closed) return; // Sortie is stopping; the next start reconciles what happened
    switch (event.type) {
      case 'ready': {
        this.clearReadyTimer(event.sessionId);
        const endpoint = `${event.endpoint.host}:${event.endpoint.port}`;
        const row = await this.o.sessions.transition(event.sessionId, 'running', { endpoint });
        if (row) {
          this.o.logger.info({ sessionId: row.id, ms: Date.now() - Date.parse(row.created_at) }, 'session running');
          return;
        }
        const current = await this.o.sessions.get(event.sessionId);
        if (current?.status === 'running') return; // already running (adopted again): nothing to do
        // Ready for a session that is gone or already final: nobody needs this workload.
        await this.o.runner.stop(event.sessionId);
        return;
      }
      case 'failed':
        await this.fail(event.sessionId, event.reason);
        return;
      case 'exited': {
        const row = await this.o.sessions.transition(event.sessionId, 'terminated', { reason: event.reason, endpoint: null });
        if (row) await this.afterEnd(row);
        else await this.o.runner.stop(event.sessionId);
        return;
      }
    }
  }

  /** Clears timers; sessions and workloads stay as they are for the next start to adopt. */
  close(): void {
    this.closed = true;
    for (const timer of this.readyTimers.values()) clearTimeout(timer);
    this.readyTimers.clear();
  }

  private async fail(id: string, reason: string): Promise<void> {
    if (this.closed) return;
    const row = await this.o.sessions.transition(id, 'failed', { reason, endpoint: null });
    if (row) {
      this.o.logger.warn({ sessionId: id, reason }, 'session failed');
      await this.afterEnd(row);
    } else {
      await this.o.runner.stop(id);
    }
  }

  private async afterEnd(row: SessionsTable): Promise<void> {
    this.clearReadyTimer(row.id);
    if (!isLive(row.status)) this.o.logger.info({ sessionId: row.id, status: row.status, reason: row.reason }, 'session ended');
    const session = toSession(row);
    for (const listener of this.endedListeners) listener(session);
    try {
      await this.o.runner.stop(row.id);
    } catch (err) {
      // The session is already final; a later reconcile removes what is left.
      this.o.logger.error({ err, sessionId: row.id }, 'could not remove the workload of an ended session');
    }
  }

  private armReadyTimer(id: string, ms: number): void {
    this.clearReadyTimer(id);
    const seconds = Math.round((this.o.podReadyTimeoutMs / 1000) * 10) / 10;
    const timer = setTimeout(() => {
      this.readyTimers.delete(id);
      void this.fail(id, `The session was not ready within ${seconds} seconds (POD_READY_TIMEOUT)`).catch((err: unknown) =>
        this.o.logger.error({ err, sessionId: id }, 'ready timeout handling failed'),
      );
    }, ms);
    timer.unref();
    this.readyTimers.set(id, timer);
  }

  private clearReadyTimer(id: string): void {
    const timer = this.readyTimers.get(id);
    if (timer) clearTimeout(timer);
    this.readyTimers.delete(id);
  }
}

/**
 * VNC passwords are at most 8 characters; letters and digits only, so no VNC server reads
 * one as a comment or option (x11vnc's password files treat "#" and "__" specially).
 */
function vncPassword(): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from({ length: 8 }, () => alphabet[randomInt(alphabet.length)]).join('');
}

function parseEndpoint(text: string): Endpoint {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at), port: Number(text.slice(at + 1)) };
}
