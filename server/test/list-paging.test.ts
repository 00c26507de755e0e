import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { SessionPage, UserPage } from '../src/contract/pages.js';
import type { Session } from '../src/sessions/session.js';
import type { Api, ErrorBody, Reply } from './support/api.js';
import { launchBrowser, signIn } from './support/browser.js';
import { FakeRunner } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// GET /api/sessions and GET /api/admin/users page by `limit` and `cursor`, through the real
// HTTP API, sign-in, session service and SQLite file (a runner without processes, so a
// hundred launches take a second or two).

const ADMIN_PASSWORD = 'admin-password-for-paging';
const USER_PASSWORD = 'user-password-for-paging';
const APPS = [{ id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] }];

async function boot(name: string, env: Record<string, string> = {}): Promise<{ sortie: TestSortie; admin: Api; signIn: (username: string) => Promise<Api> }> {
  const sortie = await startTestSortie({
    name,
    apps: APPS,
    runner: new FakeRunner(),
    env: {
      SORTIE_AUTH: 'enabled',
      SORTIE_ADMIN_USERNAME: 'admin',
      SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SORTIE_JWT_SECRET: 'a-jwt-secret-for-the-paging-tests-0123456789',
      SORTIE_MAX_SESSIONS_PER_USER: '1000',
      ...env,
    },
  });
  const admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  return { sortie, admin, signIn: (username) => sortie.signIn(username, USER_PASSWORD) };
}

async function page(api: Api, query: string): Promise<SessionPage> {
  const res = await api.request<SessionPage>('GET', `/api/sessions${query}`);
  assert.equal(res.status, 200, res.text);
  return res.body;
}

/** Every page of a list, following next_cursor; `between` runs after each page but the last. */
async function walk(api: Api, query: string, between: () => Promise<void> = async () => {}): Promise<SessionPage[]> {
  const pages: SessionPage[] = [];
  let cursor: string | null = null;
  do {
    const sep = query ? '&' : '?';
    const p = await page(api, cursor === null ? query : `${query}${sep}cursor=${cursor}`);
    pages.push(p);
    cursor = p.next_cursor;
    if (cursor !== null) await between();
  } while (cursor !== null && pages.length < 100);
  return pages;
}

/** Newest first, ties broken by id, as the server promises. */
function assertNewestFirst(sessions: Session[]): void {
  for (let i = 1; i < sessions.length; i++) {
    const [a, b] = [sessions[i - 1]!, sessions[i]!];
    assert.ok(a.created_at > b.created_at || (a.created_at === b.created_at && a.id > b.id), `${a.id} (${a.created_at}) comes before ${b.id} (${b.created_at})`);
  }
}

async function expect400(api: Api, urlPath: string, field: string): Promise<string> {
  const res = await api.request<ErrorBody>('GET', urlPath);
  assert.equal(res.status, 400, `${urlPath}: ${res.text}`);
  assert.equal(res.body.error, 'bad_request', urlPath);
  assert.match(res.body.message, new RegExp(`"${field}"`), urlPath);
  return res.body.message;
}

