import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatDuration, stepLines } from './launchProgress';

test('durations read as seconds, then minutes and seconds', () => {
  assert.equal(formatDuration(0), '0 s');
  assert.equal(formatDuration(42.9), '42 s');
  assert.equal(formatDuration(65), '1 min 05 s');
  assert.equal(formatDuration(600), '10 min 00 s');
  assert.equal(formatDuration(-3), '0 s', 'a server clock ahead of ours never shows a negative time');
  assert.equal(formatDuration(Number.NaN), '0 s');
});

test('finished steps show what they took, the step under way counts up to now', () => {
  const t0 = Date.parse('2024-05-01T10:00:00.000Z');
  const at = (ms: number) => new Date(t0 + ms).toISOString();
  const progress = [
    { step: 'scheduling' as const, label: 'Waiting for a node', started_at: at(0), ended_at: at(1_400) },
    { step: 'pulling' as const, label: 'Preparing the app', started_at: at(1_400), ended_at: at(73_400) },
    { step: 'starting' as const, label: 'Starting the desktop', started_at: at(73_400), ended_at: null },
  ];
  assert.deepEqual(stepLines(progress, t0 + 80_000), [
    { step: 'scheduling', label: 'Waiting for a node', current: false, duration: '1 s' },
    { step: 'pulling', label: 'Preparing the app', current: false, duration: '1 min 12 s' },
    { step: 'starting', label: 'Starting the desktop', current: true, duration: '6 s' },
  ]);
  assert.equal(stepLines(progress, t0 + 90_000)[2]!.duration, '16 s', 'live');
  assert.equal(stepLines(progress, t0 + 90_000)[1]!.duration, '1 min 12 s', 'finished steps stay as they were');
  assert.deepEqual(stepLines(null, t0), []);
});
