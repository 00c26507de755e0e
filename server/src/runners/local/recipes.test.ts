import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  appRecipe,
  hiddenFolders,
  HOST,
  infraEnvironment,
  clipboardArgs,
  keymapCommand,
  INHERITED_FD,
  screenArgs,
  XVNC_ADDRESS_SPACE,
  vncSecretOf,
  websockifyRecipe,
  xvncRecipe,
  type ClipboardPolicy,
  type SessionPlan,
} from './recipes.js';
import { DISPLAY_SANDBOX_XAUTHORITY, SANDBOX_HOME, SANDBOX_X11_DIR, SANDBOX_XAUTHORITY, XKB_OUTPUT_DIR } from './sandbox.js';
import { appCookieFilePath, displayDirPath, homeDirPath, homesDirPath, passwordFilePath, xauthFilePath } from './state-file.js';
import { vncPasswordFile } from './vnc-password.js';
import { xauthorityEntry } from './xauth.js';

const cookie = Buffer.from('00112233445566778899aabbccddeeff', 'hex');

function plan(extra: Partial<SessionPlan> = {}): SessionPlan {
  return {
    sessionId: 's1',
    stateDir: '/var/lib/sortie/local-sessions',
    display: 104,
    wsPort: 41002,
    screen: '1280x800x24',
    cookie,
    clipboard: 'both',
    desktopName: 'XTerm',
    programs: { xvnc: '/usr/bin/Xvnc', websockify: '/usr/bin/websockify', prlimit: '/usr/bin/prlimit', setxkbmap: '/usr/bin/setxkbmap' },
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
  for (const recipe of [xvncRecipe(plan()), websockifyRecipe(plan()), appRecipe(plan())]) {
    assert.deepEqual(Object.keys(recipe.env).sort(), ['LANG', 'PATH'], recipe.name);
  }
});

/** Xvnc's value for a `-Name=value` parameter, or undefined when argv does not set it. */
function param(argv: readonly string[], name: string): string | undefined {
  const found = argv.filter((a) => a.startsWith(`-${name}=`));
  assert.ok(found.length <= 1, `-${name} is set ${found.length} times`);
  return found[0]?.slice(name.length + 2);
}

/** Xvnc's own argv inside its recipe: from its program to the end. */
function xvncArgs(argv: readonly string[]): readonly string[] {
  const at = argv.indexOf('/usr/bin/Xvnc');
  assert.ok(at > 0, 'Xvnc is in the argv');
  return argv.slice(at);
}

test('Xvnc opens the planned display, demands the session cookie, and never listens for X on TCP', () => {
  const recipe = xvncRecipe(plan());
  const xauthority = xauthFilePath('/var/lib/sortie/local-sessions', 's1');
  assert.equal(recipe.role, 'xvnc');
  assert.equal(recipe.name, 'Xvnc');
  const xvnc = xvncArgs(recipe.argv);
  assert.equal(xvnc[1], ':104');
  // The cookie file is bound read-only where Xvnc's -auth looks for it.
  assert.deepEqual(after(xvnc, '-auth'), [[DISPLAY_SANDBOX_XAUTHORITY]]);
  assert.deepEqual(after(recipe.argv, '--ro-bind', 2).filter(([from]) => from === xauthority), [[xauthority, DISPLAY_SANDBOX_XAUTHORITY]]);
  assert.deepEqual(after(xvnc, '-nolisten'), [['tcp']]);
  assert.ok(!xvnc.includes('-listen'));
  assert.deepEqual(recipe.files, [{ path: xauthority, data: xauthorityEntry(104, cookie) }]);
});

