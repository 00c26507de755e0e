import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { vncSocketPath } from '../src/runners/local/state-file.js';
import type { Api } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { openTestDatabase } from './support/postgres.js';
import { localSessionRecord, processesInGroups, processTreeOfGroups } from './support/processes.js';
import { overSocket, overWebSocket, readDesktop, RfbViewer, type RfbTransport } from './support/rfb.js';

// Each session's VNC server demands a password only Sortie knows. Whoever reaches the
// session's ports without Sortie (another local user, a pod next door) gets no desktop;
// through Sortie the same session streams, and the password is nowhere a person could read it.

/**
 * Plays a viewer that does not know the password: RFB 3.8, the offered security types,
 * then VNC authentication with a wrong response to the server's 16-byte challenge.
 */
async function guessPassword(transport: RfbTransport): Promise<{ offered: number[]; result: number; reason: string }> {
  const timer = setTimeout(() => transport.bytes.fail(new Error('timed out')), 10_000);
  try {
    const banner = (await transport.bytes.take(12)).toString('latin1');
    assert.match(banner, /^RFB 003\.00\d\n$/);
    transport.send(Buffer.from('RFB 003.008\n'));
    const count = (await transport.bytes.take(1))[0]!;
    const offered = [...(await transport.bytes.take(count))];
    if (!offered.includes(2)) return { offered, result: -1, reason: '' };
    transport.send(Buffer.from([2]));
    const challenge = await transport.bytes.take(16);
    assert.equal(challenge.length, 16);
    transport.send(Buffer.alloc(16, 0x5a)); // not the DES of the challenge under the real password
    const result = (await transport.bytes.take(4)).readUInt32BE(0);
    let reason = '';
    if (result !== 0) {
      const length = (await transport.bytes.take(4)).readUInt32BE(0);
      reason = (await transport.bytes.take(length)).toString('utf8');
    }
    return { offered, result, reason };
  } finally {
    clearTimeout(timer);
    transport.close();
  }
}

describe('the per-session VNC password', () => {
  let sortie: TestSortie;
  let api: Api;
  let stateDir: string;
  /** Every API response body this test saw, to search for the password. */
  const responses: string[] = [];

  const record = async <T>(method: string, urlPath: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await api.request<T>(method, urlPath, body);
    responses.push(`${method} ${urlPath} ${res.status} ${JSON.stringify(res.body)}`);
    return res;
  };

  before(async () => {
    // Sign-in is off here: this file is about the VNC layer.
    sortie = await startTestSortie({
      name: 'vnc-secret',
      apps: [{ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: 'unused', command: ['xterm'] }],
    });
    ({ api, stateDir } = sortie);
  });

  // Sessions outlive Sortie by design; cleanup ends any a failed test left behind.
  after(() => sortie?.cleanup());

  test('the session is unreachable without Sortie and streams through it; the password is never exposed', async () => {
    const created = await record<{ id: string; websocket_url: string }>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(created.status, 201);
    const id = created.body.id;
    await api.waitFor(id, 'running');
    await record('GET', `/api/sessions/${id}`);
    await record('GET', '/api/sessions');
    await record('GET', '/api/apps');
    const session = localSessionRecord(stateDir, id);

    const db = await openTestDatabase(sortie.dir);
    const { stream_secret: secret } = await db.selectFrom('sessions').select('stream_secret').where('id', '=', id).executeTakeFirstOrThrow();
    await db.destroy();
    assert.ok(secret && secret.length >= 6, 'a running session has its own VNC password');

    // Directly at the session's websockify: only VNC authentication is offered, and a guess fails.
    await assert.rejects(RfbViewer.connect(`ws://127.0.0.1:${session.wsPort}/`, 5_000), /security "None" not offered \(offered 2\)/);
    const viaWebsockify = await guessPassword(overWebSocket(`ws://127.0.0.1:${session.wsPort}/`));
    assert.deepEqual(viaWebsockify.offered, [2], 'websockify passes on a server that offers VNC authentication only');
    assert.equal(viaWebsockify.result, 1, `a wrong response to the challenge fails (${viaWebsockify.reason})`);

    // Directly at Xvnc's VNC socket (which only Sortie's user can reach): the same.
    const direct = await guessPassword(overSocket({ path: vncSocketPath(stateDir, id) }));
    assert.deepEqual(direct.offered, [2]);
    assert.equal(direct.result, 1, `a wrong response to the challenge fails (${direct.reason})`);

    // Through Sortie the same session streams: Sortie answers the challenge, the viewer gets "None".
    const wsUrl = sortie.wsUrl(created.body.websocket_url);
    const desktop = await readDesktop(wsUrl);
    assert.equal(desktop.banner, 'RFB 003.008');
    assert.equal(desktop.width, 1280);
    assert.ok(desktop.updateBytes > 0 && desktop.nonBlank, 'a real framebuffer update of the xterm desktop');

    // The browser is never asked for a password: Sortie offers it "None" only.
    const browserSide = await guessPassword(overWebSocket(wsUrl));
    assert.deepEqual(browserSide.offered, [1]);

    // Not on any command line, nor in the environment of the session's processes.
    const groups = session.processes.map((p) => p.pid);
    const sessionPids = new Set(processTreeOfGroups(groups));
    assert.ok(sessionPids.size >= 3);
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let cmdline: string;
      try {
        cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      } catch {
        continue; // gone meanwhile
      }
      assert.ok(!cmdline.includes(secret), `process ${entry} has the password on its command line: ${cmdline.replaceAll('\0', ' ')}`);
      if (sessionPids.has(Number(entry))) {
        let environ = '';
        try {
          environ = readFileSync(`/proc/${entry}/environ`, 'utf8');
        } catch {
          continue;
        }
        assert.ok(!environ.includes(secret), `session process ${entry} has the password in its environment`);
      }
    }

    // Not in the runner's state directory: the state file, the log, and no password file left behind.
    const files = readdirSync(stateDir);
    assert.ok(files.includes(`${id}.json`));
    assert.ok(!files.some((f) => f.endsWith('.passwd')), `no password file is left (${files.join(', ')})`);
    for (const file of files) {
      // The display folder holds only the display's sockets.
      if (file === `${id}.display`) {
        assert.deepEqual(readdirSync(path.join(stateDir, file)).sort(), ['X' + session.display, 'vnc'].sort());
        continue;
      }
      assert.ok(!readFileSync(path.join(stateDir, file), 'utf8').includes(secret), `${file} holds the password`);
    }

    const ended = await record<{ status: string }>('DELETE', `/api/sessions/${id}`);
    assert.equal(ended.body.status, 'terminated');
    await record('GET', `/api/sessions/${id}`);

    // Not in any API response, including the session's own.
    assert.ok(responses.length >= 6);
    for (const response of responses) assert.ok(!response.includes(secret), `an API response holds the password: ${response}`);
    assert.deepEqual(processesInGroups(groups), [], 'ending the session left nothing running');
  });

  test('every session gets a different password', async () => {
    const [a, b] = await Promise.all([api.launch('xterm'), api.launch('xterm')]);
    try {
      const db = await openTestDatabase(sortie.dir);
      const secrets = await db.selectFrom('sessions').select('stream_secret').where('id', 'in', [a.id, b.id]).execute();
      await db.destroy();
      assert.equal(secrets.length, 2);
      assert.notEqual(secrets[0]!.stream_secret, secrets[1]!.stream_secret);
    } finally {
      await Promise.all([api.request('DELETE', `/api/sessions/${a.id}`), api.request('DELETE', `/api/sessions/${b.id}`)]);
    }
  });
});
