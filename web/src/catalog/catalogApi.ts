import type { App } from '../contract';
import { request } from '../api/request';

/** The apps the signed-in person may launch (an admin: all of them). */
export async function listApps(signal?: AbortSignal): Promise<App[]> {
  const data = await request<{ applications: App[] }>('GET', '/api/apps', undefined, signal);
  return data?.applications ?? [];
}
