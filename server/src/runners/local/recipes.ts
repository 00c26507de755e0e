import path from 'node:path';
import type { App } from '../../catalog/app.js';
import type { GateMode } from './process-group.js';
import {
  DISPLAY_SANDBOX_XAUTHORITY,
  displaySandboxArgv,
  SANDBOX_PATH,
  SANDBOX_X11_DIR,
  sandboxArgv,
  sandboxEnvironment,
  type SessionUser,
  type SystemPath,
} from './sandbox.js';
import {
  appCookieFilePath,
  displayDirPath,
  displaySocketFilePath,
  homeDirPath,
  homesDirPath,
  passwordFilePath,
  userHomesDirPath,
  VNC_SOCKET,
  vncSocketPath,
  xauthFilePath,
  type Role,
} from './state-file.js';
import { vncPasswordFile } from './vnc-password.js';
import { xauthorityEntry } from './xauth.js';

/**
 * What each of a local session's three processes runs, with which environment and which
 * files, as pure functions of a session plan: the local counterpart of pod-spec.ts. Looking
 * things up (programs, users, free ports and displays) and starting processes happen
 * elsewhere (local-session.ts), so every property of a launch that lives in argv or env is
 * checked by recipes.test.ts without starting anything.
 */

/** A session's one TCP port (websockify's) listens here only; the stream relay is its one client. */
export const HOST = '127.0.0.1';
/** The desktop's size and depth (`WIDTHxHEIGHTxDEPTH`) when the runner is not told otherwise; a viewer may resize it. */
export const DEFAULT_SCREEN = '1280x800x24';

/** Which ways text may move between a viewer's clipboard and the session's, per app (see the catalog). */
export type ClipboardPolicy = App['clipboard'];

/** The programs found for the session's infrastructure (absolute paths). */
export interface InfraPrograms {
  xvnc: string;
  websockify: string;
  /** util-linux's prlimit, which bounds Xvnc's memory (see XVNC_ADDRESS_SPACE). */
  prlimit: string;
  /** x11-xkb-utils' setxkbmap (a dependency of Xvnc's package), see keymapCommand. */
  setxkbmap: string;
}

/**
 * The address space Xvnc may use. A viewer may resize the desktop (SetDesktopSize) up to
 * 32768x32768, which would have Xvnc allocate gigabytes; under this limit it refuses what
 * does not fit ("out of resources") and keeps the desktop as it was. 2 GiB holds Xvnc
 * itself (about 230 MiB), an 8K desktop with its copies, and the app's pixmaps.
 */
export const XVNC_ADDRESS_SPACE = 2 * 1024 ** 3;

/** What the sandbox needs beyond the plan: found once per launch (see sandbox.ts). */
export interface SandboxTools {
  bwrap: string;
  systemPaths: readonly SystemPath[];
  /** The app's argv, its program resolved to an absolute path the sandbox can see. */
  command: readonly string[];
  /** Set when Sortie is root: the app and the display server drop to this user with setpriv. */
  user?: SessionUser;
  setpriv?: string;
}

/** Everything the recipes depend on; all of it decided before the first process starts. */
export interface SessionPlan {
  sessionId: string;
  stateDir: string;
  display: number;
  wsPort: number;
  /** `WIDTHxHEIGHTxDEPTH`, the desktop's size until a viewer asks for another. */
  screen: string;
  /** The display's X cookie: Xvnc demands it, the app presents it. */
  cookie: Buffer;
  /** The VNC password Xvnc demands; absent, it demands none. Checked by vncSecretOf. */
  secret?: string;
  /** What Xvnc lets through between the viewers' clipboard and the session's. */
  clipboard: ClipboardPolicy;
  /** The desktop's name, which viewers show as its title. */
  desktopName: string;
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

/**
 * A file the process reads as descriptor 3 (INHERITED_FD) and nowhere else: written 0600,
 * opened, and deleted before the process starts, so it is on no disk and in no argv; the
 * process keeps it open (and can read it again) for as long as it runs.
 */
export interface InheritedFile {
  path: string;
  data: Buffer;
  /** Who may open it again through /proc/self/fd (the process's user, when that is not Sortie's). */
  owner?: { uid: number; gid: number };
}

export interface ProcessRecipe {
  role: Role;
  /** What people call it in messages: "Xvnc", "websockify", or the app's program name. */
  name: string;
  argv: string[];
  env: Record<string, string>;
  /** `parent` keeps the gate as the app's parent, for bwrap's --die-with-parent. */
  gate: GateMode;
  files: PrivateFile[];
  inherited?: InheritedFile;
}

/**
 * Xvnc and websockify get a clean environment too: nothing of Sortie's own
 * (SORTIE_JWT_SECRET, SORTIE_ADMIN_PASSWORD, ...) reaches a process a session talks to.
 */
export function infraEnvironment(plan: Pick<SessionPlan, 'hostEnv'>, extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: plan.hostEnv.PATH || SANDBOX_PATH, LANG: plan.hostEnv.LANG || 'C.UTF-8', ...extra };
}

