import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { KeyedSerial } from './serial.js';

// Runner events for one session go through a KeyedSerial: a slow first step (a database
// lookup that answers late) must still finish before the second one starts.

test('steps with one key run in the order asked, even when the first is the slower one', async () => {
  const serial = new KeyedSerial();
  const done: string[] = [];
  await Promise.all([
    serial.run('a', async () => { await sleep(30); done.push('a1'); }),
    serial.run('a', async () => { done.push('a2'); }),
  ]);
  assert.deepEqual(done, ['a1', 'a2']);
});

test('steps with different keys do not wait for each other', async () => {
  const serial = new KeyedSerial();
  const done: string[] = [];
  await Promise.all([
    serial.run('a', async () => { await sleep(30); done.push('a'); }),
    serial.run('b', async () => { done.push('b'); }),
  ]);
  assert.deepEqual(done, ['b', 'a']);
});

test('a failed step does not stop the next, and a drained key is forgotten', async () => {
  const serial = new KeyedSerial();
  const failed = serial.run('a', async () => { throw new Error('boom'); });
  const next = serial.run('a', async () => 'ran');
  await assert.rejects(failed, /boom/);
  assert.equal(await next, 'ran');
  await sleep(0);
  assert.equal(serial.size, 0);
});
