import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import type { Page } from 'playwright-core';
import { launchBrowser, signIn } from './support/browser.js';
import { FakeRunner } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { freshTestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// GET /api/events: the UI hears of session changes as Server-Sent Events instead of
// polling. Real Sortie with the fake runner; one replica on the suite's database, then two
// replicas on one real PostgreSQL.

const APPS = [{ id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'] }];
const ADMIN_PASSWORD = 'live-updates-admin-pw-1';

interface Event {
  event: string;
  data: Record<string, unknown>;
}

/** An open event stream, parsed as EventSource does, with a way to wait for an event. */
class EventStream {
  readonly events: Event[] = [];
  private waiters: Array<() => void> = [];
  done: Promise<void> = Promise.resolve();
  private constructor(
    private readonly controller: AbortController,
    readonly status: number,
  ) {}

  static async open(baseUrl: string, path: string, headers: Record<string, string> = {}): Promise<EventStream & { body?: string }> {
    const controller = new AbortController();
    const res = await fetch(baseUrl + path, { headers: { accept: 'text/event-stream', ...headers }, signal: controller.signal });
    const stream = new EventStream(controller, res.status);
    if (res.status !== 200) return Object.assign(stream, { body: await res.text() });
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    // The security headers every answer carries (helmet), though this one leaves Fastify.
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    assert.match(res.headers.get('content-security-policy') ?? '', /frame-ancestors 'none'/);
    stream.done = stream.read(res.body!);
    await stream.next((e) => e.event === 'ready');
    return stream;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]));
          if (fields.event) this.events.push({ event: fields.event, data: JSON.parse(fields.data ?? '{}') as Record<string, unknown> });
          for (const wake of this.waiters.splice(0)) wake();
        }
      }
    } catch {
      // Aborted by close().
    }
  }

  /** The first event (seen or to come) that matches, or a failure after `ms`. */
  async next(match: (e: Event) => boolean, ms = 5_000): Promise<Event> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.events.find(match);
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching event within ${ms} ms; had ${JSON.stringify(this.events)}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.controller.abort();
  }

  /** Resolves when the server ends the stream; fails after `ms`. */
  ended(ms: number): Promise<void> {
    return Promise.race([
      this.done,
      new Promise<void>((_, reject) => setTimeout(() => reject(new Error(`the stream was still open after ${ms} ms`)), ms).unref()),
    ]);
  }
}

