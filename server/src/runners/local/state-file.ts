import { chownSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { z } from 'zod';

/** A session's processes, in the order they start. */
export const ROLES = ['xvnc', 'websockify', 'app'] as const;
/**
 * What sessions started by earlier versions ran (Xvfb and x11vnc where Xvnc is now): their
 * state files still read, so the next Sortie adopts or cleans them up.
 */
export const LEGACY_ROLES = ['xvfb', 'x11vnc', 'websockify', 'app'] as const;
const ANY_ROLE = ['xvnc', 'xvfb', 'x11vnc', 'websockify', 'app'] as const;
export type Role = (typeof ANY_ROLE)[number];

const processSchema = z.object({
  role: z.enum(ANY_ROLE),
  /** What people call it in messages: "Xvnc", "websockify", or the app's program name. */
  name: z.string(),
  /** Also the process group id: every role is started as a group leader. */
  pid: z.number().int().positive(),
  startTime: z.string().optional(),
});

const recordSchema = z.object({
  version: z.literal(1),
  sessionId: z.string(),
  workloadName: z.string(),
  appId: z.string(),
  userId: z.string(),
  startedAt: z.string(),
  display: z.number().int(),
  /** 0: VNC on the session's socket (vncSocketPath). Sessions of earlier versions listened on this TCP port. */
  vncPort: z.number().int(),
  wsPort: z.number().int(),
  /** Set once the VNC endpoint answered, so an adopting runner need not probe again. */
  readyAt: z.string().optional(),
  /** The user's persistent home, when the app keeps one; the session's own home links to it. */
  home: z.string().optional(),
  processes: z.array(processSchema),
});

export type ProcessRecord = z.infer<typeof processSchema>;
export type SessionRecord = z.infer<typeof recordSchema>;

/** Session ids become file names; anything else could escape the state directory. */
const SAFE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export function isSafeSessionId(sessionId: string): boolean {
  return SAFE_ID.test(sessionId);
}

export function stateFilePath(stateDir: string, sessionId: string): string {
  return path.join(stateDir, `${sessionId}.json`);
}

/**
 * Each process writes to its own log, so a failure's reason quotes the output of the process
 * that failed, not the chatter of the others that went on after it.
 */
export function logFilePath(stateDir: string, sessionId: string, role: Role): string {
  return path.join(stateDir, `${sessionId}.${role}.log`);
}

/** The display's X authority (the session's cookie), read by Xvnc only. */
export function xauthFilePath(stateDir: string, sessionId: string): string {
  return path.join(stateDir, `${sessionId}.xauth`);
}

/**
 * The session's home on the host: the one folder its app may write to. Beside the state
 * directory, not in it, so that one holds nothing but Sortie's own files.
 */
export function homeDirPath(stateDir: string, sessionId: string): string {
  return path.join(homesDirPath(stateDir), sessionId);
}

/**
 * Persistent homes (apps with `persistent_home`), one folder per user, beside the session
 * homes. A user id that is not a plain file name gets a hash of itself instead, marked with
 * a leading "_" that no plain name has, so two users never share a folder.
 */
export function userHomeDirPath(stateDir: string, userId: string): string {
  const name = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$/.test(userId) ? userId : `_${createHash('sha256').update(userId).digest('hex').slice(0, 32)}`;
  return path.join(userHomesDirPath(stateDir), name);
}

export function userHomesDirPath(stateDir: string): string {
  return `${path.resolve(stateDir)}-user-homes`;
}

export function homesDirPath(stateDir: string): string {
  return `${path.resolve(stateDir)}-homes`;
}

/** The app's copy of the cookie, there only while its sandbox is being started (see appRecipe). */
export function appCookieFilePath(stateDir: string, sessionId: string): string {
  return path.join(stateDir, `${sessionId}.app-xauth`);
}

/** The VNC password file, there only while Xvnc is being started (see xvncRecipe). */
/**
 * The session's display folder: the display server's sandbox makes the display's socket
 * (X<n>) and the VNC socket (vnc) in it. Inside the state folder, so only Sortie reaches it.
 */
export function displayDirPath(stateDir: string, sessionId: string): string {
  return path.join(stateDir, `${sessionId}.display`);
}

/** The display's X socket on the host, as the app's sandbox and Sortie's probe reach it. */
export function displaySocketFilePath(stateDir: string, sessionId: string, display: number): string {
  return path.join(displayDirPath(stateDir, sessionId), `X${display}`);
}

/** The VNC socket's name in the display folder, where Xvnc makes it inside its sandbox. */
export const VNC_SOCKET = 'vnc';

/** The session's VNC socket on the host: websockify's one way to the desktop. */
export function vncSocketPath(stateDir: string, sessionId: string): string {
  return path.join(displayDirPath(stateDir, sessionId), VNC_SOCKET);
}

export function passwordFilePath(stateDir: string, sessionId: string): string {
  return path.join(stateDir, `${sessionId}.passwd`);
}

export function ensureStateDir(stateDir: string): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
}

