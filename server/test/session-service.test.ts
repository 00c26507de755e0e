import assert from 'node:assert/strict';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import pino from 'pino';
import type { Principal } from '../src/auth/principal.js';
import { UserRepository } from '../src/auth/user-repository.js';
import type { App } from '../src/catalog/app.js';
import { AppRepository } from '../src/catalog/app-repository.js';
import { readCatalogFile } from '../src/catalog/catalog-file.js';
import { CatalogService } from '../src/catalog/catalog-service.js';
import { InProcessCoordination, type Coordination } from '../src/db/coordination.js';
import { openDatabase, type Db } from '../src/db/database.js';
import { SessionRepository } from '../src/sessions/session-repository.js';
import { SessionService } from '../src/sessions/session-service.js';
import type { Session } from '../src/sessions/session.js';
import { FakeRunner, FakeWorkloads } from './support/fake-runner.js';
import { scratchDir, writeApps } from './support/harness.js';
import { testDatabaseLocation } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// The session service between a runner and the database, without HTTP: a real SQLite file
// (a real PostgreSQL database with SORTIE_TEST_DATABASE=postgres) and the fake runner,
// whose events the tests send when they want — late, twice, or while
// something else changes the same session. What a restart finds is reconciled here too.
// (Limits and the launch queue are covered through the API in session-limits.test.ts.)

const ALICE: Principal = { userId: 'alice', username: 'alice', role: 'user' };

interface Harness {
  service: SessionService;
  runner: FakeRunner;
  db: Db;
  /** Sessions the service said ended, in order (what closes open streams). */
  ended: Session[];
  close: () => Promise<void>;
}

const scratch = scratchDir('session-service');
// Through the catalog file's parser, so every default an operator's apps.json gets is there.
const APPS: App[] = readCatalogFile(writeApps(scratch.dir, [{ id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] }]));
const open = new Set<Harness>();
after(() => scratch.remove());
afterEach(async () => {
  for (const h of open) await h.close();
  open.clear();
});

/** A service on `file` (a database a previous start may have left), started like main.ts starts it. */
async function startService(file: string, o: { workloads?: FakeWorkloads; podReadyTimeoutMs?: number; now?: () => Date; maxStarting?: number; coordination?: Coordination } = {}): Promise<Harness & { reconciled: Awaited<ReturnType<SessionService['start']>> }> {
  const db = await openDatabase(await testDatabaseLocation(file));
  const apps = new AppRepository(db);
  await apps.loadFromFile(APPS);
  const users = new UserRepository(db);
  const runner = new FakeRunner({ events: 'manual', workloads: o.workloads });
  const service = new SessionService({
    sessions: new SessionRepository(db),
    catalog: new CatalogService(apps, users),
    runner,
    logger: pino({ level: process.env.SORTIE_TEST_LOG_LEVEL ?? 'silent' }),
    userExists: async () => true,
    podReadyTimeoutMs: o.podReadyTimeoutMs ?? 60_000,
    sessionTimeoutMs: 60 * 60_000,
    appById: (id) => apps.get(id),
    maxSessionsPerUser: 100,
    maxSessions: Infinity,
    ...(o.maxStarting !== undefined ? { maxStarting: o.maxStarting } : {}),
    ...(o.now ? { now: o.now } : {}),
    ...(o.coordination ? { coordination: o.coordination } : {}),
  });
  const ended: Session[] = [];
  service.onEnded((s) => ended.push(s));
  let closed = false;
  const h: Harness = {
    service,
    runner,
    db,
    ended,
    close: async () => {
      if (closed) return;
      closed = true;
      service.close();
      await runner.close();
      await db.destroy();
    },
  };
  open.add(h);
  const reconciled = await service.start();
  return { ...h, reconciled };
}

let files = 0;
const freshFile = () => path.join(scratch.dir, `sessions-${++files}.db`);

const statusOf = (h: Harness, id: string) => h.service.get(ALICE, id);

async function running(h: Harness): Promise<Session> {
  const s = await h.service.create(ALICE, { appId: 'xterm' });
  h.runner.ready(s.id);
  return waitFor(async () => ((await statusOf(h, s.id)).status === 'running' ? statusOf(h, s.id) : undefined), { what: `${s.id} running` });
}

