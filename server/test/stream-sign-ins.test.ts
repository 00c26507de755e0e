import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import type WebSocket from 'ws';
import type { AuditEvent } from '../src/contract/audit.js';
import type { Session } from '../src/sessions/session.js';
import { CloseCode } from '../src/stream/close-codes.js';
import type { Api, Tokens } from './support/api.js';
import { startEchoVnc } from './support/echo-vnc.js';
import { FakeRunner, type FakeRunnerOptions } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { canConnect, freePort } from './support/ports.js';
import { freshTestDatabase } from './support/postgres.js';
import { openThroughRelay } from './support/relay-viewer.js';
import { SharedRunner } from './support/shared-runner.js';
import { waitFor } from './support/wait.js';

// A desktop stream is authorised as it opens; these check that it ends (4401) once its
// viewer's sign-in no longer allows it, and only then. Sessions are a FakeRunner's, streaming
// through a real websockify to a stand-in VNC server, opened by a real WebSocket client.

const PASSWORD = 'correct-horse-battery';

/** websockify in front of an echoing VNC server: the one desktop every session streams. */
async function startDesktop(): Promise<{ runner: FakeRunner; options: FakeRunnerOptions; close: () => Promise<void> }> {
  const echo = await startEchoVnc();
  const wsPort = await freePort();
  const websockify: ChildProcess = spawn('/usr/bin/websockify', [`127.0.0.1:${wsPort}`, `127.0.0.1:${echo.port}`], { stdio: 'ignore' });
  await waitFor(() => canConnect(wsPort), { what: 'websockify to listen' });
  const options: FakeRunnerOptions = { endpoint: { host: '127.0.0.1', port: wsPort }, startLatencyMs: () => 30 };
  return {
    runner: new FakeRunner(options),
    options,
    close: async () => {
      websockify.kill();
      await echo.close();
    },
  };
}

/** An open stream and how it ended, once it has. */
interface Watched {
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string; at: number }>;
}

async function watch(sortie: TestSortie, session: Session, token: string | undefined): Promise<Watched> {
  const { ws, release } = await openThroughRelay(sortie.wsUrl(session.websocket_url), token ? { authorization: `Bearer ${token}` } : {});
  release();
  // websockify answers a viewer's close frame with 1005, which ws rejects as an error: the end of a test, not a finding.
  ws.on('error', () => {});
  const closed = new Promise<{ code: number; reason: string; at: number }>((resolve) =>
    ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString(), at: Date.now() })),
  );
  return { ws, closed };
}

async function running(api: Api, session: Session): Promise<Session> {
  return waitFor(
    async () => {
      const now = (await api.request<Session>('GET', `/api/sessions/${session.id}`)).body;
      return now.status === 'running' && now;
    },
    { what: `session ${session.id} to run` },
  );
}

/** Still open after `ms`, and the desktop still answers (the echo server sends bytes back). */
async function staysOpen(stream: Watched, ms: number, what: string): Promise<void> {
  const early = await Promise.race([stream.closed, sleep(ms).then(() => undefined)]);
  assert.equal(early, undefined, `${what} closed: ${JSON.stringify(early)}`);
  const echoed = new Promise<Buffer>((resolve) => stream.ws.once('message', (data: Buffer) => resolve(data)));
  stream.ws.send(Buffer.from([3, 0, 0, 0, 0, 0, 0, 1, 0, 1]));
  assert.ok((await Promise.race([echoed, sleep(2_000).then(() => undefined)])) !== undefined, `${what} still relays`);
}

function assertSignInEnded(ended: { code: number; reason: string }): void {
  assert.equal(ended.code, CloseCode.Unauthorized);
  assert.match(ended.reason, /sign in again/);
}

