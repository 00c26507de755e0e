import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import pino from 'pino';
import type { Principal } from '../auth/principal.js';
import { CloseCode } from './close-codes.js';
import { StreamSignIns, type SignedInStream } from './stream-sign-ins.js';

type Active = { userId: string; role: Principal['role'] } | undefined;

function stream(viewer: Principal | undefined, asAdmin = false): SignedInStream & { closedWith: Array<[number, string]> } {
  const closedWith: Array<[number, string]> = [];
  return { ...(viewer ? { viewer } : {}), asAdmin, closedWith, close: (code, reason) => void closedWith.push([code, reason]) };
}

const alice = (loginId: string): Principal => ({ userId: 'alice', username: 'alice', role: 'user', loginId });

test('the timer asks once per distinct sign-in and closes only the streams of sign-ins that no longer hold', async () => {
  const signIns = new Map<string, Active>([
    ['phone', { userId: 'alice', role: 'user' }],
    ['laptop', { userId: 'alice', role: 'user' }],
  ]);
  const asked: string[] = [];
  const streams = [stream(alice('phone')), stream(alice('phone')), stream(alice('laptop')), stream({ userId: 'anonymous', username: 'anonymous', role: 'admin' }, true)];
  const checks = new StreamSignIns({
    streams: () => streams,
    signIn: async (id) => (asked.push(id), signIns.get(id)),
    logger: pino({ level: 'silent' }),
    intervalMs: 50,
  });
  checks.start();
  try {
    await sleep(120);
    assert.ok(asked.length >= 2);
    assert.ok(streams.every((s) => s.closedWith.length === 0), 'every sign-in holds');
    // Signed out elsewhere (another replica): only the timer hears of it here.
    signIns.set('phone', undefined);
    asked.length = 0;
    await sleep(120);
    assert.deepEqual(new Set(asked), new Set(['phone', 'laptop']));
    assert.equal(asked.filter((id) => id === 'phone').length, asked.filter((id) => id === 'laptop').length, 'one question per sign-in per check');
    assert.equal(streams[0]!.closedWith[0]?.[0], CloseCode.Unauthorized);
    assert.match(streams[0]!.closedWith[0]![1], /sign in again/);
    assert.equal(streams[1]!.closedWith[0]?.[0], CloseCode.Unauthorized);
    assert.deepEqual(streams[2]!.closedWith, [], 'the other sign-in keeps its stream');
    assert.deepEqual(streams[3]!.closedWith, [], 'a stream without a sign-in (sign-in off) is never checked');
  } finally {
    checks.close();
  }
});

test('an admin watching someone else’s session must still be an admin; the same user on their own session need not be', async () => {
  const wendy: Principal = { userId: 'wendy', username: 'wendy', role: 'admin', loginId: 'w1' };
  const watching = stream(wendy, true);
  const own = stream(wendy, false);
  const checks = new StreamSignIns({ streams: () => [watching, own], signIn: async () => ({ userId: 'wendy', role: 'user' }), logger: pino({ level: 'silent' }) });
  await checks.checkNow();
  assert.equal(watching.closedWith[0]?.[0], CloseCode.Unauthorized);
  assert.match(watching.closedWith[0]![1], /no longer an administrator/);
  assert.deepEqual(own.closedWith, []);
});

test('a database error is logged as a warning and closes nothing', async () => {
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  const s = stream(alice('phone'));
  const checks = new StreamSignIns({ streams: () => [s], signIn: async () => Promise.reject(new Error('connection refused')), logger });
  await checks.checkNow();
  assert.deepEqual(s.closedWith, []);
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!.level, 40);
  assert.match(lines[0]!.msg, /closing none/);
});

test('a check asked for while one runs runs again afterwards, so a change made mid-check is not missed until the next interval', async () => {
  let holds = true;
  let release: (() => void) | undefined;
  const s = stream(alice('phone'));
  const checks = new StreamSignIns({
    streams: () => [s],
    signIn: async () => {
      const answer: Active = holds ? { userId: 'alice', role: 'user' } : undefined;
      if (!release) await new Promise<void>((r) => (release = r));
      return answer;
    },
    logger: pino({ level: 'silent' }),
  });
  const first = checks.checkNow();
  await sleep(10);
  holds = false; // signed out while the first check waited on the database
  const second = checks.checkNow();
  release!();
  await Promise.all([first, second]);
  assert.equal(s.closedWith[0]?.[0], CloseCode.Unauthorized);
});
