import { randomUUID } from 'node:crypto';
import type { Recording } from '../contract/recordings.js';
import type { Db } from '../db/database.js';
import type { RecordingsTable } from '../db/schema.js';

/** Where a page of recordings starts: just after (older than) this one. */
export interface RecordingPosition {
  startedAt: string;
  id: string;
}

/** What a recorded session's stream needs to know of it. */
export interface RecordedSession {
  id: string;
  recorded: boolean;
  userId: string;
  appId: string;
  appName: string;
}

/** The recordings table, and the `recorded` mark on sessions. */
export class RecordingRepository {
  constructor(private readonly db: Db) {}

  async session(sessionId: string): Promise<RecordedSession | undefined> {
    const row = await this.db.selectFrom('sessions').select(['id', 'recorded', 'user_id', 'app_id', 'app_name']).where('id', '=', sessionId).executeTakeFirst();
    return row && { id: row.id, recorded: Number(row.recorded) === 1, userId: row.user_id, appId: row.app_id, appName: row.app_name };
  }

  async markRecorded(sessionId: string): Promise<void> {
    await this.db.updateTable('sessions').set({ recorded: 1 }).where('id', '=', sessionId).execute();
  }

  /**
   * Opens a new segment of the session's recording (the recording is created with the first),
   * or answers undefined while another segment of it is open: one writer per file, also for
   * replicas sharing the recordings folder. The session id is unique, so two replicas opening
   * the first segment at once share one row, and only one of them gets the segment.
   */
  async beginSegment(session: RecordedSession, now: string): Promise<RecordingsTable | undefined> {
    await this.db
      .insertInto('recordings')
      .values({
        id: randomUUID(),
        session_id: session.id,
        user_id: session.userId,
        app_id: session.appId,
        app_name: session.appName,
        started_at: now,
        ended_at: null,
        duration_ms: 0,
        size_bytes: 0,
        segments: 0,
        incomplete: null,
      })
      .onConflict((oc) => oc.column('session_id').doNothing())
      .execute();
    const taken = await this.db
      .updateTable('recordings')
      .set((eb) => ({ segments: eb('segments', '+', 1), ended_at: null }))
      .where('session_id', '=', session.id)
      // Closed, or just created and not yet taken.
      .where((eb) => eb.or([eb('ended_at', 'is not', null), eb('segments', '=', 0)]))
      .executeTakeFirst();
    if (Number(taken.numUpdatedRows) === 0) return undefined;
    return this.db.selectFrom('recordings').selectAll().where('session_id', '=', session.id).executeTakeFirstOrThrow();
  }

  /** The session's recording while one of its segments is open. */
  async openOf(sessionId: string): Promise<RecordingsTable | undefined> {
    return this.db.selectFrom('recordings').selectAll().where('session_id', '=', sessionId).where('ended_at', 'is', null).executeTakeFirst();
  }

  /** A segment ended: the recording's length and size so far, and why it is incomplete if it is. */
  async endSegment(id: string, end: { endedAt: string; durationMs: number; sizeBytes: number; incomplete?: string }): Promise<void> {
    await this.db
      .updateTable('recordings')
      .set({
        ended_at: end.endedAt,
        duration_ms: end.durationMs,
        size_bytes: end.sizeBytes,
        ...(end.incomplete ? { incomplete: end.incomplete } : {}),
      })
      .where('id', '=', id)
      .execute();
  }

  /**
   * Closes the open segment number `segments` of a recording whose writer is gone; answers
   * whether it did (not when another replica closed it, or opened the next one, first).
   */
  async closeSegment(id: string, segments: number, end: { endedAt: string; durationMs: number; sizeBytes: number; incomplete: string }): Promise<boolean> {
    const result = await this.db
      .updateTable('recordings')
      .set({ ended_at: end.endedAt, duration_ms: end.durationMs, size_bytes: end.sizeBytes, incomplete: end.incomplete })
      .where('id', '=', id)
      .where('ended_at', 'is', null)
      .where('segments', '=', segments)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) > 0;
  }

  async get(id: string): Promise<RecordingsTable | undefined> {
    return this.db.selectFrom('recordings').selectAll().where('id', '=', id).executeTakeFirst();
  }

  /** Up to `limit` recordings older than `after`, newest first. */
  async page(limit: number, after?: RecordingPosition): Promise<RecordingsTable[]> {
    let query = this.db.selectFrom('recordings').selectAll();
    if (after) {
      query = query.where((eb) =>
        eb.or([eb('started_at', '<', after.startedAt), eb.and([eb('started_at', '=', after.startedAt), eb('id', '<', after.id)])]),
      );
    }
    return query.orderBy('started_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
  }

  /** Recordings with a segment open when Sortie stopped (or still being written elsewhere). */
  async open(): Promise<RecordingsTable[]> {
    return this.db.selectFrom('recordings').selectAll().where('ended_at', 'is', null).execute();
  }

  /** Finished recordings that started before `cutoff`. */
  async startedBefore(cutoff: string, limit: number): Promise<RecordingsTable[]> {
    return this.db.selectFrom('recordings').selectAll().where('started_at', '<', cutoff).where('ended_at', 'is not', null).limit(limit).execute();
  }

  async delete(id: string): Promise<boolean> {
    const result = await this.db.deleteFrom('recordings').where('id', '=', id).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }
}

export function toRecording(row: RecordingsTable): Recording {
  return {
    id: row.id,
    session_id: row.session_id,
    user_id: row.user_id,
    app_id: row.app_id,
    app_name: row.app_name,
    started_at: row.started_at,
    ended_at: row.ended_at,
    duration_ms: Number(row.duration_ms),
    size_bytes: Number(row.size_bytes),
    segments: Number(row.segments),
    incomplete: row.incomplete,
  };
}
