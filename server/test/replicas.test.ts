import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Session } from '../src/sessions/session.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { freshTestDatabase } from './support/postgres.js';
import { SharedRunner } from './support/shared-runner.js';
import { waitFor } from './support/wait.js';

// Two replicas of Sortie in this process on one real PostgreSQL, whichever database the
// rest of the pass uses: several replicas only exist on PostgreSQL (SQLite is one process's
// file). They share one runner the way replicas share one cluster: every replica sees every
// workload and hears every event.

const APPS = [
  { id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] },
  { id: 'xclock', name: 'XClock', launch_type: 'container', command: ['xclock'] },
];

async function twoReplicas(name: string, env: Record<string, string>, runner: SharedRunner, watchOfB: { lagMs?: number } = {}) {
  const database = await freshTestDatabase();
  const shared = { ...env, SORTIE_DATABASE_URL: database.url };
  const a = await startTestSortie({ name: `${name}-a`, env: shared, apps: APPS, runner: runner.forReplica() });
  const b = await startTestSortie({ name: `${name}-b`, env: shared, apps: APPS, runner: runner.forReplica(watchOfB) });
  return {
    a,
    b,
    database,
    cleanup: async () => {
      await a.cleanup();
      await b.cleanup();
      await database.drop();
    },
  };
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

describe('two replicas on one PostgreSQL', () => {
  const runner = new SharedRunner();
  let a: TestSortie;
  let b: TestSortie;
  let url: string;
  let cleanup: () => Promise<void>;
  before(async () => {
    const replicas = await twoReplicas('replicas', {}, runner);
    ({ a, b, cleanup } = replicas);
    url = replicas.database.url;
  });
  after(() => cleanup?.());

  test('a session made through one replica is read and ended through the other', async () => {
    const made = await a.api.launch('xterm', 'alice');
    const running = await b.api.waitFor(made.id, 'running');
    assert.equal(running.app_id, 'xterm');
    assert.equal(running.user_id, 'alice');
    const listed = await b.api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=running');
    assert.ok(listed.body.sessions.some((s) => s.id === made.id), 'the other replica lists it');
    const ended = await b.api.end(made.id);
    assert.equal(ended.status, 200, JSON.stringify(ended.body));
    assert.equal(ended.body.status, 'terminated');
    assert.equal((await a.api.session(made.id)).status, 'terminated');
    assert.ok(!runner.fake.workloads.live.has(made.id), 'its workload is gone');
  });

  test('the idle sweep on both replicas at once ends a timed-out session exactly once', async () => {
    const made = await b.api.launch('xclock', 'bob');
    await a.api.waitFor(made.id, 'running');
    // Nobody has watched it for a day.
    await sql(url, 'update sessions set last_active_at = $1 where id = $2', [new Date(Date.now() - 86_400_000).toISOString(), made.id]);
    const stopsBefore = runner.fake.workloads.stopped.filter((id) => id === made.id).length;
    const [byA, byB] = await Promise.all([a.sortie.sessions.expireIdle(), b.sortie.sessions.expireIdle()]);
    assert.equal(byA + byB, 1, `one end in all, got ${byA} and ${byB}`);
    const session = await b.api.session(made.id);
    assert.equal(session.status, 'terminated');
    assert.match(session.reason ?? '', /SESSION_TIMEOUT/);
    assert.equal(runner.fake.workloads.stopped.filter((id) => id === made.id).length - stopsBefore, 1, 'the workload was stopped once');
    const ends = await waitFor(
      async () => {
        const rows = await sql<{ details: string }>(url, "select details from audit_events where action = 'session.end' and target_id = $1", [made.id]);
        return rows.length > 0 && rows;
      },
      { timeoutMs: 5000, what: 'the audit event of the end' },
    );
    assert.equal(ends.length, 1, 'one session.end in the audit log');
  });

  test('when the leading replica stops, the other one sweeps', async () => {
    const made = await a.api.launch('xterm', 'carol');
    await b.api.waitFor(made.id, 'running');
    await sql(url, 'update sessions set last_active_at = $1 where id = $2', [new Date(Date.now() - 86_400_000).toISOString(), made.id]);
    // The one started first leads; the other finds the work done.
    assert.equal(await b.sortie.sessions.expireIdle(), 0);
    await a.stop();
    assert.equal(await b.sortie.sessions.expireIdle(), 1);
    assert.equal((await b.api.session(made.id)).status, 'terminated');
  });
});

describe('limits and the queue across two replicas', () => {
  // Sessions stay `creating` until the test says so: what is starting is what counts.
  const runner = new SharedRunner({ events: 'manual' });
  let a: TestSortie;
  let b: TestSortie;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ a, b, cleanup } = await twoReplicas('replicas-queue', { SORTIE_MAX_SESSIONS: '3', SORTIE_MAX_SESSIONS_PER_USER: '2' }, runner));
  });
  after(() => cleanup?.());

  test('a burst split over both never starts more than SORTIE_MAX_SESSIONS, nor more than the per-user limit', async () => {
    // 12 launches at once, alternating replicas: 6 users with 2 each, then a third for each user.
    const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
    const burst = await Promise.all(
      users.flatMap((user, i) => [a, b].map((replica, j) => replica.api.launch(j === 0 ? 'xterm' : 'xclock', user).then((s) => ({ s, via: (i + j) % 2 })))),
    );
    const started = burst.filter(({ s }) => s.status === 'creating' || s.status === 'running');
    assert.equal(started.length, 3, `3 started, got ${started.length}`);
    assert.equal(burst.filter(({ s }) => s.status === 'queued').length, 9);
    assert.equal(runner.fake.workloads.peak, 3, 'never more than 3 workloads at once');
    const over = await Promise.all([a.api.request('POST', '/api/sessions', { app_id: 'xterm', user_id: 'u1' }), b.api.request('POST', '/api/sessions', { app_id: 'xterm', user_id: 'u1' })]);
    assert.deepEqual(
      over.map((r) => r.status),
      [429, 429],
      'a third session of one user is refused through either replica',
    );
  });

  test('queued sessions start in arrival order whichever replica frees room', async () => {
    const queued = await b.api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=queued&limit=200');
    const order = queued.body.sessions.sort((x, y) => x.queue_position! - y.queue_position!).map((s) => s.id);
    assert.equal(order.length, 9);
    const launchedBefore = runner.fake.workloads.launched.length;
    for (let i = 0; i < order.length; i++) {
      // End one starting session through one replica, then the other: the next in line starts.
      const live = await a.api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=creating&limit=200');
      assert.ok(live.body.sessions.length <= 3, `at most 3 starting, got ${live.body.sessions.length}`);
      const ender = i % 2 === 0 ? a : b;
      const res = await ender.api.end(live.body.sessions[0]!.id);
      assert.equal(res.status, 200);
      await ender.api.waitFor(order[i]!, ['creating']);
    }
    assert.deepEqual(runner.fake.workloads.launched.slice(launchedBefore), order, 'started in the order they arrived');
    assert.ok(runner.fake.workloads.peak <= 3, `peak ${runner.fake.workloads.peak}`);
  });
});

