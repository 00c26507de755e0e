import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CloseCode } from '../src/stream/close-codes.js';
import type { Api } from './support/api.js';
import { scratchDir, startTestSortie, type TestSortie } from './support/harness.js';
import { openTestDatabase } from './support/postgres.js';
import { localSessionRecord, processesInGroups } from './support/processes.js';
import { readDesktop } from './support/rfb.js';
import { waitFor } from './support/wait.js';
import WebSocket from 'ws';
import { once } from 'node:events';

// The whole session lifecycle on the real local runner: real Xvnc, websockify and
// apps, a real database (SQLite, or PostgreSQL with SORTIE_TEST_DATABASE=postgres), the
// real HTTP server and relay.

function wsUrl(sortie: TestSortie, websocketUrl: string): string {
  return sortie.wsUrl(websocketUrl);
}

function groupsOf(stateDir: string, id: string): number[] {
  return localSessionRecord(stateDir, id).processes.map((p) => p.pid);
}

describe('a launched app streams and ends cleanly', () => {
  let sortie: TestSortie;
  let api: Api;
  let stateDir: string;
  before(async () => {
    sortie = await startTestSortie({ name: 'local-flow' });
    ({ api, stateDir } = sortie);
  });
  after(() => sortie?.cleanup());

  test('launch → running → RFB banner and a framebuffer update through /ws/sessions/{id} → end → nothing left', async () => {
    const created = await api.launch('xterm', 'alice');
    assert.match(created.id, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { ...created, id: '', created_at: '', updated_at: '', progress: [] },
      {
        id: '',
        user_id: 'alice',
        app_id: 'xterm',
        app_name: 'XTerm',
        pod_name: `sortie-session-${created.id}`,
        status: 'creating',
        reason: null,
        websocket_url: `/ws/sessions/${created.id}`,
        created_at: '',
        updated_at: '',
        queue_position: null,
        progress: [],
        recorded: false,
      },
    );
    assert.ok(!Number.isNaN(Date.parse(created.created_at)));
    assert.ok(Array.isArray(created.progress), 'a creating session lists the steps of its launch so far');

    const running = await api.waitFor(created.id, 'running');
    assert.ok(running.updated_at >= created.updated_at);
    assert.equal(running.progress, null);

    const desktop = await readDesktop(wsUrl(sortie, created.websocket_url));
    assert.equal(desktop.banner, 'RFB 003.008');
    assert.equal(desktop.width, 1280);
    assert.equal(desktop.height, 800);
    assert.equal(desktop.updateBytes, 1280 * 800 * 4);
    assert.ok(desktop.nonBlank, 'the xterm window is on the desktop');

    const groups = groupsOf(stateDir, created.id);
    assert.equal(groups.length, 3, 'Xvnc, websockify and the app');
    assert.ok(processesInGroups(groups).length >= 3);

    const listed = await api.request<{ sessions: Array<{ id: string }> }>('GET', '/api/sessions?user_id=alice');
    assert.deepEqual(listed.body.sessions.map((s) => s.id), [created.id]);
    const others = await api.request<{ sessions: unknown[] }>('GET', '/api/sessions?user_id=bob');
    assert.deepEqual(others.body.sessions, []);

    const ended = await api.request<{ status: string; reason: string }>('DELETE', `/api/sessions/${created.id}`);
    assert.equal(ended.status, 200);
    assert.equal(ended.body.status, 'terminated');
    assert.deepEqual(processesInGroups(groups), [], 'no process of the session remains');
    assert.equal(existsSync(path.join(stateDir, `${created.id}.json`)), false);

    // Ending again is harmless and answers with the same ended session.
    const again = await api.request<{ status: string }>('DELETE', `/api/sessions/${created.id}`);
    assert.equal(again.status, 200);
    assert.equal(again.body.status, 'terminated');

    // The stream of an ended session is refused with a named code, not a hang.
    const ws = new WebSocket(wsUrl(sortie, created.websocket_url));
    const [code] = (await once(ws, 'close')) as [number];
    assert.equal(code, CloseCode.SessionEnded);
  });

  test('two sessions at once get separate desktops', async () => {
    const [a, b] = await Promise.all([api.launch('xeyes'), api.launch('xterm')]);
    await Promise.all([api.waitFor(a.id, 'running'), api.waitFor(b.id, 'running')]);
    const ra = localSessionRecord(stateDir, a.id);
    const rb = localSessionRecord(stateDir, b.id);
    assert.notEqual(ra.display, rb.display);
    assert.notEqual(ra.wsPort, rb.wsPort);
    assert.equal(a.user_id, 'anonymous');
    await Promise.all([api.request('DELETE', `/api/sessions/${a.id}`), api.request('DELETE', `/api/sessions/${b.id}`)]);
    assert.deepEqual(processesInGroups([...groupsOf2(ra), ...groupsOf2(rb)]), []);
  });

  test('quitting the app ends the session with a reason', async () => {
    const s = await api.launch('xterm');
    await api.waitFor(s.id, 'running');
    const record = localSessionRecord(stateDir, s.id);
    const app = record.processes.find((p) => p.role === 'app')!;
    process.kill(app.pid, 'SIGTERM');
    const ended = await api.waitFor(s.id, 'terminated', 10_000);
    assert.match(ended.reason ?? '', /xterm/);
    await waitFor(() => processesInGroups(groupsOf2(record)).length === 0, { what: 'the rest of the session to be gone' });
  });

  test('the stream of a session that is still starting is refused with 4409', async () => {
    const s = await api.launch('xeyes');
    const ws = new WebSocket(wsUrl(sortie, s.websocket_url));
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, CloseCode.SessionNotRunning);
    assert.match(reason.toString(), /starting/);
    await api.request('DELETE', `/api/sessions/${s.id}`);
  });
});