describe('live updates on one Sortie', () => {
  let sortie: TestSortie;
  const tokens: Record<string, string> = {};
  const streams: EventStream[] = [];
  const open = async (who: string, path = '/api/events') => {
    const stream = await EventStream.open(sortie.url, path, { authorization: `Bearer ${tokens[who]}` });
    assert.equal(stream.status, 200, stream.body);
    streams.push(stream);
    return stream;
  };
  const launch = async (who: string) => {
    const res = await sortie.api.as(tokens[who]).request<{ id: string }>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(res.status, 201, res.text);
    return res.body.id;
  };

  before(async () => {
    sortie = await startTestSortie({ name: 'live-updates', apps: APPS, runner: new FakeRunner(), env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_STREAM_PING_INTERVAL: '0.3' } });
    tokens.admin = (await sortie.api.signIn('admin', ADMIN_PASSWORD)).body.access_token;
    for (const name of ['alice', 'bob', 'carol']) {
      const password = `${name}-live-pw-1`;
      assert.equal((await sortie.api.as(tokens.admin).request('POST', '/api/admin/users', { username: name, password })).status, 201);
      tokens[name] = (await sortie.api.signIn(name, password)).body.access_token;
    }
  });

  after(async () => {
    for (const stream of streams) stream.close();
    await sortie?.cleanup();
  });

  test('a user hears of their own session going from queued to running, and nothing of another user\'s', async () => {
    const alice = await open('alice');
    const bob = await open('bob');
    const id = await launch('alice');
    const running = await alice.next((e) => e.event === 'session' && e.data.id === id && e.data.status === 'running');
    assert.equal(running.data.user_id, (await sortie.api.as(tokens.alice).request<{ user_id: string }>('GET', `/api/sessions/${id}`)).body.user_id);
    assert.ok(alice.events.some((e) => e.event === 'session' && e.data.status === 'queued'), 'the launch itself is an event');
    // Bob's stream learns at most that the queue moved: never an id, a user or a status of Alice's.
    const ended = await sortie.api.as(tokens.alice).request('DELETE', `/api/sessions/${id}`);
    assert.equal(ended.status, 200);
    await alice.next((e) => e.event === 'session' && e.data.id === id && e.data.status === 'terminated');
    assert.ok(bob.events.length > 0, 'bob saw at least the ready event');
    for (const e of bob.events) {
      assert.ok(['ready', 'queue'].includes(e.event), JSON.stringify(e));
      assert.deepEqual(e.data, {});
    }
  });

  test('an admin may hear of everyone\'s sessions with scope=all; a user may not', async () => {
    const all = await open('admin', '/api/events?scope=all');
    const id = await launch('bob');
    await all.next((e) => e.event === 'session' && e.data.id === id && e.data.status === 'running');
    const refused = await EventStream.open(sortie.url, '/api/events?scope=all', { authorization: `Bearer ${tokens.alice}` });
    assert.equal(refused.status, 403);
    assert.match(refused.body ?? '', /administrator/);
    const bad = await EventStream.open(sortie.url, '/api/events?scope=everyone', { authorization: `Bearer ${tokens.alice}` });
    assert.equal(bad.status, 400);
    assert.match(bad.body ?? '', /scope/);
  });

  test('callers who are not signed in, or who do not ask for an event stream, are told why', async () => {
    const anonymous = await EventStream.open(sortie.url, '/api/events');
    assert.equal(anonymous.status, 401);
    const res = await sortie.api.as(tokens.alice).request('GET', '/api/events');
    assert.equal(res.status, 400);
    assert.match(res.text, /text\/event-stream/);
  });

  test('one user holds at most 8 streams; the ninth is refused with 429 and a message, and closing one makes room', async () => {
    const held: EventStream[] = [];
    for (let i = 0; i < 8; i++) held.push(await open('carol'));
    const ninth = await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${tokens.carol}` });
    assert.equal(ninth.status, 429);
    assert.match(ninth.body ?? '', /live-update streams open/);
    // Another user is not held up by Carol's.
    await open('alice');
    held[0]!.close();
    let again: EventStream & { body?: string };
    const deadline = Date.now() + 5_000;
    do again = await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${tokens.carol}` });
    while (again.status === 429 && Date.now() < deadline && (await new Promise((r) => setTimeout(r, 50)), true));
    assert.equal(again.status, 200);
    again.close();
    for (const stream of held) stream.close();
  });

  test('streams carry heartbeat comments, and a signed-out user\'s open stream ends, saying why; the sign-in opens no new stream', async () => {
    const held = await open('alice');
    const raw = await fetch(`${sortie.url}/api/events`, { headers: { accept: 'text/event-stream', authorization: `Bearer ${tokens.alice}` } });
    const reader = raw.body!.getReader();
    let text = '';
    while (!text.includes(': heartbeat')) text += new TextDecoder().decode((await reader.read()).value);
    const res = await sortie.api.as(tokens.alice).request('POST', '/api/auth/logout');
    assert.ok([200, 204].includes(res.status), res.text);
    await held.ended(5_000);
    assert.match(String((await held.next((e) => e.event === 'revoked', 0)).data.message), /sign in again/);
    for (;;) if ((await reader.read()).done) break;
    assert.equal((await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${tokens.alice}` })).status, 401);
  });

  test('a disabled user\'s open stream ends, saying why', async () => {
    const held = await open('bob');
    const users = await sortie.api.as(tokens.admin).request<{ users: Array<{ id: string; username: string }> }>('GET', '/api/admin/users');
    const bob = users.body.users.find((u) => u.username === 'bob')!;
    const res = await sortie.api.as(tokens.admin).request('PATCH', `/api/admin/users/${bob.id}`, { disabled: true });
    assert.equal(res.status, 200, res.text);
    await held.ended(5_000);
    await held.next((e) => e.event === 'revoked', 0);
  });
});

describe('live updates with a short-lived access token', () => {
  let sortie: TestSortie;
  const password = 'expiry-admin-pw-1';

  before(async () => {
    // Tokens live 3 s; the heartbeat's re-check of the sign-in is a minute away, so only the
    // token's own expiry can end a stream in this test's time.
    sortie = await startTestSortie({
      name: 'live-updates-expiry',
      apps: APPS,
      runner: new FakeRunner(),
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: password, SORTIE_ACCESS_TOKEN_TTL: '0.05', SORTIE_STREAM_PING_INTERVAL: '60' },
    });
  });

  after(() => sortie?.cleanup());

  test('a stream ends when the access token it was opened with expires, with event: expired; the refreshed token opens the next one', async () => {
    const signedIn = await sortie.api.signIn('admin', password);
    assert.equal(signedIn.status, 200, signedIn.text);
    const expiresAt = Date.parse(signedIn.body.expires_at);
    const stream = await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${signedIn.body.access_token}` });
    assert.equal(stream.status, 200, stream.body);
    try {
      const expired = await stream.next((e) => e.event === 'expired', 10_000);
      const at = Date.now();
      // The token's expiry is kept in whole seconds, rounded down.
      assert.ok(at >= expiresAt - 1_000, `ended ${expiresAt - at} ms before the token expired`);
      assert.match(String(expired.data.message), /refresh/);
      await stream.ended(2_000);
    } finally {
      stream.close();
    }
    const stale = await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${signedIn.body.access_token}` });
    assert.equal(stale.status, 401);
    assert.match(stale.body ?? '', /expired/);
    const refreshed = await sortie.api.request<{ access_token: string }>('POST', '/api/auth/refresh', { refresh_token: signedIn.body.refresh_token });
    assert.equal(refreshed.status, 200, refreshed.text);
    const next = await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${refreshed.body.access_token}` });
    assert.equal(next.status, 200, next.body);
    next.close();
  });

  test('signing out ends the stream on this Sortie at once with event: revoked, not at the heartbeat a minute away nor at the token\'s expiry', async () => {
    const signedIn = await sortie.api.signIn('admin', password);
    assert.equal(signedIn.status, 200, signedIn.text);
    const stream = await EventStream.open(sortie.url, '/api/events', { authorization: `Bearer ${signedIn.body.access_token}` });
    assert.equal(stream.status, 200, stream.body);
    try {
      await stream.next((e) => e.event === 'ready', 2_000);
      const out = await sortie.api.as(signedIn.body.access_token).request('POST', '/api/auth/logout');
      assert.ok([200, 204].includes(out.status), out.text);
      // The token lives 3 s: `expired` would come then; `revoked` within a second is the sign-out's doing.
      const revoked = await stream.next((e) => e.event === 'revoked' || e.event === 'expired', 1_000);
      assert.equal(revoked.event, 'revoked');
      await stream.ended(2_000);
    } finally {
      stream.close();
    }
  });
});

