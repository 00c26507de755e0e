import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import { vncPasswordFile } from './vnc-password.js';

test('the password file holds what vncpasswd -f writes (8 bytes; only the first 8 characters count)', () => {
  // Written by TigerVNC's `printf 'secret12\n' | vncpasswd -f | xxd -p`.
  assert.equal(vncPasswordFile('secret12').toString('hex'), '24b5ae4ce15503c6');
  assert.equal(vncPasswordFile('secret12-and-more').toString('hex'), '24b5ae4ce15503c6');
  assert.notEqual(vncPasswordFile('secret13').toString('hex'), '24b5ae4ce15503c6');
});

test("agrees with TigerVNC's own vncpasswd (installed with Xvnc) for another password", () => {
  const expected = execFileSync('vncpasswd', ['-f'], { input: 'Zq7-x!9p\n', stdio: ['pipe', 'pipe', 'ignore'] });
  assert.deepEqual(vncPasswordFile('Zq7-x!9p'), expected);
});
