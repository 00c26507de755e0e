import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, symlinkSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startEchoVnc } from '../../server/test/support/echo-vnc.js';
import { buildSortie } from './build.js';
import { forkTs, pin, procCpuSeconds, registerTempDir, removeTempDir, spawnTracked, waitForPort, type IpcChild } from './procs.js';
import { Api } from '../../server/test/support/api.js';
import { freePorts } from '../../server/test/support/ports.js';

const repoRoot = path.resolve(import.meta.dirname, '..', '..');

export type PathName = 'direct' | 'sortie' | 'chp' | 'relay-only';

export interface BenchPath {
  name: PathName;
  url: string;
  /** CPU seconds used so far by the relaying process (none for direct). */
  cpu?: () => Promise<number>;
  /** The relaying process, for profiling (none for direct). */
  pid?: number;
  /** GC pauses in the relaying process since the last call (Sortie only). */
  gc?: () => Promise<GcStats>;
}

export interface GcStats {
  count: number;
  totalMs: number;
  maxMs: number;
}

export interface Stack {
  paths: BenchPath[];
  echoMode: 'child' | 'inproc';
  echoPort: number;
  websockifyPid: number;
  sessionId: string;
  /** Sortie's base URL (http://127.0.0.1:<port>), for sessions of one's own. */
  sortieUrl: string;
  /** Sortie's data directory (its SQLite file, and `recordings/`). */
  dataDir: string;
  /** CPU seconds of the echo server when it has its own process. */
  echoCpu?: () => Promise<number>;
  close: () => Promise<void>;
}

export interface StackOptions {
  echo: 'child' | 'inproc';
  /** Extra node flags for the Sortie child (e.g. --cpu-prof), and extra environment. */
  sortieExecArgv?: string[];
  sortieEnv?: Record<string, string>;
  /** Extra node flags for configurable-http-proxy. */
  chpExecArgv?: string[];
  /**
   * How Sortie runs. `compiled` (default): built to JavaScript and run under plain node, as
   * deployed. `tsx`: from source through tsx (no build step; costs Sortie CPU, see README).
   */
  sortieRuntime?: 'compiled' | 'tsx';
  /** Also measure Sortie's StreamRelay alone on a bare http server (see relay-only-child.ts). */
  relayOnly?: boolean;
  /** A tree holding server/src to run instead of this checkout's (see exportRevision). */
  sortieRoot?: string;
  log?: (msg: string) => void;
  /**
   * CPU placement. `split`: load generator, echo server and websockify on CPU 0, the relays
   * (Sortie, CHP) on CPU 1, as when the relay runs on its own machine. `none`: the kernel decides.
   */
  placement?: 'none' | 'split';
  /** Start configurable-http-proxy as a third path (default true). */
  chp?: boolean;
}

/**
 * Starts everything the benchmark talks to: the echo server, one websockify in front of it,
 * Sortie (real server, bench runner, own process) with one running session, and
 * configurable-http-proxy. All on 127.0.0.1, all tracked for cleanup.
 */
