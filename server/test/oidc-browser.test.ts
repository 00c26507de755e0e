import assert from 'node:assert/strict';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import type { Session } from '../src/sessions/session.js';
import { launchBrowser, launchFromCatalog, SCREENSHOT_DIR } from './support/browser.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { localSessionRecord, processesInGroups } from './support/processes.js';

// Single sign-on as a person does it: a real OpenID provider (oidc-provider, with its own
// login and consent pages), Sortie, and Chromium going back and forth between them.

const CLIENT_ID = 'sortie';
const CLIENT_SECRET = 'sortie-test-client-secret';
const JWT_SECRET = 'oidc-browser-jwt-secret-0123456789abcdefghij';
const ADMIN_PASSWORD = 'oidc-browser-admin-password';

interface KoaContext {
  response: { get(field: string): string | undefined };
  set(field: string, value: string): void;
}
interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  on(event: string, listener: (...args: unknown[]) => void): void;
  use(middleware: (ctx: KoaContext, next: () => Promise<void>) => Promise<void>): void;
}
type ProviderClass = new (issuer: string, configuration: Record<string, unknown>) => OidcProvider;

/** "olivia" → "Olivia Example": the display name the provider gives each login. */
function nameOf(login: string): string {
  return `${login.charAt(0).toUpperCase()}${login.slice(1)} Example`;
}

