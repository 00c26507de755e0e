import { execFileSync } from 'node:child_process';
import { accessSync, constants, lstatSync, readlinkSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The local runner's stand-in for a pod boundary: each app runs inside bubblewrap (`bwrap`)
 * with its own mount, pid and IPC namespaces, the host's system folders read-only, a private
 * /tmp holding only the session's X socket, and the session's home as its one writable
 * folder. When Sortie runs as root the app also drops to an unprivileged user (setpriv),
 * because bwrap started by root would otherwise leave the app root.
 */

/** Where the session's home appears inside the sandbox. */
export const SANDBOX_HOME = '/home/session';
/** The app's copy of the display's cookie, in the sandbox's private /tmp. */
export const SANDBOX_XAUTHORITY = '/tmp/.Xauthority';
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

export interface SandboxPlan {
  bwrap: string;
  /** Set when Sortie is root: the app then drops to this user with `setpriv` (at this path). */
  user?: SessionUser;
  setpriv?: string;
  systemPaths: readonly SystemPath[];
  /** Host folders to cover with an empty tmpfs if they lie inside a bound system path. */
  hide: readonly string[];
  /** The session's home on the host, bound read-write at SANDBOX_HOME. */
  home: string;
  display: number;
  /** A descriptor bwrap copies into the sandbox as SANDBOX_XAUTHORITY, readable there only. */
  cookieFd: number;
  env: Readonly<Record<string, string>>;
  /** The app's argv, its program already resolved to an absolute path. */
  command: readonly string[];
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

/** The bwrap argv that runs `plan.command` sandboxed. Pure, so the recipe can be unit tested. */
export function sandboxArgv(plan: SandboxPlan): string[] {
  const socket = `/tmp/.X11-unix/X${plan.display}`;
  const argv = [
    plan.bwrap,
    // The session's leader is a small shell that waits for bwrap; killing that process group
    // kills bwrap, and with it (pid namespace) everything the app started.
    '--die-with-parent',
    // No shared terminal: the app cannot push keystrokes into one (TIOCSTI).
    '--new-session',
    '--unshare-pid',
    '--unshare-ipc',
    // The network is shared on purpose: apps may need it (see README).
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
  argv.push(
    '--dev', '/dev',
    '--proc', '/proc',
    '--perms', '1777', '--tmpfs', '/tmp',
    '--dir', '/tmp/.X11-unix',
    '--ro-bind', socket, socket,
    // Readable by all inside, as the app may drop to the session user; nobody outside sees this /tmp.
    '--perms', '0444', '--file', String(plan.cookieFd), SANDBOX_XAUTHORITY,
    // Spelled out: bwrap creates missing parents with Sortie's umask, maybe 0700.
    '--perms', '0755', '--dir', path.dirname(SANDBOX_HOME),
    '--bind', plan.home, SANDBOX_HOME,
    '--chdir', SANDBOX_HOME,
    // bwrap's own root would otherwise be writable by an unprivileged sandbox user.
    '--remount-ro', '/',
    '--',
  );
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
