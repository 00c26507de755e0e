import { request } from '../api/request';
import type { App } from '../contract';
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

export async function listUsers(signal?: AbortSignal): Promise<User[]> {
  const data = await request<{ users: User[] }>('GET', '/api/admin/users', undefined, signal);
  return data?.users ?? [];
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