describe('signing in through an OpenID Connect provider', () => {
  const providerServer = http.createServer();
  let issuer: string;
  let sortie: TestSortie;
  let browser: Browser;
  let closeBrowser: (() => Promise<void>) | undefined;
  const contexts: BrowserContext[] = [];
  const providerErrors: unknown[] = [];
  /** When set, the provider's next redirect back to Sortie is handed here instead of followed. */
  let captureCallback: ((url: string) => void) | undefined;

  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SCREENSHOT_DIR, name) });

  const newPage = async (): Promise<Page> => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    contexts.push(context);
    return context.newPage();
  };

  /** Every account's username, role and source, as the local admin sees them. */
  const accounts = async (): Promise<Array<{ username: string; role: string; auth_source: string }>> => {
    const admin = await sortie.signIn('admin', ADMIN_PASSWORD);
    return (await admin.request<{ users: Array<{ username: string; role: string; auth_source: string }> }>('GET', '/api/admin/users')).body.users;
  };
  const usernames = async () => (await accounts()).map((u) => u.username);

  /** Sortie's sign-in page → the provider's login and consent pages → back in Sortie. */
  const signInThroughProvider = async (page: Page, login: string, screenshotPrefix: string): Promise<void> => {
    await page.goto(sortie.url);
    await page.getByTestId('signin-oidc').click();
    await page.waitForURL(`${issuer}/interaction/**`);
    await page.locator('input[name="login"]').fill(login);
    await page.locator('input[name="password"]').fill('any password will do');
    await shot(page, `${screenshotPrefix}-provider-login.png`);
    await page.getByRole('button', { name: 'Sign-in' }).click();
    await page.getByRole('button', { name: 'Continue' }).click(); // consent
    await page.waitForURL(`${sortie.url}/**`);
    await page.getByTestId('user-name').waitFor({ timeout: 15_000 });
  };

  before(async () => {
    await new Promise<void>((resolve) => providerServer.listen(0, '127.0.0.1', resolve));
    issuer = `http://127.0.0.1:${(providerServer.address() as AddressInfo).port}`;
    // Sortie reads the issuer at boot and discovers it lazily, at the first sign-in.
    sortie = await startTestSortie({
      name: 'oidc-browser',
      env: {
        SORTIE_AUTH: 'enabled',
        SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD,
        SORTIE_JWT_SECRET: JWT_SECRET,
        SORTIE_OIDC_ISSUER: issuer,
        SORTIE_OIDC_CLIENT_ID: CLIENT_ID,
        SORTIE_OIDC_CLIENT_SECRET: CLIENT_SECRET,
        SORTIE_OIDC_NAME: 'Test IdP',
        SORTIE_OIDC_SCOPES: 'openid profile groups',
      },
      apps: [
        { id: 'xterm', name: 'XTerm', category: 'Development', visibility: 'public', launch_type: 'container', command: ['xterm'] },
        { id: 'xclock', name: 'XClock', category: 'Utilities', visibility: 'admin_only', launch_type: 'container', command: ['xclock'] },
      ],
    });

    // oidc-provider ships no type declarations; the little used here is typed above.
    const { default: Provider } = (await import('oidc-provider' as string)) as { default: ProviderClass };
    const provider = new Provider(issuer, {
      clients: [
        {
          client_id: CLIENT_ID,
          client_secret: CLIENT_SECRET,
          redirect_uris: [`${sortie.url}/api/auth/oidc/callback`],
          token_endpoint_auth_method: 'client_secret_post',
          grant_types: ['authorization_code'],
          response_types: ['code'],
        },
      ],
      claims: { openid: ['sub'], profile: ['name', 'preferred_username'], groups: ['groups'] },
      findAccount: (_ctx: unknown, sub: string) => ({
        accountId: sub,
        claims: async () => ({
          sub,
          preferred_username: sub,
          name: nameOf(sub),
          groups: sub.includes('admin') ? ['staff', 'sortie-admins'] : ['staff'],
        }),
      }),
      features: { devInteractions: { enabled: true } },
      cookies: { keys: ['oidc-browser-test-cookie-key'] },
    });
    provider.on('server_error', (_ctx, err) => providerErrors.push(err));
    provider.use(async (ctx, next) => {
      await next();
      const location = String(ctx.response.get('location') ?? '');
      if (captureCallback && location.startsWith(`${sortie.url}/api/auth/oidc/callback`)) {
        captureCallback(location);
        captureCallback = undefined;
        ctx.set('location', `${issuer}/captured`);
      }
    });
    providerServer.on('request', provider.callback());

    ({ browser, close: closeBrowser } = await launchBrowser());
  });

  after(async () => {
    for (const context of contexts) await context.close().catch(() => {});
    await closeBrowser?.();
    // Ends any session a failed test left behind (sessions outlive Sortie by design).
    await sortie?.cleanup();
    providerServer.closeAllConnections();
    await new Promise((resolve) => providerServer.close(resolve));
    assert.deepEqual(providerErrors, [], 'the provider hit no server errors');
  });

  test('a plain user signs in, sees no admin area, launches an app and ends it; signing in again finds the same account', { timeout: 180_000 }, async () => {
    const page = await newPage();
    await page.goto(sortie.url);
    await page.getByTestId('signin-oidc').waitFor();
    assert.match(await page.getByTestId('signin-oidc').innerText(), /Test IdP/);
    await shot(page, 'oidc-signin-page.png');

    await signInThroughProvider(page, 'olivia', 'oidc-user');
    assert.equal((await page.getByTestId('user-name').textContent())?.trim(), 'Olivia Example');
    assert.equal(await page.getByTestId('nav-admin').count(), 0, 'no admin area for a plain user');
    assert.equal(await page.getByTestId('user-role').count(), 0);
    await page.getByTestId('app-card-xterm').waitFor();
    assert.equal(await page.getByTestId('app-card-xclock').count(), 0, 'no admin-only apps in the catalog');
    await shot(page, 'oidc-user-signed-in.png');

    // Who Sortie thinks this is, asked with the browser's own cookies.
    const me = (await (await page.request.get(`${sortie.url}/api/auth/me`)).json()) as { user: { id: string; username: string; role: string; auth_source: string } };
    assert.deepEqual([me.user.username, me.user.role, me.user.auth_source], ['olivia', 'user', 'oidc']);

    const { sessionId } = await launchFromCatalog(page, sortie.url, 'xterm', 'oidc-user-xterm.png');
    const session = (await (await page.request.get(`${sortie.url}/api/sessions/${sessionId}`)).json()) as Session;
    assert.deepEqual([session.user_id, session.status], [me.user.id, 'running'], 'the session is the OIDC user’s own');
    const groups = localSessionRecord(sortie.stateDir, sessionId).processes.map((p) => p.pid);
    await page.getByTestId('end-session').click();
    await page.getByTestId('viewer-status').filter({ hasText: 'terminated' }).waitFor({ timeout: 10_000 });
    assert.deepEqual(processesInGroups(groups), [], 'ending it from the viewer ends it for real');

    // Sign out, then in again: the provider remembers the person, Sortie the account.
    await page.getByTestId('signout').click();
    await page.getByTestId('signin-page').waitFor();
    assert.equal((await page.request.get(`${sortie.url}/api/auth/me`)).status(), 401, 'signed out for the server too');
    await page.getByTestId('signin-oidc').click();
    await page.getByTestId('user-name').waitFor({ timeout: 15_000 });
    const again = (await (await page.request.get(`${sortie.url}/api/auth/me`)).json()) as { user: { id: string } };
    assert.equal(again.user.id, me.user.id, 'the same Sortie account, not a new one');
  });

  test('a user in the admin group becomes a Sortie admin', { timeout: 60_000 }, async () => {
    const page = await newPage();
    await signInThroughProvider(page, 'ada-admin', 'oidc-admin');
    assert.equal((await page.getByTestId('user-name').textContent())?.trim(), 'Ada-admin Example');
    await page.getByTestId('nav-admin').waitFor();
    assert.equal((await page.getByTestId('user-role').textContent())?.trim(), 'Admin');
    await page.getByTestId('app-card-xclock').waitFor(); // admins see admin-only apps
    await shot(page, 'oidc-admin-signed-in.png');

    // The local admin sees the single sign-on accounts with the roles the group claim gave them.
    const oidcAccounts = (await accounts()).filter((u) => u.auth_source === 'oidc');
    assert.ok(oidcAccounts.some((u) => u.username === 'ada-admin' && u.role === 'admin'), JSON.stringify(oidcAccounts));
    for (const u of oidcAccounts) assert.equal(u.role, u.username.includes('admin') ? 'admin' : 'user', u.username);
  });

  test('a sign-in that cannot be trusted lands on the sign-in page with an error', { timeout: 60_000 }, async () => {
    const expectSignInError = async (page: Page, pattern: RegExp, screenshot: string) => {
      await page.waitForURL(/#\/signin/);
      const error = page.getByTestId('signin-error');
      await error.waitFor();
      assert.match(await error.innerText(), pattern);
      assert.equal(await page.getByTestId('user-name').count(), 0, 'nobody is signed in');
      await shot(page, screenshot);
      const status = (await page.request.get(`${sortie.url}/api/auth/me`)).status();
      assert.equal(status, 401);
    };

    // The callback hit directly with a made-up code: no sign-in was ever started here.
    const direct = await newPage();
    await direct.goto(`${sortie.url}/api/auth/oidc/callback?code=bogus&state=bogus&iss=${encodeURIComponent(issuer)}`);
    await expectSignInError(direct, /took too long|started elsewhere/, 'oidc-error-no-state.png');

    // A real authorization response from the provider (a valid code), but with a state that
    // is not the one this browser's sign-in was given.
    const tampered = await newPage();
    const callback = new Promise<string>((resolve) => (captureCallback = resolve));
    await tampered.goto(sortie.url);
    await tampered.getByTestId('signin-oidc').click();
    await tampered.waitForURL(`${issuer}/interaction/**`);
    await tampered.locator('input[name="login"]').fill('mallory');
    await tampered.locator('input[name="password"]').fill('any password will do');
    await tampered.getByRole('button', { name: 'Sign-in' }).click();
    await tampered.getByRole('button', { name: 'Continue' }).click();
    const genuine = new URL(await callback);
    assert.ok(genuine.searchParams.get('code') && genuine.searchParams.get('state'), genuine.href);
    const stateCookie = (await tampered.context().cookies(`${sortie.url}/api/auth/oidc/callback`)).find((c) => c.name === 'sortie_oidc');
    assert.ok(stateCookie, 'Sortie keeps the sign-in state in a cookie');
    const forged = new URL(genuine);
    forged.searchParams.set('state', 'tampered');
    await tampered.goto(forged.href);
    await expectSignInError(tampered, /^Single sign-on did not work: \S/, 'oidc-error-tampered-state.png');
    assert.ok(!(await usernames()).includes('mallory'), 'no account was created from the tampered response');
    // Control: the very same response with its real state signs in, so the state was the only problem.
    await tampered.context().addCookies([stateCookie]);
    await tampered.goto(genuine.href);
    await tampered.getByTestId('user-name').waitFor({ timeout: 15_000 });
    assert.ok((await usernames()).includes('mallory'));

    // A genuinely signed state that has expired (ten minutes are up).
    const late = await newPage();
    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ state: 's', nonce: 'n', verifier: 'v'.repeat(43), returnTo: '/', redirectUri: `${sortie.url}/api/auth/oidc/callback` })
      .setProtectedHeader({ alg: 'HS256' })
      .setAudience('sortie-oidc')
      .setExpirationTime(now - 1)
      .sign(new TextEncoder().encode(JWT_SECRET));
    await late.context().addCookies([{ name: 'sortie_oidc', value: expired, domain: '127.0.0.1', path: '/api/auth/oidc', httpOnly: true, sameSite: 'Lax' }]);
    await late.goto(`${sortie.url}/api/auth/oidc/callback?code=bogus&state=s&iss=${encodeURIComponent(issuer)}`);
    await expectSignInError(late, /took too long/, 'oidc-error-expired-state.png');
  });
});
