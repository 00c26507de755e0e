import assert from 'node:assert/strict';
import { test } from 'node:test';
import { canTransition, type SessionStatus } from './session.js';

const all: SessionStatus[] = ['queued', 'creating', 'running', 'failed', 'terminated'];

test('a session moves creating → running → terminated, or fails', () => {
  assert.ok(canTransition('creating', 'running'));
  assert.ok(canTransition('creating', 'failed'));
  assert.ok(canTransition('creating', 'terminated'));
  assert.ok(canTransition('running', 'terminated'));
  assert.ok(canTransition('running', 'failed'));
});

test('a queued session starts (creating), or is ended or failed while it waits; it never skips creating', () => {
  assert.ok(canTransition('queued', 'creating'));
  assert.ok(canTransition('queued', 'terminated'));
  assert.ok(canTransition('queued', 'failed'));
  assert.equal(canTransition('queued', 'running'), false);
});

test('nothing goes back to queued, creating or running', () => {
  for (const from of all) {
    assert.equal(canTransition(from, 'queued'), false, `${from} → queued`);
    if (from !== 'queued') assert.equal(canTransition(from, 'creating'), false, `${from} → creating`);
    if (from !== 'creating') assert.equal(canTransition(from, 'running'), false, `${from} → running`);
  }
});

test('failed and terminated are final', () => {
  for (const to of all) {
    assert.equal(canTransition('failed', to), false);
    assert.equal(canTransition('terminated', to), false);
  }
});
