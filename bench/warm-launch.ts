/**
 * Warm launch benchmark: how long a person waits for the desktop, cold and from the warm
 * pool, on a real cluster. One Sortie (in this process, kubernetes runner, SQLite, sign-in
 * off) with two apps that differ only in their id: `xterm-cold` (no pool) and `xterm-warm`
 * (`warm_pool: 1`).
 *
 *   t0 = POST /api/sessions → poll GET /api/sessions/{id} every 10 ms until `running` (a warm
 *   launch is running in the POST answer) → open /ws/sessions/{id}, VNC handshake, ask for a
 *   full framebuffer update; t1 = when its last byte has arrived. Then DELETE.
 *
 * A warm launch first waits, untimed, until the pool holds a ready session again. Rounds
 * alternate which kind goes first. Prints the table and the ratio, writes JSON to
 * bench/results/. Exit 0 whatever the figures; non-zero only if it broke.
 *
 *   npx tsx bench/warm-launch.ts [--rounds 5]
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { readCatalogFile } from '../server/src/catalog/catalog-file.js';
import { DEFAULT_SIDECAR_IMAGE, loadConfig } from '../server/src/config/config.js';
import { startSortie } from '../server/src/main.js';
import type { Session } from '../server/src/sessions/session.js';
import { readDesktop } from '../server/test/support/rfb.js';
import { sleep } from '../server/test/support/wait.js';
import { log, machineDescription, positiveInt } from './lib/cli.js';
import { createBenchNamespace, describeCluster, kubeconfigPath, loadKubeConfig } from './lib/kube.js';
import { median, percentile, round, sortedCopy } from './lib/stats.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const TARGET_WARM_MS = 300;
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' } } });
const ROUNDS = positiveInt('rounds', args.rounds);
const TIMEOUT_MS = 180_000;

async function main(): Promise<number> {
  const startedAt = new Date();
  const kubeconfig = kubeconfigPath();
  const kc = loadKubeConfig(kubeconfig);
  const cluster = await describeCluster(kc);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-warm-'));
  const namespace = await createBenchNamespace(kc, 'sortie-bench-warm');
  log(`namespace ${namespace.name}; ${cluster}`);
  const xterm = readCatalogFile(path.join(repoRoot, 'examples', 'apps.json')).find((a) => a.id === 'xterm');
  if (!xterm) throw new Error('examples/apps.json has no "xterm"');
  const appsFile = path.join(tmp, 'apps.json');
  writeFileSync(appsFile, JSON.stringify({ applications: [{ ...xterm, id: 'xterm-cold' }, { ...xterm, id: 'xterm-warm', warm_pool: 1 }] }));
  const sortie = await startSortie(
    loadConfig({
      SORTIE_PORT: '0',
      SORTIE_HOST: '127.0.0.1',
      SORTIE_APPS_FILE: appsFile,
      SORTIE_DB_PATH: path.join(tmp, 'sortie.db'),
      SORTIE_AUTH: 'disabled',
      SORTIE_RUNNER: 'kubernetes',
      SORTIE_NAMESPACE: namespace.name,
      KUBECONFIG: kubeconfig,
      SORTIE_VNC_SIDECAR_IMAGE: DEFAULT_SIDECAR_IMAGE,
      SORTIE_MAX_SESSIONS: '4',
    }),
    { logger: pino({ level: 'silent' }) },
  );
  const stop = async () => {
    // The pool off first, or ending sessions would start new pods behind the cleanup.
    await fetch(`${sortie.url}/api/apps/xterm-warm`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...xterm, id: 'xterm-warm', warm_pool: 0 }) }).catch(() => undefined);
    await sleep(500);
    await sortie.dispose();
    await namespace.remove();
    rmSync(tmp, { recursive: true, force: true });
  };
  process.once('SIGINT', () => void stop().finally(() => process.exit(130)));

  const api = async <T>(method: string, url: string, body?: unknown): Promise<{ status: number; body: T }> => {
    const res = await fetch(`${sortie.url}${url}`, { method, ...(body ? { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) } : {}) });
    return { status: res.status, body: (await res.json()) as T };
  };
  const poolReady = async () => {
    const deadline = Date.now() + TIMEOUT_MS;
    for (;;) {
      const { body } = await api<{ sessions: Session[] }>('GET', '/api/sessions?status=running&limit=50');
      if (body.sessions.some((s) => s.pooled && s.app_id === 'xterm-warm')) return;
      if (Date.now() > deadline) throw new Error('the warm pool did not fill');
      await sleep(100);
    }
  };
  /** POST → first full framebuffer update, and POST → `running` seen, in ms; whether the POST answered `running`. */
  const launch = async (appId: string): Promise<{ ms: number; runningMs: number; runningInAnswer: boolean }> => {
    const t0 = performance.now();
    const created = await api<Session>('POST', '/api/sessions', { app_id: appId, user_id: 'bench' });
    if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${JSON.stringify(created.body)}`);
    let session = created.body;
    while (session.status !== 'running') {
      if (session.status !== 'creating' && session.status !== 'queued') throw new Error(`session ${session.id} is ${session.status}: ${session.reason}`);
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`session ${session.id} not running`);
      await sleep(10);
      session = (await api<Session>('GET', `/api/sessions/${session.id}`)).body;
    }
    const runningMs = performance.now() - t0;
    const desktop = await readDesktop(sortie.url.replace(/^http/, 'ws') + session.websocket_url, { timeoutMs: 30_000 });
    const ms = performance.now() - t0;
    if (desktop.updateBytes !== desktop.width * desktop.height * 4) throw new Error('a short framebuffer update');
    await api('DELETE', `/api/sessions/${session.id}`);
    return { ms, runningMs, runningInAnswer: created.body.status === 'running' };
  };

  const cold: number[] = [];
  const warm: number[] = [];
  const coldRunning: number[] = [];
  const warmRunning: number[] = [];
  let warmHits = 0;
  try {
    // Warm-up, not counted: the node's first pod of the namespace, first requests.
    await poolReady();
    await launch('xterm-cold');
    await launch('xterm-warm');
    for (let i = 1; i <= ROUNDS; i++) {
      for (const kind of i % 2 === 1 ? ['cold', 'warm'] : ['warm', 'cold']) {
        if (kind === 'warm') {
          await poolReady();
          const r = await launch('xterm-warm');
          warm.push(r.ms);
          warmRunning.push(r.runningMs);
          if (r.runningInAnswer) warmHits++;
          log(`#${i} warm ${Math.round(r.ms)} ms (running after ${Math.round(r.runningMs)} ms)${r.runningInAnswer ? '' : ' (missed the pool)'}`);
        } else {
          const r = await launch('xterm-cold');
          cold.push(r.ms);
          coldRunning.push(r.runningMs);
          log(`#${i} cold ${Math.round(r.ms)} ms (running after ${Math.round(r.runningMs)} ms)`);
        }
      }
    }
  } finally {
    await stop();
  }

  const row = (name: string, values: number[]) => {
    const sorted = sortedCopy(values);
    return `${name.padEnd(6)} ${String(Math.round(percentile(sorted, 0))).padStart(7)} ${String(Math.round(median(values))).padStart(7)} ${String(Math.round(percentile(sorted, 95))).padStart(7)} ${String(Math.round(percentile(sorted, 100))).padStart(7)}`;
  };
  const ratio = median(cold) / median(warm);
  console.log(`POST → first framebuffer update through /ws/sessions/{id}, ms (${ROUNDS} rounds; ${cluster}; ${machineDescription()})`);
  console.log(`kind       min  median     p95     max`);
  console.log(row('cold', cold));
  console.log(row('warm', warm));
  console.log(`POST → running seen by the client, ms: cold median ${Math.round(median(coldRunning))}, warm median ${Math.round(median(warmRunning))}`);
  console.log(`warm launches running in the POST answer: ${warmHits}/${warm.length}`);
  console.log(`cold / warm (medians): ${round(ratio, 1)}x; warm target <= ${TARGET_WARM_MS} ms: ${median(warm) <= TARGET_WARM_MS ? 'met' : 'missed'}`);
  const results = path.join(repoRoot, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const file = path.join(results, `warm-launch-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ startedAt, cluster, machine: machineDescription(), rounds: ROUNDS, cold, warm, coldRunning, warmRunning, warmHits, ratio: round(ratio, 2) }, null, 2));
  log(`wrote ${path.relative(repoRoot, file)}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`warm launch benchmark broke: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