function groupsOf2(record: { processes: Array<{ pid: number }> }): number[] {
  return record.processes.map((p) => p.pid);
}

describe('failures a person can act on', () => {
  let sortie: TestSortie;
  let api: Api;
  before(async () => {
    sortie = await startTestSortie({
      name: 'local-fail',
      apps: [
        { id: 'broken', name: 'Broken', launch_type: 'container', container_image: 'x', command: ['/nonexistent/bin/app'] },
        { id: 'image-only', name: 'Image only', launch_type: 'container', container_image: 'ghcr.io/example/app:1' },
        { id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] },
      ],
    });
    api = sortie.api;
  });
  after(() => sortie?.cleanup());

  test('an app that cannot start fails with a reason naming it', async () => {
    const s = await api.launch('broken');
    const failed = await api.waitFor(s.id, 'failed', 15_000);
    assert.match(failed.reason ?? '', /nonexistent/);
  });

  test('an app the local runner cannot run is refused with 400 and nothing is created', async () => {
    const res = await api.request<{ message: string }>('POST', '/api/sessions', { app_id: 'image-only' });
    assert.equal(res.status, 400);
    assert.match(res.body.message, /command/);
    const list = await api.request<{ sessions: Array<{ app_id: string }> }>('GET', '/api/sessions');
    assert.equal(list.body.sessions.filter((x) => x.app_id === 'image-only').length, 0);
  });
});