describe('paged session lists', () => {
  let sortie: TestSortie;
  let admin: Api;
  let alice: Api;
  let bob: Api;
  const aliceIds: string[] = [];
  const bobIds: string[] = [];

  before(async () => {
    let signIn: (username: string) => Promise<Api>;
    ({ sortie, admin, signIn } = await boot('list-paging'));
    for (const username of ['alice', 'bob']) await admin.createUser(username, USER_PASSWORD);
    alice = await signIn('alice');
    bob = await signIn('bob');
    for (let i = 0; i < 120; i++) aliceIds.push((await alice.launch('xterm')).id);
    for (let i = 0; i < 3; i++) bobIds.push((await bob.launch('xterm')).id);
  });
  after(() => sortie?.cleanup());

  test('120 sessions come as pages of 50, 50 and 20, newest first, each once, though sessions are created between pages', async () => {
    const original = new Set(aliceIds);
    const createdMeanwhile: string[] = [];
    const pages = await walk(alice, '', async () => {
      createdMeanwhile.push((await alice.launch('xterm')).id);
    });
    assert.deepEqual(
      pages.map((p) => p.sessions.length),
      [50, 50, 20],
    );
    assert.equal(pages.at(-1)!.next_cursor, null);
    const seen = pages.flatMap((p) => p.sessions);
    assertNewestFirst(seen);
    assert.equal(new Set(seen.map((s) => s.id)).size, seen.length, 'no session on two pages');
    assert.deepEqual(new Set(seen.map((s) => s.id)), original, 'every one of the 120 sessions, and only those');
    assert.equal(createdMeanwhile.length, 2);

    // The next first page starts with what was created meanwhile.
    const first = await page(alice, '?limit=2');
    assert.deepEqual(
      first.sessions.map((s) => s.id),
      [...createdMeanwhile].reverse(),
    );
    aliceIds.push(...createdMeanwhile);
  });

  test('a page holds what the whole list holds at that place, with the caller\'s limit', async () => {
    const whole = (await page(alice, '?limit=200')).sessions;
    assert.equal(whole.length, aliceIds.length);
    const pages = await walk(alice, '?limit=7');
    assert.equal(pages.length, Math.ceil(aliceIds.length / 7));
    assert.deepEqual(
      pages.flatMap((p) => p.sessions.map((s) => s.id)),
      whole.map((s) => s.id),
    );
  });

  test('another user\'s sessions never appear: not by filter, not through a cursor from their list', async () => {
    const own = await walk(bob, '?limit=2');
    assert.deepEqual(
      own.flatMap((p) => p.sessions.map((s) => s.id)).sort(),
      [...bobIds].sort(),
    );
    const aliceUser = (await alice.session(aliceIds[0]!)).user_id;
    const narrowed = (await walk(bob, `?user_id=${encodeURIComponent(aliceUser)}&limit=50`)).flatMap((p) => p.sessions);
    assert.deepEqual(narrowed.map((s) => s.id).sort(), [...bobIds].sort(), 'user_id narrows only an admin\'s list');
    // Alice's cursor (pointing into her list) only says where to start; Bob still sees only his own.
    const aliceCursor = (await page(alice, '?limit=1')).next_cursor!;
    const through = await page(bob, `?cursor=${aliceCursor}`);
    assert.ok(through.sessions.every((s) => bobIds.includes(s.id)));
  });

  test('an admin pages through everyone\'s sessions, one person\'s, and a set of statuses', async () => {
    const everyone = (await walk(admin, '?limit=50')).flatMap((p) => p.sessions);
    assert.equal(everyone.length, aliceIds.length + bobIds.length);
    assert.equal(new Set(everyone.map((s) => s.id)).size, everyone.length);
    assertNewestFirst(everyone);

    const aliceUser = (await alice.session(aliceIds[0]!)).user_id;
    const hers = await walk(admin, `?user_id=${encodeURIComponent(aliceUser)}&limit=50`);
    assert.deepEqual(
      hers.map((p) => p.sessions.length),
      [50, 50, aliceIds.length - 100],
    );

    const ended = [aliceIds[0]!, aliceIds[60]!, bobIds[1]!];
    for (const id of ended) assert.equal((await admin.end(id)).status, 200);
    const endedPages = await walk(admin, '?status=terminated,failed&limit=2');
    assert.deepEqual(endedPages.map((p) => p.sessions.length), [2, 1]);
    assert.deepEqual(
      new Set(endedPages.flatMap((p) => p.sessions.map((s) => s.id))),
      new Set(ended),
    );
    const active = (await walk(admin, '?status=queued,creating,running&limit=200')).flatMap((p) => p.sessions);
    assert.equal(active.length, everyone.length - ended.length);
    assert.ok(active.every((s) => !ended.includes(s.id)));
  });

  test('a bad limit or cursor is a 400 that says what to send', async () => {
    for (const limit of ['0', '201', '-1', 'ten', '1.5', '', '99999', '1e2']) {
      const message = await expect400(alice, `/api/sessions?limit=${limit}`, 'limit');
      assert.match(message, /from 1 to 200/);
    }
    await expect400(alice, '/api/sessions?limit=5&limit=6', 'limit');

    const good = (await page(alice, '?limit=3')).next_cursor!;
    const decoded = JSON.parse(Buffer.from(good, 'base64url').toString()) as unknown[];
    const encode = (value: unknown) => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
    const users = (await admin.request<UserPage>('GET', '/api/admin/users?limit=1')).body.next_cursor!;
    const tampered = [
      '!!!',
      `${good}=`,
      good.slice(0, -3),
      good.slice(0, 10) + (good[10] === 'A' ? 'B' : 'A') + good.slice(11),
      encode('not json'),
      encode({ created_at: decoded[1], id: decoded[2] }),
      encode(['sessions', decoded[1]]),
      encode(['sessions', 'yesterday', decoded[2]]),
      encode(['sessions', decoded[1], 42]),
      encode(['sessions', decoded[1], decoded[2], 'extra']),
      encode(['sessions', decoded[1], 'x'.repeat(129)]),
      encode(['sessions', decoded[1], "' or 1=1 --".repeat(20)]),
      users,
      'A'.repeat(600),
    ];
    for (const cursor of tampered) {
      const message = await expect400(alice, `/api/sessions?cursor=${encodeURIComponent(cursor)}`, 'cursor');
      assert.match(message, /next_cursor/);
    }
    await expect400(alice, `/api/sessions?cursor=${good}&cursor=${good}`, 'cursor');
    await expect400(alice, '/api/sessions?status=running,sleeping', 'status');
    await expect400(admin, '/api/admin/users?limit=0', 'limit');
    await expect400(admin, `/api/admin/users?cursor=${good}`, 'cursor');
    // The cursor the server made still works after all that.
    assert.equal((await page(alice, `?limit=3&cursor=${good}`)).sessions.length, 3);
  });

  test('the admin list of users pages by username', async () => {
    for (const username of ['carol', 'dave', 'erin']) await admin.createUser(username, USER_PASSWORD);
    const pages: UserPage[] = [];
    let cursor: string | null = null;
    do {
      const res: Reply<UserPage> = await admin.request<UserPage>('GET', `/api/admin/users?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`);
      assert.equal(res.status, 200, res.text);
      pages.push(res.body);
      cursor = res.body.next_cursor;
    } while (cursor !== null && pages.length < 10);
    assert.deepEqual(
      pages.map((p) => p.users.map((u) => u.username)),
      [['admin', 'alice'], ['bob', 'carol'], ['dave', 'erin']],
    );
    const unpaged = await admin.request<UserPage>('GET', '/api/admin/users');
    assert.equal(unpaged.body.users.length, 6);
    assert.equal(unpaged.body.next_cursor, null);
    assert.equal((await alice.request('GET', '/api/admin/users?limit=2')).status, 403);
  });
  test('in the browser, the sessions list shows a page, Show more the next, and polling keeps what is loaded', async () => {
    const { browser, close } = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      await page.goto(sortie.url);
      await signIn(page, 'alice', USER_PASSWORD);
      await page.goto(`${sortie.url}/#/sessions`);
      const rows = page.locator('[data-testid^="sessions-row-"]');
      const more = page.getByTestId('sessions-more');
      const active = (await walk(alice, '?status=queued,creating,running&limit=200')).flatMap((p) => p.sessions);
      assert.ok(active.length > 100, `${active.length} active sessions`);

      await more.waitFor();
      assert.equal(await rows.count(), 50);
      await more.click();
      await page.locator(`[data-testid="sessions-row-${active[99]!.id}"]`).waitFor();
      assert.equal(await rows.count(), 100);

      // A session launched meanwhile shows on top at the next poll; the 100 loaded stay.
      const fresh = await alice.launch('xterm');
      aliceIds.push(fresh.id);
      await page.locator(`[data-testid="sessions-row-${fresh.id}"]`).waitFor({ timeout: 15_000 });
      assert.equal(await rows.count(), 101);

      await more.click();
      await page.locator(`[data-testid="sessions-row-${active.at(-1)!.id}"]`).waitFor();
      await more.waitFor({ state: 'detached' });
      const shown = await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-testid')!.slice('sessions-row-'.length)));
      assert.deepEqual(shown, [fresh.id, ...active.map((s) => s.id)], 'every active session once, newest first');
    } finally {
      await close();
    }
  });
});

