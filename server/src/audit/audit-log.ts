import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.js';
import type { AuditAction, AuditEvent } from '../contract/audit.js';
import type { IntervalClock } from '../sessions/idle-sweep.js';
import type { AuditFilter, AuditPosition, AuditRepository, AuditRow } from './audit-repository.js';

/** Who acted: a signed-in principal (its `address` says from where), Sortie itself, or a name without an account. */
export type AuditActor = Principal | 'system' | { unknownName: string };

/** One thing that happened, as the places it happens describe it. */
export interface AuditRecord {
  action: AuditAction;
  actor: AuditActor;
  target?: { type: 'session' | 'app' | 'user' | 'catalog' | 'recording'; id: string; name?: string };
  /** Where the request came from, when the actor carries none (a sign-in has no principal yet). */
  address?: string;
  details?: Record<string, unknown>;
}

/** What the places that act need: one call, which never throws and never waits. */
export interface AuditRecorder {
  record(event: AuditRecord): void;
}

/** For services built without an audit log (unit tests). */
export const NO_AUDIT: AuditRecorder = { record: () => {} };

export interface AuditLogOptions {
  repository: AuditRepository;
  logger: Logger;
  /** SORTIE_AUDIT_RETENTION_DAYS; 0 keeps events forever. */
  retentionDays: number;
  /** How often old events are pruned. */
  pruneIntervalMs?: number;
  /** Whether this replica is the one that prunes (one replica on SQLite; the leading one on PostgreSQL). Default: it is. */
  leads?: () => Promise<boolean>;
  now?: () => Date;
  clock?: IntervalClock;
}

/** Writes waiting at once; beyond this a burst's events are dropped (and the drop logged), never queued without end. */
const MAX_PENDING_WRITES = 1000;
/** A longer name, id or address than any real one: input from a failed sign-in is cut here. */
const MAX_TEXT = 200;
/** Details are a few fields; an object that grows beyond this is cut down to a note saying so. */
const MAX_DETAILS_BYTES = 2048;
const DAY_MS = 86_400_000;

const realClock: IntervalClock = {
  setInterval: (callback, ms) => setInterval(callback, ms).unref(),
  clearInterval: (handle) => clearInterval(handle as NodeJS.Timeout),
};

/**
 * The audit log: who did what to what, when and from where, kept in the database for
 * SORTIE_AUDIT_RETENTION_DAYS. Recording is fire-and-forget: the action never waits for
 * the write, and a write that fails is logged, not thrown, so auditing cannot break or
 * slow what it records.
 */
export class AuditLog implements AuditRecorder {
  private readonly pending = new Set<Promise<void>>();
  private readonly now: () => Date;
  private readonly clock: IntervalClock;
  private handle: unknown;
  private dropped = 0;
  private sequence = 0;

  constructor(private readonly o: AuditLogOptions) {
    this.now = o.now ?? (() => new Date());
    this.clock = o.clock ?? realClock;
  }

  record(event: AuditRecord): void {
    let row: AuditRow;
    try {
      row = this.toRow(event);
    } catch (err) {
      this.o.logger.error({ err, action: event.action }, 'could not record an audit event');
      return;
    }
    if (this.pending.size >= MAX_PENDING_WRITES) {
      if (this.dropped++ === 0) this.o.logger.error({ action: row.action }, 'the audit log cannot keep up with writes; dropping events until it does');
      return;
    }
    if (this.dropped > 0) {
      this.o.logger.warn({ dropped: this.dropped }, 'the audit log is keeping up again; events were dropped meanwhile');
      this.dropped = 0;
    }
    const write = this.o.repository
      .insert(row)
      .catch((err: unknown) => this.o.logger.error({ err, event: row }, 'could not write an audit event'))
      .finally(() => this.pending.delete(write));
    this.pending.add(write);
  }

  /** Resolves once every event recorded so far is written (or has failed, which is logged). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  /** A page of events, newest first, older than `after`; `next` is where the following page starts, null on the last. */
  async page(filter: AuditFilter, limit: number, after?: AuditPosition): Promise<{ events: AuditEvent[]; next: AuditPosition | null }> {
    const rows = await this.o.repository.page(filter, limit + 1, after);
    const events = rows.slice(0, limit).map(toEvent);
    const last = events.at(-1);
    return { events, next: rows.length > limit && last ? { at: last.at, id: last.id } : null };
  }