describe('live updates across two Sorties with sign-in on: a sign-out on one ends the stream held on the other', () => {
  let database: Awaited<ReturnType<typeof freshTestDatabase>>;
  let a: TestSortie;
  let b: TestSortie;
  const password = 'live-updates-pair-pw-1';

  before(async () => {
    database = await freshTestDatabase();
    // B's heartbeat re-checks the sign-in every 0.5 s: only it can see a sign-out made on A.
    const env = { SORTIE_DATABASE_URL: database.url, SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: password, SORTIE_STREAM_PING_INTERVAL: '0.5' };
    a = await startTestSortie({ name: 'live-updates-auth-a', apps: APPS, runner: new FakeRunner(), env });
    b = await startTestSortie({ name: 'live-updates-auth-b', apps: APPS, runner: new FakeRunner(), env });
  });

  after(async () => {
    await a?.cleanup();
    await b?.cleanup();
    await database?.drop();
  });

  test('signed out through replica A, the stream on replica B ends with event: revoked at its next heartbeat', async () => {
    const signedIn = await a.api.signIn('admin', password);
    assert.equal(signedIn.status, 200, signedIn.text);
    const onB = await EventStream.open(b.url, '/api/events', { authorization: `Bearer ${signedIn.body.access_token}` });
    assert.equal(onB.status, 200, onB.body);
    try {
      await onB.next((e) => e.event === 'ready', 2_000);
      const out = await a.api.as(signedIn.body.access_token).request('POST', '/api/auth/logout');
      assert.ok([200, 204].includes(out.status), out.text);
      await onB.next((e) => e.event === 'revoked', 2_000);
      await onB.ended(2_000);
    } finally {
      onB.close();
    }
  });
});

