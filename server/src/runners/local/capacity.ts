import { readFileSync, statfsSync } from 'node:fs';

/**
 * How many local sessions this machine can hold at once, estimated from what each one
 * takes. Without a limit, a burst of launches runs the machine out of System V shared
 * memory ids: x11vnc asks for about 42 segments per display (its framebuffer copy plus
 * one per scanline-tile size), the kernel's default SHMMNI is 4096, and the launch after
 * roughly the 95th fails with x11vnc's `shmget: No space left on device`. Queueing at the
 * estimate is better than failing.
 */

/** What one session takes, for a given Xvfb screen. */
export interface SessionFootprint {
  /** Resident memory of Xvfb, x11vnc, websockify and a small app. */
  memoryBytes: number;
  /** System V shared memory segments x11vnc creates. */
  shmSegments: number;
  /** Bytes in those segments. */
  shmBytes: number;
  /** What apps drawing through POSIX shared memory (/dev/shm) may take. */
  devShmBytes: number;
}

/** What the machine has free now; an unknown figure (not Linux, unreadable) is left out. */
export interface MachineResources {
  memAvailableBytes?: number;
  devShmFreeBytes?: number;
  shmSegmentsFree?: number;
  shmBytesFree?: number;
}

export interface CapacityEstimate {
  sessions: number;
  /** The resource that gave the smallest figure, for the log line an operator reads. */
  limitedBy: 'memory' | 'shm-segments' | 'shm-bytes' | 'dev-shm' | 'nothing known';
}

/** Measured with `Xvfb -screen 0 1280x800x24` and x11vnc 0.9.16: 42 segments. */
const X11VNC_SHM_SEGMENTS = 42;
/** x11vnc's scanline segments beside the framebuffer copy: 4096 × (1 + … + 40) bytes. */
const X11VNC_SHM_EXTRA_BYTES = 4096 * 820;
/** Xvfb (~75 MiB at 1280x800), x11vnc (~15 MiB), websockify (~20 MiB) and a small app, rounded up. */
const BASE_MEMORY_BYTES = 128 * 1024 * 1024;
/** Part of the free memory and shared memory sessions may take; the rest stays for Sortie and the system. */
const SHARE = 0.8;
/** Page size for SHMALL, which counts pages; 4 KiB on the platforms Sortie runs on. */
const PAGE_SIZE = 4096;

/** `1280x800x24` → bytes of one 32-bit-per-pixel framebuffer (depth 24 is stored in 32 bits). */
export function framebufferBytes(screen: string): number {
  const match = /^(\d+)x(\d+)(?:x(\d+))?$/.exec(screen.trim());
  if (!match) throw new Error(`Screen "${screen}" is not WIDTHxHEIGHT[xDEPTH]`);
  const depth = Number(match[3] ?? 24);
  const bytesPerPixel = depth > 16 ? 4 : depth > 8 ? 2 : 1;
  return Number(match[1]) * Number(match[2]) * bytesPerPixel;
}

export function sessionFootprint(screen: string): SessionFootprint {
  const framebuffer = framebufferBytes(screen);
  return {
    // Xvfb keeps the framebuffer, x11vnc a copy and a scaled/tiled working set.
    memoryBytes: BASE_MEMORY_BYTES + 4 * framebuffer,
    shmSegments: X11VNC_SHM_SEGMENTS,
    shmBytes: framebuffer + X11VNC_SHM_EXTRA_BYTES,
    devShmBytes: framebuffer,
  };
}

/** The smallest number of sessions any known resource allows, and at least one. */
export function estimateCapacity(machine: MachineResources, per: SessionFootprint): CapacityEstimate {
  const candidates: Array<[CapacityEstimate['limitedBy'], number | undefined, number]> = [
    ['memory', machine.memAvailableBytes, per.memoryBytes],
    ['shm-segments', machine.shmSegmentsFree, per.shmSegments],
    ['shm-bytes', machine.shmBytesFree, per.shmBytes],
    ['dev-shm', machine.devShmFreeBytes, per.devShmBytes],
  ];
  let best: CapacityEstimate = { sessions: Infinity, limitedBy: 'nothing known' };
  for (const [name, free, each] of candidates) {
    if (free === undefined || !Number.isFinite(free) || each <= 0) continue;
    const sessions = Math.floor((free * SHARE) / each);
    if (sessions < best.sessions) best = { sessions, limitedBy: name };
  }
  // With nothing known there is nothing to go by: a small default rather than no limit.
  if (best.limitedBy === 'nothing known') return { sessions: 8, limitedBy: 'nothing known' };
  return { sessions: Math.max(1, best.sessions), limitedBy: best.limitedBy };
}

/** Reads free memory, /dev/shm and the System V shared memory limits and use (Linux). */
export function readMachine(): MachineResources {
  const machine: MachineResources = {};
  const meminfo = readText('/proc/meminfo');
  const available = meminfo && /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  if (available) machine.memAvailableBytes = Number(available[1]) * 1024;

  try {
    const fs = statfsSync('/dev/shm');
    machine.devShmFreeBytes = fs.bavail * fs.bsize;
  } catch {
    // no /dev/shm: not a limit we know of
  }

  const maxSegments = readNumber('/proc/sys/kernel/shmmni');
  const maxPages = readNumber('/proc/sys/kernel/shmall');
  const segments = readText('/proc/sysvipc/shm');
  if (segments !== undefined) {
    // One header line, then one line per segment; the fourth column is its size in bytes.
    const rows = segments.split('\n').slice(1).filter((line) => line.trim() !== '');
    const usedBytes = rows.reduce((sum, line) => sum + (Number(line.trim().split(/\s+/)[3]) || 0), 0);
    if (maxSegments !== undefined) machine.shmSegmentsFree = Math.max(0, maxSegments - rows.length);
    // SHMALL is often "unlimited" (close to 2^64): only a real number limits anything.
    if (maxPages !== undefined && maxPages < 2 ** 50) machine.shmBytesFree = Math.max(0, maxPages * PAGE_SIZE - usedBytes);
  }
  return machine;
}

/** The estimate for this machine now, for sessions with the given Xvfb screen. */
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

function readNumber(file: string): number | undefined {
  const text = readText(file);
  const value = text === undefined ? NaN : Number(text.trim());
  return Number.isFinite(value) ? value : undefined;
}