describe('launch progress across two replicas', () => {
  // Starts are held in `creating` until the test says so. B's watch hears each pod change
  // 200 ms after A's and stamps the steps with its own clock, as two replicas watching one
  // namespace do: the steps shown must be the same through either replica all the same.
  const runner = new SharedRunner({ events: 'manual' });
  let a: TestSortie;
  let b: TestSortie;
  let cleanup: () => Promise<void>;
  before(async () => {
    ({ a, b, cleanup } = await twoReplicas('replicas-progress', { SORTIE_MAX_SESSIONS: '1' }, runner, { lagMs: 200 }));
  });
  after(() => cleanup?.());

  const steps = (s: Session) => s.progress?.map((p) => `${p.step} ${p.ended_at === null ? 'under way' : 'done'}`) ?? null;

  test('a launch through one replica shows the same steps through the other while it waits and while it starts', async () => {
    const first = await a.api.launch('xterm', 'alice');
    assert.equal(first.status, 'creating');
    const made = await a.api.launch('xclock', 'alice');
    assert.equal(made.status, 'queued', 'the only place is taken');

    const queuedViaA = await a.api.session(made.id);
    assert.deepEqual(steps(queuedViaA), ['queued under way']);
    assert.deepEqual((await b.api.session(made.id)).progress, queuedViaA.progress, 'the other replica shows the wait in the queue');

    assert.equal((await a.api.end(first.id)).status, 200);
    await a.api.waitFor(made.id, 'creating');
    const scheduledAt = new Date();
    runner.fake.progress(made.id, 'scheduling', scheduledAt);
    runner.fake.progress(made.id, 'pulling', new Date(scheduledAt.getTime() + 1000));
    const viaA = await waitFor(
      async () => {
        const s = await a.api.session(made.id);
        return s.progress?.length === 3 && s;
      },
      { what: 'three launch steps through the first replica' },
    );
    assert.deepEqual(steps(viaA), ['queued done', 'scheduling done', 'pulling under way']);
    // Once the other replica's watch has seen both steps too (it writes nothing of its own).
    await new Promise((resolve) => setTimeout(resolve, 400));
    const viaB = await b.api.session(made.id);
    assert.equal(viaB.status, 'creating');
    assert.deepEqual(viaB.progress, viaA.progress, 'the same steps, begun at the same times, through either replica');
    assert.deepEqual((await a.api.session(made.id)).progress, viaA.progress, 'the first replica still shows what it showed');
    const listedViaB = await b.api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=creating');
    assert.deepEqual(listedViaB.body.sessions.find((s) => s.id === made.id)?.progress, viaA.progress, "the other replica's list shows them too");

    runner.fake.ready(made.id);
    await b.api.waitFor(made.id, 'running');
    assert.equal((await b.api.session(made.id)).progress, null, 'a running session has no launch steps, through either replica');
    assert.equal((await a.api.session(made.id)).progress, null);
  });
});