/** `1280x800x24` → Xvnc's `-geometry 1280x800 -depth 24`. */
export function screenArgs(screen: string): string[] {
  const match = /^(\d+)x(\d+)(?:x(\d+))?$/.exec(screen.trim());
  if (!match) throw new Error(`Screen "${screen}" is not WIDTHxHEIGHT[xDEPTH]`);
  return ['-geometry', `${match[1]}x${match[2]}`, '-depth', match[3] ?? '24'];
}

/**
 * Xvnc's clipboard parameters for a policy. CutText is the CLIPBOARD selection, Primary the
 * PRIMARY one (what is selected with the mouse): both follow the same direction, so "none"
 * leaves no path for text either way.
 */
export function clipboardArgs(policy: ClipboardPolicy): string[] {
  const toSession = policy === 'both' || policy === 'to_session';
  const fromSession = policy === 'both' || policy === 'from_session';
  const flag = (on: boolean) => (on ? '1' : '0');
  return [
    `-AcceptCutText=${flag(toSession)}`,
    `-SetPrimary=${flag(toSession)}`,
    `-SendCutText=${flag(fromSession)}`,
    `-SendPrimary=${flag(fromSession)}`,
  ];
}

/**
 * Where a process finds its InheritedFile: the first descriptor after stdio. Xvnc reads the
 * VNC password through it; bwrap copies the app's cookie from it into the sandbox.
 */
export const INHERITED_FD = 3;

/**
 * TigerVNC's Xvnc: the session's X server and VNC server in one process, in a sandbox of
 * its own (displaySandboxArgv) as the session's user. It listens on no TCP port: X on the
 * display's socket (and its abstract twin), VNC on a socket in the session's display folder,
 * which only Sortie's side (websockify) can reach. The app reaches it only through the X
 * socket, with the cookie; viewers only through websockify, with the password.
 */
