import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SEEK_STEP_MS, seekSlider } from './seekSlider';

test('the slider reaches the recording’s end even when its length is not a whole number of steps', () => {
  assert.equal(SEEK_STEP_MS, 100);
  assert.deepEqual(seekSlider(14_136, 14_136), { max: 14_200, value: 14_200 }, 'at the end, the slider is at its end');
  assert.deepEqual(seekSlider(20_000, 14_136), { max: 14_200, value: 14_200 });
  assert.deepEqual(seekSlider(0, 14_200), { max: 14_200, value: 0 });
  assert.deepEqual(seekSlider(0, 0), { max: 0, value: 0 });
});

test('before the end, the value is the nearest step, as the browser would show it', () => {
  for (const [time, value] of [
    [7_000, 7_000],
    [7_049, 7_000],
    [7_050, 7_100],
    [14_120, 14_100],
    [14_135, 14_100],
  ] as const) {
    const slider = seekSlider(time, 14_136);
    assert.equal(slider.value, value, `at ${time} ms`);
    assert.equal(slider.value % SEEK_STEP_MS, 0, 'always on a step');
    assert.ok(slider.value <= slider.max);
  }
});