describe('reconcile after a restart', () => {
  test('adopts live workloads, removes orphans, ends sessions whose workload is gone or ended', async () => {
    const file = freshFile();
    const workloads = new FakeWorkloads();
    const first = await startService(file, { workloads });
    assert.deepEqual(first.reconciled, { adopted: 0, removed: 0, ended: 0 }, 'a fresh database and runner: nothing to do');
    const kept = await running(first);
    const starting = await first.service.create(ALICE, { appId: 'xterm' });
    const lost = await running(first);
    const died = await running(first);
    await first.close();

    // Behind Sortie's back: one workload vanishes, one ends, and one appears for no session.
    workloads.live.delete(lost.id);
    Object.assign(workloads.live.get(died.id)!, { state: 'ended', reason: 'xterm exited with code 1', endpoint: undefined });
    workloads.live.set('orphan', { sessionId: 'orphan', state: 'ready', endpoint: { host: '127.0.0.1', port: 9 } });

    const second = await startService(file, { workloads });
    assert.deepEqual(second.reconciled, { adopted: 2, removed: 1, ended: 2 });
    const adopted = await statusOf(second, kept.id);
    assert.equal(adopted.status, 'running');
    assert.equal((await statusOf(second, starting.id)).status, 'creating', 'a workload still starting stays creating');
    const gone = await statusOf(second, lost.id);
    assert.equal(gone.status, 'terminated');
    assert.equal(gone.reason, 'Its workload was gone when Sortie started again');
    const ended = await statusOf(second, died.id);
    assert.equal(ended.status, 'failed');
    assert.equal(ended.reason, 'xterm exited with code 1', 'the workload says why');
    assert.ok(workloads.stopped.includes('orphan') && !workloads.live.has('orphan'), 'the orphan workload is removed');
    assert.ok(workloads.live.has(kept.id), 'an adopted workload is left running');

    // The adopted starting workload's ready event still counts after the restart.
    second.runner.ready(starting.id);
    await waitFor(async () => (await statusOf(second, starting.id)).status === 'running', { what: 'the adopted session to run' });
  });

  test('beside other replicas, a start without a workload yet is left its POD_READY_TIMEOUT, not ended at once', async () => {
    const file = freshFile();
    const workloads = new FakeWorkloads();
    const first = await startService(file, { workloads });
    const launching = await first.service.create(ALICE, { appId: 'xterm' });
    await first.close();
    // Another replica inserted the session and has not created its pod yet.
    workloads.live.delete(launching.id);

    // Replicas on one database: what this one sees is one that may share it.
    const beside: Coordination = Object.assign(new InProcessCoordination(), { shared: true });
    const second = await startService(file, { workloads, podReadyTimeoutMs: 60_000, coordination: beside });
    assert.deepEqual(second.reconciled, { adopted: 0, removed: 0, ended: 0 });
    assert.equal((await statusOf(second, launching.id)).status, 'creating', 'still starting: its pod may come');
    second.runner.ready(launching.id);
    await waitFor(async () => (await statusOf(second, launching.id)).status === 'running', { what: 'the pod that came to make it run' });

    const never = await second.service.create(ALICE, { appId: 'xterm' });
    await second.close();
    workloads.live.delete(never.id);
    const third = await startService(file, { workloads, podReadyTimeoutMs: 3_000, coordination: beside });
    assert.equal((await statusOf(third, never.id)).status, 'creating');
    const failed = await waitFor(async () => ((await statusOf(third, never.id)).status === 'failed' ? statusOf(third, never.id) : undefined), { what: 'the start whose pod never came to fail' });
    assert.match(failed.reason ?? '', /POD_READY_TIMEOUT/);
  });

  test('a session still creating when Sortie stopped gets only what is left of POD_READY_TIMEOUT', async () => {
    const file = freshFile();
    const workloads = new FakeWorkloads();
    const first = await startService(file, { workloads });
    const slow = await first.service.create(ALICE, { appId: 'xterm' });
    await first.close();

    // The restart comes 10 minutes later with a 5 minute timeout: the session is already late.
    const later = new Date(Date.now() + 10 * 60_000);
    const second = await startService(file, { workloads, podReadyTimeoutMs: 5 * 60_000, now: () => later });
    assert.deepEqual(second.reconciled, { adopted: 1, removed: 0, ended: 0 });
    const failed = await waitFor(async () => ((await statusOf(second, slow.id)).status === 'failed' ? statusOf(second, slow.id) : undefined), { what: 'the late session to fail', timeoutMs: 5_000 });
    assert.match(failed.reason ?? '', /not ready within 300 seconds \(POD_READY_TIMEOUT\)/);
    assert.ok(!workloads.live.has(slow.id), 'its workload is removed');
  });
});

