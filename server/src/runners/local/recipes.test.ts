import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  appRecipe,
  hiddenFolders,
  HOST,
  infraEnvironment,
  vncSecretOf,
  websockifyRecipe,
  x11vncRecipe,
  xvfbRecipe,
  type SessionPlan,
} from './recipes.js';
import { SANDBOX_HOME } from './sandbox.js';
import { homeDirPath, homesDirPath, passwordFilePath, xauthFilePath } from './state-file.js';
import { xauthorityEntry } from './xauth.js';

const cookie = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function plan(extra: Partial<SessionPlan> = {}): SessionPlan {
  return {
    sessionId: 's1',
    stateDir: '/var/lib/sortie/local-sessions',
    display: 104,
    vncPort: 41001,
    wsPort: 41002,
    screen: '1280x800x24',
    cookie,
    programs: { xvfb: '/usr/bin/Xvfb', x11vnc: '/usr/bin/x11vnc', websockify: '/usr/bin/websockify' },
    sandbox: {
      bwrap: '/usr/bin/bwrap',
      systemPaths: [{ path: '/usr', kind: 'dir' }, { path: '/bin', kind: 'symlink', target: 'usr/bin' }],
      command: ['/usr/bin/xterm', '-fa', 'Monospace'],
    },
    hiddenPaths: [],
    hostEnv: { PATH: '/opt/node/bin:/usr/bin', LANG: 'de_DE.UTF-8' },
    ...extra,
  };
}

/** The values following each occurrence of `option` in argv. */
function after(argv: readonly string[], option: string, count = 1): string[][] {
  const found: string[][] = [];
  argv.forEach((a, i) => {
    if (a === option) found.push(argv.slice(i + 1, i + 1 + count));
  });
  return found;
}

test("infrastructure processes get Sortie's PATH and LANG and nothing else of its environment", () => {
  assert.deepEqual(infraEnvironment(plan()), { PATH: '/opt/node/bin:/usr/bin', LANG: 'de_DE.UTF-8' });
  const bare = infraEnvironment(plan({ hostEnv: {} }));
  assert.equal(bare.LANG, 'C.UTF-8');
  assert.match(bare.PATH!, /^\/usr\/local\/bin:\/usr\/bin:\/bin/);
  for (const recipe of [xvfbRecipe(plan()), websockifyRecipe(plan()), appRecipe(plan())]) {
    assert.deepEqual(Object.keys(recipe.env).sort(), ['LANG', 'PATH'], recipe.name);
  }
});

test('Xvfb opens the planned display, demands the session cookie, and never listens on TCP', () => {
  const recipe = xvfbRecipe(plan());
  const xauthority = xauthFilePath('/var/lib/sortie/local-sessions', 's1');
  assert.equal(recipe.role, 'xvfb');
  assert.equal(recipe.name, 'Xvfb');
  assert.deepEqual(recipe.argv, ['/usr/bin/Xvfb', ':104', '-screen', '0', '1280x800x24', '-nolisten', 'tcp', '-auth', xauthority]);
  assert.equal(recipe.gate, 'exec');
  assert.deepEqual(recipe.files, [{ path: xauthority, data: xauthorityEntry(104, cookie) }]);
});

test('x11vnc serves the display on 127.0.0.1 only (no IPv6), forever and shared, with its output kept', () => {
  const recipe = x11vncRecipe(plan());
  assert.equal(recipe.role, 'x11vnc');
  assert.equal(recipe.argv[0], '/usr/bin/x11vnc');
  assert.deepEqual(after(recipe.argv, '-display'), [[':104']]);
  assert.deepEqual(after(recipe.argv, '-rfbport'), [['41001']]);
  for (const flag of ['-localhost', '-noipv6', '-forever', '-shared', '-norc']) assert.ok(recipe.argv.includes(flag), flag);
  assert.ok(!recipe.argv.includes('-quiet'), '-quiet would hide why x11vnc failed');
  assert.equal(recipe.env.XAUTHORITY, xauthFilePath('/var/lib/sortie/local-sessions', 's1'));
});

test('without a secret x11vnc asks none; with one it reads it from a file it deletes, never from argv', () => {
  const open = x11vncRecipe(plan());
  assert.ok(open.argv.includes('-nopw'));
  assert.deepEqual(open.files, []);

  const guarded = x11vncRecipe(plan({ secret: 'pw-123' }));
  const file = passwordFilePath('/var/lib/sortie/local-sessions', 's1');
  assert.deepEqual(after(guarded.argv, '-passwdfile'), [[`rm:${file}`]]);
  assert.ok(!guarded.argv.includes('-nopw'));
  assert.ok(!guarded.argv.some((a) => a.includes('pw-123')), 'the secret is not in argv');
  assert.deepEqual(guarded.files, [{ path: file, data: 'pw-123\n' }]);
});

