import { getPriority, setPriority } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A process the runner started as the leader of its own process group (so pgid === pid).
 * `startTime` tells it apart from a later process that got the same pid.
 */
export interface GroupLeader {
  pid: number;
  /** Field 22 of /proc/<pid>/stat (clock ticks after boot); undefined if it died before we looked. */
  startTime?: string;
}

interface ProcStat {
  state: string;
  pgrp: number;
  startTime: string;
}

/** Linux only: the local runner relies on /proc to recognise processes across restarts. */
export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses; everything after the last ')' is safe to split.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const [state, , pgrp] = fields;
  const startTime = fields[19];
  if (state === undefined || pgrp === undefined || startTime === undefined) return undefined;
  return { state, pgrp: Number(pgrp), startTime };
}

/** The leader itself is still running (not a zombie, and not a stranger that reused its pid). */
export function isLeaderRunning(leader: GroupLeader): boolean {
  const stat = readProcStat(leader.pid);
  return stat !== undefined && stat.state !== 'Z' && stat.startTime === leader.startTime;
}

/**
 * The kernel never reuses a pid while a process group of that id has members, so if the pid
 * now belongs to a different process, our group is empty and signalling it would hit a stranger.
 */
function pidTakenByStranger(leader: GroupLeader): boolean {
  const stat = readProcStat(leader.pid);
  return stat !== undefined && stat.startTime !== leader.startTime;
}

/** Pgids (among `pgids`) that still have a non-zombie member. One /proc scan for all of them. */
function pgidsWithLiveMembers(pgids: ReadonlySet<number>): Set<number> {
  const live = new Set<number>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = readProcStat(pid);
    if (stat && stat.state !== 'Z' && pgids.has(stat.pgrp)) live.add(stat.pgrp);
  }
  return live;
}

/** Leaders whose process group still has a live member (the leader or anything it started). */
export function liveGroups<T extends GroupLeader>(leaders: readonly T[]): T[] {
  const candidates = leaders.filter((l) => !pidTakenByStranger(l));
  const live = pgidsWithLiveMembers(new Set(candidates.map((l) => l.pid)));
  return candidates.filter((l) => live.has(l.pid));
}

export function signalGroup(leader: GroupLeader, signal: NodeJS.Signals): void {
  if (pidTakenByStranger(leader)) return;
  try {
    process.kill(-leader.pid, signal);
  } catch (err) {
    // ESRCH: already gone. EPERM: not ours to kill; terminateGroups reports it as stubborn.
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ESRCH' && code !== 'EPERM') throw err;
  }
}


async function waitUntilGone<T extends GroupLeader>(leaders: readonly T[], ms: number): Promise<T[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const live = liveGroups(leaders);
    if (live.length === 0 || Date.now() >= deadline) return live;
    await sleep(25);
  }
}

/**
 * SIGTERM every group, give them `graceMs` to exit cleanly (the X server removes its lock file then),
 * SIGKILL what is left and wait for it to vanish. Resolves with groups that still would not die.
 */
export async function terminateGroups<T extends GroupLeader>(leaders: readonly T[], graceMs = 2000): Promise<T[]> {
  const live = liveGroups(leaders);
  if (live.length === 0) return [];
  for (const leader of live) signalGroup(leader, 'SIGTERM');
  const stubborn = await waitUntilGone(live, graceMs);
  if (stubborn.length === 0) return [];
  for (const leader of stubborn) signalGroup(leader, 'SIGKILL');
  return waitUntilGone(stubborn, 2000);
}

/**
 * Processes whose argv holds `sequence` as consecutive arguments. For what escaped its
 * process group: bwrap's sandbox runs in a session of its own, and if bwrap is killed while
 * still setting up (before --die-with-parent takes hold) the sandbox lives on without it.
 * Its argv still names the session's home, which no other process's argv does.
 */
export function processesWithArgs(sequence: readonly string[]): number[] {
  const found: number[] = [];
  const needle = `\0${sequence.join('\0')}\0`;
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const stat = readProcStat(pid);
    if (stat && stat.state !== 'Z' && `\0${cmdline}`.includes(needle)) found.push(pid);
  }
  return found;
}

/** SIGKILLs the processes whose argv holds `sequence`, and waits (up to `ms`) until none is left. */
export async function killProcessesWithArgs(sequence: readonly string[], ms = 2000): Promise<number[]> {
  const deadline = Date.now() + ms;
  for (;;) {
    const live = processesWithArgs(sequence);
    if (live.length === 0 || Date.now() >= deadline) return live;
    for (const pid of live) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone already, or not ours to kill: reported by the next look
      }
    }
    await sleep(25);
  }
}

/**
 * A gate in front of every process: it waits for Sortie's "go" on stdin and starts the
 * program only then. Sortie says "go" after the pid is in the state file, so a Sortie killed
 * in between leaves a gate that reads end-of-file and exits, never an unrecorded program.
 * `exec` mode replaces the gate with the program (same pid and start time); `parent` mode
 * keeps the gate as the program's parent, for bwrap's --die-with-parent.
 */
const GATE = 'IFS= read -r go && [ "$go" = go ] || exit 0; exec </dev/null; ';
const GATE_SCRIPT = { exec: `${GATE}exec "$@"`, parent: `${GATE}"$@" & wait $!` } as const;
export type GateMode = keyof typeof GATE_SCRIPT;

export interface GatedProcess {
  child: ChildProcess;
  /** Lets the program start. Call once its pid is recorded. */
  release(): void;
}

/**
 * Session processes run a little below Sortie (nice 5, inherited through the gate's exec and
 * by whatever they start): desktops starting or busy on Sortie's own cores must not starve
 * the API, the relay that every viewer's stream passes through, or the next launch.
 */
const SESSION_NICENESS = 5;

function lowerPriority(pid: number): void {
  try {
    setPriority(pid, Math.max(SESSION_NICENESS, getPriority(process.pid)));
  } catch {
    // Not permitted here (another user's process) or already gone: it runs at Sortie's priority.
  }
}

/**
 * Starts `argv` (behind the gate) as the leader of a new session and process group, so it
 * outlives Sortie, gets no terminal signals meant for Sortie, and can be killed with
 * everything it forks. Output goes to `logFd`, never to a pipe that would break when Sortie
 * exits. `argv[0]` must be an absolute path: the gate cannot report "not found" as a spawn error.
 */
export function spawnGroupLeader(
  argv: readonly string[],
  logFd: number,
  env: NodeJS.ProcessEnv,
  mode: GateMode = 'exec',
  /** Open descriptors the program gets as fd 3, 4, …, through the gate. */
  extraFds: readonly number[] = [],
): Promise<GatedProcess> {
  if (argv.length === 0) return Promise.reject(new Error('empty command'));
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', GATE_SCRIPT[mode], 'sortie-gate', ...argv], {
      detached: true,
      stdio: ['pipe', logFd, logFd, ...extraFds],
      env,
    });
    child.once('error', reject);
    child.once('spawn', () => {
      child.off('error', reject);
      lowerPriority(child.pid!);
      // Later 'error's (failed kill/send) must not crash Sortie; we signal via process.kill.
      child.on('error', () => {});
      // The gate may already be gone (killed by stop()); its closed pipe is no news.
      child.stdin!.on('error', () => {});
      child.unref();
      resolve({
        child,
        release: () => {
          child.stdin!.end('go\n');
        },
      });
    });
  });
}
