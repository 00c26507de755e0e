import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { IdleSweep, type IntervalClock } from './idle-sweep.js';

/** A clock whose interval fires when the test says so. */
function manualClock(): IntervalClock & { tick: () => void; armed: () => boolean; everyMs: () => number | undefined } {
  let callback: (() => void) | undefined;
  let ms: number | undefined;
  return {
    setInterval(cb, every) {
      callback = cb;
      ms = every;
      return 'handle';
    },
    clearInterval(handle) {
      assert.equal(handle, 'handle');
      callback = undefined;
    },
    tick: () => callback?.(),
    armed: () => callback !== undefined,
    everyMs: () => ms,
  };
}

const silent = pino({ level: 'silent' });

test('each tick records watched sessions first, then ends the idle ones', async () => {
  const calls: string[] = [];
  const clock = manualClock();
  const sweep = new IdleSweep({
    sessions: {
      touch: async (ids) => void calls.push(`touch ${ids.join(',')}`),
      expireIdle: async () => (calls.push('expire'), 2),
    },
    watched: () => ['a', 'b'],
    intervalMs: 300_000,
    logger: silent,
    clock,
  });
  sweep.start();
  assert.equal(clock.everyMs(), 300_000);
  assert.equal(await sweep.sweep(), 2);
  assert.deepEqual(calls, ['touch a,b', 'expire']);
  clock.tick();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['touch a,b', 'expire', 'touch a,b', 'expire']);
  sweep.stop();
  assert.equal(clock.armed(), false);
});

test('a sweep asked for while one runs joins it instead of stacking', async () => {
  let release!: () => void;
  let expires = 0;
  const sweep = new IdleSweep({
    sessions: {
      touch: () => new Promise<void>((r) => (release = r)),
      expireIdle: async () => ++expires,
    },
    watched: () => [],
    intervalMs: 1000,
    logger: silent,
    clock: manualClock(),
  });
  const first = sweep.sweep();
  const second = sweep.sweep();
  release();
  assert.deepEqual(await Promise.all([first, second]), [1, 1]);
  assert.equal(expires, 1);
});

test('a failing sweep is logged and the next one runs', async () => {
  let fail = true;
  const logged: string[] = [];
  const logger = pino({ level: 'error' }, { write: (line: string) => void logged.push(JSON.parse(line).msg) });
  const sweep = new IdleSweep({
    sessions: {
      touch: async () => {
        if (fail) throw new Error('database is locked');
      },
      expireIdle: async () => 1,
    },
    watched: () => [],
    intervalMs: 1000,
    logger,
    clock: manualClock(),
  });
  assert.equal(await sweep.sweep(), 0);
  assert.deepEqual(logged, ['session cleanup failed']);
  fail = false;
  assert.equal(await sweep.sweep(), 1);
});