describe('with sign-in on, a long check interval (only the immediate check can be in time)', () => {
  let desktop: Awaited<ReturnType<typeof startDesktop>>;
  let sortie: TestSortie;
  let admin: Api;

  before(async () => {
    desktop = await startDesktop();
    // The periodic check is a minute away: what closes a stream within 2 s here is the check
    // made at once on the replica where the sign-in ended.
    sortie = await startTestSortie({
      name: 'stream-sign-ins',
      runner: desktop.runner,
      signInCheckIntervalMs: 60_000,
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: PASSWORD },
    });
    admin = await sortie.signIn('admin', PASSWORD);
  });

  after(async () => {
    await sortie?.cleanup();
    await desktop?.close();
  });

  test('signing out closes that sign-in’s stream with 4401 at once; another sign-in of the same user keeps its stream; the close is audited', async () => {
    await admin.createUser('uma', PASSWORD);
    const phone = await sortie.signIn('uma', PASSWORD);
    const laptop = await sortie.signIn('uma', PASSWORD);
    const session = await running(phone, await phone.launch('xterm'));
    const onPhone = await watch(sortie, session, phone.token!);
    const onLaptop = await watch(sortie, session, laptop.token!);

    const asked = Date.now();
    assert.equal((await phone.request('POST', '/api/auth/logout')).status, 204);
    const ended = await Promise.race([onPhone.closed, sleep(5_000).then(() => undefined)]);
    assert.ok(ended, 'the signed-out stream closed');
    assertSignInEnded(ended);
    assert.ok(ended.at - asked < 2_000, `closed ${ended.at - asked} ms after the sign-out`);

    await staysOpen(onLaptop, 1_000, 'the other sign-in’s stream');

    const closes = await waitFor(
      async () => {
        const page = await admin.request<{ events: AuditEvent[] }>('GET', '/api/admin/audit?action=session.stream_close');
        return page.body.events.find((e) => e.target_id === session.id && (e.details as { reason?: string } | null)?.reason === 'sign_in_ended');
      },
      { what: 'the stream close in the audit log' },
    );
    assert.equal(closes.actor_name, 'uma');
    onLaptop.ws.terminate();
  });

  test('disabling the user closes their stream with 4401 at once', async () => {
    const id = await admin.createUser('dora', PASSWORD);
    const dora = await sortie.signIn('dora', PASSWORD);
    const session = await running(dora, await dora.launch('xterm'));
    const stream = await watch(sortie, session, dora.token!);

    const asked = Date.now();
    assert.equal((await admin.request('PATCH', `/api/admin/users/${id}`, { disabled: true })).status, 200);
    const ended = await Promise.race([stream.closed, sleep(5_000).then(() => undefined)]);
    assert.ok(ended, 'the disabled user’s stream closed');
    assertSignInEnded(ended);
    assert.ok(ended.at - asked < 2_000, `closed ${ended.at - asked} ms after the user was disabled`);
  });

  test('an admin watching someone’s session loses the stream with 4401 when no longer an admin; the owner keeps theirs', async () => {
    const watcherId = await admin.createUser('wendy', PASSWORD, 'admin');
    await admin.createUser('owen', PASSWORD);
    const wendy = await sortie.signIn('wendy', PASSWORD);
    const owen = await sortie.signIn('owen', PASSWORD);
    const session = await running(owen, await owen.launch('xterm'));
    const owners = await watch(sortie, session, owen.token!);
    const watching = await watch(sortie, session, wendy.token!);

    const asked = Date.now();
    assert.equal((await admin.request('PATCH', `/api/admin/users/${watcherId}`, { role: 'user' })).status, 200);
    const ended = await Promise.race([watching.closed, sleep(5_000).then(() => undefined)]);
    assert.ok(ended, 'the former admin’s stream closed');
    assert.equal(ended.code, CloseCode.Unauthorized);
    assert.match(ended.reason, /no longer an administrator/);
    assert.ok(ended.at - asked < 2_000, `closed ${ended.at - asked} ms after the role change`);
    await staysOpen(owners, 500, 'the owner’s stream');
    owners.ws.terminate();
  });
});