  /** Every event the filter selects, newest first, read a page at a time (for the CSV export). */
  async *all(filter: AuditFilter, pageSize = 500): AsyncGenerator<AuditEvent> {
    let after: AuditPosition | undefined;
    for (;;) {
      const rows = await this.o.repository.page(filter, pageSize, after);
      for (const row of rows) yield toEvent(row);
      const last = rows.at(-1);
      if (rows.length < pageSize || !last) return;
      after = { at: last.at, id: last.id };
    }
  }

  /** Removes events older than the retention; answers how many (0 when kept forever). */
  async prune(): Promise<number> {
    if (this.o.retentionDays <= 0) return 0;
    const cutoff = new Date(this.now().getTime() - this.o.retentionDays * DAY_MS).toISOString();
    const removed = await this.o.repository.deleteBefore(cutoff);
    if (removed > 0) this.o.logger.info({ removed, retentionDays: this.o.retentionDays }, 'pruned old audit events (SORTIE_AUDIT_RETENTION_DAYS)');
    return removed;
  }

  /** Prunes now (start-up), then every pruneIntervalMs, like the idle sweep. */
  async start(): Promise<void> {
    await this.safePrune();
    if (this.o.retentionDays <= 0) return;
    this.handle ??= this.clock.setInterval(() => void this.safePrune(), this.o.pruneIntervalMs ?? 3_600_000);
  }

  /** Stops pruning and waits for the writes under way. */
  async close(): Promise<void> {
    if (this.handle !== undefined) this.clock.clearInterval(this.handle);
    this.handle = undefined;
    await this.flush();
  }

  private async safePrune(): Promise<void> {
    try {
      // Once across replicas: only the leading one prunes.
      if (this.o.leads && !(await this.o.leads())) return;
      await this.prune();
    } catch (err) {
      this.o.logger.error({ err }, 'pruning the audit log failed');
    }
  }

  private toRow(event: AuditRecord): AuditRow {
    const at = this.now();
    const actor = event.actor;
    const who =
      actor === 'system'
        ? { actor_type: 'system' as const, actor_id: null, actor_name: 'system' }
        : 'unknownName' in actor
          ? { actor_type: 'unknown' as const, actor_id: null, actor_name: cut(actor.unknownName) }
          : { actor_type: 'user' as const, actor_id: cut(actor.userId), actor_name: cut(actor.username) };
    const address = event.address ?? (typeof actor === 'object' && 'userId' in actor ? actor.address : undefined);
    return {
      id: this.nextId(at),
      at: at.toISOString(),
      ...who,
      action: event.action,
      target_type: event.target?.type ?? null,
      target_id: event.target ? cut(event.target.id) : null,
      target_name: event.target?.name !== undefined ? cut(event.target.name) : null,
      address: address ? cut(address) : null,
      details: detailsText(event.details),
    };
  }

  /** The time, a counter and randomness: ids sort as events were recorded, also within one millisecond. */
  private nextId(at: Date): string {
    this.sequence = (this.sequence + 1) % 0x1000000;
    return at.getTime().toString(16).padStart(12, '0') + this.sequence.toString(16).padStart(6, '0') + randomBytes(7).toString('hex');
  }
}

function cut(text: string): string {
  return text.length > MAX_TEXT ? `${text.slice(0, MAX_TEXT)}…` : text;
}

function detailsText(details: Record<string, unknown> | undefined): string {
  const text = JSON.stringify(details ?? {});
  return Buffer.byteLength(text) <= MAX_DETAILS_BYTES ? text : JSON.stringify({ truncated: true, bytes: Buffer.byteLength(text) });
}

function toEvent(row: AuditRow): AuditEvent {
  let details: Record<string, unknown>;
  try {
    details = JSON.parse(row.details) as Record<string, unknown>;
  } catch {
    details = {};
  }
  return { ...row, action: row.action as AuditAction, details };
}