export async function startStack(o: StackOptions): Promise<Stack> {
  const tmp = registerTempDir(mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-')));
  const split = o.placement === 'split';
  if (split) pin(process.pid, '0');
  let echoPort: number;
  let echoCpu: (() => Promise<number>) | undefined;
  let closeEcho = async () => {};
  if (o.echo === 'child') {
    const echo = forkTs(path.join(repoRoot, 'bench/lib/echo-server.ts'));
    echoPort = (await echo.ready<{ port: number }>()).port;
    echoCpu = () => cpuOf(echo);
    if (split) pin(echo.child.pid!, '0');
  } else {
    const echo = await startEchoVnc();
    echoPort = echo.port;
    closeEcho = echo.close;
  }

  const [wsPort, chpPort, chpApiPort] = (await freePorts(3)) as [number, number, number];
  const websockify = spawnTracked('/usr/bin/websockify', [`127.0.0.1:${wsPort}`, `127.0.0.1:${echoPort}`]);
  await waitForPort(wsPort, 10_000, () => websockify.exitCode === null).catch((err: Error) => {
    throw new Error(`websockify did not start: ${err.message}\n${websockify.stderrTail()}`);
  });
  if (split) pin(websockify.pid!, '0'); // its per-connection forks inherit this

  const runtime = o.sortieRuntime ?? 'compiled';
  const root = o.sortieRoot ?? repoRoot;
  let children: { sortie: string; relayOnly: string };
  if (runtime === 'compiled') {
    const started = Date.now();
    children = await buildSortie(root, path.join(tmp, 'build'));
    o.log?.(`compiled Sortie in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  } else {
    children = { sortie: path.join(repoRoot, 'bench/lib/sortie-child.ts'), relayOnly: path.join(repoRoot, 'bench/lib/relay-only-child.ts') };
  }
  const childEnv = {
    ...o.sortieEnv,
    BENCH_WS_PORT: String(wsPort),
    BENCH_TMP: tmp,
    ...(runtime === 'tsx' && o.sortieRoot ? { BENCH_SORTIE_SRC: path.join(o.sortieRoot, 'server/src') } : {}),
  };
  // BENCH_SORTIE_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the relays (NODE_OPTIONS refuses --cpu-prof).
  const extraArgs = [...(o.sortieExecArgv ?? []), ...(process.env.BENCH_SORTIE_NODE_ARGS?.split(/\s+/).filter(Boolean) ?? [])];
  const sortie = forkTs(children.sortie, childEnv, extraArgs, runtime === 'tsx');
  const { port: sortiePort } = await sortie.ready<{ port: number }>(30_000);
  if (split) pin(sortie.child.pid!, '1');

  let relayOnly: { child: IpcChild; port: number } | undefined;
  if (o.relayOnly) {
    const child = forkTs(children.relayOnly, childEnv, extraArgs, runtime === 'tsx');
    relayOnly = { child, port: (await child.ready<{ port: number }>(30_000)).port };
    if (split) pin(child.child.pid!, '1');
  }

  const chp = o.chp === false ? undefined : spawnTracked(
    process.execPath,
    [
      ...(o.chpExecArgv ?? []),
      path.join(repoRoot, 'node_modules/configurable-http-proxy/bin/configurable-http-proxy'),
      '--ip', '127.0.0.1', '--port', String(chpPort),
      '--api-ip', '127.0.0.1', '--api-port', String(chpApiPort),
      '--default-target', `http://127.0.0.1:${wsPort}`,
      '--log-level', 'warn',
    ],
    { env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: `bench-${process.pid}` } },
  );
  if (chp) {
    await waitForPort(chpPort, 15_000, () => chp.exitCode === null).catch((err: Error) => {
      throw new Error(`configurable-http-proxy did not start: ${err.message}\n${chp.stderrTail()}`);
    });
    if (split) pin(chp.pid!, '1');
  }

  const session = await createSession(`http://127.0.0.1:${sortiePort}`);
  o.log?.(`echo ${o.echo} :${echoPort}, websockify :${wsPort}, sortie :${sortiePort} (session ${session.id})${chp ? `, chp :${chpPort}` : ''}`);
  return {
    paths: [
      { name: 'direct', url: `ws://127.0.0.1:${wsPort}/` },
      { name: 'sortie', url: `ws://127.0.0.1:${sortiePort}${session.websocket_url}`, cpu: () => cpuOf(sortie), pid: sortie.child.pid,
        gc: async () => (await sortie.request<{ gc: GcStats }>('gc')).gc },
      ...(chp ? [{ name: 'chp' as const, url: `ws://127.0.0.1:${chpPort}/`, cpu: async () => procCpuSeconds(chp.pid!), pid: chp.pid }] : []),
      ...(relayOnly
        ? [
            {
              name: 'relay-only' as const,
              // Any session id: this relay resolves every one to the same websockify.
              url: `ws://127.0.0.1:${relayOnly.port}/ws/sessions/bench`,
              cpu: () => cpuOf(relayOnly.child),
              pid: relayOnly.child.child.pid,
              gc: async () => (await relayOnly.child.request<{ gc: GcStats }>('gc')).gc,
            },
          ]
        : []),
    ],
    echoMode: o.echo,
    echoPort,
    websockifyPid: websockify.pid!,
    sessionId: session.id,
    sortieUrl: `http://127.0.0.1:${sortiePort}`,
    dataDir: tmp,
    echoCpu,
    close: async () => {
      // Sortie first, through its own dispose(), so a --cpu-prof child writes its profile.
      await sortie.request('stop').catch(() => {});
      await relayOnly?.child.request('stop').catch(() => {});
      await closeEcho();
      removeTempDir(tmp);
    },
  };
}

export async function cpuOf(child: IpcChild): Promise<number> {
  const { cpu } = await child.request<{ cpu: NodeJS.CpuUsage }>('cpu');
  return (cpu.user + cpu.system) / 1e6;
}

async function createSession(base: string): Promise<{ id: string; websocket_url: string }> {
  const api = new Api(base);
  const created = await api.launch('bench-echo', 'bench');
  return api.waitFor(created.id, 'running', 10_000);
}

/**
 * Exports a committed revision's server (read-only: `git archive`, nothing in the checkout
 * changes) to a scratch directory, with this checkout's bench/lib beside it, so the bench
 * can run a known version while the working tree is mid-edit, or compare two versions.
 * Returns the tree's root (for StackOptions.sortieRoot) and a cleanup.
 */
export function exportRevision(rev: string): { root: string; remove: () => void } {
  const dir = registerTempDir(mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-rev-')));
  const tar = execFileSync('git', ['-C', repoRoot, 'archive', '--format=tar', rev, 'package.json', 'server/src'], { maxBuffer: 256 * 1024 * 1024 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  cpSync(path.join(repoRoot, 'bench', 'lib'), path.join(dir, 'bench', 'lib'), { recursive: true });
  // The bench's Sortie children run the tests' fake runner.
  cpSync(path.join(repoRoot, 'server', 'test', 'support'), path.join(dir, 'server', 'test', 'support'), { recursive: true });
  symlinkSync(path.join(repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  return { root: dir, remove: () => removeTempDir(dir) };
}