describe('across two Sorties on one PostgreSQL: a sign-out through A ends the stream B relays', () => {
  let desktop: Awaited<ReturnType<typeof startDesktop>>;
  let database: Awaited<ReturnType<typeof freshTestDatabase>>;
  let a: TestSortie;
  let b: TestSortie;
  const CHECK_MS = 500;

  before(async () => {
    desktop = await startDesktop();
    database = await freshTestDatabase();
    const runner = new SharedRunner(desktop.options);
    const env = { SORTIE_DATABASE_URL: database.url, SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: PASSWORD };
    // A hears of the sign-out at once but relays nothing; only B's periodic check, every
    // 0.5 s here (25 s by default), can see it in time.
    a = await startTestSortie({ name: 'stream-sign-ins-a', runner: runner.forReplica(), signInCheckIntervalMs: 60_000, env });
    b = await startTestSortie({ name: 'stream-sign-ins-b', runner: runner.forReplica(), signInCheckIntervalMs: CHECK_MS, env });
  });

  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await database?.drop();
    await desktop?.close();
  });

  test('signed out through A, that sign-in’s stream on B closes with 4401 at B’s next check; the user’s other sign-in keeps its stream', async () => {
    const admin = await a.signIn('admin', PASSWORD);
    await admin.createUser('rhea', PASSWORD);
    const phone = await a.signIn('rhea', PASSWORD);
    const laptop = await a.signIn('rhea', PASSWORD);
    const session = await running(phone, await phone.launch('xterm'));
    const onPhone = await watch(b, session, phone.token!);
    const onLaptop = await watch(b, session, laptop.token!);
    await staysOpen(onPhone, 2 * CHECK_MS, 'the stream before the sign-out');

    const asked = Date.now();
    assert.equal((await phone.request('POST', '/api/auth/logout')).status, 204);
    const ended = await Promise.race([onPhone.closed, sleep(5_000).then(() => undefined)]);
    assert.ok(ended, 'the signed-out stream on B closed');
    assertSignInEnded(ended);
    assert.ok(ended.at - asked < CHECK_MS + 1_500, `closed ${ended.at - asked} ms after the sign-out`);
    await staysOpen(onLaptop, 2 * CHECK_MS, 'the other sign-in’s stream on B');
    onLaptop.ws.terminate();
  });
});

describe('with sign-in on and 3 s access tokens', () => {
  let desktop: Awaited<ReturnType<typeof startDesktop>>;
  let sortie: TestSortie;
  const CHECK_MS = 500;

  before(async () => {
    desktop = await startDesktop();
    sortie = await startTestSortie({
      name: 'stream-sign-ins-expiry',
      runner: desktop.runner,
      signInCheckIntervalMs: CHECK_MS,
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: PASSWORD, SORTIE_ACCESS_TOKEN_TTL: '0.05' },
    });
  });

  after(async () => {
    await sortie?.cleanup();
    await desktop?.close();
  });

  test('a stream outlives the access token it was opened with while the sign-in holds, and still ends when that sign-in is signed out', async () => {
    const signedIn = await sortie.api.signedIn('admin', PASSWORD);
    const tokens: Tokens = signedIn.tokens;
    const session = await running(signedIn, await signedIn.launch('xterm'));
    const stream = await watch(sortie, session, tokens.access_token);

    // Past the token's expiry (kept in whole seconds) and a check interval, with room.
    const expiresAt = Date.parse(tokens.expires_at);
    await staysOpen(stream, Math.max(0, expiresAt - Date.now()) + 1_000 + 2 * CHECK_MS, 'the stream past its access token');
    assert.equal((await signedIn.request('GET', '/api/auth/me')).status, 401, 'the access token has expired');

    // The browser refreshes without reopening the stream; signing out with the new token ends it.
    const refreshed = await sortie.api.request<Tokens>('POST', '/api/auth/refresh', { refresh_token: tokens.refresh_token });
    assert.equal(refreshed.status, 200, refreshed.text);
    await staysOpen(stream, 2 * CHECK_MS, 'the stream after a refresh');
    const asked = Date.now();
    assert.equal((await sortie.api.as(refreshed.body.access_token).request('POST', '/api/auth/logout')).status, 204);
    const ended = await Promise.race([stream.closed, sleep(5_000).then(() => undefined)]);
    assert.ok(ended, 'the signed-out stream closed');
    assertSignInEnded(ended);
    assert.ok(ended.at - asked < 2_000, `closed ${ended.at - asked} ms after the sign-out`);
  });
});

describe('with sign-in off', () => {
  let desktop: Awaited<ReturnType<typeof startDesktop>>;
  let sortie: TestSortie;

  before(async () => {
    desktop = await startDesktop();
    sortie = await startTestSortie({ name: 'stream-sign-ins-off', runner: desktop.runner, signInCheckIntervalMs: 200 });
  });

  after(async () => {
    await sortie?.cleanup();
    await desktop?.close();
  });

  test('nothing is checked and nothing closes', async () => {
    const session = await running(sortie.api, await sortie.api.launch('xterm'));
    const stream = await watch(sortie, session, undefined);
    await staysOpen(stream, 1_000, 'the stream');
    stream.ws.terminate();
  });
});
