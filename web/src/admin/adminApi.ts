import { request } from '../api/request';
import { PAGE_LIMIT_MAX, type App, type UserPage } from '../contract';
import type { Role, User } from '../auth/types';

/** An app as sent to the server: optional fields left out take the server's defaults. */
export type AppInput = Omit<App, 'resource_limits' | 'command' | 'category'> & {
  category?: string;
  command?: string[];
  resource_limits?: Partial<App['resource_limits']>;
};

const appPath = (id: string) => `/api/apps/${encodeURIComponent(id)}`;
const userPath = (id: string) => `/api/admin/users/${encodeURIComponent(id)}`;

export function createApp(app: AppInput): Promise<App> {
  return request<App>('POST', '/api/apps', app);
}

export function updateApp(id: string, app: AppInput): Promise<App> {
  return request<App>('PUT', appPath(id), app);
}

export async function deleteApp(id: string): Promise<void> {
  await request<null>('DELETE', appPath(id));
}

/** A page of users by username; `cursor` is the previous page's `next_cursor`. */
export async function listUsers(cursor?: string, signal?: AbortSignal): Promise<{ items: User[]; next: string | null }> {
  const query = new URLSearchParams({ limit: String(PAGE_LIMIT_MAX) });
  if (cursor) query.set('cursor', cursor);
  const data = await request<Partial<UserPage>>('GET', `/api/admin/users?${query.toString()}`, undefined, signal);
  return { items: data?.users ?? [], next: data?.next_cursor ?? null };
}

/** No organisation Sortie serves has more people than this; the filter lists the first ones. */
const MAX_USER_PAGES = 50;

/** Every user (up to MAX_USER_PAGES pages), for pickers and names. */
export async function listAllUsers(signal?: AbortSignal): Promise<User[]> {
  const users: User[] = [];
  let cursor: string | undefined;
  for (let pages = 0; pages < MAX_USER_PAGES; pages++) {
    const page = await listUsers(cursor, signal);
    users.push(...page.items);
    if (page.next === null) break;
    cursor = page.next;
  }
  return users;
}

export interface NewUser {
  username: string;
  password: string;
  display_name?: string;
  role: Role;
}

/** Removes the user's persistent home and everything in it (404 when there is none). */
export async function deleteUserHome(id: string): Promise<void> {
  await request<null>('DELETE', `/api/admin/users/${encodeURIComponent(id)}/home`);
}

export function createUser(user: NewUser): Promise<User> {
  return request<User>('POST', '/api/admin/users', user);
}

export type UserPatch = Partial<{ display_name: string; role: Role; password: string; disabled: boolean }>;

export function updateUser(id: string, patch: UserPatch): Promise<User> {
  return request<User>('PATCH', userPath(id), patch);
}

export async function deleteUser(id: string): Promise<void> {
  await request<null>('DELETE', userPath(id));
}

export interface Approvals {
  app_ids: string[];
  categories: string[];
}

export async function getApprovals(userId: string, signal?: AbortSignal): Promise<Approvals> {
  const data = await request<Partial<Approvals>>('GET', `${userPath(userId)}/approvals`, undefined, signal);
  return { app_ids: data?.app_ids ?? [], categories: data?.categories ?? [] };
}

export async function putApprovals(userId: string, approvals: Approvals): Promise<Approvals> {
  const data = await request<Partial<Approvals>>('PUT', `${userPath(userId)}/approvals`, approvals);
  return { app_ids: data?.app_ids ?? approvals.app_ids, categories: data?.categories ?? approvals.categories };
}
