import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { scratchDir, startTestSortie } from './support/harness.js';

// The database holds the token-signing key, VNC passwords and password hashes: on disk it
// is Sortie's alone, and a folder where others could swap it is refused.

const mode = (file: string) => (statSync(file).mode & 0o777).toString(8);

/** Runs a command as the unprivileged `nobody`, as another local account would. */
function asNobody(...argv: string[]): { status: number | null; stderr: string } {
  const r = spawnSync('runuser', ['-u', 'nobody', '--', ...argv], { encoding: 'utf8' });
  return { status: r.status, stderr: r.stderr };
}

describe('data at rest', () => {
  const scratch = scratchDir('data-at-rest');
  // Others may pass through the scratch folder, so only the data folder's own mode protects it.
  chmodSync(scratch.dir, 0o755);
  after(() => scratch.remove());

  test('a new data folder is 0700 and the database, its WAL and shared memory 0600; another user reads none of it', async () => {
    const dir = path.join(scratch.dir, 'fresh');
    const db = path.join(dir, 'sortie.db');
    const sortie = await startTestSortie({ name: 'data-at-rest', dir: scratch.dir, env: { SORTIE_DB_PATH: db, SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: 'at-rest-admin-pw-1' } });
    try {
      assert.equal(mode(dir), '700');
      for (const file of [db, `${db}-wal`, `${db}-shm`]) {
        assert.ok(existsSync(file), file);
        assert.equal(mode(file), '600', file);
      }
      assert.equal(process.getuid?.(), 0, 'this test runs as root, like CI, so it can act as another user');
      const read = asNobody('cat', db);
      assert.notEqual(read.status, 0);
      assert.match(read.stderr, /Permission denied/);
      assert.match(asNobody('ls', dir).stderr, /Permission denied/);
    } finally {
      await sortie.cleanup();
    }
  });

  test('an existing folder and files readable by others are tightened', async () => {
    const dir = path.join(scratch.dir, 'loose');
    mkdirSync(dir, { mode: 0o755 });
    chmodSync(dir, 0o755);
    const db = path.join(dir, 'sortie.db');
    writeFileSync(db, '');
    chmodSync(db, 0o644);
    const sortie = await startTestSortie({ name: 'data-at-rest', dir: scratch.dir, env: { SORTIE_DB_PATH: db } });
    await sortie.cleanup();
    assert.equal(mode(dir), '700');
    assert.equal(mode(db), '600');
  });

  test('a folder every user may write to is refused with a message that says what to do', async () => {
    const dir = path.join(scratch.dir, 'open');
    mkdirSync(dir);
    chmodSync(dir, 0o777);
    await assert.rejects(startTestSortie({ name: 'data-at-rest', dir: scratch.dir, env: { SORTIE_DB_PATH: path.join(dir, 'sortie.db') } }), (err: Error) => {
      assert.match(err.message, new RegExp(`${dir}.*writable by every user.*chmod 700 ${dir}`));
      return true;
    });
    assert.ok(!existsSync(path.join(dir, 'sortie.db')), 'nothing was created there');
  });

  test('a file that is not a database is named in the error', async () => {
    const dir = path.join(scratch.dir, 'garbage');
    mkdirSync(dir, { mode: 0o700 });
    const db = path.join(dir, 'sortie.db');
    writeFileSync(db, 'this is not SQLite, just some text that is long enough to have a header'.repeat(20), { mode: 0o600 });
    await assert.rejects(startTestSortie({ name: 'data-at-rest', dir: scratch.dir, env: { SORTIE_DB_PATH: db } }), new RegExp(`database ${db}: file is not a database`));
  });
});
