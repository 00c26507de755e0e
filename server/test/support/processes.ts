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
