import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { chmod, rm, stat, utimes } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
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
  /**
   * An open segment whose file has been quiet this long has no writer left (its Sortie
   * died): another replica's stream of the session closes it as incomplete and records on.
   */
  staleAfterMs?: number;
  now?: () => number;
}

/** How often a segment being written touches its file, so that a quiet desktop does not look dead. */
const HEARTBEAT_MS = 5_000;
export const DEFAULT_STALE_AFTER_MS = 3 * HEARTBEAT_MS;
/** How often a stream waiting for another segment of its session to close looks again. */
const HANDOVER_POLL_MS = 250;

export const DEFAULT_MAX_BUFFERED_BYTES = 8 * 1024 * 1024;
const DISK_BEHIND = 'the disk could not keep up with the stream, so recording stopped until the viewer reconnected';
const NOT_READY_IN_TIME = 'the stream sent more than the recorder holds before its file was ready, so this connection was not recorded';
const WRITE_FAILED = 'writing the recording failed';
export const STOPPED_WHILE_RECORDING = 'Sortie stopped while recording; the recording ends where it stopped';

/**
 * Records sessions from the stream the relay already carries: each recorded session's
 * owner's stream (the first of them when the owner has several open) is tapped on its way
 * to the viewer and appended to `<dir>/<recording id>.rec`. A reconnect opens a new segment
 * of the same recording. The relay never waits for any of it (see StreamTap).
 *
 * Replicas share the folder (a shared volume) and the recordings table, and one file has one
 * writer: a segment is opened only while no other is (RecordingRepository.beginSegment). A
 * stream that finds another segment open waits for it, its bytes held as before any answer:
 * a replica handing over (draining) closes its segment within moments, and one that died
 * leaves its file quiet, which the writer's heartbeat never does; after `staleAfterMs` that
 * segment is closed as incomplete and the waiting stream records on.
 */
export class Recorder {
  /** The session ids whose stream is being recorded, or decided on, right now. */
  private readonly taps = new Map<string, SegmentTap>();
  private readonly now: () => number;
  private readonly heartbeat: NodeJS.Timeout;
  /** Open recordings whose file was not in the folder at the last repair: closed if still missing at the next. */
  private missingAtLastRepair = new Set<string>();
  readonly staleAfterMs: number;

  constructor(private readonly o: RecorderOptions) {
    this.now = o.now ?? Date.now;
    this.staleAfterMs = o.staleAfterMs ?? DEFAULT_STALE_AFTER_MS;
    mkdirSync(o.dir, { recursive: true, mode: 0o700 });
    this.heartbeat = setInterval(() => void this.touchOpenFiles(), Math.min(HEARTBEAT_MS, this.staleAfterMs / 3)).unref();
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
    clearInterval(this.heartbeat);
    await Promise.all(
      [...this.taps.values()].map(async (tap) => {
        // A segment still being set up is written out first: its first bytes wait in it.
        tap.end();
        await tap.beginning;
        await tap.finish();
      }),
    );
  }

  /** Whether this Sortie writes the recording now. */
  writes(recordingId: string): boolean {
    return [...this.taps.values()].some((t) => t.recordingId === recordingId);
  }

  private async touchOpenFiles(): Promise<void> {
    const now = new Date();
    const ids = [...this.taps.values()].map((t) => t.writingId()).filter((id) => id !== undefined);
    await Promise.all(ids.map((id) => utimes(this.fileOf(id), now, now).catch(() => {})));
  }

  /**
   * Closes an open segment, as incomplete, when nobody writes it any more: its file has been
   * quiet for staleAfterMs (or `always`: a lone Sortie at start-up, whose own earlier run is
   * the only writer there was). Answers whether it closed it. A segment another replica
   * opened meanwhile is left alone (the close names the segment it judged).
   */
  async closeIfAbandoned(row: RecordingsTable, always = false): Promise<boolean> {
    if (this.writes(row.id)) return false;
    const file = this.fileOf(row.id);
    const quiet = await stat(file).then((s) => Date.now() - s.mtimeMs, () => undefined);
    if (quiet === undefined || (!always && quiet < this.staleAfterMs)) return false;
    // Touched first: other replicas judging the same file now see a writer and wait.
    await utimes(file, new Date(), new Date()).catch(() => {});
    const extent = await measure(file).catch(() => undefined);
    if (!extent) return false;
    return this.o.repository.closeSegment(row.id, Number(row.segments), {
      endedAt: new Date(Date.parse(row.started_at) + extent.lastAt).toISOString(),
      durationMs: extent.lastAt,
      sizeBytes: extent.validLength,
      incomplete: STOPPED_WHILE_RECORDING,
    });
  }

