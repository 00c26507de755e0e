import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { Recording } from '../contract/recordings.js';
import { NotFoundError } from '../errors.js';
import type { Recorder } from './recorder.js';
import { toRecording, type RecordingPosition, type RecordingRepository } from './recording-repository.js';

export interface RecordingServiceOptions {
  repository: RecordingRepository;
  recorder: Recorder;
  logger: Logger;
  audit?: AuditRecorder;
  /** SORTIE_RECORDING_RETENTION_DAYS; 0 keeps recordings until an admin deletes them. */
  retentionDays: number;
  /** Whether this replica is the one that removes old recordings (the leading one). */
  leads?: () => Promise<boolean>;
  /** How often old recordings are looked for. */
  pruneIntervalMs?: number;
  /** Whether other replicas may record into the same folder: then the leader looks for segments whose writer died, every minute. */
  shared?: boolean;
  now?: () => Date;
}

const DAY_MS = 86_400_000;
/** Recordings removed per pass, so one pass over a backlog never holds a long query. */
const PRUNE_BATCH = 200;
const REPAIR_INTERVAL_MS = 60_000;

/** The admin area's recordings: list, content, delete, and retention. Callers are admins (the routes check). */
export class RecordingService {
  private timer: NodeJS.Timeout | undefined;
  private repairTimer: NodeJS.Timeout | undefined;
  private readonly now: () => Date;

  constructor(private readonly o: RecordingServiceOptions) {
    this.now = o.now ?? (() => new Date());
  }

  async page(limit: number, after?: RecordingPosition): Promise<{ recordings: Recording[]; next: RecordingPosition | null }> {
    const rows = await this.o.repository.page(limit + 1, after);
    const recordings = rows.slice(0, limit).map(toRecording);
    const last = recordings.at(-1);
    return { recordings, next: rows.length > limit && last ? { startedAt: last.started_at, id: last.id } : null };
  }

  async get(id: string): Promise<Recording> {
    const row = await this.o.repository.get(id);
    if (!row) throw new NotFoundError(`No recording with id "${id}"`);
    return toRecording(row);
  }

  /**
   * The recording file as it is on disk now (a recording still being written is read up to
   * where it is), streamed. `purpose` is what the audit log says the admin did with it.
   */
  async content(principal: Principal, id: string, purpose: 'play' | 'download'): Promise<{ recording: Recording; size: number; stream: Readable }> {
    const recording = await this.get(id);
    const file = this.o.recorder.fileOf(id);
    const size = await stat(file).then(
      (s) => s.size,
      () => undefined,
    );
    if (size === undefined) {
      throw new NotFoundError(`The file of recording "${id}" is not in this Sortie's data directory (deleted by hand, or written by another replica with its own disk)`);
    }
    // Up to the size seen now: bytes appended meanwhile would not match Content-Length.
    const stream = createReadStream(file, { start: 0, end: Math.max(0, size - 1) });
    this.o.audit?.record({
      action: purpose === 'play' ? 'recording.play' : 'recording.download',
      actor: principal,
      target: { type: 'recording', id, name: recording.app_name },
      details: { session_id: recording.session_id, user_id: recording.user_id },
    });
    return { recording, size, stream };
  }

  async delete(principal: Principal, id: string): Promise<void> {
    const recording = await this.get(id);
    await this.o.recorder.removeFile(recording);
    if (!(await this.o.repository.delete(id))) throw new NotFoundError(`No recording with id "${id}"`);
    this.o.audit?.record({
      action: 'recording.delete',
      actor: principal,
      target: { type: 'recording', id, name: recording.app_name },
      details: { session_id: recording.session_id, user_id: recording.user_id },
    });
  }

  /** Removes recordings (files and rows) that started longer ago than the retention; answers how many. */
  async prune(): Promise<number> {
    if (this.o.retentionDays <= 0) return 0;
    const cutoff = new Date(this.now().getTime() - this.o.retentionDays * DAY_MS).toISOString();
    let removed = 0;
    for (;;) {
      const rows = await this.o.repository.startedBefore(cutoff, PRUNE_BATCH);
      for (const row of rows) {
        await this.o.recorder.removeFile(row);
        await this.o.repository.delete(row.id);
        this.o.audit?.record({
          action: 'recording.delete',
          actor: 'system',
          target: { type: 'recording', id: row.id, name: row.app_name },
          details: { session_id: row.session_id, user_id: row.user_id, by: 'retention' },
        });
        removed++;
      }
      if (rows.length < PRUNE_BATCH) break;
    }
    if (removed > 0) this.o.logger.info({ removed, retentionDays: this.o.retentionDays }, 'removed old recordings (SORTIE_RECORDING_RETENTION_DAYS)');
    return removed;
  }

  /**
   * Prunes now, then every pruneIntervalMs; only on the replica that leads. Beside other
   * replicas it also closes, every minute, segments whose replica died while writing them and
   * whose session nobody streams again (a reconnect closes them itself).
   */
  async start(): Promise<void> {
    if (this.o.shared) this.repairTimer ??= setInterval(() => void this.safeRepair(), REPAIR_INTERVAL_MS).unref();
    await this.safePrune();
    if (this.o.retentionDays <= 0) return;
    this.timer ??= setInterval(() => void this.safePrune(), this.o.pruneIntervalMs ?? 3_600_000).unref();
  }

  close(): void {
    clearInterval(this.timer);
    clearInterval(this.repairTimer);
    this.timer = this.repairTimer = undefined;
  }

  private async safeRepair(): Promise<void> {
    try {
      if (this.o.leads && !(await this.o.leads())) return;
      await this.o.recorder.repair(true);
    } catch (err) {
      this.o.logger.error({ err }, 'closing recordings left open by a stopped replica failed');
    }
  }

  private async safePrune(): Promise<void> {
    try {
      if (this.o.leads && !(await this.o.leads())) return;
      await this.prune();
    } catch (err) {
      this.o.logger.error({ err }, 'removing old recordings failed');
    }
  }
}
