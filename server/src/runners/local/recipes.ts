import path from 'node:path';
import type { GateMode } from './process-group.js';
import { SANDBOX_PATH, sandboxArgv, sandboxEnvironment, type SessionUser, type SystemPath } from './sandbox.js';
import { homeDirPath, homesDirPath, passwordFilePath, xauthFilePath, type Role } from './state-file.js';
import { xauthorityEntry } from './xauth.js';

/**
 * What each of a local session's four processes runs, with which environment and which
 * files, as pure functions of a session plan: the local counterpart of pod-spec.ts. Looking
 * things up (programs, users, free ports and displays) and starting processes happen
 * elsewhere (local-session.ts), so every property of a launch that lives in argv or env is
 * checked by recipes.test.ts without starting anything.
 */

/** Every port a session opens listens here only; the stream relay is its one client. */
export const HOST = '127.0.0.1';
/** Xvfb's `-screen 0` geometry when the runner is not told otherwise. */
export const DEFAULT_SCREEN = '1280x800x24';

/** The programs found for the session's infrastructure (absolute paths). */
export interface InfraPrograms {
  xvfb: string;
  x11vnc: string;
  websockify: string;
}

/** What the sandbox needs beyond the plan: found once per launch (see sandbox.ts). */
export interface SandboxTools {
  bwrap: string;
  systemPaths: readonly SystemPath[];
  /** The app's argv, its program resolved to an absolute path the sandbox can see. */
  command: readonly string[];
  /** Set when Sortie is root: the app drops to this user with setpriv. */
  user?: SessionUser;
  setpriv?: string;
}

/** Everything the recipes depend on; all of it decided before the first process starts. */
export interface SessionPlan {
  sessionId: string;
  stateDir: string;
  display: number;
  vncPort: number;
  wsPort: number;
  screen: string;
  /** The display's X cookie: Xvfb demands it, x11vnc and the app present it. */
  cookie: Buffer;
  /** The VNC password x11vnc demands; absent, it demands none. Checked by vncSecretOf. */
  secret?: string;
  programs: InfraPrograms;
  sandbox: SandboxTools;
  /** More host folders the sandbox must not show. */
  hiddenPaths: readonly string[];
  /** Sortie's own PATH and LANG; nothing else of its environment reaches a session. */
  hostEnv: { PATH?: string; LANG?: string };
}

/** A file written before its process starts: mode 0600, created fresh, then given to `owner`. */
export interface PrivateFile {
  path: string;
  data: Buffer | string;
  owner?: { uid: number; gid: number };
}

export interface ProcessRecipe {
  role: Role;
  /** What people call it in messages: "Xvfb", "x11vnc", or the app's program name. */
  name: string;
  argv: string[];
  env: Record<string, string>;
  /** `parent` keeps the gate as the app's parent, for bwrap's --die-with-parent. */
  gate: GateMode;
  files: PrivateFile[];
}

/**
 * Xvfb, x11vnc and websockify get a clean environment too: nothing of Sortie's own
 * (SORTIE_JWT_SECRET, SORTIE_ADMIN_PASSWORD, ...) reaches a process a session talks to.
 */
export function infraEnvironment(plan: Pick<SessionPlan, 'hostEnv'>, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: plan.hostEnv.PATH || SANDBOX_PATH, LANG: plan.hostEnv.LANG || 'C.UTF-8', ...extra };
}

export function xvfbRecipe(plan: SessionPlan): ProcessRecipe {
  const xauthority = xauthFilePath(plan.stateDir, plan.sessionId);
  return {
    role: 'xvfb',
    name: 'Xvfb',
    // -auth: only clients holding the session's cookie may open the display.
    argv: [plan.programs.xvfb, `:${plan.display}`, '-screen', '0', plan.screen, '-nolisten', 'tcp', '-auth', xauthority],
    env: infraEnvironment(plan),
    gate: 'exec',
    // The original stays readable by Sortie only; the app gets a copy in its home.
    files: [{ path: xauthority, data: xauthorityEntry(plan.display, plan.cookie) }],
  };
}

export function x11vncRecipe(plan: SessionPlan): ProcessRecipe {
  // The secret goes through a file x11vnc deletes after reading ("rm:"), never through
  // argv, where every local user could read it with ps.
  const passwordFile = passwordFilePath(plan.stateDir, plan.sessionId);
  const auth = plan.secret === undefined ? ['-nopw'] : ['-passwdfile', `rm:${passwordFile}`];
  return {
    role: 'x11vnc',
    name: 'x11vnc',
    argv: [
      plan.programs.x11vnc, '-display', `:${plan.display}`, '-rfbport', String(plan.vncPort),
      // -noipv6: -localhost alone also listens on [::1]. Not -quiet: it hides why x11vnc
      // failed (e.g. "shmget: No space left on device"); its output has a log of its own.
      '-localhost', '-noipv6', '-forever', '-shared', '-norc',
      ...auth,
    ],
    env: infraEnvironment(plan, { XAUTHORITY: xauthFilePath(plan.stateDir, plan.sessionId) }),
    gate: 'exec',
    files: plan.secret === undefined ? [] : [{ path: passwordFile, data: `${plan.secret}\n` }],
  };
}

export function websockifyRecipe(plan: SessionPlan): ProcessRecipe {
  return {
    role: 'websockify',
    name: 'websockify',
    argv: [plan.programs.websockify, `${HOST}:${plan.wsPort}`, `${HOST}:${plan.vncPort}`],
    env: infraEnvironment(plan),
    gate: 'exec',
    files: [],
  };
}

/**
 * Host folders the sandbox covers when they lie inside a system path it shows: Sortie's
 * state (cookies, logs, password files), every session's home, and the data folder around them.
 */
export function hiddenFolders(plan: Pick<SessionPlan, 'stateDir' | 'hiddenPaths'>): string[] {
  return [plan.stateDir, homesDirPath(plan.stateDir), path.dirname(plan.stateDir), ...plan.hiddenPaths];
}

/**
 * The app, inside bubblewrap on the session's display. Its home (created empty by the
 * session before this runs) receives a copy of the display's cookie, owned by the user the
 * app runs as.
 */
export function appRecipe(plan: SessionPlan): ProcessRecipe {
  const home = homeDirPath(plan.stateDir, plan.sessionId);
  const lang = plan.hostEnv.LANG || 'C.UTF-8';
  const { command, ...tools } = plan.sandbox;
  return {
    role: 'app',
    name: path.basename(command[0]!),
    argv: sandboxArgv({
      ...tools,
      command,
      hide: hiddenFolders(plan),
      home,
      display: plan.display,
      env: sandboxEnvironment(plan.display, lang),
    }),
    env: infraEnvironment(plan),
    gate: 'parent',
    files: [{ path: path.join(home, '.Xauthority'), data: xauthorityEntry(plan.display, plan.cookie), owner: plan.sandbox.user }],
  };
}

/**
 * The launch's VNC password, or undefined for none. LaunchSpec is gaining `streamSecret`;
 * until every caller passes one, a session without it gets a VNC server without a
 * password, as before.
 */
export function vncSecretOf(spec: { streamSecret?: unknown }): string | undefined {
  const secret = spec.streamSecret;
  if (secret === undefined || secret === '') return undefined;
  // x11vnc's password file gives '#' lines, "__" tokens and line breaks special meanings.
  if (typeof secret !== 'string' || !/^[!-~]+$/.test(secret) || secret.startsWith('#') || secret.includes('__')) {
    throw new Error('The stream secret must be printable ASCII without spaces, a leading "#" or "__"');
  }
  return secret;
}
