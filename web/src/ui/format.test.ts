import assert from 'node:assert/strict';
import { test } from 'node:test';
import { elapsedSeconds, formatAbsolute, formatRelative, initial } from './format';

test('initial is the capital first letter of a name, or "?" for a blank one', () => {
  assert.equal(initial('gimp'), 'G');
  assert.equal(initial('  émile'), 'É');
  assert.equal(initial('   '), '?');
  assert.equal(initial(''), '?');
});

test('elapsed seconds never go below zero, even when the server clock runs ahead', () => {
  const start = '2024-05-01T10:00:00.000Z';
  assert.equal(elapsedSeconds(start, Date.parse(start) + 12_900), 12);
  assert.equal(elapsedSeconds(start, Date.parse(start) - 5_000), 0);
  assert.equal(elapsedSeconds('not a date', Date.now()), 0);
});

test('relative times say "just now" for the last few seconds and fall back for bad input', () => {
  const now = Date.parse('2024-05-01T10:00:00.000Z');
  assert.equal(formatRelative('2024-05-01T09:59:55.000Z', now), 'just now');
  assert.notEqual(formatRelative('2024-05-01T09:58:00.000Z', now), 'just now');
  assert.equal(formatRelative('garbage', now), '—');
  assert.equal(formatAbsolute('garbage'), 'garbage');
});