describe('live updates across two Sorties on one PostgreSQL', () => {
  let database: Awaited<ReturnType<typeof freshTestDatabase>>;
  let a: TestSortie;
  let b: TestSortie;
  let stream: EventStream | undefined;
  let admin: pg.Client;
  /** The backend of replica B's LISTEN connection: every other one of the feed's is A's. */
  let feedOfB: number;

  const feedBackends = async () =>
    (await admin.query<{ pid: number }>("select pid from pg_stat_activity where application_name = 'sortie-session-feed' and datname = current_database()")).rows.map((r) => r.pid);

  /**
   * Keeps replica A's LISTEN connection cut (the server ends it, as when a failover or a
   * network fault drops it) while `during` runs: each time A reconnects, the server ends the
   * new connection too. Answers how many connections it ended.
   */
  async function cutFeedOfA(during: () => Promise<void>): Promise<number> {
    let cutting = true;
    let ended = 0;
    const cutter = (async () => {
      while (cutting) {
        const { rows } = await admin.query<{ ended: boolean }>(
          "select pg_terminate_backend(pid) as ended from pg_stat_activity where application_name = 'sortie-session-feed' and datname = current_database() and pid <> $1",
          [feedOfB],
        );
        ended += rows.filter((r) => r.ended).length;
        await sleep(10);
      }
    })();
    try {
      // Once A has seen its connection go: a change made before that could still be NOTIFYd.
      await waitFor(async () => ended > 0 && (await feedBackends()).length === 1 ? true : undefined, { timeoutMs: 5_000, what: "replica A's LISTEN connection to be gone" });
      await during();
    } finally {
      cutting = false;
      await cutter;
    }
    return ended;
  }

  /** Launches through `via` and ends the session once it runs; its id. */
  async function launchAndEnd(via: TestSortie): Promise<string> {
    const launched = await via.api.request<{ id: string }>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(launched.status, 201, launched.text);
    const id = launched.body.id;
    await waitFor(async () => ((await via.api.request<{ status: string }>('GET', `/api/sessions/${id}`)).body.status === 'running' ? true : undefined), { timeoutMs: 5_000, what: 'the session to run' });
    assert.equal((await via.api.request('DELETE', `/api/sessions/${id}`)).status, 200);
    return id;
  }

  before(async () => {
    database = await freshTestDatabase();
    admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    const env = { SORTIE_DATABASE_URL: database.url };
    a = await startTestSortie({ name: 'live-updates-a', apps: APPS, runner: new FakeRunner(), env });
    const [feedOfA] = await feedBackends();
    assert.ok(feedOfA, 'replica A listens on a connection of its own');
    b = await startTestSortie({ name: 'live-updates-b', apps: APPS, runner: new FakeRunner(), env });
    const others = (await feedBackends()).filter((pid) => pid !== feedOfA);
    assert.equal(others.length, 1, 'replica B listens on a connection of its own');
    feedOfB = others[0]!;
  });

  after(async () => {
    stream?.close();
    await a?.cleanup();
    await b?.cleanup();
    await admin?.end();
    await database?.drop();
  });

  test('a session launched and ended through replica A is heard on a stream held on replica B within a second', async () => {
    stream = await EventStream.open(b.url, '/api/events');
    assert.equal(stream.status, 200);
    const launched = await a.api.request<{ id: string }>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(launched.status, 201);
    const id = launched.body.id;
    await stream.next((e) => e.event === 'session' && e.data.id === id && e.data.status === 'running', 1_000);
    assert.equal((await a.api.request('DELETE', `/api/sessions/${id}`)).status, 200);
    await stream.next((e) => e.event === 'session' && e.data.id === id && e.data.status === 'terminated', 1_000);
  });

  test('a session launched and ended through replica A while its LISTEN connection is cut: a reader on replica B is told to re-read once A is back', async () => {
    const onB = await EventStream.open(b.url, '/api/events');
    assert.equal(onB.status, 200);
    try {
      let id = '';
      let during = 0;
      const ended = await cutFeedOfA(async () => {
        id = await launchAndEnd(a);
        during = onB.events.length;
      });
      assert.ok(ended >= 1);
      assert.ok(!onB.events.some((e) => e.data.id === id), 'nothing of it reached B while A was cut off');
      // A reconnects by itself (its back-off after the cuts is at most 10 s).
      await onB.next((e) => onB.events.indexOf(e) >= during && (e.event === 'resync' || (e.event === 'session' && e.data.id === id && e.data.status === 'terminated')), 20_000);
    } finally {
      onB.close();
    }
  });

  test('a session launched and ended through replica B while replica A\'s LISTEN connection is cut: a reader on A is told to re-read once A is back', async () => {
    const onA = await EventStream.open(a.url, '/api/events');
    assert.equal(onA.status, 200);
    try {
      let id = '';
      let during = 0;
      await cutFeedOfA(async () => {
        id = await launchAndEnd(b);
        during = onA.events.length;
      });
      assert.ok(!onA.events.some((e) => e.data.id === id), 'nothing of it reached A while it was cut off');
      await onA.next((e) => onA.events.indexOf(e) >= during && e.event === 'resync', 20_000);
    } finally {
      onA.close();
    }
  });
});

