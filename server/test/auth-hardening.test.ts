import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ErrorBody, Reply, Tokens } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// Sign-in as an attacker tries it: guessing passwords from one address and from many, cycling
// names, replaying a stolen refresh token, and probing a disabled account's password. Against
// the real server and database. Different client addresses are real ones: on Linux every
// 127.x.y.z is the loopback, so a client can connect from 127.0.0.2 as well as from 127.0.0.1.

const ADMIN_PASSWORD = 'hardening-admin-password-1';
const PASSWORD = 'hardening-user-password-1';
const WRONG = 'not-the-password-at-all';
const MAX_FAILURES = 3;
const MAX_FAILURES_PER_ADDRESS = 5;
const LOCKOUT_SECONDS = 6;

let sortie: TestSortie;

/** One HTTP request from `from` (a loopback address) to Sortie. */
function call<T = unknown>(method: string, urlPath: string, options: { from?: string; token?: string; body?: unknown } = {}): Promise<Reply<T>> {
  return sortie.api.from(options.from ?? '127.0.0.1').as(options.token).request<T>(method, urlPath, options.body);
}

const signIn = (username: string, password: string, from = '127.0.0.1') => call<Tokens & ErrorBody>('POST', '/api/auth/login', { from, body: { username, password } });
const me = (token: string) => call<{ user: { username: string } }>('GET', '/api/auth/me', { token });
const refresh = (refreshToken: string) => call<Tokens & ErrorBody>('POST', '/api/auth/refresh', { body: { refresh_token: refreshToken } });

function assertTooMany(reply: Reply<ErrorBody>, about: RegExp): number {
  assert.equal(reply.status, 429, JSON.stringify(reply.body));
  assert.equal(reply.body.error, 'too_many_requests');
  assert.match(reply.body.message, about);
  const retryAfter = Number(reply.headers['retry-after']);
  assert.ok(Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= LOCKOUT_SECONDS, `Retry-After is ${String(reply.headers['retry-after'])}`);
  assert.match(reply.body.message, new RegExp(`try again in ${retryAfter} s`), 'the message names the same wait as Retry-After');
  assert.equal(reply.headers['set-cookie'], undefined, 'no cookies for a refused sign-in');
  return retryAfter;
}

describe('sign-in hardening', () => {
  let admin: Tokens;
  const userIds = new Map<string, string>();

  before(async () => {
    sortie = await startTestSortie({
      name: 'auth-hardening',
      env: {
        SORTIE_AUTH: 'enabled',
        SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SORTIE_LOGIN_MAX_FAILURES: String(MAX_FAILURES),
        SORTIE_LOGIN_MAX_FAILURES_PER_ADDRESS: String(MAX_FAILURES_PER_ADDRESS),
        SORTIE_LOGIN_LOCKOUT: String(LOCKOUT_SECONDS / 60),
      },
    });
    const signedIn = await signIn('admin', ADMIN_PASSWORD);
    assert.equal(signedIn.status, 200, JSON.stringify(signedIn.body));
    admin = signedIn.body;
    for (const username of ['alice', 'bob', 'carol', 'dave', 'erin', 'frank', 'grace']) {
      const created = await call<{ id: string }>('POST', '/api/admin/users', { token: admin.access_token, body: { username, password: PASSWORD } });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      userIds.set(username, created.body.id);
    }
  });

  after(() => sortie?.cleanup());

  test('guessing one account from several addresses locks the account, even against the right password, until the lock ends', async () => {
    for (let i = 0; i < MAX_FAILURES; i++) {
      const wrong = await signIn('alice', WRONG, `127.0.1.${i + 1}`);
      assert.deepEqual([wrong.status, wrong.body.message], [401, 'Wrong username or password']);
    }
    const locked = await signIn('alice', PASSWORD, '127.0.1.99');
    const wait = assertTooMany(locked, /^Too many failed sign-in attempts for this account; try again in \d+ s$/);
    // The lock is the account's: another account from the same address signs in.
    assert.equal((await signIn('bob', PASSWORD, '127.0.1.99')).status, 200);

    await sleep(wait * 1000 + 200);
    const afterLock = await signIn('alice', PASSWORD, '127.0.1.99');
    assert.equal(afterLock.status, 200, JSON.stringify(afterLock.body));
    assert.equal((await me(afterLock.body.access_token)).status, 200);

    // A success forgets the failures: the account again has its full allowance.
    for (let i = 0; i < MAX_FAILURES - 1; i++) assert.equal((await signIn('alice', WRONG, '127.0.1.98')).status, 401);
    assert.equal((await signIn('alice', PASSWORD, '127.0.1.98')).status, 200);
    for (let i = 0; i < MAX_FAILURES - 1; i++) assert.equal((await signIn('alice', WRONG, '127.0.1.97')).status, 401);
    assert.equal((await signIn('alice', PASSWORD, '127.0.1.97')).status, 200);
  });

  test('guessing across many accounts from one address locks the address, not the accounts', async () => {
    const from = '127.0.2.1';
    // Spraying one password over many names, real and invented, each tried once.
    const names = ['carol', 'dave', 'no-such-user-1', 'erin', 'no-such-user-2'];
    assert.equal(names.length, MAX_FAILURES_PER_ADDRESS);
    for (const name of names) assert.equal((await signIn(name, WRONG, from)).status, 401);
    const locked = await signIn('frank', PASSWORD, from);
    assertTooMany(locked, /^Too many failed sign-in attempts from your network address; try again in \d+ s$/);
    // The refusal was the address's: frank's own allowance is untouched, and elsewhere he signs in.
    assert.equal((await signIn('frank', PASSWORD, '127.0.2.2')).status, 200);
    for (let i = 0; i < MAX_FAILURES - 1; i++) assert.equal((await signIn('frank', WRONG, '127.0.2.3')).status, 401);
    assert.equal((await signIn('frank', PASSWORD, '127.0.2.3')).status, 200, 'the refused attempts did not count against frank');
  });

  test('a burst of parallel guesses gets no more tries than the limit', async () => {
    const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => signIn('grace', WRONG, `127.0.3.${i + 1}`)));
    const statuses = replies.map((r) => r.status).sort();
    assert.equal(statuses.filter((s) => s === 401).length, MAX_FAILURES, statuses.join(','));
    assert.equal(statuses.filter((s) => s === 429).length, 20 - MAX_FAILURES, statuses.join(','));
    assertTooMany((await signIn('grace', PASSWORD, '127.0.3.99')) as Reply<ErrorBody>, /for this account/);
  });

  test('a name without an account locks the same way, so a lock does not reveal which names exist', async () => {
    const answers: Array<[number, string]> = [];
    for (const name of ['henry', 'no-such-user-3']) {
      for (let i = 0; i <= MAX_FAILURES; i++) {
        const reply = await signIn(name, WRONG, `127.0.4.${answers.length + 1}`);
        answers.push([reply.status, reply.body.message.replace(/\d+ s$/, 'N s')]);
      }
    }
    const [known, unknown] = [answers.slice(0, MAX_FAILURES + 1), answers.slice(MAX_FAILURES + 1)];
    assert.deepEqual(known, unknown);
    assert.deepEqual(known.at(-1), [429, 'Too many failed sign-in attempts for this account; try again in N s']);
  });

  test('a disabled account answers a wrong and the right password alike', async () => {
    const created = await call<{ id: string }>('POST', '/api/admin/users', { token: admin.access_token, body: { username: 'ivan', password: PASSWORD } });
    assert.equal(created.status, 201);
    const disabled = await call('PATCH', `/api/admin/users/${created.body.id}`, { token: admin.access_token, body: { disabled: true } });
    assert.equal(disabled.status, 200);
    const wrong = await signIn('ivan', WRONG, '127.0.5.1');
    const right = await signIn('ivan', PASSWORD, '127.0.5.2');
    const unknown = await signIn('no-such-user-4', WRONG, '127.0.5.3');
    for (const reply of [wrong, right, unknown]) {
      assert.equal(reply.status, 401);
      assert.deepEqual(reply.body, { error: 'unauthorized', message: 'Wrong username or password' });
      assert.equal(reply.headers['set-cookie'], undefined);
    }
  });
});

