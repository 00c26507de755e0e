import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import type { AuditRecorder } from '../audit/audit-log.js';
import type { Principal } from '../auth/principal.js';
import type { RecordingsTable } from '../db/schema.js';
import { measure, prepareForAppend } from './recording-file.js';
import { encodeHeader, KIND_SEGMENT, KIND_SERVER, RECORD_HEADER } from './recording-format.js';
import type { RecordedSession, RecordingRepository } from './recording-repository.js';

/** What the relay hands a stream's bytes to: never blocks, never throws. */
export interface StreamTap {
  /** Bytes websockify sent the viewer; copied, so the caller may reuse its buffer. */
  data(chunk: Buffer): void;
  /** The stream is gone. */
  end(): void;
}

export interface RecorderOptions {
  /** `<data dir>/recordings`: created 0700, its files 0600. */
  dir: string;
  repository: RecordingRepository;
  logger: Logger;
  audit?: AuditRecorder;
  /**
   * Bytes of one stream that may wait for the disk. Beyond it the segment stops (the viewer
   * goes on, unrecorded) and the recording is marked incomplete: the live stream never waits.
   */
  maxBufferedBytes?: number;
  now?: () => number;
}

export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const DISK_BEHIND = 'the disk could not keep up with the stream, so recording stopped until the viewer reconnected';
const WRITE_FAILED = 'writing the recording failed';
export const STOPPED_WHILE_RECORDING = 'Sortie stopped while recording; the recording ends where it stopped';

/**
 * Records sessions from the stream the relay already carries: each recorded session's
 * owner's stream (the first of them when the owner has several open) is tapped on its way
 * to the viewer and appended to `<dir>/<recording id>.rec`. A reconnect opens a new segment
 * of the same recording. The relay never waits for any of it (see StreamTap).
 */
export class Recorder {
  /** The session ids whose stream is being recorded, or decided on, right now. */
  private readonly taps = new Map<string, SegmentTap>();
  private readonly now: () => number;

  constructor(private readonly o: RecorderOptions) {
    this.now = o.now ?? Date.now;
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
  }

  get dir(): string {
    return this.o.dir;
  }

  fileOf(recordingId: string): string {
    // Ids are Sortie's own UUIDs; anything else must never become a path.
    if (!/^[A-Za-z0-9-]{1,64}$/.test(recordingId)) throw new Error(`not a recording id: ${JSON.stringify(recordingId)}`);
    return path.join(this.o.dir, `${recordingId}.rec`);
  }

  /**
   * A stream of `sessionId` is starting (its ServerInit is next): a tap when it may be the
   * one recorded. Whether the session is recorded and `viewer` is its owner is looked up
   * meanwhile; bytes that arrive before the answer wait in the tap (bounded as any).
   */
  open(sessionId: string, viewer: Principal | undefined): StreamTap | undefined {
    if (!viewer || this.taps.has(sessionId)) return undefined;
    const tap = new SegmentTap(this, this.o, this.now, () => {
      if (this.taps.get(sessionId) === tap) this.taps.delete(sessionId);
    });
    this.taps.set(sessionId, tap);
    tap.beginning = tap.begin(sessionId, viewer);
    return tap;
  }

  /** Ends every segment being written (Sortie is stopping) and waits for their files and rows. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.taps.values()].map(async (tap) => {
        // A segment still being set up is written out first: its first bytes wait in it.
        tap.end();
        await tap.beginning;
        await tap.finish();
      }),
    );
  }

  /**
   * At start-up: recordings left open by a Sortie that stopped without ending them get the
   * length and size their file holds, and are marked incomplete. A recording whose file is
   * not here (another replica's disk) is left alone.
   */
  async repair(): Promise<number> {
    let repaired = 0;
    for (const row of await this.o.repository.open()) {
      if (this.taps.size > 0 && [...this.taps.values()].some((t) => t.recordingId === row.id)) continue;
      const extent = await measure(this.fileOf(row.id)).catch(() => undefined);
      if (!extent) continue;
      await this.o.repository.endSegment(row.id, {
        endedAt: new Date(Date.parse(row.started_at) + extent.lastAt).toISOString(),
        durationMs: extent.lastAt,
        sizeBytes: extent.validLength,
        incomplete: STOPPED_WHILE_RECORDING,
      });
      repaired++;
    }
    if (repaired > 0) this.o.logger.warn({ repaired }, 'recordings left open by a previous run were closed where their files end');
    return repaired;
  }

  /** Removes a recording's file; a file already gone is fine. */
  async removeFile(row: Pick<RecordingsTable, 'id'>): Promise<void> {
    await rm(this.fileOf(row.id), { force: true });
  }
}

/** One viewer connection being recorded: a segment of its session's recording. */
class SegmentTap implements StreamTap {
  recordingId: string | undefined;
  /** Settles once the tap knows whether it records, and has its file ready if so. */
  beginning: Promise<void> = Promise.resolve();
  private startedAtMs = 0;
  /** Records captured before the file was ready, with their absolute times. */
  private early: { time: number; chunk: Buffer }[] | undefined = [];
  private earlyBytes = 0;
  private out: WriteStream | undefined;
  private size = 0;
  private lastAt = 0;
  private state: 'deciding' | 'recording' | 'dropped' | 'stopped' | 'finished' = 'deciding';
  private ended = false;
  private incomplete: string | undefined;
  private finishing: Promise<void> | undefined;
  private readonly openedAt: number;
  private session: RecordedSession | undefined;

