import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { homeDirPath, xauthFilePath } from '../../src/runners/local/state-file.js';
import { localSessionRecord } from './processes.js';

// "Typist", the app the typing tests launch on the local runner: a terminal whose shell
// copies each typed line into a file in the session's home, so a test reads back exactly
// what reached the app. With the X clients below, a test checks what reached the desktop.

const execFileAsync = promisify(execFile);

/** The file in the session's home that holds every line typed into the typist. */
export const TYPED_FILE = 'typed.txt';

/** The typist as a catalog entry; its terminal covers the desktop's top-left corner (100x30 characters at 0,0). */
export const TYPIST_APP = {
  id: 'typist',
  name: 'Typist',
  category: 'Test',
  launch_type: 'container',
  command: ['xterm', '-geometry', '100x30+0+0', '-e', 'sh', '-c', `exec cat > "$HOME/${TYPED_FILE}"`],
} as const;

/** What has been typed into the typist of a local session so far; '' before its first line. */
export function typedText(stateDir: string, sessionId: string): string {
  const file = path.join(homeDirPath(stateDir, sessionId), TYPED_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** Runs an X client on a local session's display and answers what it printed, trimmed. */
export async function onDesktop(stateDir: string, sessionId: string, command: string, args: string[]): Promise<string> {
  const { display } = localSessionRecord(stateDir, sessionId);
  const env = { PATH: process.env.PATH, DISPLAY: `:${display}`, XAUTHORITY: xauthFilePath(stateDir, sessionId) };
  return (await execFileAsync(command, args, { env, timeout: 10_000 })).stdout.trim();
}

/** An X client printing where the pointer is and which buttons it holds (XQueryPointer), through libX11 itself. */
const POINTER = [
  'import ctypes',
  "x = ctypes.CDLL('libX11.so.6')",
  'x.XOpenDisplay.restype = ctypes.c_void_p',
  'x.XDefaultRootWindow.restype = ctypes.c_ulong',
  'd = ctypes.c_void_p(x.XOpenDisplay(None))',
  'root = ctypes.c_ulong(x.XDefaultRootWindow(d))',
  'w = ctypes.c_ulong(); c = ctypes.c_ulong(); rx = ctypes.c_int(); ry = ctypes.c_int(); wx = ctypes.c_int(); wy = ctypes.c_int(); m = ctypes.c_uint()',
  'x.XQueryPointer(d, root, ctypes.byref(w), ctypes.byref(c), ctypes.byref(rx), ctypes.byref(ry), ctypes.byref(wx), ctypes.byref(wy), ctypes.byref(m))',
  'print(rx.value, ry.value, m.value)',
].join('\n');

/** Where a local session's X pointer is, and its button and modifier mask (0: nothing held). */
export async function pointerOf(stateDir: string, sessionId: string): Promise<{ x: number; y: number; mask: number }> {
  const [x, y, mask] = (await onDesktop(stateDir, sessionId, 'python3', ['-c', POINTER])).split(' ').map(Number);
  return { x: x!, y: y!, mask: mask! };
}

/** An X client listing the keycodes the X server holds down (XQueryKeymap), through libX11 itself. */
const HELD_KEYS = [
  'import ctypes',
  "x = ctypes.CDLL('libX11.so.6')",
  'x.XOpenDisplay.restype = ctypes.c_void_p',
  'd = x.XOpenDisplay(None)',
  'assert d, "cannot open the display"',
  'keys = (ctypes.c_ubyte * 32)()',
  'x.XQueryKeymap(ctypes.c_void_p(d), keys)',
  "print(' '.join(str(i * 8 + b) for i, byte in enumerate(keys) for b in range(8) if byte >> b & 1))",
].join('\n');

/** The keycodes a local session's X server holds down, space-separated; '' when none. */
export async function heldKeysOf(stateDir: string, sessionId: string): Promise<string> {
  return onDesktop(stateDir, sessionId, 'python3', ['-c', HELD_KEYS]);
}
