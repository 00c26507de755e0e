import { createHash } from 'node:crypto';
import type { App } from '../catalog/app.js';
import type { SessionStatus } from './session.js';

/**
 * The warm pool: per app, `warm_pool` sessions started before anyone asks, owned by nobody
 * until a launch claims one. This module decides what a refill pass does; the session service
 * does it (one pass at a time across replicas, by the leading replica).
 */

/** The owner a pooled session has until a launch claims it: no user id is empty. */
export const POOL_OWNER = '';

/**
 * A digest of what a session of `app` is started from. A pooled session whose digest is not
 * its app's current one was started from an older definition (an admin edited the app, or
 * apps.json changed between two starts) and is replaced. The pool's size and the app's
 * session limit are left out: changing them keeps the sessions already warm.
 */
export function poolDefinition(app: App): string {
  const { warm_pool: _size, max_sessions: _limit, ...definition } = app;
  return createHash('sha256').update(stableJson(definition)).digest('hex').slice(0, 32);
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    return `{${entries
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A pooled session as a refill pass sees it. */
export interface PooledSession {
  id: string;
  app_id: string;
  pool_definition: string;
  status: SessionStatus;
}

/** How full Sortie is when the pass runs. */
export interface Room {
  /** Sessions starting or running, pooled ones included, by app. */
  liveByApp: ReadonlyMap<string, number>;
  /** SORTIE_MAX_SESSIONS (Infinity for no limit). */
  maxSessions: number;
  /** Sessions `creating` now, and the runner's start limit (Infinity for none). */
  starting: number;
  maxStarting: number;
  /** Launches waiting in the queue. */
  queued: number;
}

export interface RefillPlan {
  /** Pooled sessions to end, and why (in words for the session's reason). */
  end: Array<{ id: string; reason: string }>;
  /** One entry per pooled session to start. */
  start: App[];
}

/**
 * What a refill pass does. Pooled sessions of a removed app, of an app pooled no more, or of
 * an older definition end; a pool larger than its app's warm_pool shrinks (starting ones
 * first, then the newest); then pools below their size grow, one session per app in turn, but
 * only into room nobody waits for: never while a launch is queued, never past
 * SORTIE_MAX_SESSIONS, the runner's start limit or the app's max_sessions. A pool thus never
 * pushes a person's launch into the queue; see `poolToYield` for the other direction.
 */
export function planRefill(apps: readonly App[], pooled: readonly PooledSession[], room: Room): RefillPlan {
  const byId = new Map(apps.map((app) => [app.id, app]));
  const end: RefillPlan['end'] = [];
  const kept = new Map<string, PooledSession[]>();
  for (const session of pooled) {
    const app = byId.get(session.app_id);
    if (!app || app.launch_type !== 'container') end.push({ id: session.id, reason: 'Its app was removed from the catalog' });
    else if ((app.warm_pool ?? 0) === 0) end.push({ id: session.id, reason: "Its app's warm pool was switched off" });
    else if (session.pool_definition !== poolDefinition(app)) end.push({ id: session.id, reason: 'Its app was changed: the warm pool starts afresh' });
    else kept.set(app.id, [...(kept.get(app.id) ?? []), session]);
  }
  for (const [appId, sessions] of kept) {
    const size = byId.get(appId)!.warm_pool ?? 0;
    if (sessions.length <= size) continue;
    // Running ones are worth more than starting ones; among equals the oldest stay (listed oldest first).
    const surplus = [...sessions.filter((s) => s.status !== 'running').reverse(), ...sessions.filter((s) => s.status === 'running').reverse()];
    for (const session of surplus.slice(0, sessions.length - size)) end.push({ id: session.id, reason: "Its app's warm pool was made smaller" });
    kept.set(appId, sessions.filter((s) => !end.some((e) => e.id === s.id)));
  }

  const start: App[] = [];
  if (room.queued > 0) return { end, start };
  const endedIds = new Set(end.map((e) => e.id));
  const liveByApp = new Map(room.liveByApp);
  for (const session of pooled) {
    if (endedIds.has(session.id)) liveByApp.set(session.app_id, (liveByApp.get(session.app_id) ?? 1) - 1);
  }
  let live = [...liveByApp.values()].reduce((sum, n) => sum + n, 0);
  let starting = room.starting - pooled.filter((s) => endedIds.has(s.id) && s.status === 'creating').length;
  const wanted = new Map<App, number>();
  for (const app of apps) {
    const missing = (app.launch_type === 'container' ? (app.warm_pool ?? 0) : 0) - (kept.get(app.id)?.length ?? 0);
    if (missing > 0) wanted.set(app, missing);
  }
  // One per app in turn, so one large pool does not take all the room from the others.
  while (wanted.size > 0) {
    for (const [app, missing] of wanted) {
      if (live >= room.maxSessions || starting >= room.maxStarting) return { end, start };
      const ofApp = liveByApp.get(app.id) ?? 0;
      if (app.max_sessions !== undefined && ofApp >= app.max_sessions) {
        wanted.delete(app);
        continue;
      }
      start.push(app);
      live++;
      starting++;
      liveByApp.set(app.id, ofApp + 1);
      if (missing <= 1) wanted.delete(app);
      else wanted.set(app, missing - 1);
    }
  }
  return { end, start };
}

/**
 * Which pooled sessions give their place to launches waiting in the queue: a pool never makes
 * a person wait. `blockedByRoom` launches wait for SORTIE_MAX_SESSIONS: any app's pooled
 * session makes room for them. `blockedByApp` counts launches waiting for their own app's
 * max_sessions: only that app's pooled sessions make room there. Starting ones go first (they
 * are furthest from serving anyone), then the newest.
 */
export function poolToYield(pooled: readonly PooledSession[], blockedByRoom: number, blockedByApp: ReadonlyMap<string, number>): string[] {
  const order = [...pooled.filter((s) => s.status !== 'running').reverse(), ...pooled.filter((s) => s.status === 'running').reverse()];
  const chosen = new Set<string>();
  for (const [appId, blocked] of blockedByApp) {
    for (const session of order.filter((s) => s.app_id === appId).slice(0, blocked)) chosen.add(session.id);
  }
  let forRoom = 0;
  for (const session of order) {
    if (forRoom >= blockedByRoom) break;
    if (chosen.has(session.id)) continue;
    chosen.add(session.id);
    forRoom++;
  }
  return [...chosen];
}