test('Xvnc listens on no TCP port: VNC only on its display folder’s socket (0600), shared, with no blacklist that would lock Sortie out', () => {
  const xvnc = xvncArgs(xvncRecipe(plan()).argv);
  assert.deepEqual(after(xvnc, '-rfbport'), [['-1']]);
  assert.deepEqual(after(xvnc, '-rfbunixpath'), [[`${SANDBOX_X11_DIR}/vnc`]]);
  assert.deepEqual(after(xvnc, '-rfbunixmode'), [['0600']]);
  assert.deepEqual(after(xvnc, '-interface'), []);
  assert.ok(!xvnc.includes('-localhost'));
  assert.equal(param(xvnc, 'UseBlacklist'), '0');
  assert.ok(xvnc.includes('-AlwaysShared'));
  assert.deepEqual(after(xvnc, '-desktop'), [['XTerm']]);
});

test('Xvnc runs in a sandbox of its own: its display folder is its one writable host folder, and the gate stays its parent', () => {
  const recipe = xvncRecipe(plan({ stateDir: '/usr/local/sortie/state' }));
  const bwrap = recipe.argv.slice(3, recipe.argv.indexOf('/usr/bin/Xvnc'));
  assert.equal(bwrap[0], '/usr/bin/bwrap');
  for (const flag of ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--clearenv']) assert.ok(bwrap.includes(flag), flag);
  assert.ok(!bwrap.includes('--unshare-net'), 'its abstract X socket must hold its name on the host');
  assert.deepEqual(after(bwrap, '--bind', 2), [[displayDirPath('/usr/local/sortie/state', 's1'), SANDBOX_X11_DIR]]);
  assert.deepEqual(after(bwrap, '--ro-bind', 2).map(([from]) => from), ['/usr', xauthFilePath('/usr/local/sortie/state', 's1')]);
  // Sortie's state and homes are covered where a system path would show them; keymaps compile into a tmpfs.
  assert.deepEqual(after(bwrap, '--tmpfs').map(([p]) => p), [
    '/usr/local/sortie/state',
    '/usr/local/sortie/state-homes',
    '/usr/local/sortie/state-user-homes',
    '/usr/local/sortie',
    '/tmp',
    XKB_OUTPUT_DIR,
  ]);
  assert.deepEqual(after(bwrap, '--setenv', 2), [['PATH', '/opt/node/bin:/usr/bin'], ['LANG', 'de_DE.UTF-8']]);
  assert.deepEqual(after(bwrap, '--remount-ro'), [['/']]);
  assert.ok(bwrap.includes('--unshare-user'), 'not root: a user namespace');
  assert.ok(!recipe.argv.includes('/usr/bin/setpriv'));
  // bwrap's --die-with-parent: with the gate as its parent, Xvnc outlives a restart of Sortie.
  assert.equal(recipe.gate, 'parent');
  assert.deepEqual(Object.keys(recipe.env).sort(), ['LANG', 'PATH']);
});

test('as root Xvnc drops to the session user, who owns its cookie and password files', () => {
  const user = { name: 'sortie-session', uid: 990, gid: 991 };
  const recipe = xvncRecipe(plan({ secret: 'pw-123', sandbox: { ...plan().sandbox, user, setpriv: '/usr/bin/setpriv' } }));
  const drop = recipe.argv.slice(recipe.argv.indexOf('/usr/bin/setpriv'), recipe.argv.indexOf('/usr/bin/Xvnc'));
  assert.deepEqual(drop, ['/usr/bin/setpriv', '--reuid=990', '--regid=991', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--']);
  assert.ok(!recipe.argv.includes('--unshare-user'), 'root: setpriv, not a user namespace');
  assert.deepEqual(recipe.files[0]?.owner, { uid: 990, gid: 991 });
  assert.deepEqual(recipe.inherited?.owner, { uid: 990, gid: 991 });
});

test('the desktop starts at the planned size and depth, and a viewer may resize it', () => {
  assert.deepEqual(screenArgs('1280x800x24'), ['-geometry', '1280x800', '-depth', '24']);
  assert.deepEqual(screenArgs('1920x1080'), ['-geometry', '1920x1080', '-depth', '24']);
  assert.throws(() => screenArgs('big'), /WIDTHxHEIGHT/);
  const recipe = xvncRecipe(plan({ screen: '1024x768x16' }));
  assert.deepEqual(after(recipe.argv, '-geometry'), [['1024x768']]);
  assert.deepEqual(after(recipe.argv, '-depth'), [['16']]);
  assert.equal(param(recipe.argv, 'AcceptSetDesktopSize'), '1');
  // ...within an address space that a desktop of 32768x32768 does not fit in.
  assert.deepEqual(recipe.argv.slice(0, 4), ['/usr/bin/prlimit', `--as=${2 * 1024 ** 3}`, '--', '/usr/bin/bwrap']);
  assert.ok(XVNC_ADDRESS_SPACE < 32768 * 32768 * 4 && XVNC_ADDRESS_SPACE > 7680 * 4320 * 4 * 3 + 256 * 1024 ** 2);
});

test('without a secret Xvnc asks none; with one it reads it through a descriptor of a deleted file, never from argv', () => {
  const open = xvncRecipe(plan());
  assert.deepEqual(after(open.argv, '-SecurityTypes'), [['None']]);
  assert.equal(open.inherited, undefined);
  assert.deepEqual(after(open.argv, '-PasswordFile'), []);

  const guarded = xvncRecipe(plan({ secret: 'pw-123' }));
  assert.deepEqual(after(guarded.argv, '-SecurityTypes'), [['VncAuth']]);
  assert.equal(INHERITED_FD, 3, 'the first descriptor after stdio');
  assert.deepEqual(after(guarded.argv, '-PasswordFile'), [['/proc/self/fd/3']]);
  assert.ok(!guarded.argv.some((a) => a.includes('pw-123')), 'the secret is not in argv');
  assert.deepEqual(guarded.inherited, {
    path: passwordFilePath('/var/lib/sortie/local-sessions', 's1'),
    data: vncPasswordFile('pw-123'),
  });
});

test("each clipboard setting opens exactly its directions, for CLIPBOARD and PRIMARY alike", () => {
  const expected: Record<ClipboardPolicy, { AcceptCutText: string; SetPrimary: string; SendCutText: string; SendPrimary: string }> = {
    both: { AcceptCutText: '1', SetPrimary: '1', SendCutText: '1', SendPrimary: '1' },
    to_session: { AcceptCutText: '1', SetPrimary: '1', SendCutText: '0', SendPrimary: '0' },
    from_session: { AcceptCutText: '0', SetPrimary: '0', SendCutText: '1', SendPrimary: '1' },
    none: { AcceptCutText: '0', SetPrimary: '0', SendCutText: '0', SendPrimary: '0' },
  };
  for (const [policy, want] of Object.entries(expected) as Array<[ClipboardPolicy, (typeof expected)['both']]>) {
    assert.equal(clipboardArgs(policy).length, 4, policy);
    const argv = xvncRecipe(plan({ clipboard: policy })).argv;
    for (const [name, value] of Object.entries(want)) assert.equal(param(argv, name), value, `${policy}: ${name}`);
  }
});

test('nothing in the session can change the clipboard setting at run time (vncconfig -set)', () => {
  for (const policy of ['none', 'both'] as const) {
    const argv = xvncRecipe(plan({ clipboard: policy })).argv;
    // By default Xvnc lets X clients override SendCutText, AcceptCutText and the Primary pair.
    assert.equal(param(argv, 'AllowOverride'), '');
    assert.ok(argv.includes('-noclipboard'));
  }
});

test('the keymap is widened on the planned display, with the cookie only Sortie reads and nothing else of its environment', () => {
  const { argv, env } = keymapCommand(plan());
  assert.deepEqual(argv, ['/usr/bin/setxkbmap', '-display', ':104', '-symbols', 'pc+us']);
  assert.deepEqual(env, { PATH: '/opt/node/bin:/usr/bin', LANG: 'de_DE.UTF-8', XAUTHORITY: xauthFilePath('/var/lib/sortie/local-sessions', 's1') });
});

test('websockify bridges its WebSocket port on 127.0.0.1 to the VNC socket in the display folder', () => {
  const recipe = websockifyRecipe(plan());
  assert.equal(HOST, '127.0.0.1');
  assert.deepEqual(recipe.argv, ['/usr/bin/websockify', `--unix-target=${displayDirPath('/var/lib/sortie/local-sessions', 's1')}/vnc`, '127.0.0.1:41002']);
  assert.deepEqual(recipe.files, []);
});

test('the app runs in the sandbox on its display, with its home, and gets a copy of the cookie in its own /tmp, not in the home', () => {
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
  assert.deepEqual(recipe.files, [], 'nothing is written into the home');
  assert.deepEqual(recipe.inherited, { path: appCookieFilePath('/var/lib/sortie/local-sessions', 's1'), data: xauthorityEntry(104, cookie) });
  assert.deepEqual(after(recipe.argv, '--file', 2), [['3', SANDBOX_XAUTHORITY]]);
  assert.ok(after(recipe.argv, '--setenv', 2).some(([k, v]) => k === 'XAUTHORITY' && v === SANDBOX_XAUTHORITY));
});

test('as root the app drops to the session user', () => {
  const user = { name: 'sortie-session', uid: 990, gid: 990 };
  const recipe = appRecipe(plan({ sandbox: { ...plan().sandbox, user, setpriv: '/usr/bin/setpriv' } }));
  assert.ok(after(recipe.argv, '/usr/bin/setpriv', 2).some(([a, b]) => a === '--reuid=990' && b === '--regid=990'));
});

test("the sandbox hides Sortie's state, every session's home, every user's home and the data folder around them", () => {
  const folders = hiddenFolders(plan({ hiddenPaths: ['/srv/secret'] }));
  assert.deepEqual(folders, [
    '/var/lib/sortie/local-sessions',
    homesDirPath('/var/lib/sortie/local-sessions'),
    '/var/lib/sortie/local-sessions-user-homes',
    '/var/lib/sortie',
    '/srv/secret',
  ]);
  // Covered with a tmpfs where they lie inside a system path the sandbox shows.
  const recipe = appRecipe(plan({ stateDir: '/usr/local/sortie/state', hiddenPaths: [] }));
  assert.deepEqual(after(recipe.argv, '--tmpfs').map(([p]) => p).filter((p) => p !== '/tmp'), [
    '/usr/local/sortie/state',
    '/usr/local/sortie/state-homes',
    '/usr/local/sortie/state-user-homes',
    '/usr/local/sortie',
  ]);
});

test('each plan detail lands in the right recipe: another session, display and port', () => {
  const other = plan({ sessionId: 's2', display: 250, wsPort: 6080 });
  const folder = displayDirPath('/var/lib/sortie/local-sessions', 's2');
  assert.equal(xvncArgs(xvncRecipe(other).argv)[1], ':250');
  assert.deepEqual(xvncRecipe(other).files[0]?.data, xauthorityEntry(250, cookie));
  assert.deepEqual(after(xvncRecipe(other).argv, '--bind', 2), [[folder, SANDBOX_X11_DIR]]);
  assert.deepEqual(websockifyRecipe(other).argv.slice(1), [`--unix-target=${folder}/vnc`, '127.0.0.1:6080']);
  // The app sees the display's socket from that folder, where X clients look for it.
  assert.ok(after(appRecipe(other).argv, '--ro-bind', 2).some(([a, b]) => a === `${folder}/X250` && b === '/tmp/.X11-unix/X250'));
});

test('a stream secret is printable ASCII, so Sortie and Xvnc agree on its bytes', () => {
  assert.equal(vncSecretOf({}), undefined);
  assert.equal(vncSecretOf({ streamSecret: '' }), undefined);
  assert.equal(vncSecretOf({ streamSecret: 'Abc-123_!' }), 'Abc-123_!');
  assert.equal(vncSecretOf({ streamSecret: '#a__b' }), '#a__b');
  for (const bad of ['with space', 'line\nbreak', 'ümlaut', 42]) {
    assert.throws(() => vncSecretOf({ streamSecret: bad }), /printable ASCII without spaces/, String(bad));
  }
});