/**
 * Written with rename so a reader (the next Sortie) sees the old or the new file, never half
 * of one. No fsync: the file only has to survive Sortie crashing; a machine crash takes the
 * session's processes with it anyway.
 */
export function writeStateFile(stateDir: string, record: SessionRecord): void {
  const target = stateFilePath(stateDir, record.sessionId);
  const temp = `${target}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, target);
}

/**
 * Writes a file only its owner may read (0600), created exclusively so that an existing file
 * or a planted symlink fails the launch instead of being followed, then hands it to `owner`.
 */
export function writePrivateFile(file: string, data: Buffer | string, owner?: { uid: number; gid: number }): void {
  writeFileSync(file, data, { mode: 0o600, flag: 'wx' });
  if (owner) chownSync(file, owner.uid, owner.gid);
}

export type StateFileEntry =
  | { sessionId: string; record: SessionRecord }
  | { sessionId: string; record?: undefined; problem: string };

export function readStateFile(stateDir: string, sessionId: string): StateFileEntry | undefined {
  let text: string;
  try {
    text = readFileSync(stateFilePath(stateDir, sessionId), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { sessionId, problem: (err as Error).message };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { sessionId, problem: `not JSON (${(err as Error).message})` };
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) return { sessionId, problem: `unexpected content (${parsed.error.issues[0]?.message})` };
  if (parsed.data.sessionId !== sessionId) return { sessionId, problem: `it names session ${parsed.data.sessionId}` };
  return { sessionId, record: parsed.data };
}

/** Whether a session's record names every process it needs (as this version or an earlier one starts them). */
export function hasAllRoles(record: Pick<SessionRecord, 'processes'>): boolean {
  const has = (role: Role) => record.processes.some((p) => p.role === role);
  return ROLES.every(has) || LEGACY_ROLES.every(has);
}

/** Every session's state file; leftovers of interrupted writes are deleted on the way. */
export function readStateFiles(stateDir: string): StateFileEntry[] {
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const entries: StateFileEntry[] = [];
  for (const name of names) {
    if (name.endsWith('.tmp')) {
      rmSync(path.join(stateDir, name), { force: true });
      continue;
    }
    if (!name.endsWith('.json')) continue;
    const sessionId = name.slice(0, -'.json'.length);
    const entry = readStateFile(stateDir, sessionId);
    if (entry) entries.push(entry);
  }
  return entries;
}

export function removeSessionFiles(stateDir: string, sessionId: string): void {
  rmSync(stateFilePath(stateDir, sessionId), { force: true });
  for (const role of ANY_ROLE) rmSync(logFilePath(stateDir, sessionId, role), { force: true });
  // Written by earlier versions, which kept one log for all their processes.
  rmSync(path.join(stateDir, `${sessionId}.log`), { force: true });
  rmSync(passwordFilePath(stateDir, sessionId), { force: true });
  rmSync(appCookieFilePath(stateDir, sessionId), { force: true });
  rmSync(xauthFilePath(stateDir, sessionId), { force: true });
  rmSync(displayDirPath(stateDir, sessionId), { recursive: true, force: true });
  // The app's leftovers; rm does not follow the symlinks it may have planted there.
  rmSync(homeDirPath(stateDir, sessionId), { recursive: true, force: true, maxRetries: 3 });
}
