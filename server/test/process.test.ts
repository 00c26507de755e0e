import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { exitOf, spawnSortie, startSortieProcess } from './support/child.js';
import { localSessionRecord, processesInGroups } from './support/processes.js';
import { Api } from './support/api.js';
import { scratchDir, writeApps } from './support/harness.js';
import { DEMO_APPS } from './support/paths.js';

// Sortie as a process: how it starts, stops and recovers, seen from outside.

test('a bad catalog stops start-up with a message naming the file, the app and the field', async () => {
  const scratch = scratchDir('bad-catalog');
  try {
    const apps = writeApps(scratch.dir, [{ id: 'office', name: 'Office', launch_type: 'container', container_image: 'x', resource_limits: { memory_limit: '4 gigs' } }]);
    const child = spawnSortie({ SORTIE_APPS_FILE: apps, SORTIE_DB_PATH: path.join(scratch.dir, 'sortie.db') });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const { code } = await exitOf(child);
    assert.equal(code, 1);
    assert.match(stderr, /Sortie cannot start/);
    assert.ok(stderr.includes(apps), stderr);
    assert.match(stderr, /"office"/);
    assert.match(stderr, /resource_limits\.memory_limit/);
  } finally {
    scratch.remove();
  }
});

test('a bad setting stops start-up with a message naming it', async () => {
  const child = spawnSortie({ SESSION_TIMEOUT: 'soon', SORTIE_APPS_FILE: DEMO_APPS });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.equal((await exitOf(child)).code, 1);
  assert.match(stderr, /SESSION_TIMEOUT must be a positive number, got "soon"/);
});

test('SIGTERM stops Sortie gracefully and leaves sessions running; SIGKILL loses nothing either', async () => {
  const scratch = scratchDir('signals');
  const env = { SORTIE_APPS_FILE: DEMO_APPS, SORTIE_DB_PATH: path.join(scratch.dir, 'sortie.db') };
  const stateDir = path.join(scratch.dir, 'local-sessions');
  try {
    const first = await startSortieProcess(env);
    const api1 = new Api(first.url);
    const s = await api1.launch('xterm');
    await api1.waitFor(s.id, 'running');
    const groups = localSessionRecord(stateDir, s.id).processes.map((p) => p.pid);

    first.child.kill('SIGTERM');
    const exit = await exitOf(first.child);
    assert.equal(exit.code, 0, `clean exit, stderr: ${first.stderr()}`);
    assert.ok(processesInGroups(groups).length >= 4, 'the session outlives Sortie');

    const second = await startSortieProcess(env);
    const api2 = new Api(second.url);
    assert.equal((await api2.session(s.id)).status, 'running', 'adopted after restart');
    second.child.kill('SIGKILL');
    await exitOf(second.child);

    const third = await startSortieProcess(env);
    try {
      const api3 = new Api(third.url);
      assert.equal((await api3.session(s.id)).status, 'running', 'adopted after a crash too');
      await api3.request('DELETE', `/api/sessions/${s.id}`);
      assert.deepEqual(processesInGroups(groups), []);
    } finally {
      // Clean-up, not the subject: Ctrl-C stops at once, SIGTERM would linger for the drain.
      third.child.kill('SIGINT');
      await exitOf(third.child);
    }
  } finally {
    scratch.remove();
  }
});
