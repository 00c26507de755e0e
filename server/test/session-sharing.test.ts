import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CloseCode } from '../src/contract/close-codes.js';
import type { AuditPage, CreatedShare, RedeemedShare, Session, SessionPage, SessionSharesPage } from '../src/contract/index.js';
import type { Api } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { openTestDatabase } from './support/postgres.js';
import { clientCutText, Encoding, frameRequest, RfbViewer, setDesktopSize, setEncodings, StreamClosed, type Desktop } from './support/rfb.js';
import { onDesktop as onLocalDesktop, pointerOf, typedText, TYPIST_APP } from './support/typist.js';
import { sleep, waitFor } from './support/wait.js';

// Sharing a session, proven on a real desktop (the local runner: Xvnc, websockify, an xterm
// that copies each typed line into a file). What a view-only viewer sends is checked where it
// would land: the app's file, the X pointer, the X clipboard and the screen size.

const ADMIN_PASSWORD = 'sharing-admin-password-1';
const PASSWORD = 'sharing-user-password-1';
const apps = [TYPIST_APP];

let sortie: TestSortie;
let admin: Api;
const as: Record<'alice' | 'bob' | 'carol' | 'dave', Api> = {} as never;
let session: Session;
/** A link made first, so that its one minute is over by the last test. */
let link: CreatedShare;
let linkViewer: RfbViewer;

before(async () => {
  sortie = await startTestSortie({ name: 'session-sharing', apps, env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
  admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  for (const name of ['alice', 'bob', 'carol', 'dave'] as const) {
    await admin.createUser(name, PASSWORD);
    as[name] = await sortie.signIn(name, PASSWORD);
  }
  session = await as.alice.launch('typist');
  await as.alice.waitFor(session.id, 'running', 60_000);
});

after(async () => {
  linkViewer?.close();
  await sortie?.cleanup();
});

function bearer(api: Api): { headers: Record<string, string> } {
  return { headers: { authorization: `Bearer ${api.token}` } };
}

/** Opens the session's stream as `api`'s user and reads one full frame, so the desktop is known to reach them. */
async function watch(api: Api, query = ''): Promise<{ viewer: RfbViewer; desktop: Desktop }> {
  const { viewer, desktop } = await RfbViewer.connect(sortie.wsUrl(`/ws/sessions/${session.id}${query}`), bearer(api));
  const { updateBytes } = await viewer.frame(desktop);
  assert.ok(updateBytes > 0, 'a framebuffer update arrives');
  return { viewer, desktop };
}

/** Why the stream closed, once it does. */
function closed(viewer: RfbViewer): Promise<{ code: number; reason: string; at: number }> {
  return new Promise((resolve) => viewer.ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString(), at: Date.now() })));
}

function key(keysym: number, down: boolean): Buffer {
  const b = Buffer.alloc(8);
  b[0] = 4;
  b[1] = down ? 1 : 0;
  b.writeUInt32BE(keysym, 4);
  return b;
}

function pointer(x: number, y: number, buttons = 0): Buffer {
  const b = Buffer.alloc(6);
  b[0] = 5;
  b[1] = buttons;
  b.writeUInt16BE(x, 2);
  b.writeUInt16BE(y, 4);
  return b;
}

/** Types `line` and Enter, as X keysyms (Latin-1 letters are their own keysym). */
function type(viewer: RfbViewer, line: string): void {
  for (const ch of line) viewer.send(Buffer.concat([key(ch.charCodeAt(0), true), key(ch.charCodeAt(0), false)]));
  viewer.send(Buffer.concat([key(0xff0d, true), key(0xff0d, false)]));
}

/**
 * Waits until the VNC server has handled everything `viewer` sent so far: it answers messages
 * in order, so an update answering a request sent last comes after the rest was processed.
 */
async function settle(viewer: RfbViewer, desktop: Desktop): Promise<void> {
  viewer.send(frameRequest(desktop.width, desktop.height));
  const header = await viewer.take(4);
  assert.equal(header[0], 0, 'a FramebufferUpdate');
  for (let i = 0, n = header.readUInt16BE(2); i < n; i++) {
    const rect = await viewer.take(12);
    await viewer.take(rect.readUInt16BE(4) * rect.readUInt16BE(6) * desktop.bytesPerPixel);
  }
}

