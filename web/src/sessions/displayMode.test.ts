import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DEFAULT_DISPLAY_MODE, DISPLAY_MODE_KEY, loadDisplayMode, rfbDisplaySettings, saveDisplayMode } from './displayMode';

test('only "fit to window" resizes the remote desktop; only "scale" scales it; 1:1 does neither', () => {
  assert.deepEqual(rfbDisplaySettings('fit'), { resizeSession: true, scaleViewport: false });
  assert.deepEqual(rfbDisplaySettings('scale'), { resizeSession: false, scaleViewport: true });
  assert.deepEqual(rfbDisplaySettings('real'), { resizeSession: false, scaleViewport: false });
});

test('the choice is remembered in the browser; nothing, junk or a refusing storage give "fit to window"', () => {
  const data = new Map<string, string>();
  const store = { getItem: (k: string) => data.get(k) ?? null, setItem: (k: string, v: string) => void data.set(k, v) };
  assert.equal(DEFAULT_DISPLAY_MODE, 'fit');
  assert.equal(loadDisplayMode(store), 'fit');
  saveDisplayMode(store, 'real');
  assert.equal(data.get(DISPLAY_MODE_KEY), 'real');
  assert.equal(loadDisplayMode(store), 'real');
  data.set(DISPLAY_MODE_KEY, 'huge');
  assert.equal(loadDisplayMode(store), 'fit');
  const refusing = {
    getItem: (): string | null => {
      throw new Error('SecurityError');
    },
    setItem: () => {
      throw new Error('QuotaExceededError');
    },
  };
  assert.equal(loadDisplayMode(refusing), 'fit');
  assert.doesNotThrow(() => saveDisplayMode(refusing, 'scale'));
  assert.equal(loadDisplayMode(undefined), 'fit');
});
