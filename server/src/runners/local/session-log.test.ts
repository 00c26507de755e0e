import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { noteInLog, openSessionLog, tailLog } from './session-log.js';

const dir = mkdtempSync(path.join(tmpdir(), 'sortie-log-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('the tail holds the processes\' last lines without Sortie\'s markers', () => {
  const file = path.join(dir, 'a.log');
  const fd = openSessionLog(file);
  noteInLog(fd, 'starting Xvnc: Xvnc :100');
  writeSync(fd, 'one\n\ntwo  \n');
  noteInLog(fd, 'starting websockify');
  writeSync(fd, 'three\n');
  closeSync(fd);
  assert.equal(tailLog(file), 'one\ntwo\nthree');
  assert.equal(tailLog(file, 2), 'two\nthree');
});

test('a long log is read from its end, dropping the cut-off first line', () => {
  const file = path.join(dir, 'b.log');
  writeFileSync(file, `${'x'.repeat(10_000)}\nlast words\n`);
  assert.equal(tailLog(file, 8, 100), 'last words');
});

test('a missing log gives an empty tail', () => {
  assert.equal(tailLog(path.join(dir, 'none.log')), '');
});
