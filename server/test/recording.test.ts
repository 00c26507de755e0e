import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { AuditPage } from '../src/contract/audit.js';
import type { Recording, RecordingPage } from '../src/contract/recordings.js';
import type { Session } from '../src/contract/sessions.js';
import { loadConfig } from '../src/config/config.js';
import { openDatabase } from '../src/db/database.js';
import { parseRecording, toSegments, type Segment } from '../src/recordings/recording-format.js';
import { xauthFilePath } from '../src/runners/local/state-file.js';
import type { Api } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { testDatabaseKind, testDatabaseUrl } from './support/postgres.js';
import { localSessionRecord } from './support/processes.js';
import { ByteReader, Encoding, frameRequest, setEncodings, type RfbViewer } from './support/rfb.js';
import { sleep, waitFor } from './support/wait.js';

// Recording on the real local runner (Xvnc + websockify behind Sortie's relay): a session of
// an app that records is written to <data dir>/recordings as it is relayed, and its replay
// (docs/design.md, "Recordings") holds the same framebuffer updates, in order, at the times
// the live viewer got them. Only admins list, fetch and delete recordings.

const execFileAsync = promisify(execFile);
const ADMIN_PASSWORD = 'recording-admin-pw';
const USER_PASSWORD = 'recording-user-pw';
const desktopApp = (id: string, recording: string) => ({ id, name: `Recorded ${id}`, launch_type: 'container', container_image: 'unused', command: ['sleep', 'infinity'], recording });
const apps = [desktopApp('rec-always', 'always'), desktopApp('rec-optional', 'optional'), desktopApp('rec-off', 'off')];
/**
 * How far the replay's time of an update may be from when the live viewer had its first
 * bytes. Both see the same socket read: the relay records it in the tick it passes it on,
 * and the viewer in this process reads it a loopback hop later (on a busy machine, a few
 * event-loop turns); updates here are over 1.5 s apart, so an update put in the wrong place
 * or at the wrong time is far outside this.
 */
const TIMING_TOLERANCE_MS = 250;
/** The side of the square of the desktop the viewer asks for. */
const CORNER = 64;

/** One framebuffer update: its rectangles and a digest of their pixels. */
interface Update {
  rects: string;
  digest: string;
}

/** Reads one FramebufferUpdate of Raw rectangles (the only encoding the viewer asked for). */
async function readUpdate(bytes: ByteReader, bytesPerPixel: number, onHead?: () => void): Promise<Update> {
  const head = await bytes.take(4);
  onHead?.();
  if (head[0] !== 0) throw new Error(`expected a FramebufferUpdate, got message type ${head[0]}`);
  const hash = createHash('sha256');
  const rects: string[] = [];
  for (let i = 0, count = head.readUInt16BE(2); i < count; i++) {
    const r = await bytes.take(12);
    const rect = { x: r.readUInt16BE(0), y: r.readUInt16BE(2), w: r.readUInt16BE(4), h: r.readUInt16BE(6), encoding: r.readInt32BE(8) };
    if (rect.encoding !== Encoding.Raw) throw new Error(`unexpected encoding ${rect.encoding}`);
    rects.push(`${rect.x},${rect.y} ${rect.w}x${rect.h}`);
    hash.update(await bytes.take(rect.w * rect.h * bytesPerPixel));
  }
  return { rects: rects.join(' '), digest: hash.digest('hex') };
}

/** Plays a segment into an RFB reader: its ServerInit, then each update with the time its first byte was recorded. */
async function replay(segment: Segment, count: number): Promise<{ width: number; height: number; updates: (Update & { at: number })[] }> {
  const bytes = new ByteReader();
  let at = 0;
  const reading = (async () => {
    const init = await bytes.take(24);
    await bytes.take(init.readUInt32BE(20));
    const updates: (Update & { at: number })[] = [];
    for (let i = 0; i < count; i++) {
      let headAt = 0;
      const update = await readUpdate(bytes, init.readUInt8(4) / 8, () => (headAt = at));
      updates.push({ ...update, at: headAt });
    }
    return { width: init.readUInt16BE(0), height: init.readUInt16BE(2), updates };
  })();
  for (const chunk of segment.chunks) {
    at = chunk.at;
    bytes.push(Buffer.from(chunk.data));
    // Lets the reader take what this chunk completes before the next chunk's time is set.
    await new Promise((resolve) => setImmediate(resolve));
  }
  bytes.fail(new Error('the recording ended'));
  return reading;
}

