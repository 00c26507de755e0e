import type { CreatedShare, RedeemedShare, SessionSharesPage, ShareMode } from '../contract';
import { request } from '../api/request';

const base = (sessionId: string) => `/api/sessions/${encodeURIComponent(sessionId)}/shares`;

export function listShares(sessionId: string, signal?: AbortSignal): Promise<SessionSharesPage> {
  return request<SessionSharesPage>('GET', base(sessionId), undefined, signal);
}

export function shareWithUser(sessionId: string, user: string, mode: ShareMode): Promise<CreatedShare> {
  return request<CreatedShare>('POST', base(sessionId), { user, mode });
}

export function createShareLink(sessionId: string, mode: ShareMode, expiresInMinutes: number): Promise<CreatedShare> {
  return request<CreatedShare>('POST', base(sessionId), { link: true, mode, expires_in_minutes: expiresInMinutes });
}

export function revokeShare(sessionId: string, shareId: string): Promise<void> {
  return request<void>('DELETE', `${base(sessionId)}/${encodeURIComponent(shareId)}`);
}

export function redeemShare(token: string): Promise<RedeemedShare> {
  return request<RedeemedShare>('POST', '/api/shares/redeem', { token });
}

/** A link as a person copies it: this Sortie's address and the link's path. */
export function shareLinkAddress(url: string, page: Pick<Location, 'origin'> = window.location): string {
  return `${page.origin}${url}`;
}
