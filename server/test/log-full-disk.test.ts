import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Api } from './support/api.js';
import { exitOf, spawnSortie } from './support/child.js';
import { scratchDir } from './support/harness.js';
import { waitFor } from './support/wait.js';

// Sortie's log on a disk that fills up: the server keeps answering, and when space returns
// the log resumes and says what it missed. A real (small) tmpfs, a real full disk.

const scratch = scratchDir('log-full-disk');
const disk = path.join(scratch.dir, 'disk');
const logFile = path.join(disk, 'sortie.log');
const filler = path.join(disk, 'filler');
const PASSWORD = 'full-disk-admin-pw-1';

before(() => {
  mkdirSync(disk);
  const mount = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', disk], { encoding: 'utf8' });
  assert.equal(mount.status, 0, `mount a small tmpfs (this test runs as root, like CI): ${mount.stderr}`);
});

after(() => {
  spawnSync('umount', ['-l', disk]);
  scratch.remove();
});

/** Fills the disk until a write fails with ENOSPC, and the log file's last page with newlines. */
function fillDisk(): void {
  const fill = (file: string, chunk: Buffer) => {
    const fd = openSync(file, 'a');
    try {
      for (;;) writeSync(fd, chunk);
    } catch (err) {
      assert.equal((err as NodeJS.ErrnoException).code, 'ENOSPC');
    } finally {
      closeSync(fd);
    }
  };
  fill(filler, Buffer.alloc(4096, 0x61));
  fill(logFile, Buffer.from('\n'));
}

const logText = () => readFileSync(logFile, 'utf8');

test('a full disk under the log neither stops nor slows Sortie, and the log recovers', { timeout: 90_000 }, async () => {
  const out = openSync(logFile, 'a');
  const child = spawnSortie({ SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: PASSWORD, SORTIE_DB_PATH: path.join(scratch.dir, 'data', 'sortie.db') }, { stdout: out });
  closeSync(out);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    const url = await waitFor(() => /"url":"(http:\/\/[^"]+)".*"msg":"Sortie is listening"/.exec(logText())?.[1], { what: 'Sortie to listen', timeoutMs: 30_000, intervalMs: 100 }).catch(
      () => undefined,
    );
    assert.ok(url, `Sortie listened: ${stderr}${logText()}`);
    const api = new Api(url, { timeoutMs: 10_000 });
    const signIn = async () => {
      const res = await api.signIn('admin', PASSWORD);
      assert.equal(res.status, 200);
    };

    fillDisk();
    const before = logText();
    // Each sign-in writes a log line that cannot land.
    for (let i = 0; i < 20; i++) await signIn();
    const health = await api.request('GET', '/healthz');
    assert.equal(health.status, 200);
    assert.equal(child.exitCode, null, `Sortie is still running: ${stderr}`);
    assert.equal(logText(), before, 'nothing could be written meanwhile');

    rmSync(filler);
    await signIn();
    const resumed = logText().slice(before.length);
    assert.match(resumed, /"msg":"the log could not be written for a while \(disk full\?\); writing again"/);
    assert.match(resumed, /"msg":"signed in"/);
    assert.doesNotMatch(stderr, /ENOSPC|Unhandled/);
  } finally {
    // Ctrl-C stops at once; SIGTERM would linger for the drain, which is not tested here.
    child.kill('SIGINT');
    const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exitOf(child);
    clearTimeout(killer);
  }
});
