import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clipboardDirections, shouldSendToSession } from './clipboardPolicy';

test('each clipboard setting opens exactly its directions', () => {
  assert.deepEqual(clipboardDirections('both'), { toSession: true, fromSession: true });
  assert.deepEqual(clipboardDirections('to_session'), { toSession: true, fromSession: false });
  assert.deepEqual(clipboardDirections('from_session'), { toSession: false, fromSession: true });
  assert.deepEqual(clipboardDirections('none'), { toSession: false, fromSession: false });
});

test('the page sends its clipboard only when it holds something new', () => {
  assert.equal(shouldSendToSession('hello', null), true);
  assert.equal(shouldSendToSession('hello', 'hello'), false, 'the session’s own copy is not echoed back');
  assert.equal(shouldSendToSession('', null), false);
  assert.equal(shouldSendToSession('héllo €', 'hello'), true);
});