describe("the runner's start limit", () => {
  test('at most maxStarting sessions start at once; each one that becomes ready lets the next queued one start, in order', async () => {
    const h = await startService(freshFile(), { maxStarting: 2 });
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await h.service.create(ALICE, { appId: 'xterm' })).id);
    const statuses = async () => Promise.all(ids.map(async (id) => (await statusOf(h, id)).status));
    assert.deepEqual(await statuses(), ['creating', 'creating', 'queued', 'queued', 'queued']);
    assert.deepEqual(h.runner.workloads.launched, ids.slice(0, 2));

    h.runner.ready(ids[0]!);
    await waitFor(async () => (await statusOf(h, ids[2]!)).status === 'creating', { what: 'the third starts once the first is running' });
    assert.deepEqual(await statuses(), ['running', 'creating', 'creating', 'queued', 'queued']);

    // A failed start frees its place too.
    h.runner.fail(ids[1]!, 'the display would not open');
    await waitFor(async () => (await statusOf(h, ids[3]!)).status === 'creating', { what: 'the fourth starts once the second failed' });
    assert.deepEqual(await statuses(), ['running', 'failed', 'creating', 'creating', 'queued']);
    assert.deepEqual(h.runner.workloads.launched, ids.slice(0, 4));
  });
});

describe('late and duplicate runner events', () => {
  test('ready after the session ended leaves it ended and removes the workload again', async () => {
    const h = await startService(freshFile());
    const s = await h.service.create(ALICE, { appId: 'xterm' });
    const ended = await h.service.end(ALICE, s.id);
    assert.equal(ended.status, 'terminated');
    const stopsBefore = h.runner.workloads.stopped.filter((id) => id === s.id).length;

    await h.service.handle({ type: 'ready', sessionId: s.id, endpoint: { host: '127.0.0.1', port: 9 } });
    const after = await statusOf(h, s.id);
    assert.equal(after.status, 'terminated', 'a final state stays final');
    assert.equal(after.reason, 'Ended by its user');
    assert.equal(h.runner.workloads.stopped.filter((id) => id === s.id).length, stopsBefore + 1, 'the workload a late ready names is removed');
    assert.equal((await h.service.streamTarget(ALICE, s.id)).endpoint, undefined, 'no stream to dial');
  });

  test('exited twice: the first reason stands and the end is announced once', async () => {
    const h = await startService(freshFile());
    const s = await running(h);
    await h.service.handle({ type: 'exited', sessionId: s.id, reason: 'xterm exited with code 0' });
    await h.service.handle({ type: 'exited', sessionId: s.id, reason: 'xterm exited with code 0 (again)' });
    await h.service.handle({ type: 'failed', sessionId: s.id, reason: 'a failure after the exit' });
    const after = await statusOf(h, s.id);
    assert.equal(after.status, 'terminated');
    assert.equal(after.reason, 'xterm exited with code 0');
    assert.deepEqual(h.ended.map((e) => e.id), [s.id], 'open streams are told once');
  });

  test('ready twice for a running session changes nothing and stops nothing', async () => {
    const h = await startService(freshFile());
    const s = await running(h);
    await h.service.handle({ type: 'ready', sessionId: s.id, endpoint: { host: '127.0.0.1', port: 9 } });
    assert.equal((await statusOf(h, s.id)).status, 'running');
    assert.ok(!h.runner.workloads.stopped.includes(s.id), 'the workload is kept');
  });

  test('an event for a session nobody knows removes its workload and creates nothing', async () => {
    const h = await startService(freshFile());
    await h.service.handle({ type: 'ready', sessionId: 'no-such-session', endpoint: { host: '127.0.0.1', port: 9 } });
    await h.service.handle({ type: 'exited', sessionId: 'no-such-session-either', reason: 'gone' });
    assert.deepEqual(h.runner.workloads.stopped, ['no-such-session', 'no-such-session-either']);
    assert.deepEqual((await h.service.list(ALICE, {}, { limit: 50 })).sessions, []);
  });
});

