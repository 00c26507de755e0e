import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import WebSocket from 'ws';
import type { Session, SessionStatus } from '../src/sessions/session.js';
import { CloseCode } from '../src/stream/close-codes.js';
import type { Api } from './support/api.js';
import { FakeRunner, FakeWorkloads } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// SORTIE_MAX_SESSIONS_PER_USER, SORTIE_MAX_SESSIONS and an app's max_sessions, through the
// real HTTP API, session service and SQLite file. Most tests use a runner without processes
// (FakeRunner) so hundreds of launches take seconds; the last one uses the real local runner.

const APPS = [
  { id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] },
  { id: 'xclock', name: 'XClock', launch_type: 'container', command: ['xclock'] },
  { id: 'single', name: 'Single', launch_type: 'container', command: ['xeyes'], max_sessions: 1 },
];

async function bootFake(name: string, env: Record<string, string>, runner: FakeRunner, dir?: string): Promise<{ sortie: TestSortie; api: Api }> {
  const sortie = await startTestSortie({ name, env, apps: APPS, runner, ...(dir ? { dir } : {}) });
  return { sortie, api: sortie.api };
}

async function launch(api: Api, appId: string, userId: string): Promise<Session> {
  return api.launch(appId, userId);
}

async function end(api: Api, id: string): Promise<Session> {
  const res = await api.request<Session>('DELETE', `/api/sessions/${id}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body;
}

/** Polls until the session has one of `wanted`; anything final that was not wanted fails the test. */
const waitForStatus = (api: Api, id: string, wanted: SessionStatus | SessionStatus[], ms = 30_000): Promise<Session> => api.waitFor(id, wanted, ms);

const STARTED: SessionStatus[] = ['creating', 'running'];

async function places(api: Api): Promise<Array<[string, number | null]>> {
  // The largest page: these tests queue up to 200 sessions.
  const res = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=queued&limit=200');
  assert.equal(res.status, 200);
  return res.body.sessions.map((s) => [s.id, s.queue_position] as [string, number | null]).sort((a, b) => a[1]! - b[1]!);
}

describe('SORTIE_MAX_SESSIONS_PER_USER', () => {
  let sortie: TestSortie;
  let api: Api;
  before(async () => {
    ({ sortie, api } = await bootFake('limits-user', {}, new FakeRunner()));
  });
  after(() => sortie?.cleanup());

  test('the default is 3: a fourth live session answers 429 with Retry-After and a message naming the limit and the way out', async () => {
    const own = [await launch(api, 'xterm', 'alice'), await launch(api, 'xclock', 'alice'), await launch(api, 'xterm', 'alice')];
    for (const s of own) assert.ok(STARTED.includes(s.status), s.status);

    const res = await api.request<{ error: string; message: string }>('POST', '/api/sessions', { app_id: 'xterm', user_id: 'alice' });
    assert.equal(res.status, 429);
    const retryAfter = Number(res.headers['retry-after']);
    assert.ok(Number.isInteger(retryAfter) && retryAfter > 0, `Retry-After: ${res.headers['retry-after']}`);
    const body = res.body;
    assert.equal(body.error, 'too_many_requests');
    assert.match(body.message, /the limit is 3 per user \(SORTIE_MAX_SESSIONS_PER_USER\)/);
    assert.match(body.message, /End a session/);
    // Launched by an admin for alice (with sign-in off everyone is one), it counts against alice.
    assert.match(body.message, /User "alice" has 3 sessions/);

    // Nothing was created by the refusal, and someone else is not affected.
    const mine = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?user_id=alice');
    assert.equal(mine.body.sessions.length, 3);
    assert.ok(STARTED.includes((await launch(api, 'xterm', 'bob')).status));

    // Ending one makes room again.
    await end(api, own[0]!.id);
    const again = await launch(api, 'xterm', 'alice');
    assert.ok(STARTED.includes(again.status));
    for (const s of [own[1]!, own[2]!, again]) await end(api, s.id);
  });

  test('twenty launches at once by one user: exactly the limit get in', async () => {
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => api.request<Session>('POST', '/api/sessions', { app_id: 'xclock', user_id: 'carol' })),
    );
    const statuses = answers.map((a) => a.status).sort();
    assert.deepEqual(statuses, [...Array(3).fill(201), ...Array(17).fill(429)]);
    for (const a of answers) if (a.status === 201) await end(api, a.body.id);
  });
});

describe('SORTIE_MAX_SESSIONS: the launch queue', () => {
  let sortie: TestSortie;
  let api: Api;
  let runner: FakeRunner;
  before(async () => {
    runner = new FakeRunner();
    ({ sortie, api } = await bootFake('limits-global', { SORTIE_MAX_SESSIONS: '2' }, runner));
  });
  after(() => sortie?.cleanup());

  test('over the limit a session is queued with its place, and starts by itself, in arrival order, when room frees up', async () => {
    const s1 = await launch(api, 'xterm', 'u1');
    const s2 = await launch(api, 'xterm', 'u2');
    const s3 = await launch(api, 'xclock', 'u3');
    const s4 = await launch(api, 'xterm', 'u4');
    const s5 = await launch(api, 'xterm', 'u5');
    assert.ok(STARTED.includes(s1.status) && STARTED.includes(s2.status), `${s1.status} ${s2.status}`);
    assert.equal(s1.queue_position, null);
    assert.deepEqual([s3, s4, s5].map((s) => [s.status, s.queue_position]), [['queued', 1], ['queued', 2], ['queued', 3]]);
    assert.equal((await api.session(s4.id)).queue_position, 2);
    assert.deepEqual(await places(api), [[s3.id, 1], [s4.id, 2], [s5.id, 3]]);
    await waitForStatus(api, s1.id, 'running');

    await end(api, s1.id);
    await waitForStatus(api, s3.id, 'running');
    assert.equal((await api.session(s3.id)).queue_position, null);
    assert.deepEqual(await places(api), [[s4.id, 1], [s5.id, 2]]);

    // Ending a queued session takes it out of the queue; the ones behind it move up.
    const ended = await end(api, s4.id);
    assert.deepEqual([ended.status, ended.queue_position], ['terminated', null]);
    assert.match(ended.reason ?? '', /Ended by/);
    assert.deepEqual(await places(api), [[s5.id, 1]]);

    await end(api, s2.id);
    await waitForStatus(api, s5.id, 'running');
    assert.deepEqual(await places(api), []);
    assert.deepEqual(runner.workloads.launched, [s1.id, s2.id, s3.id, s5.id], 'a session ended while queued never started');
    for (const s of [s3, s5]) await end(api, s.id);
  });

  test('the list filter accepts queued, and the stream of a queued session says it is not running yet', async () => {
    const a = await launch(api, 'xterm', 'v1');
    const b = await launch(api, 'xterm', 'v2');
    const c = await launch(api, 'xterm', 'v3');
    assert.equal(c.status, 'queued');
    const listed = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=queued');
    assert.deepEqual(listed.body.sessions.map((s) => s.id), [c.id]);
    const bad = await api.request<{ message: string }>('GET', '/api/sessions?status=waiting');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /queued, creating, running, failed or terminated/);

    const ws = new WebSocket(sortie.wsUrl(c.websocket_url), 'binary');
    const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
    assert.equal(code, CloseCode.SessionNotRunning);
    assert.match(reason.toString(), /queued \(place 1\)/);
    for (const s of [a, b, c]) await end(api, s.id);
  });
});

describe('an app\'s max_sessions', () => {
  let sortie: TestSortie;
  let api: Api;
  before(async () => {
    ({ sortie, api } = await bootFake('limits-app', {}, new FakeRunner()));
  });
  after(() => sortie?.cleanup());

  test('over it the app\'s sessions queue, other apps pass them, and they start in arrival order', async () => {
    const a = await launch(api, 'single', 'w1');
    const b = await launch(api, 'single', 'w2');
    const other = await launch(api, 'xterm', 'w3');
    const d = await launch(api, 'single', 'w4');
    assert.ok(STARTED.includes(a.status));
    assert.deepEqual([b.status, b.queue_position], ['queued', 1]);
    assert.ok(STARTED.includes(other.status), 'a session of another app is not held up by a full app');
    assert.deepEqual([d.status, d.queue_position], ['queued', 2]);

    await end(api, a.id);
    await waitForStatus(api, b.id, 'running');
    assert.deepEqual(await places(api), [[d.id, 1]]);
    await end(api, b.id);
    await waitForStatus(api, d.id, 'running');
    for (const s of [other, d]) await end(api, s.id);
  });

  test('the admin API validates and keeps max_sessions', async () => {
    const bad = await api.request<{ message: string }>('POST', '/api/apps', { id: 'capped', name: 'Capped', launch_type: 'container', command: ['xterm'], max_sessions: 0 });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /max_sessions/);
    const created = await api.request<{ max_sessions?: number }>('POST', '/api/apps', { id: 'capped', name: 'Capped', launch_type: 'container', command: ['xterm'], max_sessions: 1 });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const listed = await api.request<{ applications: Array<{ id: string; max_sessions?: number }> }>('GET', '/api/apps');
    assert.equal(listed.body.applications.find((x) => x.id === 'capped')?.max_sessions, 1);
    const first = await launch(api, 'capped', 'z1');
    const second = await launch(api, 'capped', 'z2');
    assert.deepEqual([second.status, second.queue_position], ['queued', 1]);
    await end(api, second.id);
    await end(api, first.id);
  });
});

describe('the queue survives a restart', () => {
  const workloads = new FakeWorkloads();
  let first: TestSortie | undefined;
  after(() => first?.cleanup());

  test('queued sessions stay queued in their order, and start after the restart as room frees', async () => {
    let { sortie, api } = await bootFake('limits-restart', { SORTIE_MAX_SESSIONS: '1' }, new FakeRunner({ workloads }));
    first = sortie;
    const a = await launch(api, 'xterm', 'r1');
    const b = await launch(api, 'xterm', 'r2');
    const c = await launch(api, 'xterm', 'r3');
    await waitForStatus(api, a.id, 'running');
    assert.deepEqual(await places(api), [[b.id, 1], [c.id, 2]]);
    await sortie.stop();

    ({ sortie, api } = await bootFake('limits-restart', { SORTIE_MAX_SESSIONS: '1' }, new FakeRunner({ workloads }), first.dir));
    try {
      assert.equal((await api.session(a.id)).status, 'running', 'the running session was adopted');
      assert.deepEqual(await places(api), [[b.id, 1], [c.id, 2]]);
      await end(api, a.id);
      await waitForStatus(api, b.id, 'running');
      assert.deepEqual(await places(api), [[c.id, 1]]);
    } finally {
      await sortie.stop();
    }

    // More room after the restart: the queue moves on its own once reconcile is done.
    ({ sortie, api } = await bootFake('limits-restart', { SORTIE_MAX_SESSIONS: '2' }, new FakeRunner({ workloads }), first.dir));
    try {
      await waitForStatus(api, c.id, 'running');
      assert.equal((await api.session(b.id)).status, 'running');
      assert.deepEqual(workloads.launched, [a.id, b.id, c.id]);
      for (const s of [b, c]) await end(api, s.id);
    } finally {
      await sortie.cleanup();
    }
  });
});

describe('a burst of 200 launches', () => {
  const MAX = 10;
  let sortie: TestSortie;
  let api: Api;
  let runner: FakeRunner;
  before(async () => {
    // Each workload takes 20-80 ms to become ready, like a fast pod or a local session.
    runner = new FakeRunner({ startLatencyMs: () => 20 + Math.random() * 60 });
    ({ sortie, api } = await bootFake('limits-burst', { SORTIE_MAX_SESSIONS: String(MAX) }, runner));
  });
  after(() => sortie?.cleanup());

  test('at most SORTIE_MAX_SESSIONS run, the rest queue in order and all start in turn; /healthz keeps answering', async (t) => {
    const latencies: number[] = [];
    let probing = true;
    const probe = (async () => {
      while (probing) {
        const at = performance.now();
        const res = await api.request('GET', '/healthz');
        assert.equal(res.status, 200);
        latencies.push(performance.now() - at);
        await new Promise((r) => setTimeout(r, 10));
      }
    })();

    const burstAt = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 200 }, (_, i) => api.request<Session>('POST', '/api/sessions', { app_id: i % 2 ? 'xterm' : 'xclock', user_id: `burst-${i}` })),
    );
    const burstMs = performance.now() - burstAt;
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [201], 'every launch is accepted');
    const sessions = answers.map((a) => a.body);
    const started = sessions.filter((s) => s.status !== 'queued');
    assert.equal(started.length, MAX, 'the first SORTIE_MAX_SESSIONS start at once');
    const queue = await places(api);
    assert.equal(queue.length, 200 - MAX);
    assert.deepEqual(queue.map(([, place]) => place), Array.from({ length: 200 - MAX }, (_, i) => i + 1));

    // Ending each session once it runs frees room for the next.
    const done = new Set<string>();
    const deadline = Date.now() + 120_000;
    while (done.size < 200 && Date.now() < deadline) {
      const { body } = await api.request<{ sessions: Session[] }>('GET', '/api/sessions?limit=200');
      const live = body.sessions.filter((s) => s.status === 'creating' || s.status === 'running');
      assert.ok(live.length <= MAX, `${live.length} sessions starting or running`);
      const failed = body.sessions.filter((s) => s.status === 'failed');
      assert.deepEqual(failed.map((s) => s.reason), [], 'no session failed');
      for (const s of body.sessions.filter((x) => x.status === 'running')) {
        await end(api, s.id);
        done.add(s.id);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    probing = false;
    await probe;
    assert.equal(done.size, 200, 'every session ran');
    assert.ok(runner.workloads.peak <= MAX, `the runner held ${runner.workloads.peak} workloads at once`);
    const startOrder = runner.workloads.launched;
    assert.equal(startOrder.length, 200);
    assert.deepEqual(startOrder.slice(MAX), queue.map(([id]) => id), 'queued sessions started in arrival order');

    latencies.sort((a, b) => a - b);
    const median = latencies[Math.floor(latencies.length / 2)]!;
    const max = latencies[latencies.length - 1]!;
    t.diagnostic(`200 launches answered in ${burstMs.toFixed(0)} ms; /healthz during the burst and the drain: ${latencies.length} probes, median ${median.toFixed(1)} ms, max ${max.toFixed(1)} ms; runner peak ${runner.workloads.peak} workloads`);
    assert.ok(latencies.length > 0, '/healthz answered during the burst');
  });
});

describe('SORTIE_MAX_SESSIONS=1 on the real local runner', () => {
  let sortie: TestSortie;
  let api: Api;
  let stateDir: string;
  before(async () => {
    sortie = await startTestSortie({ name: 'limits-local', env: { SORTIE_MAX_SESSIONS: '1' } });
    ({ api, stateDir } = sortie);
  });
  after(() => sortie?.cleanup());

  test('the second launch waits queued, then runs once the first ends', async () => {
    const first = await launch(api, 'xterm', 'local-1');
    const second = await launch(api, 'xclock', 'local-2');
    assert.equal(first.status, 'creating');
    assert.deepEqual([second.status, second.queue_position], ['queued', 1]);
    await waitForStatus(api, first.id, 'running');
    assert.deepEqual([(await api.session(second.id)).status], ['queued'], 'it waits while the first runs');
    assert.deepEqual(readdirSync(stateDir).filter((f) => f.endsWith('.json')), [`${first.id}.json`], 'only the first has processes');

    await end(api, first.id);
    await waitForStatus(api, second.id, 'running');
    await end(api, second.id);
    assert.deepEqual(readdirSync(stateDir).filter((f) => f.endsWith('.json')), []);
  });
});
