import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BWRAP_MISSING, requireProgram, resolveAppProgram, resolveProgram, SANDBOX_HOME, SANDBOX_XAUTHORITY, sandboxArgv, sandboxEnvironment, type SandboxPlan, type SystemPath } from './sandbox.js';

const systemPaths: SystemPath[] = [
  { path: '/usr', kind: 'dir' },
  { path: '/etc', kind: 'dir' },
  { path: '/bin', kind: 'symlink', target: 'usr/bin' },
];

function plan(extra: Partial<SandboxPlan> = {}): SandboxPlan {
  return {
    bwrap: '/usr/bin/bwrap',
    systemPaths,
    hide: ['/var/lib/sortie', '/usr/local/sortie-data'],
    home: '/var/lib/sortie/local-sessions/s1.home',
    display: 101,
    displaySocket: '/var/lib/sortie/local-sessions/s1.display/X101',
    cookieFd: 3,
    env: sandboxEnvironment(101, 'C.UTF-8'),
    command: ['/usr/bin/xterm', '-geometry', '80x24'],
    ...extra,
  };
}

/** The values following each occurrence of `option` in argv. */
function after(argv: string[], option: string, count = 1): string[][] {
  const found: string[][] = [];
  argv.forEach((a, i) => {
    if (a === option) found.push(argv.slice(i + 1, i + 1 + count));
  });
  return found;
}

test('the environment holds only what an X app needs', () => {
  assert.deepEqual(Object.keys(sandboxEnvironment(7, 'en_US.UTF-8')).sort(), [
    'DISPLAY', 'HOME', 'LANG', 'PATH', 'QT_X11_NO_MITSHM', 'TERM', 'XAUTHORITY',
  ]);
  assert.equal(sandboxEnvironment(7, 'x').DISPLAY, ':7');
  assert.equal(sandboxEnvironment(7, 'x').XAUTHORITY, SANDBOX_XAUTHORITY);
});

test('as root: namespaces, a clean environment, read-only system, own /tmp with only the X socket, and a drop to the session user', () => {
  const argv = sandboxArgv(plan({ user: { name: 'sortie-session', uid: 999, gid: 995 }, setpriv: '/usr/bin/setpriv' }));
  assert.equal(argv[0], '/usr/bin/bwrap');
  for (const flag of ['--die-with-parent', '--new-session', '--unshare-pid', '--unshare-ipc', '--clearenv']) {
    assert.ok(argv.includes(flag), flag);
  }
  assert.ok(!argv.includes('--unshare-net'), 'the network is shared');
  assert.ok(!argv.includes('--unshare-user'), 'root drops privileges with setpriv, not a user namespace');
  assert.deepEqual(after(argv, '--ro-bind', 2), [['/usr', '/usr'], ['/etc', '/etc'], ['/var/lib/sortie/local-sessions/s1.display/X101', '/tmp/.X11-unix/X101']]);
  assert.deepEqual(after(argv, '--symlink', 2), [['usr/bin', '/bin']]);
  assert.deepEqual(after(argv, '--bind', 2), [['/var/lib/sortie/local-sessions/s1.home', SANDBOX_HOME]]);
  // Only the hidden folder that a bound path would show is covered.
  assert.deepEqual(after(argv, '--tmpfs'), [['/usr/local/sortie-data'], ['/tmp']]);
  assert.deepEqual(after(argv, '--setenv', 2).map(([k]) => k).sort(), Object.keys(sandboxEnvironment(1, 'x')).sort());
  assert.ok(argv.indexOf('--remount-ro') < argv.indexOf('--'));
  const inner = argv.slice(argv.indexOf('--') + 1);
  assert.deepEqual(inner, [
    '/usr/bin/setpriv', '--reuid=999', '--regid=995', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--',
    '/usr/bin/xterm', '-geometry', '80x24',
  ]);
});

test('as another user: a user namespace without nested ones, and the app runs directly', () => {
  const argv = sandboxArgv(plan());
  assert.ok(argv.includes('--unshare-user') && argv.includes('--disable-userns'));
  assert.deepEqual(argv.slice(argv.indexOf('--') + 1), ['/usr/bin/xterm', '-geometry', '80x24']);
  assert.throws(() => sandboxArgv(plan({ user: { name: 'u', uid: 5, gid: 5 } })), /setpriv/);
});

test('programs resolve on PATH, and an app outside the visible system folders is refused with the reason', () => {
  assert.equal(resolveProgram('sh', '/nonexistent:/usr/bin:/bin'), '/usr/bin/sh');
  assert.equal(resolveProgram('no-such-program-here', '/usr/bin'), undefined);
  assert.equal(resolveProgram('bin/sh', '/usr'), undefined, 'a relative path is not looked up');
  assert.match(resolveAppProgram('sh', systemPaths) as string, /^\/usr\/(local\/)?bin\/sh$/);
  assert.deepEqual(resolveAppProgram('/nonexistent/app', systemPaths), { problem: 'Cannot start "/nonexistent/app": command not found' });
  const outside = resolveAppProgram('/usr/bin/sh', [{ path: '/etc', kind: 'dir' }]);
  assert.equal(typeof outside, 'object');
  assert.match((outside as { problem: string }).problem, /is not inside them/);
});

test('a missing bwrap stops the launch with a message naming the package', () => {
  const saved = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    assert.throws(() => requireProgram('bwrap', BWRAP_MISSING), { message: BWRAP_MISSING });
  } finally {
    process.env.PATH = saved;
  }
  assert.match(BWRAP_MISSING, /apt-get install bubblewrap/);
  assert.equal(requireProgram('sh', 'unused'), resolveProgram('sh', saved!));
});