describe('refresh token reuse', () => {
  before(async () => {
    sortie = await startTestSortie({ name: 'auth-refresh-reuse', env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD } });
  });

  after(() => sortie?.cleanup());

  const signedIn = async (): Promise<Tokens> => {
    const reply = await signIn('admin', ADMIN_PASSWORD);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body;
  };
  const refreshed = async (token: string): Promise<Tokens> => {
    const reply = await refresh(token);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    return reply.body;
  };

  test('an already replaced refresh token ends the whole sign-in: every refresh and access token of it is refused', async () => {
    const bystander = await signedIn();
    const first = await signedIn();
    const second = await refreshed(first.refresh_token);
    const third = await refreshed(second.refresh_token);
    assert.equal((await me(third.access_token)).status, 200);

    // The thief (or the owner, whichever comes second) presents the first token again.
    const reused = await refresh(first.refresh_token);
    assert.equal(reused.status, 401);
    assert.match(reused.body.message, /already used, so the sign-in was ended/);

    for (const token of [first, second, third]) {
      assert.equal((await me(token.access_token)).status, 401, 'access tokens of the sign-in are refused');
      assert.equal((await refresh(token.refresh_token)).status, 401, 'refresh tokens of the sign-in are refused');
    }
    // Another sign-in of the same account goes on.
    assert.equal((await me(bystander.access_token)).status, 200);
    assert.equal((await refresh(bystander.refresh_token)).status, 200);
  });

  test('the token replaced moments ago (two tabs refreshing at once) is refused without ending the sign-in; later it ends it', async () => {
    const first = await signedIn();
    const second = await refreshed(first.refresh_token);
    const race = await refresh(first.refresh_token);
    assert.equal(race.status, 401);
    assert.match(race.body.message, /replaced moments ago/);
    const third = await refreshed(second.refresh_token);
    assert.equal((await me(third.access_token)).status, 200, 'the sign-in goes on');

    // Past the grace the same replay is theft.
    await sleep(5_500);
    const late = await refresh(second.refresh_token);
    assert.equal(late.status, 401);
    assert.match(late.body.message, /already used/);
    assert.equal((await me(third.access_token)).status, 401);
    assert.equal((await refresh(third.refresh_token)).status, 401);
  });
});
