import assert from 'node:assert/strict';
import { test } from 'node:test';
import { InputError } from '../errors.js';
import { MAX_PATH_LENGTH, parseHomePath } from './session-files.js';

test('paths inside the home become plain names', () => {
  assert.deepEqual(parseHomePath('docs/report.pdf', { allowHome: false }), ['docs', 'report.pdf']);
  assert.deepEqual(parseHomePath('./docs//deep/', { allowHome: true }), ['docs', 'deep']);
  assert.deepEqual(parseHomePath('', { allowHome: true }), []);
  assert.deepEqual(parseHomePath(undefined, { allowHome: true }), []);
  // Names that only look odd are names: the query string was decoded once, not twice.
  assert.deepEqual(parseHomePath('%2e%2e/..x/x..', { allowHome: false }), ['%2e%2e', '..x', 'x..']);
  assert.deepEqual(parseHomePath('résumé €.txt', { allowHome: false }), ['résumé €.txt']);
});

test('escapes and malformed paths are refused with a message naming the rule', () => {
  const refused = (raw: unknown, pattern: RegExp, allowHome = false) =>
    assert.throws(() => parseHomePath(raw, { allowHome }), (err: Error) => err instanceof InputError && pattern.test(err.message), String(raw));
  refused('..', /"\.\." is not allowed/, true);
  refused('docs/../../etc/passwd', /"\.\." is not allowed/);
  refused('/etc/passwd', /not absolute/);
  refused('a\0b', /NUL/);
  refused(['a', 'b'], /once/);
  refused('x'.repeat(MAX_PATH_LENGTH + 1), /longer than/);
  refused(`${'é'.repeat(128)}`, /longer than 255 bytes/);
  refused('', /home folder itself/);
  refused(undefined, /Give the file's path/);
});
