import * as client from 'openid-client';
import type { Logger } from 'pino';
import type { AuthConfig } from '../config/config.js';
import type { TokenSigner } from './tokens.js';

type OidcSettings = NonNullable<AuthConfig['oidc']>;

export interface OidcIdentity {
  /** `<issuer>#<sub>`: stable across username changes at the provider. */
  subject: string;
  username: string;
  displayName: string;
  role: 'admin' | 'user';
}

/**
 * Sign-in through an OpenID Connect provider: authorization code flow with PKCE, state and
 * nonce. What must survive the round trip travels in a short-lived signed cookie, so any
 * replica can finish a sign-in another started.
 */
export class OidcClient {
  private configuration: Promise<client.Configuration> | undefined;

  constructor(
    private readonly settings: OidcSettings,
    private readonly signer: TokenSigner,
    private readonly logger: Logger,
  ) {}

  /** The provider's authorization URL, and the signed state to keep in a cookie. */
  async start(redirectUri: string, returnTo: string): Promise<{ url: string; state: string }> {
    const config = await this.discover();
    const verifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: this.settings.scopes,
      code_challenge: await client.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const signed = await this.signer.signState({ state, nonce, verifier, returnTo, redirectUri }, 600);
    return { url: url.href, state: signed };
  }

  async finish(currentUrl: URL, signedState: string | undefined): Promise<{ identity: OidcIdentity; returnTo: string }> {
    const saved = signedState ? await this.signer.verifyState(signedState) : undefined;
    if (!saved) throw new Error('The sign-in took too long or was started elsewhere; try again');
    const config = await this.discover();
    const tokens = await client
      .authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: saved.verifier!,
        expectedState: saved.state!,
        expectedNonce: saved.nonce!,
        idTokenExpected: true,
      })
      .catch((err: unknown) => {
        // The library's wording ("invalid response encountered") tells a person nothing.
        this.logger.warn({ err }, 'OIDC code exchange failed');
        throw new Error("The identity provider's answer could not be verified; start the sign-in again");
      });
    const idClaims = tokens.claims();
    if (!idClaims) throw new Error('The identity provider sent no ID token');
    // Group claims often live only in the userinfo response.
    const userinfo = tokens.access_token ? await client.fetchUserInfo(config, tokens.access_token, idClaims.sub).catch(() => ({})) : {};
    const claims: Record<string, unknown> = { ...userinfo, ...idClaims };
    const username = firstString(claims.preferred_username, claims.email, claims.sub)!;
    return {
      identity: {
        subject: `${idClaims.iss}#${idClaims.sub}`,
        username,
        displayName: firstString(claims.name, username)!,
        role: claimHolds(claims[this.settings.adminClaim], this.settings.adminValue) ? 'admin' : 'user',
      },
      returnTo: saved.returnTo ?? '/',
    };
  }

  private discover(): Promise<client.Configuration> {
    this.configuration ??= (async () => {
      const issuer = new URL(this.settings.issuer);
      const auth = this.settings.clientSecret ? client.ClientSecretPost(this.settings.clientSecret) : client.None();
      const insecure = issuer.protocol === 'http:';
      if (insecure) this.logger.warn({ issuer: issuer.href }, 'the OIDC issuer is plain http; use https outside of tests');
      return client.discovery(issuer, this.settings.clientId, undefined, auth, insecure ? { execute: [client.allowInsecureRequests] } : undefined);
    })().catch((err: unknown) => {
      this.configuration = undefined; // try discovery again on the next sign-in
      throw new Error(`Cannot reach the identity provider ${this.settings.issuer}: ${err instanceof Error ? err.message : String(err)}`);
    });
    return this.configuration;
  }
}

function firstString(...values: unknown[]): string | undefined {
  return values.find((v): v is string => typeof v === 'string' && v !== '');
}

function claimHolds(claim: unknown, value: string): boolean {
  if (Array.isArray(claim)) return claim.includes(value);
  if (typeof claim === 'string') return claim === value || claim.split(/[\s,]+/).includes(value);
  return claim === true && value === 'true';
}
