import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { homeDirPath, stateFilePath, vncSocketPath, xauthFilePath } from '../src/runners/local/state-file.js';
import type { Api } from './support/api.js';
import { scratchDir, startTestSortie, type TestSortie } from './support/harness.js';
import { localSessionRecord, processTreeOfGroups } from './support/processes.js';
import { waitFor } from './support/wait.js';

// The local runner's boundary, tried the way an attacker on the same machine would: another
// local account (nobody) going for a session's display and Sortie's database, and an app
// looking around from inside its session. Real Sortie, real Xvnc/websockify, real bwrap.

const OTHER_USER = 'nobody';
const SECRET = 'jwt-secret-that-no-app-may-ever-see-0123456789';
const ADMIN_PASSWORD = 'admin-password-no-app-may-see';
const ALLOWED_ENV = new Set(['DISPLAY', 'HOME', 'LANG', 'PATH', 'XAUTHORITY', 'TERM', 'QT_X11_NO_MITSHM', 'PWD', 'SHLVL', '_']);

function asOtherUser(argv: string[], env: Record<string, string> = {}) {
  // runuser -u keeps the caller's environment unless told otherwise; start from nothing.
  return spawnSync('runuser', ['-u', OTHER_USER, '--', 'env', '-i', 'PATH=/usr/bin:/bin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv], {
    encoding: 'utf8',
    timeout: 10_000,
  });
}

/** What the probe app found, section by section ("--name" lines start a section). */
function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current = '';
  for (const line of text.split('\n')) {
    if (line.startsWith('--')) out.set((current = line.slice(2)), []);
    else if (line !== '') out.get(current)?.push(line);
  }
  return out;
}