describe('session recording', () => {
  /** The first Sortie made the scratch folder (and database): its cleanup removes them. */
  let first: TestSortie;
  let sortie: TestSortie;
  let admin: Api;
  let user: Api;
  let userId: string;

  const start = (dir?: string, env: Record<string, string> = {}) =>
    startTestSortie({ name: 'recording', apps, ...(dir ? { dir } : {}), env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_MAX_SESSIONS_PER_USER: '10', ...env } });
  const signInBoth = async () => {
    admin = await sortie.api.signedIn('admin', ADMIN_PASSWORD);
    user = await sortie.api.signedIn('rita', USER_PASSWORD);
  };
  const launch = async (appId: string, record?: boolean): Promise<Session> => {
    const res = await user.request<Session>('POST', '/api/sessions', { app_id: appId, ...(record === undefined ? {} : { record }) });
    assert.equal(res.status, 201, res.text);
    await user.waitFor(res.body.id, 'running', 60_000);
    return res.body;
  };
  const open = (sessionId: string) => sortie.openStream(sessionId, { headers: { authorization: `Bearer ${user.token}` } });
  const recordings = async (): Promise<Recording[]> => {
    const res = await admin.request<RecordingPage>('GET', '/api/admin/recordings?limit=200');
    assert.equal(res.status, 200, res.text);
    return res.body.recordings;
  };
  const recordingOf = async (sessionId: string) => (await recordings()).find((r) => r.session_id === sessionId);
  /** Waits until the recording's open segment has been closed (its row says where it ends). */
  const ended = (sessionId: string) =>
    waitFor(async () => {
      const r = await recordingOf(sessionId);
      return r?.ended_at ? r : undefined;
    }, { timeoutMs: 10_000, what: `the recording of ${sessionId} to end` });
  const fileOf = (id: string) => path.join(sortie.dir, 'recordings', `${id}.rec`);
  const audit = async (action: string) => (await admin.request<AuditPage>('GET', `/api/admin/audit?action=${action}&limit=200`)).body.events;

  /** Shows a flat colour on the session's desktop, from an X client on its display. */
  const paint = async (sessionId: string, colour: string) => {
    const { display } = localSessionRecord(sortie.stateDir, sessionId);
    await execFileAsync('xsetroot', ['-solid', colour], {
      env: { PATH: process.env.PATH, DISPLAY: `:${display}`, XAUTHORITY: xauthFilePath(sortie.stateDir, sessionId) },
      timeout: 10_000,
    });
  };

  before(async () => {
    sortie = first = await start();
    admin = await sortie.api.signedIn('admin', ADMIN_PASSWORD);
    userId = await admin.createUser('rita', USER_PASSWORD);
    user = await sortie.api.signedIn('rita', USER_PASSWORD);
  });

  after(async () => {
    await sortie?.cleanup();
    if (first !== sortie) await first?.cleanup();
  });

  let recorded: { session: Session; live: (Update & { at: number })[]; recording: Recording };

  test('a session of an app that always records is recorded: the replay holds the live updates, in order, at their times', async () => {
    const session = await launch('rec-always');
    assert.equal(session.recorded, true, 'the session API says the session is recorded');
    assert.equal((await user.session(session.id)).recorded, true);
    const { viewer, desktop } = await open(session.id);
    viewer.send(setEncodings([Encoding.Raw]));
    const live: (Update & { at: number })[] = [];
    for (const colour of ['#204080', '#c03020', '#30a050']) {
      await paint(session.id, colour);
      // A corner, not the whole screen: a small update is read as soon as it arrives, so when
      // this viewer had it is when Sortie relayed it, give or take a loopback hop.
      viewer.send(frameRequest(CORNER, CORNER));
      let headAt = 0;
      const update = await readUpdate(viewer.transport.bytes, desktop.bytesPerPixel, () => (headAt = Date.now()));
      live.push({ ...update, at: headAt });
      await sleep(1500);
    }
    assert.equal(new Set(live.map((u) => u.digest)).size, 3, 'three different pictures were shown');
    viewer.close();

    const recording = await ended(session.id);
    assert.equal(recording.user_id, userId);
    assert.equal(recording.app_id, 'rec-always');
    assert.equal(recording.segments, 1);
    assert.equal(recording.incomplete, null);
    const file = fileOf(recording.id);
    assert.equal(statSync(file).mode & 0o777, 0o600, 'the recording is readable by Sortie alone');
    assert.equal(statSync(path.dirname(file)).mode & 0o777, 0o700);
    assert.equal(recording.size_bytes, statSync(file).size);

    const { records, validLength } = parseRecording(readFileSync(file));
    assert.equal(validLength, statSync(file).size, 'the whole file is records');
    const segments = toSegments(records);
    assert.equal(segments.length, 1);
    const played = await replay(segments[0]!, 3);
    assert.deepEqual({ width: played.width, height: played.height }, { width: desktop.width, height: desktop.height });
    assert.deepEqual(played.updates.map((u) => u.digest), live.map((u) => u.digest), 'the same updates in the same order');
    assert.deepEqual(played.updates.map((u) => u.rects), live.map((u) => u.rects));
    const startedAt = Date.parse(recording.started_at);
    for (const [i, update] of played.updates.entries()) {
      const drift = Math.abs(startedAt + update.at - live[i]!.at);
      assert.ok(drift <= TIMING_TOLERANCE_MS, `update ${i} is at ${update.at} ms in the replay, ${drift} ms from when the viewer had it`);
    }
    assert.ok(recording.duration_ms >= played.updates[2]!.at, 'the length reaches the last update');
    const started = (await audit('recording.start')).find((e) => e.target_id === recording.id);
    assert.equal(started?.details.session_id, session.id);
    assert.ok((await audit('recording.stop')).some((e) => e.target_id === recording.id), 'the stop is in the audit log');
    recorded = { session, live, recording };
  });

  test('an app with recording off records nothing, and refuses "record": true', async () => {
    const res = await user.request<{ message: string }>('POST', '/api/sessions', { app_id: 'rec-off', record: true });
    assert.equal(res.status, 400);
    assert.match(res.body.message, /not recorded \(recording "off"\)/);
    const session = await launch('rec-off');
    assert.equal(session.recorded, false);
    const { viewer, desktop } = await open(session.id);
    viewer.send(frameRequest(desktop.width, desktop.height));
    await viewer.take(4);
    viewer.close();
    await sleep(500);
    assert.equal(await recordingOf(session.id), undefined);
    assert.equal((await user.end(session.id)).status, 200);
  });

  test('an app with optional recording records only the launches that ask for it', async () => {
    const unasked = await launch('rec-optional');
    const asked = await launch('rec-optional', true);
    assert.equal(unasked.recorded, false);
    assert.equal(asked.recorded, true);
    for (const session of [unasked, asked]) {
      const { viewer, desktop } = await open(session.id);
      viewer.send(frameRequest(desktop.width, desktop.height));
      await viewer.take(4);
      viewer.close();
    }
    const recording = await ended(asked.id);
    assert.ok(recording.size_bytes > 100);
    assert.equal(await recordingOf(unasked.id), undefined);
    assert.equal((await user.request('POST', '/api/sessions', { app_id: 'rec-always', record: false })).status, 400);
    assert.equal((await user.request('POST', '/api/sessions', { app_id: 'rec-optional', record: 'yes' })).status, 400);
    for (const session of [unasked, asked]) assert.equal((await user.end(session.id)).status, 200);
  });

  test('only admins see recordings; an admin downloads the file as it was written', async () => {
    const { recording } = recorded;
    for (const [method, url] of [
      ['GET', '/api/admin/recordings'],
      ['GET', `/api/admin/recordings/${recording.id}`],
      ['GET', `/api/admin/recordings/${recording.id}/content`],
      ['DELETE', `/api/admin/recordings/${recording.id}`],
    ] as const) {
      assert.equal((await user.request(method, url)).status, 403, `${method} ${url} as a user`);
      assert.equal((await sortie.api.request(method, url)).status, 401, `${method} ${url} signed out`);
    }
    assert.equal((await admin.request('GET', '/api/admin/recordings/no-such-recording/content')).status, 404);
    const download = await downloadBytes(admin, `/api/admin/recordings/${recording.id}/content?download=1`);
    assert.equal(download.status, 200);
    assert.match(String(download.headers['content-disposition']), /^attachment; filename="sortie-rec-always-/);
    assert.ok(download.body.equals(readFileSync(fileOf(recording.id))), 'the download is the file');
    assert.ok((await audit('recording.download')).some((e) => e.target_id === recording.id));
    const page = await admin.request<RecordingPage>('GET', '/api/admin/recordings?limit=1');
    assert.equal(page.body.recordings.length, 1);
    assert.ok(page.body.next_cursor, 'a next page is offered');
    const next = await admin.request<RecordingPage>('GET', `/api/admin/recordings?limit=1&cursor=${page.body.next_cursor}`);
    assert.equal(next.status, 200);
    assert.notEqual(next.body.recordings[0]?.id, page.body.recordings[0]?.id);
  });

  test('a recording survives a restart of Sortie, and a reconnect afterwards continues it as a new segment', async () => {
    const { session, recording } = recorded;
    // A viewer is still connected (a segment open) when Sortie stops.
    const { viewer } = await open(session.id);
    await waitFor(async () => (await recordingOf(session.id))?.ended_at === null, { timeoutMs: 5000, what: 'a second segment to open' });
    viewer.close();
    const dir = sortie.dir;
    await sortie.stop();
    sortie = await start(dir);
    await signInBoth();
    const after = await ended(session.id);
    assert.equal(after.id, recording.id);
    assert.equal(after.segments, 2);
    const { viewer: again, desktop } = await open(session.id);
    again.send(setEncodings([Encoding.Raw]));
    again.send(frameRequest(desktop.width, desktop.height));
    const update = await readUpdate(again.transport.bytes, desktop.bytesPerPixel);
    again.close();
    const third = await waitFor(async () => {
      const r = await recordingOf(session.id);
      return r?.segments === 3 && r.ended_at ? r : undefined;
    }, { timeoutMs: 10_000, what: 'the third segment to end' });
    const segments = toSegments(parseRecording(readFileSync(fileOf(third.id))).records);
    assert.equal(segments.length, 3);
    const first = await replay(segments[0]!, 3);
    assert.deepEqual(first.updates.map((u) => u.digest), recorded.live.map((u) => u.digest), 'the first segment is still whole');
    const last = await replay(segments[2]!, 1);
    assert.equal(last.updates[0]!.digest, update.digest, 'the reconnect is recorded from its ServerInit on');
    assert.ok(segments[2]!.at > segments[0]!.at);
  });

  test('an admin deletes a recording: its file and row go', async () => {
    const session = await launch('rec-always');
    const { viewer, desktop } = await open(session.id);
    viewer.send(frameRequest(desktop.width, desktop.height));
    await viewer.take(4);
    viewer.close();
    const recording = await ended(session.id);
    assert.ok(existsSync(fileOf(recording.id)));
    assert.equal((await admin.request('DELETE', `/api/admin/recordings/${recording.id}`)).status, 204);
    assert.equal(existsSync(fileOf(recording.id)), false);
    assert.equal((await admin.request('GET', `/api/admin/recordings/${recording.id}`)).status, 404);
    assert.ok((await audit('recording.delete')).some((e) => e.target_id === recording.id && e.actor_name === 'admin'));
    assert.equal((await user.end(session.id)).status, 200);
  });

  test('retention removes recordings older than SORTIE_RECORDING_RETENTION_DAYS (30 unless set), files and rows', async () => {
    const old = recorded.recording;
    const recent = (await recordings()).find((r) => r.id !== old.id);
    assert.ok(recent && existsSync(fileOf(recent.id)) && existsSync(fileOf(old.id)));
    const dir = sortie.dir;
    await sortie.stop();
    // The clock moved on: the first recording started 31 days ago.
    const db = await openDatabase(testDatabaseKind() === 'postgres' ? await testDatabaseUrl(dir) : path.join(dir, 'sortie.db'));
    try {
      await db.updateTable('recordings').set({ started_at: new Date(Date.now() - 31 * 86_400_000).toISOString() }).where('id', '=', old.id).execute();
    } finally {
      await db.destroy();
    }
    sortie = await start(dir);
    await signInBoth();
    const left = await recordings();
    assert.ok(!left.some((r) => r.id === old.id), 'the old recording is no longer listed');
    assert.equal(existsSync(fileOf(old.id)), false, 'and its file is gone');
    assert.ok(left.some((r) => r.id === recent.id) && existsSync(fileOf(recent.id)), 'a recent one stays');
    assert.ok((await audit('recording.delete')).some((e) => e.target_id === old.id && e.actor_type === 'system' && e.details.by === 'retention'));
    assert.equal((await user.end(recorded.session.id)).status, 200);
  });

  test('SORTIE_RECORDING_RETENTION_DAYS is 30 unless set; 0 keeps recordings; nonsense is refused by name', () => {
    assert.equal(loadConfig({}).recordingRetentionDays, 30);
    assert.equal(loadConfig({ SORTIE_RECORDING_RETENTION_DAYS: '0' }).recordingRetentionDays, 0);
    assert.equal(loadConfig({ SORTIE_RECORDING_RETENTION_DAYS: '7' }).recordingRetentionDays, 7);
    for (const bad of ['-1', 'a month']) {
      assert.throws(() => loadConfig({ SORTIE_RECORDING_RETENTION_DAYS: bad }), /SORTIE_RECORDING_RETENTION_DAYS must be a number of days/);
    }
  });
});

/** A GET answered as bytes (the Api client reads text). */
async function downloadBytes(api: Api, urlPath: string): Promise<{ status: number; headers: Record<string, unknown>; body: Buffer }> {
  const url = new URL(urlPath, api.base);
  const res = await fetch(url, { headers: { authorization: `Bearer ${api.token}` } });
  return { status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) };
}
