import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The local runner's record of a session's processes (its state file). */
export function localSessionRecord(stateDir: string, sessionId: string): { processes: Array<{ role: string; pid: number }>; wsPort: number; vncPort: number; display: number } {
  return JSON.parse(readFileSync(path.join(stateDir, `${sessionId}.json`), 'utf8'));
}

/**
 * Every live process whose process group is one of `groups`. Each role of a local session
 * leads its own group, so this also finds what they forked (websockify forks per viewer).
 */
export function processesInGroups(groups: number[]): number[] {
  const wanted = new Set(groups);
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the parenthesised command: state, ppid, pgrp, ...
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && wanted.has(Number(fields[2]))) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/**
 * The processes of `processesInGroups(groups)` and everything below them. A sandbox's
 * processes (the app, the display server) run in a session of their own under bwrap, so
 * they are found by descent, not by group.
 */
export function processTreeOfGroups(groups: number[]): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] === 'Z') continue;
      const parent = Number(fields[1]);
      children.set(parent, [...(children.get(parent) ?? []), Number(entry)]);
    } catch {
      // the process ended while we looked
    }
  }
  const found = new Set<number>();
  const visit = (pid: number) => {
    if (found.has(pid)) return;
    found.add(pid);
    for (const child of children.get(pid) ?? []) visit(child);
  };
  for (const pid of processesInGroups(groups)) visit(pid);
  return [...found];
}
