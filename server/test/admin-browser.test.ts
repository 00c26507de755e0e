import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { App, Session, User } from '../src/contract/index.js';
import { launchBrowser, SCREENSHOT_DIR, signIn } from './support/browser.js';
import type { Api } from './support/api.js';
import { startTestSortie, type TestSortie } from './support/harness.js';

// An administrator walks the admin area in Chromium: apps, users, approvals and sessions,
// each change checked against the API afterwards. A plain user finds no way in.

const ADMIN_PASSWORD = 'admin-browser-admin-password';
const ALICE_PASSWORD = 'alice-browser-password-1';
let sortie: TestSortie;
let api: Api;
let adminAuth: Record<string, string>;
let browser: Browser;
let closeBrowser: (() => Promise<void>) | undefined;
const contexts: BrowserContext[] = [];
const pageProblems: string[] = [];

before(async () => {
  sortie = await startTestSortie({
    name: 'admin-browser',
    apps: [
      { id: 'xterm', name: 'XTerm', category: 'Development', visibility: 'public', launch_type: 'container', command: ['xterm'] },
      { id: 'xeyes', name: 'XEyes', category: 'Utilities', visibility: 'approved', launch_type: 'container', command: ['xeyes'] },
    ],
    env: {
      SORTIE_AUTH: 'enabled',
      SORTIE_ADMIN_USERNAME: 'admin',
      SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
      SORTIE_JWT_SECRET: 'admin-browser-jwt-secret-0123456789abcdefghij',
    },
  });
  api = sortie.api;
  const login = await api.request<{ access_token: string }>('POST', '/api/auth/login', { username: 'admin', password: ADMIN_PASSWORD });
  assert.equal(login.status, 200);
  adminAuth = { authorization: `Bearer ${login.body.access_token}` };
  ({ browser, close: closeBrowser } = await launchBrowser());
});

after(async () => {
  for (const context of contexts) await context.close().catch(() => undefined);
  await closeBrowser?.();
  // Also ends any desktop a failed test left running.
  await sortie?.cleanup();
});

const asAdmin = <T>(method: string, urlPath: string, body?: unknown) => api.request<T>(method, urlPath, body, adminAuth);