describe('POD_READY_TIMEOUT', () => {
  test('a session not ready in time fails with the setting named, and a ready after that does not revive it', async () => {
    const h = await startService(freshFile(), { podReadyTimeoutMs: 150 });
    const s = await h.service.create(ALICE, { appId: 'xterm' });
    assert.equal(s.status, 'creating');
    const failed = await waitFor(async () => ((await statusOf(h, s.id)).status === 'failed' ? statusOf(h, s.id) : undefined), { what: 'the timeout', timeoutMs: 5_000 });
    assert.equal(failed.reason, 'The session was not ready within 0.2 seconds (POD_READY_TIMEOUT)');
    assert.ok(!h.runner.workloads.live.has(s.id), 'its workload is removed');
    h.runner.ready(s.id);
    await h.service.handle({ type: 'ready', sessionId: s.id, endpoint: { host: '127.0.0.1', port: 9 } });
    assert.equal((await statusOf(h, s.id)).status, 'failed');
  });

  test('a session ready in time is not failed when the timeout would have passed', async () => {
    const h = await startService(freshFile(), { podReadyTimeoutMs: 150 });
    const s = await running(h);
    await new Promise((r) => setTimeout(r, 300));
    assert.equal((await statusOf(h, s.id)).status, 'running');
    assert.deepEqual(h.ended, []);
  });

  test('a launch the runner refuses fails at once with the runner\'s reason', async () => {
    const h = await startService(freshFile(), { podReadyTimeoutMs: 60_000 });
    h.runner.launchError = new Error('exceeded quota: sortie-sessions, requested: pods=1');
    const s = await h.service.create(ALICE, { appId: 'xterm' });
    const failed = await waitFor(async () => ((await statusOf(h, s.id)).status === 'failed' ? statusOf(h, s.id) : undefined), { what: 'the refused launch to fail' });
    assert.match(failed.reason ?? '', /exceeded quota/);
  });
});

describe('a start whose launching replica went away', () => {
  test('is failed by the leader once POD_READY_TIMEOUT has passed, not before, and not while its own timer runs', async () => {
    const file = freshFile();
    let ahead = 0;
    const clock = () => new Date(Date.now() + ahead);
    const watcher = await startService(file, { now: clock });
    const launcher = await startService(file, { now: clock });
    const s = await launcher.service.create(ALICE, { appId: 'xterm' });
    assert.equal(s.status, 'creating');
    ahead = 30_000;
    assert.equal(await watcher.service.failLateStarts(), 0, 'half the timeout: still starting');
    ahead = 2 * 60_000;
    assert.equal(await launcher.service.failLateStarts(), 0, 'the launching service has its own timer for it');
    await launcher.close();
    assert.equal(await watcher.service.failLateStarts(), 1);
    const failed = await statusOf(watcher, s.id);
    assert.equal(failed.status, 'failed');
    assert.equal(failed.reason, 'The session was not ready within 60 seconds (POD_READY_TIMEOUT)');
    assert.ok(!watcher.runner.workloads.live.has(s.id), 'its workload, if any, is removed');
  });
});

describe('concurrent transitions', () => {
  test('ending while the ready event arrives: the session ends, in either order, and no workload is left', async () => {
    const h = await startService(freshFile());
    for (let i = 0; i < 20; i++) {
      const s = await h.service.create(ALICE, { appId: 'xterm' });
      const readyArrives = () => h.service.handle({ type: 'ready', sessionId: s.id, endpoint: { host: '127.0.0.1', port: 9 } });
      const userEnds = () => h.service.end(ALICE, s.id);
      // Which one starts first alternates.
      const ended = i % 2 ? (await Promise.all([readyArrives(), userEnds()]))[1] : (await Promise.all([userEnds(), readyArrives()]))[0];
      assert.equal(ended.status, 'terminated', `round ${i}`);
      const final = await statusOf(h, s.id);
      assert.equal(final.status, 'terminated', `round ${i}: a ready that lost the race does not bring it back`);
      assert.ok(!h.runner.workloads.live.has(s.id), `round ${i}: its workload is removed`);
    }
    assert.equal(h.ended.length, 20, 'each end announced once');
  });

  test('two ends and an exit at once: one transition wins, everyone sees the same ended session', async () => {
    const h = await startService(freshFile());
    const s = await running(h);
    const results = await Promise.all([
      h.service.end(ALICE, s.id),
      h.service.end({ userId: 'admin', username: 'admin', role: 'admin' }, s.id),
      h.service.handle({ type: 'exited', sessionId: s.id, reason: 'xterm exited with code 0' }),
    ]);
    const final = await statusOf(h, s.id);
    assert.equal(final.status, 'terminated');
    for (const r of results.slice(0, 2) as Session[]) assert.deepEqual([r.status, r.reason], [final.status, final.reason]);
    assert.deepEqual(h.ended.map((e) => e.id), [s.id], 'ended once');
  });
});