  /**
   * Recordings left open by a Sortie that stopped without ending them get the length and size
   * their file holds, and are marked incomplete. `shared`: other replicas may be writing, so
   * only segments whose files went quiet are closed; one whose file is not in this folder is
   * closed if it is still missing at the next repair (its writer died before writing it).
   * Alone (SQLite), every open segment is its own earlier run's and is closed now.
   */
  async repair(shared: boolean): Promise<number> {
    let repaired = 0;
    const missing = new Set<string>();
    for (const row of await this.o.repository.open()) {
      if (this.writes(row.id)) continue;
      if (await this.closeIfAbandoned(row, !shared)) {
        repaired++;
        continue;
      }
      if (!shared || (await stat(this.fileOf(row.id)).then(() => true, () => false))) continue;
      if (!this.missingAtLastRepair.has(row.id)) {
        missing.add(row.id);
        continue;
      }
      const closed = await this.o.repository.closeSegment(row.id, Number(row.segments), {
        endedAt: new Date(Date.parse(row.started_at) + Number(row.duration_ms)).toISOString(),
        durationMs: Number(row.duration_ms),
        sizeBytes: Number(row.size_bytes),
        incomplete: STOPPED_WHILE_RECORDING,
      });
      if (closed) repaired++;
    }
    this.missingAtLastRepair = missing;
    if (repaired > 0) this.o.logger.warn({ repaired }, 'recordings left open by a Sortie that stopped were closed where their files end');
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
  /** Until begin() is done: it, not end() or stop(), ends what it sets up. */
  private settingUp = true;
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
      await this.setUp(sessionId, viewer);
    } finally {
      this.settingUp = false;
    }
  }

  private async setUp(sessionId: string, viewer: Principal): Promise<void> {
    try {
      const session = await this.o.repository.session(sessionId);
      // One stream per session is recorded: its owner's. An admin or anyone else watching is not.
      if (!session?.recorded || session.userId !== viewer.userId) return this.drop();
      // A stream that already ended is still recorded: its bytes wait in `early`.
      this.session = session;
      const row = await this.claim(session);
      if (!row) return this.drop();
      this.recordingId = row.id;
      this.startedAtMs = Date.parse(row.started_at);
      const file = this.recorder.fileOf(row.id);
      const extent = await prepareForAppend(file);
      await chmod(file, 0o600);
      this.size = extent.validLength;
      this.lastAt = extent.lastAt;
      this.out = createWriteStream(file, { flags: 'a', mode: 0o600 });
      this.out.on('error', (err) => {
        this.o.logger.error({ err, recordingId: row.id }, 'could not write a recording');
        this.stop(`${WRITE_FAILED}: ${err.message}`);
      });
      this.o.audit?.record({
        action: 'recording.start',
        actor: 'system',
        target: { type: 'recording', id: row.id, name: session.appName },
        details: { session_id: session.id, user_id: session.userId, segment: row.segments },
      });
      // The row counts the segment, so the file has it too, also when the stream stopped
      // being recorded meanwhile: then the segment ends here, empty, and says why.
      this.append(KIND_SEGMENT, this.openedAt, undefined);
      if (this.state !== 'deciding') return await this.finish();
      this.state = 'recording';
      for (const { time, chunk } of this.early ?? []) this.append(KIND_SERVER, time, chunk);
      this.early = undefined;
      this.earlyBytes = 0;
      if (this.ended) await this.finish();
    } catch (err) {
      this.o.logger.error({ err, sessionId }, 'could not start recording a stream');
      if (!this.recordingId) return this.drop();
      this.incomplete ??= `${WRITE_FAILED}: ${(err as Error).message}`;
      this.state = 'stopped';
      await this.finish();
    }
  }

  /**
   * The recording with a segment opened for this stream, or undefined when another stream of
   * the session goes on being recorded (the owner's other tab, through another replica).
   * While waiting, the stream's bytes gather in `early`, bounded as ever.
   */
  private async claim(session: RecordedSession): Promise<RecordingsTable | undefined> {
    const giveUpAt = Date.now() + this.recorder.staleAfterMs + HEARTBEAT_MS;
    for (;;) {
      const row = await this.o.repository.beginSegment(session, new Date(this.openedAt).toISOString());
      if (row) return row;
      if (this.state !== 'deciding') return undefined;
      const open = await this.o.repository.openOf(session.id);
      if (open && (await this.recorder.closeIfAbandoned(open))) continue;
      if (Date.now() > giveUpAt) return undefined;
      await sleep(HANDOVER_POLL_MS);
    }
  }

  /** The recording this tap is appending to, if it is. */
  writingId(): string | undefined {
    return this.state === 'recording' ? this.recordingId : undefined;
  }

  data(chunk: Buffer): void {
    if (this.state === 'deciding') {
      this.earlyBytes += chunk.length;
      if (this.earlyBytes > this.limit) return this.stop(NOT_READY_IN_TIME);
      this.early!.push({ time: this.now(), chunk: Buffer.from(chunk) });
      return;
    }
    if (this.state !== 'recording') return;
    this.append(KIND_SERVER, this.now(), chunk);
    if (this.out!.writableLength > this.limit) this.stop(DISK_BEHIND);
  }

  end(): void {
    this.ended = true;
    if (!this.settingUp) void this.finish();
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
    if (this.settingUp) {
      // begin() is still under way and ends what it set up (a segment it took ends empty,
      // saying why); releasing here would let Sortie stop, or the next stream start, before it.
      this.state = 'stopped';
      this.early = undefined;
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
      // An empty record at the stream's end: the recording lasts until the viewer left, not
      // only until the desktop last drew (a quiet stretch at the end is part of it too).
      if (out && !out.destroyed && !out.writableEnded && this.recordingId) this.append(KIND_SERVER, this.now(), Buffer.alloc(0));
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