describe('what the local runner isolates', { timeout: 120_000 }, () => {
  const scratch = scratchDir('local-isolation');
  // A data folder Sortie creates itself, in a folder others may enter, as on a real machine.
  const dataDir = path.join(scratch.dir, 'data');
  const dbPath = path.join(dataDir, 'sortie.db');
  const stateDir = path.join(dataDir, 'local-sessions');
  const hostTmpMarker = `/tmp/sortie-isolation-probe-${process.pid}`;
  // A file in the host's temporary folder, which no sandbox may see.
  const hostTmpSentinel = path.join(scratch.dir, 'sentinel');
  const saved = { jwt: process.env.SORTIE_JWT_SECRET, admin: process.env.SORTIE_ADMIN_PASSWORD };
  let sortie: TestSortie;
  let api: Api;

  before(async () => {
    chmodSync(scratch.dir, 0o755);
    writeFileSync(hostTmpSentinel, '');
    // Secrets an operator hands Sortie through its environment, where an app would inherit them.
    process.env.SORTIE_JWT_SECRET = SECRET;
    process.env.SORTIE_ADMIN_PASSWORD = ADMIN_PASSWORD;
    const probe = [
      'echo --uid; id -u',
      'echo --env; env',
      `echo --data; ls -a ${dataDir} 2>&1`,
      `echo --state; ls -a ${stateDir} 2>&1`,
      'echo --pids; ls /proc | grep -c "^[0-9]"',
      'echo --wrote',
      `for p in /etc/probe /usr/probe /probe ${dataDir}/probe ${scratch.dir}/probe ${hostTmpMarker} "$HOME/probe"; do (echo x > "$p") 2>/dev/null && echo "$p"; done`,
      'echo --end',
    ].join('; ');
    sortie = await startTestSortie({
      name: 'local-isolation',
      dir: scratch.dir,
      env: { SORTIE_DB_PATH: dbPath },
      apps: [
        { id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: 'unused', command: ['xterm'] },
        {
          id: 'probe', name: 'Probe', launch_type: 'container', container_image: 'unused',
          command: ['sh', '-c', `{ ${probe}; } > "$HOME/out.tmp" 2>&1; mv "$HOME/out.tmp" "$HOME/out"; exec sleep 600`],
        },
      ],
    });
    api = sortie.api;
  });

  after(async () => {
    await sortie?.cleanup();
    process.env.SORTIE_JWT_SECRET = saved.jwt;
    process.env.SORTIE_ADMIN_PASSWORD = saved.admin;
    if (saved.jwt === undefined) delete process.env.SORTIE_JWT_SECRET;
    if (saved.admin === undefined) delete process.env.SORTIE_ADMIN_PASSWORD;
    scratch.remove();
  });

  test("another local user cannot open a session's display", async () => {
    const s = await api.launch('xterm', 'alice');
    await api.waitFor(s.id, 'running');
    const { display } = localSessionRecord(stateDir, s.id);

    // The display is up and answers whoever holds its cookie: Sortie.
    const owner = spawnSync('xdpyinfo', ['-display', `:${display}`], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH, XAUTHORITY: xauthFilePath(stateDir, s.id) },
    });
    assert.equal(owner.status, 0, `Sortie cannot open its own display: ${owner.stderr}`);

    for (const argv of [
      ['xdpyinfo', '-display', `:${display}`],
      ['xwd', '-root', '-silent', '-display', `:${display}`],
    ]) {
      const result = asOtherUser(argv);
      assert.notEqual(result.status, 0, `${OTHER_USER} ran ${argv[0]} on the display: ${result.stdout.slice(0, 200)}`);
      assert.match(result.stderr, /unable to open display|Authorization required/i);
    }
    // The app's copy of the cookie is in its sandbox's own /tmp, not in the home on the host.
    assert.ok(!existsSync(path.join(homeDirPath(stateDir, s.id), '.Xauthority')), 'no cookie in the home');
    await api.request('DELETE', `/api/sessions/${s.id}`);
  });

  test('the display server runs in a sandbox of its own: unprivileged, its own mounts and processes, no TCP port, none of Sortie’s files', async () => {
    const s = await api.launch('xterm', 'dave');
    try {
      await api.waitFor(s.id, 'running');
      const record = localSessionRecord(stateDir, s.id);
      const xvncGate = record.processes.find((p) => p.role === 'xvnc')!.pid;
      const xvnc = processTreeOfGroups([xvncGate]).find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'Xvnc');
      assert.ok(xvnc, 'Xvnc runs below its gate');

      const status = readFileSync(`/proc/${xvnc}/status`, 'utf8');
      const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1]?.trim();
      const uid = Number(field('Uid')?.split(/\s+/)[0]);
      if (process.getuid?.() === 0) assert.notEqual(uid, 0, 'Xvnc does not run as root');
      assert.equal(field('NoNewPrivs'), '1');
      assert.match(field('CapEff') ?? '', /^0+$/, 'Xvnc holds no capability');
      for (const ns of ['mnt', 'pid', 'ipc']) {
        assert.notEqual(readlinkSync(`/proc/${xvnc}/ns/${ns}`), readlinkSync(`/proc/self/ns/${ns}`), `Xvnc has its own ${ns} namespace`);
      }
      // What it sees of the host: neither Sortie's data nor the runner's state, nor the host's /tmp.
      const seen = (p: string) => existsSync(`/proc/${xvnc}/root${p}`);
      assert.equal(seen(dbPath), false, 'Xvnc sees the database');
      assert.equal(seen(stateFilePath(stateDir, s.id)), false, 'Xvnc sees the runner’s state');
      assert.equal(seen(homeDirPath(stateDir, s.id)), false, 'Xvnc sees the session’s home');
      assert.equal(seen(hostTmpSentinel), false, 'Xvnc sees the host’s temporary folder');
      // Its sockets: the display's (and its abstract twin) and the VNC socket, in the display folder.
      const listening = execFileSync('ss', ['-lnpH'], { encoding: 'utf8' }).split('\n').filter((line) => line.includes(`pid=${xvnc},`));
      assert.deepEqual(listening.filter((line) => /^(tcp|udp)/.test(line)), [], 'Xvnc listens on no TCP or UDP port');
      assert.ok(listening.some((line) => line.includes(`/tmp/.X11-unix/vnc`)), `the VNC socket: ${listening.join('\n')}`);
      assert.ok(existsSync(vncSocketPath(stateDir, s.id)), 'the VNC socket is in the display folder');
      // Nobody else reaches it: the display folder is inside the state folder.
      const dialled = asOtherUser(['python3', '-c', `import socket; socket.socket(socket.AF_UNIX).connect(${JSON.stringify(vncSocketPath(stateDir, s.id))})`]);
      assert.notEqual(dialled.status, 0, `${OTHER_USER} connected to the VNC socket`);
      assert.match(dialled.stderr, /PermissionError|Permission denied/);
    } finally {
      await api.request('DELETE', `/api/sessions/${s.id}`);
    }
  });

  test("another local user cannot read Sortie's database or the runner's state", async () => {
    const s = await api.launch('xterm', 'carol');
    try {
      await api.waitFor(s.id, 'running');
      const files = [dbPath, `${dbPath}-wal`, xauthFilePath(stateDir, s.id)].filter(existsSync);
      assert.ok(files.includes(dbPath));
      for (const file of files) {
        const read = asOtherUser(['cat', file]);
        assert.notEqual(read.status, 0, `${OTHER_USER} read ${file}`);
      }
      const listed = asOtherUser(['ls', stateDir]);
      assert.notEqual(listed.status, 0, `${OTHER_USER} listed the runner's state folder: ${listed.stdout}`);
    } finally {
      await api.request('DELETE', `/api/sessions/${s.id}`);
    }
  });

  test("an app runs unprivileged, without Sortie's environment or files, and writes only to its home", async () => {
    const s = await api.launch('probe', 'bob');
    await api.waitFor(s.id, 'running');
    const out = path.join(homeDirPath(stateDir, s.id), 'out');
    await waitFor(() => existsSync(out), { what: 'the probe app wrote what it saw' });
    const seen = sections(readFileSync(out, 'utf8'));
    assert.ok(seen.has('end'), 'the probe finished');

    const uid = Number(seen.get('uid')?.[0]);
    assert.ok(Number.isInteger(uid) && uid !== 0, `the app runs as uid ${uid}`);
    if (process.getuid?.() !== 0) assert.equal(uid, process.getuid?.());

    const env = seen.get('env')!.join('\n');
    assert.ok(!env.includes(SECRET), 'SORTIE_JWT_SECRET reached the app');
    assert.ok(!env.includes(ADMIN_PASSWORD), 'SORTIE_ADMIN_PASSWORD reached the app');
    const names = seen.get('env')!.map((line) => line.split('=')[0]!);
    assert.deepEqual(names.filter((n) => !ALLOWED_ENV.has(n)), [], 'only what an X app needs');

    assert.match(seen.get('data')!.join('\n'), /No such file or directory/, "Sortie's data folder is visible");
    assert.match(seen.get('state')!.join('\n'), /No such file or directory/, "the runner's state folder is visible");
    assert.ok(Number(seen.get('pids')?.[0]) <= 5, `the app sees ${seen.get('pids')?.[0]} processes`);

    // /tmp is writable, but it is the sandbox's own (checked below).
    assert.deepEqual(seen.get('wrote'), [hostTmpMarker, '/home/session/probe']);
    // Its /tmp is its own: nothing it wrote there reached the host's.
    assert.equal(existsSync(hostTmpMarker), false, 'the app wrote into the host /tmp');
    assert.ok(existsSync(path.join(homeDirPath(stateDir, s.id), 'probe')), 'the app can write its home');

    await api.request('DELETE', `/api/sessions/${s.id}`);
    await waitFor(() => !existsSync(homeDirPath(stateDir, s.id)), { what: 'the home is removed with the session' });
  });
});
