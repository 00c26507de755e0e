import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';

/**
 * One append-only file per session that all four processes write to. Sortie adds a marker
 * line before starting each, so a person reading it can tell whose output is whose.
 */
export function openSessionLog(file: string): number {
  return openSync(file, 'a', 0o600);
}

const MARKER = '[sortie ';

export function noteInLog(fd: number, line: string): void {
  writeSync(fd, `${MARKER}${new Date().toISOString()}] ${line}\n`);
}

/**
 * The last `lines` non-empty lines the processes wrote, read from the file's end only.
 * Sortie's own markers are left out: in a failure reason they crowd out the one line that
 * says what went wrong.
 */
export function tailLog(file: string, lines = 8, maxBytes = 4096): string {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return '';
  }
  try {
    const size = fstatSync(fd).size;
    const buffer = Buffer.alloc(Math.min(size, maxBytes));
    const n = readSync(fd, buffer, 0, buffer.length, size - buffer.length);
    const all = buffer.subarray(0, n).toString('utf8').split('\n');
    // Reading from the middle of the file starts mid-line; that fragment is noise.
    if (buffer.length < size) all.shift();
    return all
      .map((l) => l.trimEnd())
      .filter((l) => l !== '' && !l.startsWith(MARKER))
      .slice(-lines)
      .join('\n');
  } finally {
    closeSync(fd);
  }
}