describe('live updates in the browser', () => {
  let sortie: TestSortie;

  before(async () => {
    sortie = await startTestSortie({ name: 'live-updates-browser', apps: APPS, runner: new FakeRunner() });
  });

  after(() => sortie?.cleanup());

  test('the sessions list shows a new session without waiting for a poll, and polls no more while the stream is healthy', async () => {
    const { browser, close } = await launchBrowser();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const listRequests: number[] = [];
      page.on('request', (request) => {
        if (request.method() === 'GET' && new URL(request.url()).pathname === '/api/sessions') listRequests.push(Date.now());
      });
      const eventStream = page.waitForResponse((res) => new URL(res.url()).pathname === '/api/events');
      await page.goto(`${sortie.url}/#/sessions`);
      assert.equal((await eventStream).status(), 200);
      await page.waitForFunction('document.body.innerText.length > 0');
      // The list polls every 4 s without the stream; with it, once a minute: 6 s pass without a list request.
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      const quietFrom = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 6_000));
      assert.deepEqual(listRequests.filter((at) => at >= quietFrom), [], 'no poll while the stream is healthy');

      const launched = await sortie.api.request<{ id: string }>('POST', '/api/sessions', { app_id: 'xterm' });
      assert.equal(launched.status, 201);
      // The next poll is most of a minute away: only the announcement can bring it this soon.
      await page.locator(`[data-testid="sessions-row-${launched.body.id}"]`).waitFor({ timeout: 10_000 });
    } finally {
      await close();
    }
  });
});

