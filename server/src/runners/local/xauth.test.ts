import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, statSync, symlinkSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { writePrivateFile } from './state-file.js';
import { COOKIE_NAME, newCookie, xauthorityEntry } from './xauth.js';

test('an entry is the Xauthority binary format: wild family, display number, cookie name and data', () => {
  const cookie = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const entry = xauthorityEntry(104, cookie);
  const expected = Buffer.concat([
    Buffer.from([0xff, 0xff, 0, 0, 0, 3]),
    Buffer.from('104'),
    Buffer.from([0, COOKIE_NAME.length]),
    Buffer.from(COOKIE_NAME),
    Buffer.from([0, 16]),
    cookie,
  ]);
  assert.deepEqual(entry, expected);
  assert.throws(() => xauthorityEntry(-1, cookie), /Not a display number/);
});

test('cookies are 16 random bytes, different each time', () => {
  const a = newCookie();
  assert.equal(a.length, 16);
  assert.notDeepEqual(a, newCookie());
});

test('xauth reads the written file, which only its owner may read, and a planted file is not overwritten', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-xauth-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'auth');
  const cookie = newCookie();
  writePrivateFile(file, xauthorityEntry(123, cookie));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const listed = execFileSync('xauth', ['-f', file, 'list'], { encoding: 'utf8' }).trim();
  assert.match(listed, new RegExp(`:123\\s+${COOKIE_NAME}\\s+${cookie.toString('hex')}$`));

  const target = path.join(dir, 'elsewhere');
  writeFileSync(target, 'keep');
  const planted = path.join(dir, 'planted');
  symlinkSync(target, planted);
  assert.throws(() => writePrivateFile(planted, xauthorityEntry(1, cookie)), { code: 'EEXIST' });
});
