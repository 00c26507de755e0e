import { readFileSync } from 'node:fs';
import { DISPLAY_COUNT } from './ports.js';

/**
 * How many local sessions this machine can hold at once, estimated from what each one
 * takes. Launches beyond it wait queued, which is better than a launch failing halfway.
 *
 * Measured on Xvnc (TigerVNC 1.12) with one viewer: its private memory is about 15 MiB plus
 * 2.6 bytes for every byte of framebuffer (the framebuffer, the copy it compares updates
 * against, encoder buffers): 24 MiB at 1280x800, 55 MiB at 2560x1600. Its libraries and
 * fonts (about 55 MiB) are shared by all sessions. It holds about a dozen file descriptors
 * plus a few per viewer, and no System V or POSIX shared memory (the app runs in its own IPC
 * namespace, so MIT-SHM is not used). What runs out first is memory, or on a very large
 * machine the X display numbers the runner hands out.
 */

/** What one session takes, for a given starting desktop size. */
export interface SessionFootprint {
  /** Memory of Xvnc, websockify and a small app, with room for a viewer enlarging the desktop. */
  memoryBytes: number;
}

/** What the machine has free now; an unknown figure (not Linux, unreadable) is left out. */
export interface MachineResources {
  memAvailableBytes?: number;
  /** X displays the runner hands out, one per session. */
  displays?: number;
}

export interface CapacityEstimate {
  sessions: number;
  /** The resource that gave the smallest figure, for the log line an operator reads. */
  limitedBy: 'memory' | 'displays' | 'nothing known';
}

/** Xvnc (~15 MiB besides its framebuffers), websockify (~20 MiB) and a small app, rounded up generously. */
const BASE_MEMORY_BYTES = 96 * 1024 * 1024;
/** Xvnc's framebuffers per byte of screen, rounded up from the measured 2.6. */
const FRAMEBUFFER_COPIES = 3;
/** Part of the free memory sessions may take; the rest stays for Sortie and the system. */
const SHARE = 0.8;

/** `1280x800x24` → bytes of one 32-bit-per-pixel framebuffer (depth 24 is stored in 32 bits). */
export function framebufferBytes(screen: string): number {
  const match = /^(\d+)x(\d+)(?:x(\d+))?$/.exec(screen.trim());
  if (!match) throw new Error(`Screen "${screen}" is not WIDTHxHEIGHT[xDEPTH]`);
  const depth = Number(match[3] ?? 24);
  const bytesPerPixel = depth > 16 ? 4 : depth > 8 ? 2 : 1;
  return Number(match[1]) * Number(match[2]) * bytesPerPixel;
}

export function sessionFootprint(screen: string): SessionFootprint {
  // A viewer may resize the desktop to its window: a larger window takes more than this,
  // a smaller one less; the starting size is the best single guess.
  return { memoryBytes: BASE_MEMORY_BYTES + FRAMEBUFFER_COPIES * framebufferBytes(screen) };
}

/** The smallest number of sessions any known resource allows, and at least one. */
export function estimateCapacity(machine: MachineResources, per: SessionFootprint): CapacityEstimate {
  const candidates: Array<[CapacityEstimate['limitedBy'], number | undefined]> = [
    ['memory', machine.memAvailableBytes === undefined ? undefined : Math.floor((machine.memAvailableBytes * SHARE) / per.memoryBytes)],
    ['displays', machine.displays],
  ];
  let best: CapacityEstimate = { sessions: Infinity, limitedBy: 'nothing known' };
  for (const [name, sessions] of candidates) {
    if (sessions === undefined || !Number.isFinite(sessions)) continue;
    if (sessions < best.sessions) best = { sessions, limitedBy: name };
  }
  // With nothing known there is nothing to go by: a small default rather than no limit.
  if (best.limitedBy === 'nothing known') return { sessions: 8, limitedBy: 'nothing known' };
  return { sessions: Math.max(1, best.sessions), limitedBy: best.limitedBy };
}

/** Reads free memory (Linux) and the displays the runner has. */
export function readMachine(): MachineResources {
  const machine: MachineResources = { displays: DISPLAY_COUNT };
  const meminfo = readText('/proc/meminfo');
  const available = meminfo && /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  if (available) machine.memAvailableBytes = Number(available[1]) * 1024;
  return machine;
}

/** The estimate for this machine now, for sessions that start at the given desktop size. */
export function localCapacity(screen: string): CapacityEstimate {
  return estimateCapacity(readMachine(), sessionFootprint(screen));
}

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}
