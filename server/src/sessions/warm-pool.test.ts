import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appSchema, type App } from '../catalog/app.js';
import { planRefill, poolDefinition, poolToYield, type PooledSession, type Room } from './warm-pool.js';

const app = (id: string, extra: Record<string, unknown> = {}): App => appSchema.parse({ id, name: id, launch_type: 'container', command: [id], ...extra });

const roomy: Room = { liveByApp: new Map(), maxSessions: Infinity, starting: 0, maxStarting: Infinity, queued: 0 };

function pooledOf(a: App, id: string, status: PooledSession['status'] = 'running'): PooledSession {
  return { id, app_id: a.id, pool_definition: poolDefinition(a), status };
}

function live(...sessions: PooledSession[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const s of sessions) counts.set(s.app_id, (counts.get(s.app_id) ?? 0) + 1);
  return counts;
}

test("an app's definition digest ignores the pool's size and the session limit, and nothing else", () => {
  const base = app('xterm', { warm_pool: 2 });
  assert.equal(poolDefinition(base), poolDefinition({ ...base, warm_pool: 5, max_sessions: 3 }));
  assert.equal(poolDefinition(base), poolDefinition(app('xterm', { warm_pool: 2 })), 'the same definition gives the same digest');
  for (const changed of [{ command: ['xterm', '-bg', 'red'] }, { container_image: 'other:1' }, { clipboard: 'none' }, { name: 'Other' }]) {
    assert.notEqual(poolDefinition(base), poolDefinition({ ...base, ...changed } as App), JSON.stringify(changed));
  }
});

test('an empty pool fills to its size, one session per app in turn', () => {
  const a = app('a', { warm_pool: 2 });
  const b = app('b', { warm_pool: 1 });
  const plan = planRefill([a, b, app('c')], [], roomy);
  assert.deepEqual(plan.end, []);
  assert.deepEqual(plan.start.map((s) => s.id), ['a', 'b', 'a']);
});

test('a full pool, starting ones included, starts nothing', () => {
  const a = app('a', { warm_pool: 2 });
  const pooled = [pooledOf(a, '1'), pooledOf(a, '2', 'creating')];
  assert.deepEqual(planRefill([a], pooled, { ...roomy, liveByApp: live(...pooled) }), { end: [], start: [] });
});

test('sessions of an older definition, a removed app or a pool switched off end and are replaced', () => {
  const a = app('a', { warm_pool: 1 });
  const edited = { ...a, command: ['a', '--new'] };
  const off = app('off');
  const pooled = [pooledOf(a, 'old'), pooledOf(app('gone', { warm_pool: 1 }), 'gone'), pooledOf(app('off', { warm_pool: 1 }), 'off')];
  const plan = planRefill([edited, off], pooled, { ...roomy, liveByApp: live(...pooled) });
  assert.deepEqual(plan.end.map((e) => e.id).sort(), ['gone', 'off', 'old']);
  assert.match(plan.end.find((e) => e.id === 'old')!.reason, /changed/);
  assert.deepEqual(plan.start.map((s) => s.id), ['a']);
});

test('a pool made smaller ends starting sessions first, then the newest ready ones', () => {
  const a = app('a', { warm_pool: 1 });
  const pooled = [pooledOf(a, 'oldest'), pooledOf(a, 'newer'), pooledOf(a, 'starting', 'creating')];
  const plan = planRefill([a], pooled, { ...roomy, liveByApp: live(...pooled) });
  assert.deepEqual(plan.end.map((e) => e.id), ['starting', 'newer']);
  assert.deepEqual(plan.start, []);
});

test('a pool grows only into room nobody waits for', () => {
  const a = app('a', { warm_pool: 3 });
  // SORTIE_MAX_SESSIONS: 4 with 2 of other apps live leaves room for 2.
  assert.equal(planRefill([a], [], { ...roomy, liveByApp: new Map([['x', 2]]), maxSessions: 4 }).start.length, 2);
  // A queued launch takes any room first.
  assert.equal(planRefill([a], [], { ...roomy, queued: 1 }).start.length, 0);
  // The runner's start limit, and the app's own max_sessions.
  assert.equal(planRefill([a], [], { ...roomy, starting: 1, maxStarting: 2 }).start.length, 1);
  assert.equal(planRefill([{ ...a, max_sessions: 2 }], [], { ...roomy, liveByApp: new Map([['a', 1]]) }).start.length, 1);
  // Room freed by the sessions the same pass ends counts.
  const edited = { ...a, command: ['a', '2'] };
  const pooled = [pooledOf(a, '1'), pooledOf(a, '2')];
  const plan = planRefill([edited], pooled, { ...roomy, liveByApp: live(...pooled), maxSessions: 2 });
  assert.equal(plan.end.length, 2);
  assert.equal(plan.start.length, 2);
});

test('pooled sessions give their place to queued launches: any app for SORTIE_MAX_SESSIONS, the same app for its max_sessions', () => {
  const a = app('a');
  const b = app('b');
  const pooled = [pooledOf(a, 'a1'), pooledOf(a, 'a2'), pooledOf(b, 'b1'), pooledOf(b, 'b2', 'creating')];
  assert.deepEqual(poolToYield(pooled, 0, new Map()), []);
  assert.deepEqual(poolToYield(pooled, 1, new Map()), ['b2'], 'a starting one first');
  assert.deepEqual(poolToYield(pooled, 2, new Map()), ['b2', 'b1'], 'then the newest');
  assert.deepEqual(poolToYield(pooled, 0, new Map([['a', 1]])), ['a2']);
  assert.deepEqual(poolToYield(pooled, 1, new Map([['a', 1]])).sort(), ['a2', 'b2']);
  assert.equal(poolToYield(pooled, 10, new Map()).length, 4, 'no more than there are');
});
