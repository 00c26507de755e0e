import { execFileSync } from 'node:child_process';
import { accessSync, constants, lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The local runner's stand-in for a pod boundary. Each app runs inside bubblewrap (`bwrap`)
 * with its own mount, pid and IPC namespaces, the host's system folders read-only, a private
 * /tmp holding only the session's X socket, and the session's home as its one writable
 * folder. The session's display server (Xvnc) gets a sandbox of its own, built the same way:
 * it parses everything the app sends, so an app that breaks it must find no more there than
 * in its own sandbox. When Sortie runs as root both drop to an unprivileged user (setpriv),
 * because bwrap started by root would otherwise leave them root.
 */

/** Where the session's home appears inside the sandbox. */
export const SANDBOX_HOME = '/home/session';
/** The app's copy of the display's cookie, in the sandbox's private /tmp. */
export const SANDBOX_XAUTHORITY = '/tmp/.Xauthority';
/** Where X servers and clients look for a display's socket; in each sandbox its own. */
export const SANDBOX_X11_DIR = '/tmp/.X11-unix';
/** The display server's copy of the cookie it demands, in its sandbox's private /tmp. */
export const DISPLAY_SANDBOX_XAUTHORITY = '/tmp/.Xauthority-server';
/**
 * Where the X server compiles keymaps (xkbcomp's output), a folder the host's system paths
 * do not hold: a tmpfs of the display sandbox's own.
 */
export const XKB_OUTPUT_DIR = '/var/lib/xkb';
export const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin';
/** Host folders the sandbox sees, read-only; everything else on the host is absent. */
export const SYSTEM_PATHS = ['/usr', '/etc', '/opt', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'] as const;

export interface SessionUser {
  name: string;
  uid: number;
  gid: number;
}

/** A host system path as the sandbox reproduces it: a read-only bind, or the same symlink. */
export type SystemPath = { path: string; kind: 'dir' } | { path: string; kind: 'symlink'; target: string };

/** What both sandboxes of a session are made of. */
export interface SandboxBase {
  bwrap: string;
  /** Set when Sortie is root: the sandbox then drops to this user with `setpriv` (at this path). */
  user?: SessionUser;
  setpriv?: string;
  systemPaths: readonly SystemPath[];
  /** Host folders to cover with an empty tmpfs if they lie inside a bound system path. */
  hide: readonly string[];
  env: Readonly<Record<string, string>>;
  /** What runs inside, its program an absolute path the sandbox can see. */
  command: readonly string[];
}

/** The app's sandbox. */
export interface SandboxPlan extends SandboxBase {
  /** The session's home on the host, bound read-write at SANDBOX_HOME. */
  home: string;
  display: number;
  /** The display's socket on the host (in the session's display folder), bound read-only. */
  displaySocket: string;
  /** A descriptor bwrap copies into the sandbox as SANDBOX_XAUTHORITY, readable there only. */
  cookieFd: number;
}

/** The display server's sandbox. */
export interface DisplaySandboxPlan extends SandboxBase {
  /**
   * The session's display folder on the host, bound read-write at SANDBOX_X11_DIR: the X
   * server makes its socket there, and the VNC socket beside it. Nothing else it can write
   * outlives it.
   */
  displayDir: string;
  /** The display's cookie file on the host (readable by `user`), bound read-only at DISPLAY_SANDBOX_XAUTHORITY. */
  serverAuth: string;
}

/** The environment an app sees: nothing of Sortie's, only what an X app needs. */
export function sandboxEnvironment(display: number, lang: string): Record<string, string> {
  return {
    DISPLAY: `:${display}`,
    HOME: SANDBOX_HOME,
    XAUTHORITY: SANDBOX_XAUTHORITY,
    PATH: SANDBOX_PATH,
    LANG: lang,
    TERM: 'xterm',
    // The app has its own IPC namespace, so the X server cannot attach its shared memory;
    // Qt would try anyway and draw nothing. Xlib and GTK check and fall back on their own.
    QT_X11_NO_MITSHM: '1',
  };
}

function isInside(child: string, parent: string): boolean {
  const relative = path.relative(parent, child);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

/**
 * The start of every session sandbox's bwrap argv: own mount, pid and IPC namespaces, no
 * environment but `env`, the system paths read-only and a private /dev, /proc and /tmp.
 */
function sandboxOpening(plan: SandboxBase): string[] {
  const argv = [
    plan.bwrap,
    // The session's leader is a small shell that waits for bwrap; killing that process group
    // kills bwrap, and with it (pid namespace) everything started inside.
    '--die-with-parent',
    // No shared terminal: nothing inside can push keystrokes into one (TIOCSTI).
    '--new-session',
    '--unshare-pid',
    '--unshare-ipc',
    // The network is shared on purpose: apps may need it (see README), and the display
    // server's abstract X socket must hold its name on the host (see displaySandboxArgv).
  ];
  // Unprivileged bwrap needs a user namespace; root does not, and drops privileges with setpriv.
  if (!plan.user) argv.push('--unshare-user', '--disable-userns');
  argv.push('--clearenv');
  for (const [key, value] of Object.entries(plan.env)) argv.push('--setenv', key, value);
  for (const entry of plan.systemPaths) {
    if (entry.kind === 'dir') argv.push('--ro-bind', entry.path, entry.path);
    else argv.push('--symlink', entry.target, entry.path);
  }
  const bound = plan.systemPaths.filter((p) => p.kind === 'dir').map((p) => p.path);
  for (const hidden of plan.hide) {
    if (bound.some((dir) => isInside(hidden, dir))) argv.push('--tmpfs', hidden);
  }
  argv.push('--dev', '/dev', '--proc', '/proc', '--perms', '1777', '--tmpfs', '/tmp');
  return argv;
}

/** The end of every session sandbox's bwrap argv: drop to the session user if there is one, then run `plan.command`. */
function sandboxClosing(plan: SandboxBase): string[] {
  // bwrap's own root would otherwise be writable by an unprivileged sandbox user.
  const argv = ['--remount-ro', '/', '--'];
  if (plan.user) {
    if (!plan.setpriv) throw new Error('setpriv is needed to drop to the session user');
    argv.push(
      plan.setpriv,
      `--reuid=${plan.user.uid}`,
      `--regid=${plan.user.gid}`,
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
    );
  }
  argv.push(...plan.command);
  return argv;
}

/** The bwrap argv that runs the app sandboxed. Pure, so the recipe can be unit tested. */
export function sandboxArgv(plan: SandboxPlan): string[] {
  const socket = `${SANDBOX_X11_DIR}/X${plan.display}`;
  return [
    ...sandboxOpening(plan),
    '--dir', SANDBOX_X11_DIR,
    '--ro-bind', plan.displaySocket, socket,
    // Readable by all inside, as the app may drop to the session user; nobody outside sees this /tmp.
    '--perms', '0444', '--file', String(plan.cookieFd), SANDBOX_XAUTHORITY,
    // Spelled out: bwrap creates missing parents with Sortie's umask, maybe 0700.
    '--perms', '0755', '--dir', path.dirname(SANDBOX_HOME),
    '--bind', plan.home, SANDBOX_HOME,
    '--chdir', SANDBOX_HOME,
    ...sandboxClosing(plan),
  ];
}

/**
 * The bwrap argv that runs the display server sandboxed. It sees the system paths, its
 * cookie, a folder to compile keymaps into and the session's display folder, where it makes
 * the display's socket (which the app's sandbox binds) and the VNC socket (which only
 * websockify, outside, connects to). The network stays shared so that its abstract socket
 * (@/tmp/.X11-unix/X<n>, which X clients try first) holds that name on the host: were it
 * free, another local user could take it and receive the app's connection.
 */
export function displaySandboxArgv(plan: DisplaySandboxPlan): string[] {
  return [
    ...sandboxOpening(plan),
    '--bind', plan.displayDir, SANDBOX_X11_DIR,
    '--ro-bind', plan.serverAuth, DISPLAY_SANDBOX_XAUTHORITY,
    '--tmpfs', XKB_OUTPUT_DIR,
    '--chdir', '/tmp',
    ...sandboxClosing(plan),
  ];
}

/** The system paths of this host, each as a directory to bind or a symlink to recreate. */
export function hostSystemPaths(): SystemPath[] {
  const found: SystemPath[] = [];
  for (const p of SYSTEM_PATHS) {
    let stat;
    try {
      stat = lstatSync(p);
    } catch {
      continue;
    }
    if (stat.isSymbolicLink()) found.push({ path: p, kind: 'symlink', target: readlinkSync(p) });
    else if (stat.isDirectory()) found.push({ path: p, kind: 'dir' });
  }
  return found;
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Like the shell's lookup: `program` itself if it has a slash, else the first match on `searchPath`. */
export function resolveProgram(program: string, searchPath: string): string | undefined {
  if (program.includes('/')) return path.isAbsolute(program) && isExecutableFile(program) ? program : undefined;
  for (const dir of searchPath.split(':')) {
    if (dir === '' || !path.isAbsolute(dir)) continue;
    const candidate = path.join(dir, program);
    if (isExecutableFile(candidate)) return candidate;
  }
  return undefined;
}

/** The app's program as the sandbox will find it, or a message a person can act on. */
export function resolveAppProgram(program: string, systemPaths: readonly SystemPath[]): string | { problem: string } {
  const resolved = resolveProgram(program, SANDBOX_PATH);
  if (!resolved) return { problem: `Cannot start "${program}": command not found` };
  const real = (() => {
    try {
      return path.resolve(path.dirname(resolved), readlinkSync(resolved));
    } catch {
      return resolved;
    }
  })();
  const visible = (p: string) => systemPaths.some((s) => isInside(p, s.path));
  if (!visible(resolved) || !visible(real)) {
    return {
      problem: `Cannot start "${program}": the sandbox shows apps only the host's ${SYSTEM_PATHS.slice(0, 3).join(', ')} (read-only), and ${resolved} is not inside them`,
    };
  }
  return resolved;
}

export const BWRAP_MISSING =
  'The local runner runs every app in a bubblewrap sandbox, but "bwrap" is not installed or not on PATH: install it with "apt-get install bubblewrap" (./scripts/setup.sh does)';

/** A missing or unusable tool (bwrap, setpriv) stops the launch with this message. */
export function requireProgram(program: string, missing: string): string {
  const found = resolveProgram(program, process.env.PATH ?? SANDBOX_PATH);
  if (!found) throw new Error(missing);
  return found;
}

function lookUpUser(name: string): SessionUser | undefined {
  let line: string;
  try {
    line = execFileSync('getent', ['passwd', name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
  const [, , uid, gid] = line.split(':');
  if (uid === undefined || gid === undefined) return undefined;
  return { name, uid: Number(uid), gid: Number(gid) };
}

/**
 * The unprivileged account apps run as when Sortie is root, created (a system user without
 * a login shell or home) the first time it is needed.
 */
export function ensureSessionUser(name: string): SessionUser {
  let user = lookUpUser(name);
  if (!user) {
    try {
      execFileSync(
        'useradd',
        ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name],
        { stdio: ['ignore', 'ignore', 'pipe'] },
      );
    } catch (err) {
      // Another Sortie may have created it at the same moment.
      user = lookUpUser(name);
      if (!user) {
        const stderr = String((err as { stderr?: Buffer }).stderr ?? '').trim();
        throw new Error(`Cannot create the user "${name}" that sessions run as: ${stderr || (err as Error).message}`);
      }
    }
    user ??= lookUpUser(name);
  }
  if (!user || !Number.isInteger(user.uid) || !Number.isInteger(user.gid)) {
    throw new Error(`Cannot find the user "${name}" that sessions run as`);
  }
  if (user.uid === 0 || user.gid === 0) throw new Error(`The session user "${name}" must not be root`);
  return user;
}
