import assert from 'node:assert/strict';
import { test } from 'node:test';
import { breadcrumbs, fileDirections, formatSize, joinPath, parentPath, sortEntries, uploadErrorMessage } from './filePaths';

test('each file_transfer setting opens exactly its directions', () => {
  assert.deepEqual(fileDirections('both'), { upload: true, download: true });
  assert.deepEqual(fileDirections('upload'), { upload: true, download: false });
  assert.deepEqual(fileDirections('download'), { upload: false, download: true });
  assert.deepEqual(fileDirections('none'), { upload: false, download: false });
});

test('paths are relative to the home, which is ""', () => {
  assert.equal(joinPath('', 'a.txt'), 'a.txt');
  assert.equal(joinPath('docs/2024', 'a.txt'), 'docs/2024/a.txt');
  assert.equal(parentPath('docs/2024'), 'docs');
  assert.equal(parentPath('docs'), '');
  assert.equal(parentPath(''), '');
  assert.deepEqual(breadcrumbs(''), [{ name: 'Home', path: '' }]);
  assert.deepEqual(breadcrumbs('docs/2024'), [
    { name: 'Home', path: '' },
    { name: 'docs', path: 'docs' },
    { name: '2024', path: 'docs/2024' },
  ]);
});

test('folders come first, then names in reading order', () => {
  const entry = (name: string, type: 'file' | 'directory') => ({ name, type, size: 0, modified: '' });
  const sorted = sortEntries([entry('b10.txt', 'file'), entry('zeta', 'directory'), entry('B2.txt', 'file'), entry('alpha', 'directory')]);
  assert.deepEqual(
    sorted.map((e) => e.name),
    ['alpha', 'zeta', 'B2.txt', 'b10.txt'],
  );
});

test('sizes read as a file manager shows them', () => {
  assert.equal(formatSize(0), '0 B');
  assert.equal(formatSize(1023), '1023 B');
  assert.equal(formatSize(1536), '1.5 KB');
  assert.equal(formatSize(20 * 1024 * 1024), '20 MB');
  assert.equal(formatSize(-1), '—');
});

test('a refused upload says why in words, with the server’s own detail', () => {
  const limit = 'The file is larger than the upload limit of 1 MiB (SORTIE_MAX_UPLOAD_MB)';
  assert.equal(uploadErrorMessage('big.iso', 413, limit), `“big.iso” is too large to upload (${limit}).`);
  assert.match(uploadErrorMessage('a.txt', 403, 'its app "x" has "file_transfer": "download"'), /does not allow uploads \(its app "x" has "file_transfer": "download"\)/);
  assert.match(uploadErrorMessage('a.txt', 409, null), /cannot be reached now\.$/);
  assert.match(uploadErrorMessage('a.txt', 0, null), /connection to Sortie broke/);
  assert.equal(uploadErrorMessage('a.txt', 500, null), '“a.txt” was not uploaded (HTTP 500).');
});
