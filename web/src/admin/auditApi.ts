import { request } from '../api/request';
import type { AuditPage } from '../contract';

/** What the audit page is narrowed to; empty fields select everything. */
export interface AuditFilter {
  /** A username or user id. */
  actor: string;
  /** An action (`session.end`), a group (`session.*`), or empty for all. */
  action: string;
  /** ISO-8601 bounds: from inclusive, to exclusive; empty for open. */
  from: string;
  to: string;
}

export const NO_FILTER: AuditFilter = { actor: '', action: '', from: '', to: '' };

export function auditQuery(filter: AuditFilter, extra: Record<string, string> = {}): string {
  const query = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filter, ...extra })) if (value.trim()) query.set(key, value.trim());
  return query.toString();
}

/** One page, newest first; `cursor` is the previous page's `next_cursor`. */
export async function fetchAuditPage(filter: AuditFilter, cursor: string | null, signal?: AbortSignal): Promise<AuditPage> {
  const data = await request<AuditPage>('GET', `/api/admin/audit?${auditQuery(filter, { limit: '50', ...(cursor ? { cursor } : {}) })}`, undefined, signal);
  return { events: data?.events ?? [], next_cursor: data?.next_cursor ?? null };
}

/** Where the CSV of the same selection is downloaded from. */
export function auditCsvUrl(filter: AuditFilter): string {
  const query = auditQuery(filter);
  return `/api/admin/audit.csv${query ? `?${query}` : ''}`;
}
