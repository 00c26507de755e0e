import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { REPO_ROOT } from './paths.js';

/** Sortie as operators run it: its own process, configured by environment variables. */
export interface SortieProcess {
  child: ChildProcess;
  url: string;
  stderr: () => string;
}

const MAIN = path.join(REPO_ROOT, 'server', 'src', 'main.ts');

/**
 * `stdout`: a file descriptor for its log instead of a pipe (a log on a disk of the test's choosing).
 * `entry`: a script to run instead of server/src/main.ts (one that starts Sortie as main does).
 */
export function spawnSortie(env: Record<string, string>, options: { stdout?: number; entry?: string } = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', options.entry ?? MAIN], {
    cwd: REPO_ROOT,
    env: { ...process.env, SORTIE_PORT: '0', SORTIE_HOST: '127.0.0.1', SORTIE_LOG_LEVEL: 'info', SORTIE_AUTH: 'disabled', ...env },
    stdio: ['ignore', options.stdout ?? 'pipe', 'pipe'],
  });
}

/** Starts Sortie and resolves once its log says where it listens. */
export async function startSortieProcess(env: Record<string, string>, options: { entry?: string } = {}): Promise<SortieProcess> {
  const child = spawnSortie(env, options);
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const match = /"url":"(http:\/\/[^"]+)".*"msg":"Sortie is listening"/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`Sortie exited (${code}) before listening: ${err}${out}`)));
    setTimeout(() => reject(new Error(`Sortie did not listen within 30 s: ${err}${out}`)), 30_000).unref();
  });
  return { child, url, stderr: () => err };
}

export async function exitOf(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  return { code, signal };
}
