import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { openDatabase, type Db } from '../db/database.js';
import type { IntervalClock } from '../sessions/idle-sweep.js';
import { AuditLog } from './audit-log.js';
import { AuditRepository, type AuditRow } from './audit-repository.js';

/** A clock whose interval fires when the test says so. */
function manualClock(): IntervalClock & { tick: () => void; armed: () => boolean } {
  let callback: (() => void) | undefined;
  return {
    setInterval: (cb) => ((callback = cb), 'handle'),
    clearInterval: () => (callback = undefined),
    tick: () => callback?.(),
    armed: () => callback !== undefined,
  };
}

/** A logger whose lines the test reads. */
function recordingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line) as { level: number; msg: string }) });
  return { logger, lines };
}

const DAY = 86_400_000;
let db: Db;
let repository: AuditRepository;

before(async () => {
  db = await openDatabase(':memory:');
  repository = new AuditRepository(db);
});

after(() => db.destroy());

const row = (id: string, at: Date): AuditRow => ({
  id,
  at: at.toISOString(),
  actor_type: 'system',
  actor_id: null,
  actor_name: 'system',
  action: 'catalog.load',
  target_type: null,
  target_id: null,
  target_name: null,
  address: null,
  details: '{}',
});

test('start() prunes at once and then on every interval, by the time the clock says', async () => {
  await db.deleteFrom('audit_events').execute();
  let now = new Date('2026-06-01T00:00:00Z');
  const clock = manualClock();
  const audit = new AuditLog({ repository, logger: pino({ level: 'silent' }), retentionDays: 30, now: () => now, clock });
  await repository.insert(row('a', new Date(now.getTime() - 31 * DAY)));
  await repository.insert(row('b', new Date(now.getTime() - 29 * DAY)));
  await audit.start();
  assert.deepEqual((await db.selectFrom('audit_events').select('id').execute()).map((r) => r.id), ['b']);
  assert.ok(clock.armed());

  now = new Date(now.getTime() + 2 * DAY);
  clock.tick();
  await waitUntil(async () => (await db.selectFrom('audit_events').select('id').execute()).length === 0);
  await audit.close();
  assert.ok(!clock.armed(), 'close() stops the timer');
});

test('with retention 0 nothing is pruned and no timer runs', async () => {
  await db.deleteFrom('audit_events').execute();
  const clock = manualClock();
  const audit = new AuditLog({ repository, logger: pino({ level: 'silent' }), retentionDays: 0, clock });
  await repository.insert(row('old', new Date(Date.now() - 10_000 * DAY)));
  await audit.start();
  assert.equal(await audit.prune(), 0);
  assert.ok(!clock.armed());
  assert.equal((await db.selectFrom('audit_events').select('id').execute()).length, 1);
});

test('a write that fails is logged, never thrown, and record() returns before the write', async () => {
  const { logger, lines } = recordingLogger();
  let release: () => void = () => {};
  const failing = {
    insert: () => new Promise<void>((_, reject) => (release = () => reject(new Error('disk full')))),
  } as unknown as AuditRepository;
  const audit = new AuditLog({ repository: failing, logger, retentionDays: 0 });
  assert.doesNotThrow(() => audit.record({ action: 'auth.sign_out', actor: { userId: 'u', username: 'ann', role: 'user', address: '192.0.2.1' } }));
  release();
  await audit.flush();
  const line = lines.find((l) => l.msg === 'could not write an audit event');
  assert.ok(line, 'the failure is logged');
  assert.equal(line.level, 50);
});

test('a burst beyond 1000 waiting writes is dropped and said once, then recording resumes', async () => {
  const { logger, lines } = recordingLogger();
  const waiting: (() => void)[] = [];
  const slow = { insert: () => new Promise<void>((resolve) => waiting.push(resolve)) } as unknown as AuditRepository;
  const audit = new AuditLog({ repository: slow, logger, retentionDays: 0 });
  for (let i = 0; i < 1200; i++) audit.record({ action: 'session.stream_open', actor: 'system' });
  assert.equal(waiting.length, 1000, 'at most 1000 writes wait');
  assert.equal(lines.filter((l) => l.msg.startsWith('the audit log cannot keep up')).length, 1);
  for (const resolve of waiting.splice(0)) resolve();
  await audit.flush();
  audit.record({ action: 'session.stream_close', actor: 'system' });
  assert.equal(waiting.length, 1, 'recording resumes');
  assert.ok(lines.some((l) => l.msg.startsWith('the audit log is keeping up again')));
  waiting[0]!();
  await audit.flush();
});

test('long names and large details are cut; ids sort in recording order within one millisecond', async () => {
  await db.deleteFrom('audit_events').execute();
  const at = new Date('2026-06-01T00:00:00Z');
  const audit = new AuditLog({ repository, logger: pino({ level: 'silent' }), retentionDays: 0, now: () => at });
  audit.record({ action: 'auth.sign_in_failed', actor: { unknownName: 'x'.repeat(5000) }, details: { blob: 'y'.repeat(10_000) } });
  for (let i = 0; i < 20; i++) audit.record({ action: 'catalog.load', actor: 'system', details: { i } });
  await audit.flush();
  const page = await audit.page({}, 100);
  assert.equal(page.events.length, 21);
  const failed = page.events.find((e) => e.action === 'auth.sign_in_failed')!;
  assert.ok(failed.actor_name.length <= 201);
  assert.deepEqual(Object.keys(failed.details), ['truncated', 'bytes']);
  // Newest first: the last recorded comes first although all share one time.
  assert.deepEqual(
    page.events.filter((e) => e.action === 'catalog.load').map((e) => e.details.i),
    Array.from({ length: 20 }, (_, i) => 19 - i),
  );
});

async function waitUntil(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.fail('condition not met within 2 s');
}