describe('timeouts', () => {
  const scratch = scratchDir('local-timeouts');
  const stateDir = path.join(scratch.dir, 'local-sessions');
  after(() => scratch.remove());

  test('POD_READY_TIMEOUT fails a session that is not ready in time, and removes its processes', async () => {
    // A timeout shorter than Xvnc takes to start: the session can never be ready in time.
    const sortie = await startTestSortie({ name: 'local-timeouts', dir: scratch.dir, env: { POD_READY_TIMEOUT: '0.05' } });
    try {
      const { api } = sortie;
      const s = await api.launch('xterm');
      const failed = await api.waitFor(s.id, 'failed', 10_000);
      assert.match(failed.reason ?? '', /POD_READY_TIMEOUT/);
      await waitFor(() => !existsSync(path.join(stateDir, `${s.id}.json`)), { what: 'its state file to be gone' });
    } finally {
      await sortie.cleanup();
    }
  });

  test('SESSION_TIMEOUT ends sessions nobody is viewing, checked every SESSION_CLEANUP_INTERVAL', async () => {
    // 4.2 s idle timeout (long enough to start both and connect a viewer), swept every 0.3 s.
    const sortie = await startTestSortie({ name: 'local-timeouts', dir: scratch.dir, env: { SESSION_TIMEOUT: '0.07', SESSION_CLEANUP_INTERVAL: '0.005' } });
    try {
      const { api } = sortie;
      const idle = await api.launch('xeyes');
      const watched = await api.launch('xterm');
      await Promise.all([api.waitFor(idle.id, 'running'), api.waitFor(watched.id, 'running')]);
      const { viewer } = await sortie.openStream(watched.id);
      const groups = groupsOf(stateDir, idle.id);
      const ended = await api.waitFor(idle.id, 'terminated', 10_000);
      assert.match(ended.reason ?? '', /SESSION_TIMEOUT/);
      await waitFor(() => processesInGroups(groups).length === 0, { what: 'its processes to be gone' });
      assert.equal((await api.session(watched.id)).status, 'running', 'a session with a viewer is not idle');
      viewer.close();
      await api.request('DELETE', `/api/sessions/${watched.id}`);
    } finally {
      await sortie.cleanup();
    }
  });
});

describe('restarts', () => {
  const scratch = scratchDir('local-restart');
  const stateDir = path.join(scratch.dir, 'local-sessions');
  after(() => scratch.remove());

  test('a restart keeps running sessions, ends those whose processes died and removes strays', async () => {
    const first = await startTestSortie({ name: 'local-restart', dir: scratch.dir });
    const api1 = first.api;
    const kept = await api1.launch('xterm', 'keep');
    const died = await api1.launch('xeyes', 'died');
    const stray = await api1.launch('xeyes', 'stray');
    await Promise.all([kept, died, stray].map((s) => api1.waitFor(s.id, 'running')));
    const keptGroups = groupsOf(stateDir, kept.id);
    const diedGroups = groupsOf(stateDir, died.id);
    const strayGroups = groupsOf(stateDir, stray.id);
    // Sortie stops (as on SIGTERM): sessions are left running.
    await first.stop();
    assert.equal(processesInGroups(keptGroups).length >= 4, true, 'sessions survive Sortie stopping');

    // Behind Sortie's back: one session's processes die, and one workload loses its session.
    for (const pid of diedGroups) process.kill(-pid, 'SIGKILL');
    const db = await openTestDatabase(scratch.dir);
    await db.updateTable('sessions').set({ status: 'terminated' }).where('id', '=', stray.id).execute();
    await db.destroy();

    const second = await startTestSortie({ name: 'local-restart', dir: scratch.dir });
    try {
      const api2 = second.api;
      assert.equal((await api2.session(kept.id)).status, 'running');
      const desktop = await readDesktop(second.wsUrl(kept.websocket_url));
      assert.equal(desktop.banner, 'RFB 003.008', 'the adopted session still streams');
      const ended = await api2.session(died.id);
      assert.ok(ended.status === 'failed' || ended.status === 'terminated', ended.status);
      assert.ok(ended.reason, 'says why');
      assert.deepEqual(processesInGroups(strayGroups), [], 'the stray workload is removed');
      await api2.request('DELETE', `/api/sessions/${kept.id}`);
      assert.deepEqual(processesInGroups(keptGroups), []);
    } finally {
      await second.cleanup();
    }
  });
});
