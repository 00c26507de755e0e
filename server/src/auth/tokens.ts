import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { errors, jwtVerify, SignJWT } from 'jose';

const ISSUER = 'sortie';
const AUDIENCE = 'sortie';

export interface AccessClaims {
  sub: string;
  /** The sign-in (login row) this token was issued for; revoking it refuses the token. */
  sid: string;
}

/** Short-lived signed access tokens (HS256 JWT) and opaque, rotated refresh tokens. */
export class TokenSigner {
  private readonly key: Uint8Array;

  constructor(secret: string) {
    this.key = new TextEncoder().encode(secret);
  }

  async signAccess(claims: AccessClaims, ttlSeconds: number): Promise<{ token: string; expiresAt: Date }> {
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const token = await new SignJWT({ sid: claims.sid })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject(claims.sub)
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(Math.floor(expiresAt.getTime() / 1000))
      .sign(this.key);
    return { token, expiresAt };
  }

  /** The token's claims, or why it was refused (expired, bad signature, malformed). */
  async verifyAccess(token: string): Promise<{ ok: true; claims: AccessClaims; expiresAt: Date } | { ok: false; reason: string }> {
    try {
      const { payload } = await jwtVerify(token, this.key, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['HS256'], requiredClaims: ['exp'] });
      if (typeof payload.sub !== 'string' || typeof payload.sid !== 'string') return { ok: false, reason: 'The token is malformed' };
      return { ok: true, claims: { sub: payload.sub, sid: payload.sid }, expiresAt: new Date(payload.exp! * 1000) };
    } catch (err) {
      if (err instanceof errors.JWTExpired) return { ok: false, reason: 'The access token has expired; refresh it or sign in again' };
      return { ok: false, reason: 'The access token is not valid' };
    }
  }

  /** Short-lived signed state for the OIDC round trip (kept in a cookie). */
  async signState(payload: Record<string, string>, ttlSeconds: number): Promise<string> {
    return new SignJWT(payload).setProtectedHeader({ alg: 'HS256' }).setAudience('sortie-oidc').setExpirationTime(`${ttlSeconds}s`).sign(this.key);
  }

  async verifyState(token: string): Promise<Record<string, string> | undefined> {
    try {
      const { payload } = await jwtVerify(token, this.key, { audience: 'sortie-oidc', algorithms: ['HS256'] });
      return payload as Record<string, string>;
    } catch {
      return undefined;
    }
  }
}

/** A refresh token is `<login id>.<secret>`; only the secret's hash is stored. */
export function newRefreshToken(loginId: string): { token: string; hash: string } {
  const secret = randomBytes(32).toString('base64url');
  return { token: `${loginId}.${secret}`, hash: hashSecret(secret) };
}

export function parseRefreshToken(token: string): { loginId: string; secret: string } | undefined {
  const dot = token.indexOf('.');
  if (dot <= 0 || dot === token.length - 1) return undefined;
  return { loginId: token.slice(0, dot), secret: token.slice(dot + 1) };
}

export function refreshSecretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

export function randomSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}
