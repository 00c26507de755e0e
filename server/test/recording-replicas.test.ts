import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { shutdown as stopDesktopProcesses } from '../../bench/lib/procs.js';
import { startNewStack } from '../../bench/lib/vnc-stacks.js';
import type { Recording, RecordingPage } from '../src/contract/recordings.js';
import { STOPPED_WHILE_RECORDING } from '../src/recordings/recorder.js';
import { parseRecording, toSegments } from '../src/recordings/recording-format.js';
import { Api } from './support/api.js';
import { exitOf, startSortieProcess, type SortieProcess } from './support/child.js';
import { scratchDir, writeApps } from './support/harness.js';
import { freshTestDatabase } from './support/postgres.js';
import { RfbViewer } from './support/rfb.js';
import { waitFor } from './support/wait.js';

// Two Sortie processes on one PostgreSQL with one recordings folder (SORTIE_RECORDINGS_DIR;
// in the chart, a volume every replica mounts), both serving one real desktop (Xvnc +
// websockify, outliving any Sortie as a pod does). A recorded session's stream moves from one
// replica to the other as it does when a replica goes away; its recording stays one file with
// one writer at a time, and says where it has a gap.

const ENTRY = path.join(import.meta.dirname, 'support', 'shared-desktop-sortie.ts');
const apps = [{ id: 'desk', name: 'Desk', category: 'Test', launch_type: 'container', container_image: 'shared:desktop', command: ['true'], recording: 'always' }];