async function signedIn(username: string, password: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  contexts.push(context);
  const page = await context.newPage();
  // What the page itself complained about, to say alongside a failure.
  page.on('pageerror', (err) => pageProblems.push(`${username}: page error: ${err.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') pageProblems.push(`${username}: console: ${message.text()}`);
  });
  page.on('requestfailed', (request) => pageProblems.push(`${username}: ${request.method()} ${request.url()} failed: ${request.failure()?.errorText}`));
  await page.goto(sortie.url);
  await signIn(page, username, password);
  return page;
}

async function runningAsAdmin(id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const { body } = await asAdmin<Session>('GET', `/api/sessions/${id}`);
    if (body.status === 'running') return;
    assert.ok(body.status === 'queued' || body.status === 'creating', `session ${id} is ${body.status}: ${body.reason}`);
    assert.ok(Date.now() < deadline, `session ${id} still ${body.status} after 60 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function app(id: string): Promise<App | undefined> {
  const res = await asAdmin<{ applications: App[] }>('GET', '/api/apps');
  assert.equal(res.status, 200);
  return res.body.applications.find((a) => a.id === id);
}

async function user(username: string): Promise<User> {
  const res = await asAdmin<{ users: User[] }>('GET', '/api/admin/users');
  const found = res.body.users.find((u) => u.username === username);
  assert.ok(found, `${username} exists`);
  return found;
}

test('an admin adds, edits and deletes an app, and the catalog follows', async () => {
  const page = await signedIn('admin', ADMIN_PASSWORD);
  await page.getByTestId('nav-admin').click();
  await page.getByTestId('admin-app-row-xterm').waitFor();
  assert.equal(await page.getByTestId('admin-nav-apps').getAttribute('aria-current'), 'page');

  // A bad id is caught in the form, with a sentence by the field.
  await page.getByTestId('admin-app-new').click();
  await page.getByTestId('app-form').waitFor();
  await page.getByTestId('app-form-id').fill('Not An Id');
  await page.getByTestId('app-form-name').fill('Notes');
  await page.getByTestId('app-form-save').click();
  assert.match(await page.getByTestId('app-form-error').innerText(), /lowercase letters/);
  // The cursor is in the field to fix as soon as the sentence shows, so what is typed next lands there.
  assert.equal(await page.evaluate('document.activeElement?.getAttribute("data-testid")'), 'app-form-id');

  await page.getByTestId('app-form-id').fill('notes');
  await page.getByTestId('app-form-category').fill('Office');
  await page.getByTestId('app-form-command').fill('xterm -T "My notes"');
  await page.getByTestId('app-form-max_sessions').fill('2');
  await page.getByTestId('app-form-cpu_limit').fill('1500m');
  await page.getByTestId('app-form-save').click();
  await page.getByTestId('admin-app-row-notes').waitFor().catch(async (err: unknown) => {
    // Say what the page showed instead, not only that it timed out: the form's own words,
    // whether it is still open (and busy), whether the server has the app, and what the
    // page logged. A screenshot goes beside the others.
    const form = page.getByTestId('app-form');
    const open = await form.isVisible().catch(() => false);
    const shown = await page.getByTestId('app-form-error').innerText({ timeout: 1000 }).catch(() => '(no error shown)');
    const busy = open ? await page.getByTestId('app-form-save').isDisabled().catch(() => 'unknown') : 'n/a';
    const onServer = (await app('notes')) ? 'the server has it' : 'the server does not have it';
    mkdirSync(SCREENSHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-new-app-missing.png') }).catch(() => undefined);
    throw new Error(
      `the new app's row did not appear; form open: ${open}, saving: ${busy}, the form says: ${shown}; ${onServer}; page: ${pageProblems.join(' | ') || 'nothing logged'}`,
      { cause: err },
    );
  });
  assert.equal(await page.getByTestId('admin-notice').innerText(), 'Added Notes.');
  const created = await app('notes');
  assert.ok(created);
  assert.deepEqual(
    { name: created.name, category: created.category, command: created.command, max_sessions: created.max_sessions, limits: created.resource_limits },
    { name: 'Notes', category: 'Office', command: ['xterm', '-T', 'My notes'], max_sessions: 2, limits: { cpu_request: '500m', cpu_limit: '1500m', memory_request: '512Mi', memory_limit: '2Gi' } },
  );

  // The server's own refusals land in the form too: a container app with nothing to run,
  // then an id that is taken.
  await page.getByTestId('admin-app-new').click();
  await page.getByTestId('app-form-id').fill('xterm');
  await page.getByTestId('app-form-name').fill('Another XTerm');
  await page.getByTestId('app-form-save').click();
  await page.getByTestId('app-form-error').filter({ hasText: 'needs a container_image (or a command)' }).waitFor();
  await page.getByTestId('app-form-command').fill('xterm');
  await page.getByTestId('app-form-save').click();
  await page.getByTestId('app-form-error').filter({ hasText: /xterm/ }).waitFor();
  assert.equal((await app('xterm'))?.name, 'XTerm', 'the existing app is untouched');
  await page.getByTestId('app-form-cancel').click();
  await page.getByTestId('app-form').waitFor({ state: 'detached' });

  await page.getByTestId('admin-app-edit-notes').click();
  assert.equal(await page.getByTestId('app-form-id').isDisabled(), true, 'an id cannot change');
  assert.equal(await page.getByTestId('app-form-command').inputValue(), "xterm -T 'My notes'");
  await page.getByTestId('app-form-name').fill('Team notes');
  await page.getByTestId('app-form-save').click();
  await page.getByTestId('admin-app-row-notes').filter({ hasText: 'Team notes' }).waitFor();
  assert.equal((await app('notes'))?.name, 'Team notes');

  await page.getByTestId('nav-catalog').click();
  await page.getByTestId('app-card-notes').waitFor();
  await page.getByTestId('nav-admin').click();
  await page.getByTestId('admin-app-delete-notes').click();
  await page.getByTestId('confirm-accept').click();
  await page.getByTestId('admin-app-row-notes').waitFor({ state: 'detached' });
  assert.equal(await app('notes'), undefined);
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-apps.png') });
});

test('an admin adds a user, approves an app for them, and the user sees it but no admin area', async () => {
  const page = await signedIn('admin', ADMIN_PASSWORD);
  await page.goto(`${sortie.url}/#/admin/users`);
  await page.getByTestId('admin-user-row-admin').waitFor();

  // Too short a password is refused before anything is sent.
  await page.getByTestId('admin-user-new').click();
  await page.getByTestId('user-form-username').fill('alice');
  await page.getByTestId('user-form-password').fill('short');
  await page.getByTestId('user-form-save').click();
  assert.match(await page.getByTestId('user-form-error').innerText(), /at least 12 characters/);
  await page.getByTestId('user-form-password').fill(ALICE_PASSWORD);
  await page.getByTestId('user-form-display_name').fill('Alice Example');
  await page.getByTestId('user-form-save').click();
  await page.getByTestId('admin-user-row-alice').waitFor();
  assert.equal(await page.getByTestId('user-role-alice').inputValue(), 'user');
  const alice = await user('alice');
  assert.deepEqual({ display_name: alice.display_name, role: alice.role, disabled: alice.disabled }, { display_name: 'Alice Example', role: 'user', disabled: false });

  await page.getByTestId('user-approvals-alice').click();
  await page.getByTestId('approvals-dialog').waitFor();
  await page.getByTestId('approval-app-xeyes').check();
  await page.getByTestId('approvals-save').click();
  await page.getByTestId('approvals-dialog').waitFor({ state: 'detached' });
  assert.match(await page.getByTestId('admin-notice').innerText(), /approvals of alice/);
  assert.deepEqual((await asAdmin<{ app_ids: string[] }>('GET', `/api/admin/users/${alice.id}/approvals`)).body.app_ids, ['xeyes']);
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-users.png') });

  const hers = await signedIn('alice', ALICE_PASSWORD);
  await hers.getByTestId('app-card-xeyes').waitFor();
  assert.equal(await hers.getByTestId('nav-admin').count(), 0, 'no admin link for a plain user');
  await hers.goto(`${sortie.url}/#/admin/apps`);
  await hers.getByTestId('admin-forbidden').waitFor();

  // Disabled, she can no longer sign in.
  await page.getByTestId('user-toggle-alice').click();
  await page.getByTestId('user-status-alice').filter({ hasText: /disabled/i }).waitFor();
  assert.equal((await user('alice')).disabled, true);
  const refused = await api.request('POST', '/api/auth/login', { username: 'alice', password: ALICE_PASSWORD });
  assert.equal(refused.status, 401);
  await page.getByTestId('user-toggle-alice').click();
  await page.getByTestId('user-status-alice').filter({ hasText: /active/i }).waitFor();
  assert.equal((await user('alice')).disabled, false);
});

test("an admin sees everyone's sessions, narrows them to one person, and ends one", async () => {
  const alice = await user('alice');
  const launch = await asAdmin<Session>('POST', '/api/sessions', { app_id: 'xterm', user_id: alice.id });
  assert.equal(launch.status, 201, JSON.stringify(launch.body));
  await runningAsAdmin(launch.body.id);

  const page = await signedIn('admin', ADMIN_PASSWORD);
  await page.getByTestId('nav-admin').click();
  await page.getByTestId('admin-nav-sessions').click();
  const row = page.getByTestId(`admin-session-row-${launch.body.id}`);
  await row.waitFor();
  assert.match(await row.innerText(), /XTerm/);
  assert.match(await row.innerText(), /Alice Example|alice/);

  await page.getByTestId('admin-sessions-user').selectOption(alice.id);
  await row.waitFor();
  await page.getByTestId('admin-sessions-user').selectOption(await user('admin').then((u) => u.id));
  await page.getByTestId('admin-sessions-empty').waitFor();
  await page.getByTestId('admin-sessions-user').selectOption('');

  await page.getByTestId(`admin-session-end-${launch.body.id}`).click();
  await page.getByTestId('confirm-accept').click();
  await page.getByTestId('confirm-dialog').waitFor({ state: 'detached' });
  const ended = await asAdmin<Session>('GET', `/api/sessions/${launch.body.id}`);
  assert.equal(ended.body.status, 'terminated');
  // Active only hides it; showing all brings it back, ended.
  await row.waitFor({ state: 'detached' });
  // The switch's own label takes the click, as it does for a person.
  await page.getByTestId('admin-sessions-active-only').locator('..').click();
  assert.equal(await page.getByTestId('admin-sessions-active-only').isChecked(), false);
  await row.filter({ hasText: 'terminated' }).waitFor();
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-sessions.png') });
});

test('an admin reads the audit log: what was done above, narrowed by action and user, and exported as CSV', async () => {
  const page = await signedIn('admin', ADMIN_PASSWORD);
  await page.getByTestId('nav-admin').click();
  await page.getByTestId('admin-nav-audit').click();
  await page.getByTestId('admin-audit-row').first().waitFor();
  // Newest first: this sign-in is at the top.
  assert.equal(await page.getByTestId('admin-audit-row').first().getAttribute('data-action'), 'auth.sign_in');

  await page.getByTestId('admin-audit-action').selectOption('user.*');
  await page.getByTestId('admin-audit-apply').click();
  const created = page.locator('[data-testid="admin-audit-row"][data-action="user.create"]').filter({ hasText: 'alice' });
  await created.waitFor();
  assert.match(await created.innerText(), /admin/, 'done by the admin');
  const actions = await page.getByTestId('admin-audit-row').evaluateAll((rows) => rows.map((row) => row.getAttribute('data-action')));
  assert.ok(actions.length >= 3 && actions.every((action) => action?.startsWith('user.')), actions.join(', '));
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'admin-audit.png') });

  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('admin-audit-export').click()]);
  assert.match(download.suggestedFilename(), /^sortie-audit-\d{4}-\d{2}-\d{2}\.csv$/);
  const lines = readFileSync(await download.path(), 'utf8').split('\r\n').filter(Boolean);
  assert.equal(lines[0], 'at,actor_type,actor_id,actor_name,action,target_type,target_id,target_name,address,details');
  assert.equal(lines.length - 1, actions.length, 'the CSV holds what the filter shows');
  assert.ok(lines.some((line) => /,user\.create,user,[^,]+,alice,/.test(line)), 'alice’s creation is in it');

  await page.getByTestId('admin-audit-user').fill('nobody-did-this');
  await page.getByTestId('admin-audit-apply').click();
  await page.getByTestId('admin-audit-empty').waitFor();
});

