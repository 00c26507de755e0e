/** Who is making a request, as every service sees it. */
export interface Principal {
  userId: string;
  username: string;
  role: 'admin' | 'user';
  /** The sign-in the request's token belongs to; absent when auth is switched off. */
  loginId?: string;
  /** When the request's access token expires (a stream authorised once ends then); absent when auth is switched off. */
  accessExpiresAt?: Date;
  /** The client address the request came from (SORTIE_TRUSTED_PROXIES decides it), for the audit log. */
  address?: string;
}

export function isAdmin(principal: Principal): boolean {
  return principal.role === 'admin';
}
