import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { openDatabase, type Db } from '../db/database.js';
import { encodeFrame } from '../stream/ws-frames.js';
import { Recorder } from './recorder.js';
import { durationOf, parseRecording, toSegments } from './recording-format.js';
import { RecordingRepository, type RecordedSession } from './recording-repository.js';

// The recorder on a real SQLite database and real files: what its row says and what its file
// holds agree, whatever happens while a stream's recording is still being set up.

/** 600 bytes of desktop stream in a WebSocket frame, as websockify sends them. */
const frame = (fill: number) => encodeFrame(Buffer.alloc(600, fill), false);

const rita = { userId: 'u-rita', username: 'rita', role: 'user' as const };
let dir: string;
let db: Db;

before(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'sortie-recorder-'));
  db = await openDatabase(path.join(dir, 'db', 'sortie.db'));
});

after(async () => {
  await db?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

async function recordedSession(id: string): Promise<void> {
  const at = new Date().toISOString();
  await db
    .insertInto('sessions')
    .values({ id, user_id: rita.userId, app_id: 'app', app_name: 'App', pod_name: `p-${id}`, status: 'running', reason: null, endpoint: null, created_at: at, updated_at: at, last_active_at: at, stream_secret: null, arrival: null, recorded: 1 })
    .execute();
}

/** A repository whose session lookup waits for `gate`: the recording is not ready until then. */
function slowRepository(gate: Promise<void>): RecordingRepository {
  const repository = new RecordingRepository(db);
  const lookup = repository.session.bind(repository);
  repository.session = async (id: string): Promise<RecordedSession | undefined> => {
    await gate;
    return lookup(id);
  };
  return repository;
}

test('a stream that sends more than the recorder holds before its file is ready: the row and the file both have the segment, empty, and the row says why', async () => {
  await recordedSession('s-early');
  let ready!: () => void;
  const gate = new Promise<void>((resolve) => (ready = resolve));
  const recorder = new Recorder({ dir: path.join(dir, 'recordings'), repository: slowRepository(gate), logger: pino({ level: 'silent' }), maxBufferedBytes: 1024 });
  const tap = recorder.open('s-early', rita)!;
  tap.data(frame(1));
  tap.data(frame(2));
  ready();
  tap.end();
  await recorder.close();
  const row = await db.selectFrom('recordings').selectAll().where('session_id', '=', 's-early').executeTakeFirstOrThrow();
  assert.equal(Number(row.segments), 1);
  assert.notEqual(row.ended_at, null);
  assert.match(row.incomplete ?? '', /before its file was ready/);
  const segments = toSegments(parseRecording(readFileSync(recorder.fileOf(row.id))).records);
  assert.equal(segments.length, 1, 'the file has the segment the row counts');
  assert.equal(segments[0]!.chunks.length, 0, 'and nothing of the stretch that was not recorded');
});

test('a stream whose first bytes fit is recorded whole, from its first byte', async () => {
  await recordedSession('s-whole');
  let ready!: () => void;
  const gate = new Promise<void>((resolve) => (ready = resolve));
  const recorder = new Recorder({ dir: path.join(dir, 'recordings'), repository: slowRepository(gate), logger: pino({ level: 'silent' }), maxBufferedBytes: 1024 });
  const tap = recorder.open('s-whole', rita)!;
  tap.data(frame(1));
  ready();
  await new Promise((resolve) => setTimeout(resolve, 200));
  tap.data(frame(2));
  tap.end();
  await recorder.close();
  const row = await db.selectFrom('recordings').selectAll().where('session_id', '=', 's-whole').executeTakeFirstOrThrow();
  assert.equal(row.incomplete, null);
  const [segment] = toSegments(parseRecording(readFileSync(recorder.fileOf(row.id))).records);
  const bytes = Buffer.concat(segment!.chunks.map((c) => Buffer.from(c.data)));
  assert.deepEqual(bytes, Buffer.concat([Buffer.alloc(600, 1), Buffer.alloc(600, 2)]));
});

test('a recording lasts until its viewer left, also when the desktop drew nothing at the end', async () => {
  await recordedSession('s-quiet');
  let now = Date.now();
  const recorder = new Recorder({ dir: path.join(dir, 'recordings'), repository: new RecordingRepository(db), logger: pino({ level: 'silent' }), now: () => now });
  const tap = recorder.open('s-quiet', rita)!;
  tap.data(frame(1));
  await new Promise((resolve) => setTimeout(resolve, 200));
  now += 1_000;
  tap.data(frame(2));
  // Ten quiet seconds before the viewer leaves.
  now += 10_000;
  tap.end();
  await recorder.close();
  const row = await db.selectFrom('recordings').selectAll().where('session_id', '=', 's-quiet').executeTakeFirstOrThrow();
  const records = parseRecording(readFileSync(recorder.fileOf(row.id))).records;
  assert.ok(Number(row.duration_ms) >= 11_000, `listed length ${row.duration_ms} ms`);
  assert.equal(durationOf(records), Number(row.duration_ms), 'the player plays as long as the list says');
});
