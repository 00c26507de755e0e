import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canTransition, type SessionStatus } from './session.js';

const all: SessionStatus[] = ['creating', 'running', 'failed', 'terminated'];

test('a session moves creating → running → terminated, or fails', () => {
  assert.ok(canTransition('creating', 'running'));
  assert.ok(canTransition('creating', 'failed'));
  assert.ok(canTransition('creating', 'terminated'));
  assert.ok(canTransition('running', 'terminated'));
  assert.ok(canTransition('running', 'failed'));
});

test('nothing goes back to creating or running', () => {
  for (const from of all) {
    assert.equal(canTransition(from, 'creating'), false, `${from} → creating`);
    if (from !== 'creating') assert.equal(canTransition(from, 'running'), false, `${from} → running`);
  }
});

test('failed and terminated are final', () => {
  for (const to of all) {
    assert.equal(canTransition('failed', to), false);
    assert.equal(canTransition('terminated', to), false);
  }
});