export function xvncRecipe(plan: SessionPlan): ProcessRecipe {
  const xauthority = xauthFilePath(plan.stateDir, plan.sessionId);
  const { bwrap, systemPaths, user, setpriv } = plan.sandbox;
  // Xvnc reads its password file at every authentication, so the file cannot go once read;
  // it reads it through a descriptor of a file deleted before Xvnc started.
  const auth =
    plan.secret === undefined
      ? ['-SecurityTypes', 'None']
      : ['-SecurityTypes', 'VncAuth', '-PasswordFile', `/proc/self/fd/${INHERITED_FD}`];
  const xvnc = [
    plan.programs.xvnc,
    `:${plan.display}`,
    // Only clients holding the session's cookie may open the display; no X over TCP.
    '-auth', DISPLAY_SANDBOX_XAUTHORITY,
    '-nolisten', 'tcp',
    ...screenArgs(plan.screen),
    '-desktop', plan.desktopName,
    // VNC on the display folder's socket only (0600: the session's user, and Sortie).
    '-rfbport', '-1',
    '-rfbunixpath', `${SANDBOX_X11_DIR}/${VNC_SOCKET}`,
    '-rfbunixmode', '0600',
    ...auth,
    // Every client comes through websockify: a blacklist after failed passwords would let
    // anyone who can reach websockify lock Sortie itself out of the session.
    '-UseBlacklist=0',
    // Several viewers (tabs) share one desktop; one asking for it alone must not drop the others.
    '-AlwaysShared',
    // A viewer resizes the desktop to its window (RFB SetDesktopSize).
    '-AcceptSetDesktopSize=1',
    ...clipboardArgs(plan.clipboard),
    // By default an X client (the app, through `vncconfig -set`) may change the clipboard
    // parameters above at run time; nothing may, so the catalog's setting holds.
    '-AllowOverride=',
    '-noclipboard',
  ];
  const env = infraEnvironment(plan);
  // Xvnc reads both files as the session's user, Sortie's own user otherwise.
  const owner = user ? { owner: { uid: user.uid, gid: user.gid } } : {};
  return {
    role: 'xvnc',
    name: 'Xvnc',
    argv: [
      plan.programs.prlimit,
      `--as=${XVNC_ADDRESS_SPACE}`,
      '--',
      ...displaySandboxArgv({
        bwrap,
        systemPaths,
        ...(user ? { user } : {}),
        ...(setpriv ? { setpriv } : {}),
        hide: hiddenFolders(plan),
        env,
        command: xvnc,
        displayDir: displayDirPath(plan.stateDir, plan.sessionId),
        serverAuth: xauthority,
      }),
    ],
    env,
    // bwrap's --die-with-parent: the gate stays its parent, so Xvnc outlives Sortie.
    gate: 'parent',
    // The original is readable by Sortie and the display server's user only; the app gets a copy.
    files: [{ path: xauthority, data: xauthorityEntry(plan.display, plan.cookie), ...owner }],
    ...(plan.secret === undefined
      ? {}
      : { inherited: { path: passwordFilePath(plan.stateDir, plan.sessionId), data: vncPasswordFile(plan.secret), ...owner } }),
  };
}

/**
 * Run once by Sortie when the display is up, before any viewer connects. A character a
 * viewer types that the keymap lacks (ß, é, ą, ...) is put by Xvnc on a free key for the
 * rest of the session; the map Xvnc starts with (evdev: pc105 and the multimedia keys)
 * leaves 19 free, so a day of French or Czech runs out and later new characters are
 * dropped. The bare pc+us symbols leave 131. Apps reading key positions still see US keys.
 */
export function keymapCommand(plan: SessionPlan): { argv: string[]; env: Record<string, string> } {
  return {
    argv: [plan.programs.setxkbmap, '-display', `:${plan.display}`, '-symbols', 'pc+us'],
    env: infraEnvironment(plan, { XAUTHORITY: xauthFilePath(plan.stateDir, plan.sessionId) }),
  };
}

export function websockifyRecipe(plan: SessionPlan): ProcessRecipe {
  return {
    role: 'websockify',
    name: 'websockify',
    argv: [plan.programs.websockify, `--unix-target=${vncSocketPath(plan.stateDir, plan.sessionId)}`, `${HOST}:${plan.wsPort}`],
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
  return [plan.stateDir, homesDirPath(plan.stateDir), userHomesDirPath(plan.stateDir), path.dirname(plan.stateDir), ...plan.hiddenPaths];
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
      displaySocket: displaySocketFilePath(plan.stateDir, plan.sessionId, plan.display),
      env: sandboxEnvironment(plan.display, lang),
      cookieFd: INHERITED_FD,
    }),
    env: infraEnvironment(plan),
    gate: 'parent',
    files: [],
    // The app's copy of the cookie lives in its sandbox's own /tmp, not in its home: a home
    // kept for the user is shared by their sessions, which would overwrite each other's.
    inherited: { path: appCookieFilePath(plan.stateDir, plan.sessionId), data: xauthorityEntry(plan.display, plan.cookie) },
  };
}

/**
 * The launch's VNC password, or undefined for none (a launch without `streamSecret` gets a
 * VNC server without a password). VNC authentication uses its first 8 characters.
 */
export function vncSecretOf(spec: { streamSecret?: unknown }): string | undefined {
  const secret = spec.streamSecret;
  if (secret === undefined || secret === '') return undefined;
  // Sortie answers the challenge with the same characters as Latin-1 bytes: printable ASCII
  // keeps both ends agreeing on the bytes, whatever the encoding.
  if (typeof secret !== 'string' || !/^[!-~]+$/.test(secret)) {
    throw new Error('The stream secret must be printable ASCII without spaces');
  }
  return secret;
}