describe('paged lists and the launch queue', () => {
  let sortie: TestSortie;
  let admin: Api;

  before(async () => {
    ({ sortie, admin } = await boot('list-paging-queue', { SORTIE_MAX_SESSIONS: '1' }));
  });
  after(() => sortie?.cleanup());

  test('each page shows queued sessions at their place in the whole queue, with their launch progress', async () => {
    await admin.createUser('alice', USER_PASSWORD);
    const alice = await sortie.signIn('alice', USER_PASSWORD);
    const launched: Session[] = [];
    for (let i = 0; i < 5; i++) launched.push(await alice.launch('xterm'));
    await alice.waitFor(launched[0]!.id, 'running');

    const pages = await walk(alice, '?limit=2');
    assert.deepEqual(
      pages.map((p) => p.sessions.map((s) => [s.id, s.status, s.queue_position])),
      [
        [
          [launched[4]!.id, 'queued', 4],
          [launched[3]!.id, 'queued', 3],
        ],
        [
          [launched[2]!.id, 'queued', 2],
          [launched[1]!.id, 'queued', 1],
        ],
        [[launched[0]!.id, 'running', null]],
      ],
    );
    for (const s of pages.flatMap((p) => p.sessions)) {
      if (s.status === 'queued') assert.deepEqual(s.progress?.map((step) => [step.step, step.ended_at]), [['queued', null]], s.id);
      else assert.equal(s.progress, null);
    }

    // Only the queued ones, a page at a time, keep their places too.
    const queued = await walk(alice, '?status=queued&limit=3');
    assert.deepEqual(
      queued.map((p) => p.sessions.map((s) => s.queue_position)),
      [[4, 3, 2], [1]],
    );
  });
});