  constructor(
    private readonly recorder: Recorder,
    private readonly o: RecorderOptions,
    private readonly now: () => number,
    private readonly release: () => void,
  ) {
    this.openedAt = now();
  }

  private get limit(): number {
    return this.o.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  }

  async begin(sessionId: string, viewer: Principal): Promise<void> {
    try {
      const session = await this.o.repository.session(sessionId);
      // One stream per session is recorded: its owner's. An admin or anyone else watching is not.
      if (!session?.recorded || session.userId !== viewer.userId) return this.drop();
      // A stream that already ended is still recorded: its bytes wait in `early`.
      this.session = session;
      const row = await this.o.repository.beginSegment(session, new Date(this.openedAt).toISOString());
      this.recordingId = row.id;
      this.startedAtMs = Date.parse(row.started_at);
      const file = this.recorder.fileOf(row.id);
      const extent = await prepareForAppend(file);
      await chmod(file, 0o600);
      this.size = extent.validLength;
      this.lastAt = extent.lastAt;
      // Stopped or ended meanwhile: the segment ends here, with what reached the file.
      if (this.state !== 'deciding') return await this.finish();
      this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
      this.out.on('error', (err) => {
        this.o.logger.error({ err, recordingId: row.id }, 'could not write a recording');
        this.stop(`${WRITE_FAILED}: ${err.message}`);
      });
      this.state = 'recording';
      this.o.audit?.record({
        action: 'recording.start',
        actor: 'system',
        target: { type: 'recording', id: row.id, name: session.appName },
        details: { session_id: session.id, user_id: session.userId, segment: row.segments },
      });
      this.append(KIND_SEGMENT, this.openedAt, undefined);
      for (const { time, chunk } of this.early ?? []) this.append(KIND_SERVER, time, chunk);
      this.early = undefined;
      this.earlyBytes = 0;
      if (this.ended) await this.finish();
    } catch (err) {
      this.o.logger.error({ err, sessionId }, 'could not start recording a stream');
      if (this.recordingId) this.stop(`${WRITE_FAILED}: ${(err as Error).message}`);
      else this.drop();
    }
  }

  data(chunk: Buffer): void {
    if (this.state === 'deciding') {
      this.earlyBytes += chunk.length;
      if (this.earlyBytes > this.limit) return this.stop(DISK_BEHIND);
      this.early!.push({ time: this.now(), chunk: Buffer.from(chunk) });
      return;
    }
    if (this.state !== 'recording') return;
    this.append(KIND_SERVER, this.now(), chunk);
    if (this.out!.writableLength > this.limit) this.stop(DISK_BEHIND);
  }

  end(): void {
    this.ended = true;
    if (this.state !== 'deciding') void this.finish();
  }

  /** Header and a copy of the bytes in one buffer: the stream keeps it, the caller's is reused. */
  private append(kind: number, time: number, chunk: Buffer | undefined): void {
    const length = chunk?.length ?? 0;
    const record = Buffer.allocUnsafe(RECORD_HEADER + length);
    const at = Math.max(0, time - this.startedAtMs);
    encodeHeader(kind, at, length, record, 0);
    chunk?.copy(record, RECORD_HEADER);
    this.size += record.length;
    this.lastAt = Math.max(this.lastAt, at);
    this.out!.write(record);
  }

  private drop(): void {
    if (this.state === 'deciding') this.state = 'dropped';
    this.early = undefined;
    this.release();
  }

  /** Stops recording this stream (the stream itself goes on) and marks the recording incomplete. */
  private stop(reason: string): void {
    if (this.state === 'stopped' || this.state === 'finished' || this.state === 'dropped') return;
    this.incomplete = reason;
    this.o.logger.warn({ recordingId: this.recordingId, reason }, 'recording stopped early');
    if (this.state === 'deciding' && !this.recordingId) {
      this.state = 'stopped';
      this.early = undefined;
      this.release();
      return;
    }
    this.state = 'stopped';
    void this.finish();
  }

  /** Closes the file and writes the segment's end to the recording's row. */
  finish(): Promise<void> {
    this.finishing ??= (async () => {
      if (this.state === 'deciding') this.state = 'stopped';
      const out = this.out;
      if (out) {
        // What is queued still goes to disk, unless the disk is what failed.
        await new Promise<void>((resolve) => {
          if (out.destroyed) return resolve();
          out.end(() => resolve());
          out.once('error', () => resolve());
        });
      }
      const id = this.recordingId;
      this.state = 'finished';
      // The session's next stream is recorded only once this segment is on disk and in its row:
      // two segments never write one file at once, and Sortie stopping waits for both.
      if (!id || !this.session) return this.release();
      // On disk is what counts: a stopped write may have left less than was queued.
      const extent = await measure(this.recorder.fileOf(id)).catch(() => ({ validLength: this.size, lastAt: this.lastAt }));
      await this.o.repository
        .endSegment(id, { endedAt: new Date(this.now()).toISOString(), durationMs: extent.lastAt, sizeBytes: extent.validLength, ...(this.incomplete ? { incomplete: this.incomplete } : {}) })
        .catch((err: unknown) => this.o.logger.error({ err, recordingId: id }, 'could not record the end of a recording segment'));
      this.o.audit?.record({
        action: 'recording.stop',
        actor: 'system',
        target: { type: 'recording', id, name: this.session.appName },
        details: { session_id: this.session.id, duration_ms: extent.lastAt, size_bytes: extent.validLength, ...(this.incomplete ? { incomplete: this.incomplete } : {}) },
      });
      this.release();
    })();
    return this.finishing;
  }
}