function typed(): string {
  return typedText(sortie.stateDir, session.id);
}

async function onDesktop(command: string, args: string[]): Promise<string> {
  try {
    return await onLocalDesktop(sortie.stateDir, session.id, command, args);
  } catch (err) {
    // xclip fails when nobody owns the selection: nothing was copied.
    if (command === 'xclip') return '';
    throw err;
  }
}

async function shares(api: Api = as.alice): Promise<SessionSharesPage> {
  const res = await api.request<SessionSharesPage>('GET', `/api/sessions/${session.id}/shares`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

async function share(body: unknown, api: Api = as.alice): Promise<CreatedShare> {
  const res = await api.request<CreatedShare>('POST', `/api/sessions/${session.id}/shares`, body);
  assert.equal(res.status, 201, res.text);
  return res.body;
}

async function audited(action: string): Promise<AuditPage['events']> {
  return waitFor(
    async () => {
      const page = await admin.request<AuditPage>('GET', `/api/admin/audit?action=${action}&limit=100`);
      return page.body.events?.filter((e) => e.target_id === session.id).length ? page.body.events : undefined;
    },
    { what: `an audit event ${action}` },
  );
}

describe('sharing a running session', { timeout: 240_000 }, () => {
  test('a link made for one minute opens for a signed-in person, never without sign-in', async () => {
    link = await share({ link: true, mode: 'view', expires_in_minutes: 1 });
    assert.equal(link.kind, 'link');
    assert.match(link.url!, /^\/#\/share\/[A-Za-z0-9_-]{43}$/);
    assert.equal((await sortie.api.request('POST', '/api/shares/redeem', { token: link.token })).status, 401);
    const wrong = await as.carol.request('POST', '/api/shares/redeem', { token: `${link.token!.slice(0, -2)}xx` });
    assert.equal(wrong.status, 404);
    const redeemed = await as.carol.request<RedeemedShare>('POST', '/api/shares/redeem', { token: link.token });
    assert.equal(redeemed.status, 200, redeemed.text);
    assert.deepEqual(redeemed.body, { session_id: session.id, mode: 'view' });
    ({ viewer: linkViewer } = await watch(as.carol));
    const list = await shares();
    const redeemedShare = list.shares.find((s) => s.link_id === link.id);
    assert.equal(redeemedShare?.user?.username, 'carol');
    assert.equal(redeemedShare?.expires_at, link.expires_at);
  });

  test('bad requests are refused with a message saying what to fix', async () => {
    const cases: [unknown, number, RegExp][] = [
      [{ user: 'nobody', mode: 'view' }, 400, /no user named "nobody"/],
      [{ user: 'alice', mode: 'view' }, 400, /owns this session/],
      [{ user: 'bob', mode: 'watch' }, 400, /"view".*"control"/],
      [{ link: true, mode: 'view', expires_in_minutes: 0 }, 400, /from 1 to 10080/],
      [{ link: true, mode: 'view', expires_in_minutes: 10081 }, 400, /from 1 to 10080/],
      [{ mode: 'view' }, 400, /either "user".*or "link"/],
      [{ user: 'bob', link: true, mode: 'view' }, 400, /either "user"/],
      [{ user: 'bob', mode: 'view', expires_in_minutes: 5 }, 400, /for links/],
      [{ user: 'bob', mode: 'view', owner: 'x' }, 400, /may hold only/],
    ];
    for (const [body, status, message] of cases) {
      const res = await as.alice.request<{ message: string }>('POST', `/api/sessions/${session.id}/shares`, body);
      assert.equal(res.status, status, `${JSON.stringify(body)}: ${res.text}`);
      assert.match(res.body.message, message, JSON.stringify(body));
    }
    // Only the owner or an admin shares; others do not even learn the session exists.
    assert.equal((await as.dave.request('POST', `/api/sessions/${session.id}/shares`, { user: 'bob', mode: 'view' })).status, 404);
    assert.equal((await as.dave.request('GET', `/api/sessions/${session.id}/shares`)).status, 404);
  });

  test('someone with no share gets 404 for the session and its stream', async () => {
    assert.equal((await as.dave.request('GET', `/api/sessions/${session.id}`)).status, 404);
    await assert.rejects(RfbViewer.connect(sortie.wsUrl(`/ws/sessions/${session.id}`), bearer(as.dave)), (err: Error) => err instanceof StreamClosed && err.code === CloseCode.SessionNotFound);
    const list = await as.dave.request<SessionPage>('GET', '/api/sessions');
    assert.deepEqual(list.body.sessions, []);
  });

  test('a view share: B sees the desktop, and nothing B sends reaches it', async () => {
    const bobShare = await share({ user: 'bob', mode: 'view' });
    assert.deepEqual([bobShare.kind, bobShare.mode, bobShare.user?.username], ['user', 'view', 'bob']);
    assert.equal((await as.alice.request('POST', `/api/sessions/${session.id}/shares`, { user: 'bob', mode: 'control' })).status, 409);

    // B finds it in their own list, marked, and may read it, but not end it or use its files.
    const list = await as.bob.request<SessionPage>('GET', '/api/sessions');
    const listed = list.body.sessions.find((s) => s.id === session.id);
    assert.deepEqual(listed?.shared_with_me, { owner: 'alice', mode: 'view' });
    assert.equal(listed?.user_id, session.user_id);
    assert.deepEqual((await as.bob.session(session.id)).shared_with_me, { owner: 'alice', mode: 'view' });
    assert.equal((await as.bob.end(session.id)).status, 404);
    assert.equal((await as.bob.request('GET', `/api/sessions/${session.id}/files?path=`)).status, 404);
    assert.equal((await as.bob.request('GET', `/api/sessions/${session.id}/shares`)).status, 403);
    assert.equal((await as.alice.session(session.id)).shared_with_me, undefined);

    // A points into the terminal; then B tries everything.
    const owner = await watch(as.alice);
    owner.viewer.send(pointer(60, 40));
    await settle(owner.viewer, owner.desktop);
    const before = await onDesktop('xdpyinfo', []);
    const size = /dimensions:\s+(\d+x\d+)/.exec(before)![1];

    const bob = await watch(as.bob);
    type(bob.viewer, 'leaked by bob');
    bob.viewer.send(pointer(300, 200, 1));
    bob.viewer.send(pointer(300, 200, 0));
    bob.viewer.send(clientCutText('copied by bob'));
    bob.viewer.send(setDesktopSize(640, 480, [{ id: 0, x: 0, y: 0, width: 640, height: 480, flags: 0 }]));
    bob.viewer.send(setEncodings([Encoding.Raw]));
    await settle(bob.viewer, bob.desktop);

    assert.deepEqual(await pointerOf(sortie.stateDir, session.id), { x: 60, y: 40, mask: 0 }, 'the pointer stays where A left it, no button held');
    assert.doesNotMatch(await onDesktop('xclip', ['-o', '-selection', 'clipboard']), /copied by bob/);
    assert.doesNotMatch(await onDesktop('xclip', ['-o', '-selection', 'primary']), /copied by bob/);
    assert.equal(/dimensions:\s+(\d+x\d+)/.exec(await onDesktop('xdpyinfo', []))![1], size, 'the screen keeps its size');
    type(owner.viewer, 'typed by alice');
    await waitFor(() => typed().endsWith('\n'), { what: "A's line in the app", timeoutMs: 15_000 });
    assert.equal(typed(), 'typed by alice\n', "only A's keys reached the app");

    // A sees who is watching.
    const seen = await waitFor(
      async () => {
        const page = await shares();
        return page.shares.find((s) => s.id === bobShare.id)?.watching && page;
      },
      { what: 'B shown as watching' },
    );
    assert.deepEqual(seen.watchers.map((w) => [w.username, w.mode, w.via]).sort(), [
      ['bob', 'view', 'share'],
      ['carol', 'view', 'share'],
    ]);
    assert.deepEqual((await as.alice.session(session.id)).watched_by?.map((w) => w.username).sort(), ['bob', 'carol']);

    // Revoking cuts B at once.
    const cut = closed(bob.viewer);
    const asked = Date.now();
    const revoked = await as.alice.request('DELETE', `/api/sessions/${session.id}/shares/${bobShare.id}`);
    assert.equal(revoked.status, 204);
    const { code, at } = await cut;
    assert.equal(code, CloseCode.ShareEnded);
    assert.ok(at - asked < 1000, `B's stream closed ${at - asked} ms after the revoke`);
    assert.equal((await as.bob.request('GET', `/api/sessions/${session.id}`)).status, 404);
    await assert.rejects(RfbViewer.connect(sortie.wsUrl(`/ws/sessions/${session.id}`), bearer(as.bob)), (err: Error) => err instanceof StreamClosed && err.code === CloseCode.SessionNotFound);
    assert.equal((await as.alice.request('DELETE', `/api/sessions/${session.id}/shares/no-such-share`)).status, 404);
    owner.viewer.close();
    for (const action of ['session.share_create', 'session.share_revoke', 'session.watch_open', 'session.watch_close']) await audited(action);
  });

  test('a control share lets B type', async () => {
    await share({ user: 'bob', mode: 'control' });
    const bob = await watch(as.bob);
    bob.viewer.send(pointer(70, 50));
    type(bob.viewer, 'typed by bob');
    await waitFor(() => typed().split('\n').length === 3, { what: "B's line in the app", timeoutMs: 15_000 });
    assert.equal(typed(), 'typed by alice\ntyped by bob\n');
    bob.viewer.close();
  });

  test('an admin watches view only, unless they take control, and the owner sees it', async () => {
    const watching = await watch(admin);
    type(watching.viewer, 'typed by the admin watching');
    await settle(watching.viewer, watching.desktop);
    const seen = await waitFor(async () => (await as.alice.session(session.id)).watched_by?.find((w) => w.via === 'admin'), { what: 'the admin shown to the owner' });
    assert.deepEqual([seen.username, seen.mode], ['admin', 'view']);
    watching.viewer.close();
    const control = await watch(admin, '?control=1');
    control.viewer.send(pointer(80, 60));
    type(control.viewer, 'typed by the admin');
    await waitFor(() => typed().split('\n').length === 4, { what: "the admin's line in the app", timeoutMs: 15_000 });
    assert.equal(typed(), 'typed by alice\ntyped by bob\ntyped by the admin\n');
    control.viewer.close();
    await audited('session.take_control');
  });

  test('the link stops working when it expires, and its viewer is cut', async () => {
    const cut = closed(linkViewer);
    const remaining = Date.parse(link.expires_at!) - Date.now();
    if (remaining > 0) await sleep(remaining);
    const { code } = await cut;
    assert.equal(code, CloseCode.ShareEnded);
    assert.equal((await as.dave.request('POST', '/api/shares/redeem', { token: link.token })).status, 404);
    assert.equal((await as.carol.request('GET', `/api/sessions/${session.id}`)).status, 404);
    await assert.rejects(RfbViewer.connect(sortie.wsUrl(`/ws/sessions/${session.id}`), bearer(as.carol)), (err: Error) => err instanceof StreamClosed && err.code === CloseCode.SessionNotFound);
  });

  test('ending the session ends every share and cuts their streams', async () => {
    const bob = await watch(as.bob);
    const cut = closed(bob.viewer);
    assert.equal((await as.alice.end(session.id)).status, 200);
    await cut;
    assert.deepEqual((await shares(admin)).shares, []);
    assert.equal((await as.bob.request('GET', `/api/sessions/${session.id}`)).status, 404);
    const list = await as.bob.request<SessionPage>('GET', '/api/sessions');
    assert.equal(list.body.sessions.length, 0);
    await audited('session.share_end');
  });

  test('a session that ended before its shares did (its replica died in between) shows none and grants nothing', async () => {
    const other = await as.alice.launch('typist');
    try {
      const made = await as.alice.request('POST', `/api/sessions/${other.id}/shares`, { user: 'bob', mode: 'view' });
      assert.equal(made.status, 201, made.text);
      // Ended in the database only: the step that ends its shares never ran.
      const db = await openTestDatabase(sortie.dir);
      try {
        await db.updateTable('sessions').set({ status: 'terminated', reason: 'ended elsewhere' }).where('id', '=', other.id).execute();
      } finally {
        await db.destroy();
      }
      const listed = await as.alice.request<SessionSharesPage>('GET', `/api/sessions/${other.id}/shares`);
      assert.equal(listed.status, 200, listed.text);
      assert.deepEqual(listed.body, { shares: [], watchers: [] });
      assert.equal((await as.bob.request('GET', `/api/sessions/${other.id}`)).status, 404);
    } finally {
      await sortie.sortie.runner.stop(other.id);
    }
  });
});