describe('live updates in the browser across access-token expiry', () => {
  let sortie: TestSortie;
  const password = 'expiry-browser-pw-1';

  before(async () => {
    // Tokens live 9 s: long enough to sign in and open the pages on one token, short enough
    // to see it expire. The heartbeat's re-check is a minute away.
    sortie = await startTestSortie({
      name: 'live-updates-expiry-browser',
      apps: APPS,
      runner: new FakeRunner(),
      env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: password, SORTIE_ACCESS_TOKEN_TTL: '0.15', SORTIE_STREAM_PING_INTERVAL: '60' },
    });
  });

  after(() => sortie?.cleanup());

  /** A tab's event streams (when each opened, how it was answered, when it ended), token refreshes and list reads. */
  function track(page: Page) {
    const streams: Array<{ opened: number; status: number; ended?: number }> = [];
    const byRequest = new Map<unknown, (typeof streams)[number]>();
    const refreshes: number[] = [];
    const listReads: number[] = [];
    page.on('request', (request) => {
      const path = new URL(request.url()).pathname;
      if (request.method() === 'POST' && path === '/api/auth/refresh') refreshes.push(Date.now());
      if (request.method() === 'GET' && path === '/api/sessions') listReads.push(Date.now());
    });
    page.on('response', (response) => {
      if (new URL(response.url()).pathname !== '/api/events') return;
      const stream = { opened: Date.now(), status: response.status() };
      streams.push(stream);
      byRequest.set(response.request(), stream);
    });
    const ended = (request: unknown) => {
      const stream = byRequest.get(request);
      if (stream && stream.ended === undefined) stream.ended = Date.now();
    };
    page.on('requestfinished', ended);
    page.on('requestfailed', ended);
    return { streams, refreshes, listReads };
  }

  test('when the streams\' access token expires, two tabs of one sign-in each open the next stream at once (one refresh wins, the other tab gets its cookie), without polling meanwhile, and hear the next change', async () => {
    const { browser, close } = await launchBrowser();
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      const pages = [await context.newPage(), await context.newPage()];
      const tabs = pages.map(track);
      await pages[0]!.goto(sortie.url);
      await signIn(pages[0]!, 'admin', password);
      // Both tabs open their streams with the same access cookie, so both streams end together.
      for (const page of pages) {
        await page.goto(`${sortie.url}/#/sessions`);
        await page.getByTestId('user-name').waitFor();
      }

      for (const [n, tab] of tabs.entries()) {
        // The first stream ends with its token, and another is open after it.
        const [first, next] = await waitFor(
          () => {
            const done = tab.streams.find((s) => s.status === 200 && s.ended !== undefined);
            const after = done && tab.streams.find((s) => s.status === 200 && s.opened >= done.ended!);
            return done && after ? ([done, after] as const) : undefined;
          },
          { timeoutMs: 25_000, intervalMs: 100, what: `tab ${n}'s stream to end with its token and the next to open; had ${JSON.stringify(tab.streams)}` },
        );
        // EventSource on its own would retry after 5 s with the stale cookie, be refused, and wait a minute.
        assert.ok(next.opened - first.ended! < 3_000, `tab ${n}'s next stream opened ${next.opened - first.ended!} ms after the first ended`);
        assert.deepEqual(tab.streams.filter((s) => s.status !== 200), [], `no stream of tab ${n} was refused (opened with an expired token)`);
        assert.ok(tab.refreshes.some((at) => at >= first.ended! - 1_000 && at <= next.opened), `tab ${n} refreshed the token in between`);
        // The tab stays on live updates: one re-read for what the gap may have hidden, and no
        // falling back to polling (which re-reads at once, and again on the way back).
        await sleep(Math.max(0, first.ended! + 4_000 - Date.now()));
        const reads = tab.listReads.filter((at) => at >= first.ended! && at < first.ended! + 4_000);
        assert.equal(reads.length, 1, `tab ${n}'s list reads after its first stream ended: ${reads.map((at) => at - first.ended!).join(', ')} ms`);
      }

      const admin = await sortie.signIn('admin', password);
      const launched = await admin.request<{ id: string }>('POST', '/api/sessions', { app_id: 'xterm' });
      assert.equal(launched.status, 201, launched.text);
      // The next poll is most of a minute away: only the new streams' announcements bring it this soon.
      for (const page of pages) await page.locator(`[data-testid="sessions-row-${launched.body.id}"]`).waitFor({ timeout: 10_000 });
    } finally {
      await close();
    }
  });
});