test('a warm pool shows in the admin sessions list as such: no owner, no Open, and ending one says another takes its place', async () => {
  const created = await asAdmin('POST', '/api/apps', { id: 'xclock-pool', name: 'Pooled clock', launch_type: 'container', command: ['xclock'], warm_pool: 1 });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  try {
    const pooledId = async () => {
      const { body } = await asAdmin<{ sessions: Session[] }>('GET', '/api/sessions?limit=200');
      return body.sessions.find((s) => s.pooled && s.app_id === 'xclock-pool' && s.status === 'running')?.id;
    };
    const deadline = Date.now() + 60_000;
    let id: string | undefined;
    while (!(id = await pooledId())) {
      assert.ok(Date.now() < deadline, 'the pool did not fill within 60 s');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const page = await signedIn('admin', ADMIN_PASSWORD);
    await page.getByTestId('nav-admin').click();
    await page.getByTestId('admin-nav-sessions').click();
    await page.getByTestId(`pooled-${id}`).waitFor();
    assert.equal(await page.getByTestId(`pooled-${id}`).innerText(), 'Warm pool');
    assert.equal(await page.getByTestId(`admin-session-open-${id}`).count(), 0, 'nobody opens a session before a launch claims it');
    await page.getByTestId(`admin-session-end-${id}`).click();
    assert.match(await page.getByTestId('confirm-dialog').innerText(), /warm pool, unclaimed; another is started in its place/);
    await page.getByTestId('confirm-accept').click();
    await page.getByTestId(`admin-session-row-${id}`).waitFor({ state: 'detached' });
  } finally {
    await asAdmin('DELETE', '/api/apps/xclock-pool');
  }
});
