import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseQuantity } from './quantity.js';

test('parses CPU quantities in cores', () => {
  assert.equal(parseQuantity('500m'), 0.5);
  assert.equal(parseQuantity('2'), 2);
  assert.equal(parseQuantity('0.25'), 0.25);
  assert.equal(parseQuantity('100m'), 0.1);
});

test('parses memory quantities in bytes, binary and decimal', () => {
  assert.equal(parseQuantity('512Mi'), 512 * 2 ** 20);
  assert.equal(parseQuantity('2Gi'), 2 * 2 ** 30);
  assert.equal(parseQuantity('1.5Gi'), 1.5 * 2 ** 30);
  assert.equal(parseQuantity('1G'), 1e9);
  assert.equal(parseQuantity('128k'), 128_000);
  assert.equal(parseQuantity('1e3'), 1000);
});

test('rejects what the API server would reject', () => {
  for (const bad of ['', '2 Gi', '2GB', 'Gi', '1.2.3', 'two', '512mi', '-', '0x10']) {
    assert.equal(parseQuantity(bad), undefined, `"${bad}" should not parse`);
  }
});