test('websockify bridges the WebSocket port to the VNC port, both on 127.0.0.1', () => {
  const recipe = websockifyRecipe(plan());
  assert.equal(HOST, '127.0.0.1');
  assert.deepEqual(recipe.argv, ['/usr/bin/websockify', '127.0.0.1:41002', '127.0.0.1:41001']);
  assert.deepEqual(recipe.files, []);
});

test('the app runs in the sandbox on its display, with its home and a copy of the cookie', () => {
  const recipe = appRecipe(plan());
  const home = homeDirPath('/var/lib/sortie/local-sessions', 's1');
  assert.equal(recipe.role, 'app');
  assert.equal(recipe.name, 'xterm');
  // The gate stays bwrap's parent: killing the session's group takes bwrap and the app with it.
  assert.equal(recipe.gate, 'parent');
  assert.equal(recipe.argv[0], '/usr/bin/bwrap');
  assert.deepEqual(recipe.argv.slice(-4), ['--', '/usr/bin/xterm', '-fa', 'Monospace']);
  assert.deepEqual(after(recipe.argv, '--bind', 2), [[home, SANDBOX_HOME]]);
  assert.ok(after(recipe.argv, '--setenv', 2).some(([k, v]) => k === 'DISPLAY' && v === ':104'));
  assert.ok(after(recipe.argv, '--setenv', 2).some(([k, v]) => k === 'LANG' && v === 'de_DE.UTF-8'));
  assert.ok(!recipe.argv.includes('setpriv'), 'not root: no privilege drop');
  assert.deepEqual(recipe.files, [{ path: `${home}/.Xauthority`, data: xauthorityEntry(104, cookie), owner: undefined }]);
});

test('as root the app drops to the session user, who also owns its cookie', () => {
  const user = { name: 'sortie-session', uid: 990, gid: 990 };
  const recipe = appRecipe(plan({ sandbox: { ...plan().sandbox, user, setpriv: '/usr/bin/setpriv' } }));
  assert.ok(after(recipe.argv, '/usr/bin/setpriv', 2).some(([a, b]) => a === '--reuid=990' && b === '--regid=990'));
  assert.deepEqual(recipe.files[0]?.owner, user);
});

test("the sandbox hides Sortie's state, every session's home and the data folder around them", () => {
  const folders = hiddenFolders(plan({ hiddenPaths: ['/srv/secret'] }));
  assert.deepEqual(folders, [
    '/var/lib/sortie/local-sessions',
    homesDirPath('/var/lib/sortie/local-sessions'),
    '/var/lib/sortie',
    '/srv/secret',
  ]);
  // Covered with a tmpfs where they lie inside a system path the sandbox shows.
  const recipe = appRecipe(plan({ stateDir: '/usr/local/sortie/state', hiddenPaths: [] }));
  assert.deepEqual(after(recipe.argv, '--tmpfs').map(([p]) => p).filter((p) => p !== '/tmp'), [
    '/usr/local/sortie/state',
    '/usr/local/sortie/state-homes',
    '/usr/local/sortie',
  ]);
});

test('each plan detail lands in the right recipe: another display, other ports', () => {
  const other = plan({ display: 250, vncPort: 5901, wsPort: 6080 });
  assert.equal(xvfbRecipe(other).argv[1], ':250');
  assert.deepEqual(xvfbRecipe(other).files[0]?.data, xauthorityEntry(250, cookie));
  assert.deepEqual(after(x11vncRecipe(other).argv, '-rfbport'), [['5901']]);
  assert.deepEqual(websockifyRecipe(other).argv.slice(1), ['127.0.0.1:6080', '127.0.0.1:5901']);
  assert.ok(after(appRecipe(other).argv, '--ro-bind', 2).some(([a]) => a === '/tmp/.X11-unix/X250'));
});

test('a stream secret must survive x11vnc reading it as one password line', () => {
  assert.equal(vncSecretOf({}), undefined);
  assert.equal(vncSecretOf({ streamSecret: '' }), undefined);
  assert.equal(vncSecretOf({ streamSecret: 'Abc-123_!' }), 'Abc-123_!');
  for (const bad of ['with space', '#comment', 'a__b', 'line\nbreak', 'ümlaut', 42]) {
    assert.throws(() => vncSecretOf({ streamSecret: bad }), /printable ASCII without spaces/, String(bad));
  }
});
