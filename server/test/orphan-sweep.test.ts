import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { sql } from 'kysely';
import { openDatabase, type Db } from '../src/db/database.js';
import { FakeRunner, FakeWorkloads } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { freshTestDatabase, openTestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// The leading replica's sweep for workloads whose session is over: what a replica that died
// between ending a session and removing its workload leaves behind. A fake runner (the
// workloads), the real session service and the real database (SQLite, or PostgreSQL with
// SORTIE_TEST_DATABASE=postgres; the take-over case always on PostgreSQL).

const APPS = [
  { id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] },
  { id: 'pooled', name: 'Pooled', launch_type: 'container', command: ['xterm'], warm_pool: 1 },
];

/** Ends a session in the database only, as a replica that died before removing its workload leaves it. */
async function endBehindSortiesBack(db: Db, id: string): Promise<void> {
  const at = new Date().toISOString();
  await sql`update sessions set status = 'terminated', reason = 'Ended by its user', endpoint = null, updated_at = ${at} where id = ${id}`.execute(db);
}

async function runningPooled(sortie: TestSortie): Promise<string> {
  return waitFor(
    async () => {
      const res = await sortie.api.request<{ sessions: Array<{ id: string; status: string; pooled?: boolean }> }>('GET', '/api/sessions?limit=200');
      return res.body.sessions.find((s) => s.pooled && s.status === 'running')?.id;
    },
    { what: 'a running pooled session' },
  );
}

describe('sweeps called one after another', () => {
  const workloads = new FakeWorkloads();
  let sortie: TestSortie;
  let db: Db;
  after(async () => {
    await db?.destroy();
    await sortie?.cleanup();
  });

  test('only workloads without a live session go, and only when two sweeps in a row found them so', async () => {
    // Ticks an hour apart: nothing sweeps but the calls below.
    sortie = await startTestSortie({ name: 'orphans', apps: APPS, runner: new FakeRunner({ workloads }), sessionTimers: { queuePassIntervalMs: 3_600_000 } });
    db = await openTestDatabase(sortie.dir);
    const service = sortie.sortie.sessions;
    const live = await sortie.api.launch('xterm', 'alice');
    const over = await sortie.api.launch('xterm', 'bob');
    await sortie.api.waitFor(live.id, 'running');
    await sortie.api.waitFor(over.id, 'running');
    const pooled = await runningPooled(sortie);
    await endBehindSortiesBack(db, over.id);
    // A workload whose session row never existed.
    workloads.live.set('no-such-session', { sessionId: 'no-such-session', state: 'ready', endpoint: { host: '127.0.0.1', port: 9 } });
    // And one listed before its creator's row can be read: its row appears between two sweeps.
    workloads.live.set('arriving', { sessionId: 'arriving', state: 'starting' });

    assert.equal(await service.removeOrphans(), 0, 'the first sweep only notes what it found');
    for (const id of [live.id, over.id, pooled, 'no-such-session', 'arriving']) assert.ok(workloads.live.has(id), `${id} is still there after one sweep`);

    const at = new Date().toISOString();
    await sql`insert into sessions (id, user_id, app_id, app_name, pod_name, status, created_at, updated_at, last_active_at, arrival)
      values ('arriving', 'carol', 'xterm', 'XTerm', 'sortie-session-arriving', 'creating', ${at}, ${at}, ${at}, 1000)`.execute(db);

    assert.equal(await service.removeOrphans(), 2);
    assert.deepEqual([...workloads.live.keys()].sort(), [live.id, pooled, 'arriving'].sort(), 'the ended and the unknown workloads are gone');
    assert.deepEqual(workloads.stopped.filter((id) => id === over.id || id === 'no-such-session').sort(), [over.id, 'no-such-session'].sort());

    assert.equal(await service.removeOrphans(), 0);
    assert.equal(await service.removeOrphans(), 0);
    for (const id of [live.id, pooled, 'arriving']) assert.ok(workloads.live.has(id), `${id} (live) is never removed`);
    assert.ok(!workloads.stopped.includes(live.id) && !workloads.stopped.includes(pooled) && !workloads.stopped.includes('arriving'));
    assert.equal((await sortie.api.session(live.id)).status, 'running', 'the live session is untouched');
  });
});

describe('the sweep on its own', () => {
  const workloads = new FakeWorkloads();
  let sortie: TestSortie;
  let db: Db;
  after(async () => {
    await db?.destroy();
    await sortie?.cleanup();
  });

  test('a running Sortie removes the workload of a session ended behind its back within two sweeps', async () => {
    sortie = await startTestSortie({
      name: 'orphans-timer',
      apps: APPS.slice(0, 1),
      runner: new FakeRunner({ workloads }),
      sessionTimers: { queuePassIntervalMs: 100, orphanSweepIntervalMs: 300 },
    });
    db = await openTestDatabase(sortie.dir);
    const live = await sortie.api.launch('xterm', 'alice');
    const over = await sortie.api.launch('xterm', 'bob');
    await sortie.api.waitFor(live.id, 'running');
    await sortie.api.waitFor(over.id, 'running');
    await endBehindSortiesBack(db, over.id);
    await waitFor(() => !workloads.live.has(over.id), { what: 'the ended session’s workload to be removed', timeoutMs: 10_000 });
    assert.ok(workloads.live.has(live.id), 'the live session’s workload stays');
    assert.ok(!workloads.stopped.includes(live.id));
  });
});

describe('a replica that takes over the lead (PostgreSQL)', () => {
  const workloads = new FakeWorkloads();
  let database: { url: string; drop: () => Promise<void> };
  let a: TestSortie;
  let b: TestSortie;
  let db: Db;
  after(async () => {
    await db?.destroy();
    await a?.cleanup();
    await b?.cleanup();
    await database?.drop();
  });

  test('sweeps at once, without waiting for the minute', async () => {
    database = await freshTestDatabase();
    const env = { SORTIE_DATABASE_URL: database.url };
    // b ticks often but would sweep only once an hour: only taking over makes it sweep.
    const timers = { queuePassIntervalMs: 100, orphanSweepIntervalMs: 3_600_000 };
    a = await startTestSortie({ name: 'orphans-a', env, apps: APPS.slice(0, 1), runner: new FakeRunner({ workloads }), sessionTimers: timers });
    b = await startTestSortie({ name: 'orphans-b', env, apps: APPS.slice(0, 1), runner: new FakeRunner({ workloads }), sessionTimers: timers });
    db = await openDatabase(database.url);
    const live = await a.api.launch('xterm', 'alice');
    const over = await a.api.launch('xterm', 'bob');
    await a.api.waitFor(live.id, 'running');
    await a.api.waitFor(over.id, 'running');
    // The leader ends a session and dies before removing its workload.
    await endBehindSortiesBack(db, over.id);
    await a.stop();
    await waitFor(() => !workloads.live.has(over.id), { what: 'the replica that took over to remove the workload', timeoutMs: 15_000 });
    assert.ok(workloads.live.has(live.id), 'the live session’s workload stays');
    assert.equal((await b.api.session(live.id)).status, 'running');
  });
});
