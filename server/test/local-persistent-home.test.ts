import assert from 'node:assert/strict';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { userHomeDirPath, userHomesDirPath } from '../src/runners/local/state-file.js';
import { scratchDir, startTestSortie, testConfig, type TestSortie } from './support/harness.js';
import { waitFor } from './support/wait.js';

// Persistent homes on the local runner: a folder per user beside the data, linked in as the
// session's home, kept when the session ends and when Sortie restarts.

// Each launch says what it found in the home and which user homes it can see, then leaves a
// line of its own. It waits for xterm, so the session stays up until it is ended.
const remember = (line: string) => [
  'sh',
  '-c',
  `cat "$HOME/notes.txt" > "$HOME/found.txt" 2>/dev/null; ls -a "$USER_HOMES" > "$HOME/peek.txt" 2>&1; echo ${line} >> "$HOME/notes.txt"; exec xterm`,
];
const apps = (userHomes: string) =>
  [
    { id: 'notes', name: 'Notes', launch_type: 'container', command: remember('notes'), persistent_home: true },
    { id: 'editor', name: 'Editor', launch_type: 'container', command: remember('editor'), persistent_home: true },
    { id: 'scratch', name: 'Scratch', launch_type: 'container', command: remember('scratch') },
  ].map((app) => ({ ...app, command: app.command.map((arg) => arg.replaceAll('$USER_HOMES', userHomes)) }));

// The state folder follows from the scratch folder, so the apps can name its user homes.
const scratch = scratchDir('local-home');
const userHomes = userHomesDirPath(testConfig(scratch.dir).local.stateDir);
const start = () => startTestSortie({ name: 'local-home', dir: scratch.dir, apps: apps(userHomes) });

let sortie: TestSortie | undefined;
const stopped: TestSortie[] = [];

after(async () => {
  await sortie?.cleanup();
  for (const old of stopped) await old.cleanup();
  scratch.remove();
});

/** Launches, waits until the app has written what it found, and ends the session. */
async function runOnce(s: TestSortie, appId: string, user: string, home: string): Promise<void> {
  const session = await s.api.launch(appId, user);
  await s.api.waitFor(session.id, 'running', 60_000);
  await waitFor(() => existsSync(path.join(home, 'peek.txt')) && readFileSync(path.join(home, 'notes.txt'), 'utf8').endsWith(`${appId}\n`), {
    what: `${appId} to have written into ${home}`,
    timeoutMs: 20_000,
    intervalMs: 100,
  });
  const ended = await s.api.request('DELETE', `/api/sessions/${session.id}`);
  assert.equal(ended.status, 200);
}

test('a file left in one session is there in the next, across a restart of Sortie and across apps; another user never sees it', async () => {
  sortie = await start();
  const alices = userHomeDirPath(sortie.stateDir, 'alice');
  const bobs = userHomeDirPath(sortie.stateDir, 'bob');

  await runOnce(sortie, 'notes', 'alice', alices);
  assert.equal(readFileSync(path.join(alices, 'notes.txt'), 'utf8'), 'notes\n');
  assert.ok(lstatSync(alices).isDirectory(), 'the home outlives the session');
  assert.equal(lstatSync(alices).mode & 0o777, 0o700, 'only its user may enter it');

  await sortie.stop();
  stopped.push(sortie);
  sortie = await start();

  await runOnce(sortie, 'editor', 'alice', alices);
  assert.equal(readFileSync(path.join(alices, 'found.txt'), 'utf8'), 'notes\n', 'the next session found what the last one left');
  assert.equal(readFileSync(path.join(alices, 'notes.txt'), 'utf8'), 'notes\neditor\n');

  await runOnce(sortie, 'notes', 'bob', bobs);
  assert.equal(readFileSync(path.join(bobs, 'found.txt'), 'utf8'), '', 'bob starts empty');
  // From inside the sandbox, the folder of user homes is not there to look into.
  assert.doesNotMatch(readFileSync(path.join(bobs, 'peek.txt'), 'utf8'), /alice/);

  // An app without a persistent home gets a fresh one, and Alice's stays as it was.
  const scratch = await sortie.api.launch('scratch', 'alice');
  await sortie.api.waitFor(scratch.id, 'running', 60_000);
  await sortie.api.request('DELETE', `/api/sessions/${scratch.id}`);
  assert.equal(readFileSync(path.join(alices, 'notes.txt'), 'utf8'), 'notes\neditor\n');
});

test("an admin removes a user's home, never while a session of that user is in it", async () => {
  assert.ok(sortie);
  const alices = userHomeDirPath(sortie.stateDir, 'alice');
  const live = await sortie.api.launch('notes', 'alice');
  await sortie.api.waitFor(live.id, 'running', 60_000);
  const refused = await sortie.api.request<{ message: string }>('DELETE', '/api/admin/users/alice/home');
  assert.equal(refused.status, 409);
  assert.match(refused.body.message, /live session .*end it first/);
  assert.ok(existsSync(path.join(alices, 'notes.txt')));

  await sortie.api.request('DELETE', `/api/sessions/${live.id}`);
  const removed = await sortie.api.request('DELETE', '/api/admin/users/alice/home');
  assert.equal(removed.status, 204);
  assert.equal(existsSync(alices), false);
  const again = await sortie.api.request<{ message: string }>('DELETE', '/api/admin/users/alice/home');
  assert.equal(again.status, 404);
  assert.match(again.body.message, /no persistent home/);
  assert.ok(existsSync(path.join(userHomeDirPath(sortie.stateDir, 'bob'), 'notes.txt')), "bob's home is untouched");
});