describe('recording beside other replicas', () => {
  let scratch: ReturnType<typeof scratchDir>;
  let database: Awaited<ReturnType<typeof freshTestDatabase>>;
  let env: Record<string, string>;
  let recordingsDir: string;
  const replicas: SortieProcess[] = [];
  const open: RfbViewer[] = [];
  let sessionId: string;

  const api = (i: number) => new Api(replicas[i]!.url);
  /** A stream of the session through replica `i`, as its owner (sign-in is off: everyone is the one open-access user). */
  const stream = async (i: number) => {
    const { viewer, desktop } = await RfbViewer.connect(`${replicas[i]!.url.replace(/^http/, 'ws')}/ws/sessions/${sessionId}`);
    open.push(viewer);
    size = { width: desktop.width, height: desktop.height };
    return viewer;
  };
  let size = { width: 0, height: 0 };
  /** Each segment of the file starts with the desktop's ServerInit (its width and height first). */
  const assertSegmentsStartWithServerInit = (r: Recording) => {
    for (const s of segmentsInFile(r)) {
      const init = Buffer.from(s.chunks[0]!.data);
      assert.deepEqual({ width: init.readUInt16BE(0), height: init.readUInt16BE(2) }, size);
    }
  };
  const recording = async (): Promise<Recording | undefined> => {
    const res = await api(replicas[0]!.child.exitCode === null ? 0 : 1).request<RecordingPage>('GET', '/api/admin/recordings?limit=50');
    assert.equal(res.status, 200, res.text);
    return res.body.recordings.find((r) => r.session_id === sessionId);
  };
  /** Waits until the recording has `segments` segments and the last is open (or closed). */
  const segmentIs = (segments: number, state: 'open' | 'closed') =>
    waitFor(
      async () => {
        const r = await recording();
        return r && r.segments === segments && (r.ended_at === null) === (state === 'open') ? r : undefined;
      },
      { timeoutMs: 40_000, what: `segment ${segments} of the recording to be ${state}` },
    );
  const segmentsInFile = (r: Recording) => toSegments(parseRecording(readFileSync(path.join(recordingsDir, `${r.id}.rec`))).records);
  const startReplica = () => startSortieProcess(env, { entry: ENTRY });

  before(async () => {
    scratch = scratchDir('recording-replicas');
    recordingsDir = path.join(scratch.dir, 'shared', 'recordings');
    const stack = await startNewStack();
    database = await freshTestDatabase();
    env = {
      SORTIE_DATABASE_URL: database.url,
      SORTIE_APPS_FILE: writeApps(scratch.dir, apps),
      SORTIE_DB_PATH: path.join(scratch.dir, 'unused.db'),
      SORTIE_RECORDINGS_DIR: recordingsDir,
      SHARED_RUNNER_STORE: path.join(scratch.dir, 'workloads.json'),
      SHARED_DESKTOP_WS: `127.0.0.1:${stack.wsPort}`,
    };
    // One after the other: the second finds the first's migrations done.
    for (let i = 0; i < 2; i++) replicas.push(await startReplica());
    const session = await api(0).launch('desk');
    await api(1).waitFor(session.id, 'running');
    sessionId = session.id;
  });

  after(async () => {
    for (const v of open) v.close();
    for (const r of replicas) {
      if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
      await exitOf(r.child);
    }
    await stopDesktopProcesses();
    await database?.drop();
    scratch?.remove();
  });

  test('the owner\'s second stream, through the other replica, does not write the file too; it takes over when the first ends', async () => {
    const first = await stream(0);
    const started = await segmentIs(1, 'open');
    const second = await stream(1);
    // Long enough for the second replica to have opened a segment of its own, were it going to.
    await new Promise((resolve) => setTimeout(resolve, 2000));
    assert.equal((await recording())!.segments, 1, 'one segment open: one writer');
    first.close();
    // The second stream's bytes waited in memory; they are recorded from its ServerInit on.
    await segmentIs(2, 'open');
    second.close();
    const done = await segmentIs(2, 'closed');
    assert.equal(done.id, started.id);
    assert.equal(done.incomplete, null);
    assert.equal(segmentsInFile(done).length, 2);
    assertSegmentsStartWithServerInit(done);
  });

  test('the replica recording drains (SIGTERM): the reconnect through the other continues the recording, whole; a replica starting meanwhile leaves the open segment alone', async () => {
    await stream(0);
    await segmentIs(3, 'open');
    replicas[0]!.child.kill('SIGTERM');
    assert.equal((await exitOf(replicas[0]!.child)).code, 0);
    await segmentIs(3, 'closed');
    const again = await stream(1);
    await segmentIs(4, 'open');
    // A replica starting while another records: its start-up repair is for abandoned segments only.
    replicas[0] = await startReplica();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const meanwhile = await recording();
    assert.equal(meanwhile!.ended_at, null, 'the segment being written is still open');
    again.close();
    const done = await segmentIs(4, 'closed');
    assert.equal(done.incomplete, null);
    assert.equal(segmentsInFile(done).length, 4);
    assertSegmentsStartWithServerInit(done);
  });

  test('the replica recording dies (SIGKILL): the next stream waits for its file to go quiet, closes that segment as incomplete and records on', async () => {
    await stream(1);
    const writing = await segmentIs(5, 'open');
    // Killed once its segment is in the file (killed between the row and the first write, the
    // row would count a segment the file never got: a crash's gap, not this test's point).
    await waitFor(() => segmentsInFile(writing).length === 5, { timeoutMs: 10_000, what: 'segment 5 in the file' });
    replicas[1]!.child.kill('SIGKILL');
    await exitOf(replicas[1]!.child);
    const killedAt = Date.now();
    await stream(0);
    const resumed = await segmentIs(6, 'open');
    assert.equal(resumed.incomplete, STOPPED_WHILE_RECORDING, 'the recording says it has a gap');
    // Not before the dead writer's heartbeat could have been missed: a live writer is never cut off.
    assert.ok(Date.now() - killedAt >= 10_000, `the dead segment was closed after ${Date.now() - killedAt} ms`);
    for (const v of open) v.close();
    const done = await segmentIs(6, 'closed');
    assert.equal(segmentsInFile(done).length, 6, 'the dead writer\'s segment and the new one are both in the file');
    assertSegmentsStartWithServerInit(done);
  });
});
