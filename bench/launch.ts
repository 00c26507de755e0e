/**
 * Launch benchmark: Sortie's own overhead in starting a session on a real cluster, with
 * the same pod created directly (client-node, as kubectl would) as the peer, interleaved
 * in one run.
 *
 *   sortie  t0 = POST /api/sessions (xterm) → poll GET /api/sessions/{id} every 10 ms until
 *           `running` (t1 = when the client sees it); DELETE.
 *   direct  t0 = createNamespacedPod of the same pod (buildSessionPod, same app, sidecar and
 *           resources; labels Sortie ignores) → Ready; delete with the same grace period.
 *
 * Both are timed by this process's own raw watch on the namespace: tCreated when the pod's
 * ADDED event arrives, tReady when its Ready condition turns True. What Kubernetes spends
 * is tReady − tCreated (scheduling, containers, readiness probe); what Sortie adds on top is
 *
 *   overhead = (tCreated − t0)  POST handling + its pod create call
 *            + (t1 − tReady)    Sortie's watch → session service → SQLite → visible to a client
 *
 * Target (docs/DESIGN.md): overhead ≤ 100 ms p95. At most --max-alive pods exist at once
 * (ended ones take seconds to vanish), so the single node is not swamped. Prints a table,
 * writes JSON to bench/results/. Exits 0 whatever the figures; non-zero only if it broke.
 *
 *   npx tsx bench/launch.ts [--launches 20] [--max-alive 3] [--poll-ms 10] [--tsx]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import { readCatalogFile } from '../server/src/catalog/catalog-file.js';
import { DEFAULT_SIDECAR_IMAGE } from '../server/src/config/config.js';
import { LABEL_COMPONENT, LABEL_MANAGED_BY } from '../server/src/runners/kubernetes/labels.js';
import { buildSessionPod, TERMINATION_GRACE_SECONDS, type PodSettings } from '../server/src/runners/kubernetes/pod-spec.js';
import { sleep } from '../server/test/support/wait.js';
import { log, machineDescription, positiveInt } from './lib/cli.js';
import { compileEntries } from './lib/compile-entries.js';
import { createBenchNamespace, describeCluster, kubeconfigPath, loadKubeConfig, PodWatch } from './lib/kube.js';
import { percentile, round, sortedCopy } from './lib/stats.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const APP_ID = 'xterm';
const TARGET_P95_MS = 100;

const { values: args } = parseArgs({
  options: {
    launches: { type: 'string', default: '20' },
    'max-alive': { type: 'string', default: '3' },
    'poll-ms': { type: 'string', default: '10' },
    tsx: { type: 'boolean', default: false },
  },
});
const LAUNCHES = positiveInt('launches', args.launches);
const MAX_ALIVE = positiveInt('max-alive', args['max-alive']);
const POLL_MS = positiveInt('poll-ms', args['poll-ms']);
const READY_TIMEOUT_MS = 120_000;

interface SortieSample {
  i: number;
  /** Milliseconds from t0 (the POST). */
  answered: number;
  created: number;
  ready: number;
  /** First poll answer showing `running`. */
  runningVisible: number;
  /** The session's updated_at when it became running (Sortie's clock: the same machine). */
  runningServer: number;
  polls: number;
  /** (created) + (runningVisible − ready). */
  overhead: number;
  overheadServer: number;
}

interface DirectSample {
  i: number;
  answered: number;
  created: number;
  ready: number;
}

const cleanups: Array<() => Promise<void> | void> = [];
let cleaning: Promise<void> | undefined;
const cleanup = () =>
  (cleaning ??= (async () => {
    for (const fn of cleanups.reverse()) await Promise.resolve().then(fn).catch(() => undefined);
  })());
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    console.error(`\n${signal}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<number> {
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const kubeconfig = kubeconfigPath();
  const kc = loadKubeConfig(kubeconfig);
  const cluster = await describeCluster(kc);
  const core = kc.makeApiClient(CoreV1Api);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-launch-'));
  cleanups.push(() => rmSync(tmp, { recursive: true, force: true }));

  const namespace = await createBenchNamespace(kc, 'sortie-bench-launch');
  cleanups.push(() => namespace.remove());
  log(`namespace ${namespace.name}; ${cluster}`);
  const watch = new PodWatch(kc, namespace.name);
  await watch.start();
  cleanups.push(() => watch.stop());

  const appsFile = path.join(repoRoot, 'examples', 'apps.json');
  const app = readCatalogFile(appsFile).find((a) => a.id === APP_ID);
  if (!app) throw new Error(`${appsFile} has no "${APP_ID}"`);
  const settings: PodSettings = { namespace: namespace.name, sidecarImage: DEFAULT_SIDECAR_IMAGE, imagePullPolicy: 'IfNotPresent' };

  const sortie = await startSortie(tmp, kubeconfig, namespace.name, appsFile);
  cleanups.push(() => sortie.stop());
  log(`Sortie (${sortie.how}) at ${sortie.url}`);

  const launchViaSortie = async (i: number): Promise<SortieSample | undefined> => {
    await waitForRoom(watch);
    const t0 = Date.now();
    const res = await fetch(`${sortie.url}/api/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ app_id: APP_ID, user_id: 'bench' }),
    });
    const answeredAt = Date.now();
    const created = (await res.json()) as { id: string; pod_name: string; status: string };
    if (res.status !== 201) throw new Error(`POST /api/sessions answered ${res.status}: ${JSON.stringify(created)}`);
    let polls = 0;
    let visibleAt: number;
    let session: { status: string; reason: string | null; updated_at: string };
    for (;;) {
      session = (await (await fetch(`${sortie.url}/api/sessions/${created.id}`)).json()) as typeof session;
      polls++;
      if (session.status === 'running') {
        visibleAt = Date.now();
        break;
      }
      if (session.status !== 'creating') throw new Error(`session ${created.id} is ${session.status}: ${session.reason}`);
      if (Date.now() - t0 > READY_TIMEOUT_MS) throw new Error(`session ${created.id} not running after ${READY_TIMEOUT_MS} ms`);
      await sleep(POLL_MS);
    }
    await watch.until(`pod ${created.pod_name} Ready on the bench's watch`, () => watch.times(created.pod_name).readyAt !== undefined, 5_000);
    const times = watch.times(created.pod_name);
    const ended = await fetch(`${sortie.url}/api/sessions/${created.id}`, { method: 'DELETE' });
    if (ended.status !== 200) throw new Error(`DELETE answered ${ended.status}`);
    if (watch.restartedBetween(t0, visibleAt)) {
      log(`sortie #${i}: the bench's watch restarted mid-launch; sample dropped`);
      return undefined;
    }
    const sample = {
      i,
      answered: answeredAt - t0,
      created: times.addedAt! - t0,
      ready: times.readyAt! - t0,
      runningVisible: visibleAt - t0,
      runningServer: Date.parse(session.updated_at) - t0,
      polls,
      overhead: times.addedAt! - t0 + (visibleAt - times.readyAt!),
      overheadServer: times.addedAt! - t0 + (Date.parse(session.updated_at) - times.readyAt!),
    };
    log(`sortie #${i}: POST→running ${sample.runningVisible} ms (pod ${sample.ready - sample.created} ms), overhead ${sample.overhead} ms`);
    return sample;
  };

  const launchDirect = async (i: number): Promise<DirectSample | undefined> => {
    await waitForRoom(watch);
    const id = randomBytes(6).toString('hex');
    const pod = buildSessionPod({ sessionId: id, workloadName: `bench-direct-${id}`, userId: 'bench', app, streamSecret: randomBytes(4).toString('hex') }, settings);
    // Labels Sortie's watch does not select, or it would delete the pod as an orphan.
    pod.metadata!.labels![LABEL_MANAGED_BY] = 'sortie-bench';
    pod.metadata!.labels![LABEL_COMPONENT] = 'direct';
    const name = pod.metadata!.name!;
    const t0 = Date.now();
    await core.createNamespacedPod({ namespace: namespace.name, body: pod });
    const answeredAt = Date.now();
    await watch.until(`pod ${name} Ready`, () => watch.times(name).readyAt !== undefined, READY_TIMEOUT_MS);
    const times = watch.times(name);
    await core.deleteNamespacedPod({ name, namespace: namespace.name, gracePeriodSeconds: TERMINATION_GRACE_SECONDS });
    if (watch.restartedBetween(t0, times.readyAt!)) {
      log(`direct #${i}: the bench's watch restarted mid-launch; sample dropped`);
      return undefined;
    }
    const sample = { i, answered: answeredAt - t0, created: times.addedAt! - t0, ready: times.readyAt! - t0 };
    log(`direct #${i}: create→Ready ${sample.ready} ms (pod ${sample.ready - sample.created} ms)`);
    return sample;
  };

  // Warm-up: one of each, not counted (first requests, JIT, the node's first pod in the namespace).
  await launchViaSortie(0);
  await launchDirect(0);

  const viaSortie: SortieSample[] = [];
  const direct: DirectSample[] = [];
  for (let i = 1; i <= LAUNCHES; i++) {
    // Alternate which goes first, so drift in the node's load falls on both alike.
    const viaSortieFirst = i % 2 === 1;
    for (const which of viaSortieFirst ? ['sortie', 'direct'] : ['direct', 'sortie']) {
      if (which === 'sortie') {
        const s = await launchViaSortie(i);
        if (s) viaSortie.push(s);
      } else {
        const s = await launchDirect(i);
        if (s) direct.push(s);
      }
    }
  }
  await watch.until('every pod to be gone', () => watch.alive.size === 0, 60_000).catch(() => undefined);

  // ---- figures ----------------------------------------------------------------------
  type Row = { label: string; values: number[] };
  const stat = (values: number[]) => {
    const s = sortedCopy(values);
    return { p50: percentile(s, 50), p95: percentile(s, 95), max: s.length > 0 ? s[s.length - 1]! : Number.NaN, n: s.length };
  };
  const rows: Row[] = [
    { label: 'Sortie: POST → running (client sees it)', values: viaSortie.map((s) => s.runningVisible) },
    { label: '  POST answered', values: viaSortie.map((s) => s.answered) },
    { label: '  POST → pod ADDED', values: viaSortie.map((s) => s.created) },
    { label: '  pod ADDED → Ready (Kubernetes)', values: viaSortie.map((s) => s.ready - s.created) },
    { label: '  pod Ready → running, client sees it', values: viaSortie.map((s) => s.runningVisible - s.ready) },
    { label: '  pod Ready → running, updated_at', values: viaSortie.map((s) => s.runningServer - s.ready) },
    { label: '  GET polls per launch', values: viaSortie.map((s) => s.polls) },
    { label: 'Sortie overhead (client sees running)', values: viaSortie.map((s) => s.overhead) },
    { label: 'Sortie overhead (updated_at)', values: viaSortie.map((s) => s.overheadServer) },
    { label: 'Direct: create → Ready', values: direct.map((s) => s.ready) },
    { label: '  create call answered', values: direct.map((s) => s.answered) },
    { label: '  create → pod ADDED', values: direct.map((s) => s.created) },
    { label: '  pod ADDED → Ready (Kubernetes)', values: direct.map((s) => s.ready - s.created) },
  ];
  const table = rows.map((r) => ({ label: r.label, ...stat(r.values) }));
  const by = (label: string) => table.find((r) => r.label === label)!;
  const sortieTotal = by('Sortie: POST → running (client sees it)');
  const directTotal = by('Direct: create → Ready');
  const overhead = by('Sortie overhead (client sees running)');
  const directCreate = by('  create → pod ADDED');
  const ratios = { p50: sortieTotal.p50 / directTotal.p50, p95: sortieTotal.p95 / directTotal.p95 };
  const verdict = overhead.p95 <= TARGET_P95_MS ? 'PASS' : 'FAIL';
  const machine = machineDescription();
  const loadAfter = os.loadavg();

  const f0 = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(1));
  const lines: string[] = [];
  lines.push(`Sortie launch benchmark  ${startedAt.toISOString()}`);
  lines.push(machine);
  lines.push(`${cluster}; namespace ${namespace.name}`);
  lines.push(`Sortie: ${sortie.how}, SORTIE_RUNNER=kubernetes, SORTIE_AUTH=disabled, log level info`);
  lines.push(
    `${viaSortie.length} launches of "${APP_ID}" through POST /api/sessions, polled every ${POLL_MS} ms; ${direct.length} of the same pod created directly; ` +
      `interleaved, at most ${MAX_ALIVE} pods alive, after one warm-up of each. Times in ms from t0, pod events from this process's own watch.`,
  );
  lines.push('');
  lines.push(`${''.padEnd(42)}${'p50'.padStart(8)}${'p95'.padStart(8)}${'max'.padStart(8)}`);
  for (const r of table) lines.push(`${r.label.padEnd(42)}${f0(r.p50).padStart(8)}${f0(r.p95).padStart(8)}${f0(r.max).padStart(8)}`);
  lines.push('');
  lines.push(
    `ratio Sortie POST→running / direct create→Ready: p50 ${ratios.p50.toFixed(3)}, p95 ${ratios.p95.toFixed(3)}`,
  );
  lines.push(
    `Sortie overhead = (POST → pod ADDED) + (pod Ready → client sees running): p50 ${f0(overhead.p50)} ms, p95 ${f0(overhead.p95)} ms; ` +
      `target p95 <= ${TARGET_P95_MS} ms: ${verdict}`,
  );
  lines.push(
    `  of which the API server's own create (direct create → ADDED, same run): p50 ${f0(directCreate.p50)} ms, p95 ${f0(directCreate.p95)} ms`,
  );
  lines.push(`Machine: load average ${loadBefore.map((v) => v.toFixed(2)).join(' ')} before, ${loadAfter.map((v) => v.toFixed(2)).join(' ')} after.`);
  console.log(`\n${lines.join('\n')}`);

  const resultsDir = path.join(repoRoot, 'bench', 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `launch-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    `${JSON.stringify(
      {
        startedAt: startedAt.toISOString(),
        machine,
        cluster,
        sortie: sortie.how,
        settings: { launches: LAUNCHES, maxAlive: MAX_ALIVE, pollMs: POLL_MS, app: APP_ID },
        target: { overheadP95Ms: TARGET_P95_MS },
        summary: table,
        ratios,
        verdict,
        samples: { sortie: viaSortie, direct },
        watchRestarts: watch.restarts.length,
        load: { before: loadBefore, after: loadAfter },
        table: lines,
      },
      (_k, v: unknown) => (typeof v === 'number' ? round(v, 3) : v),
      2,
    )}\n`,
  );
  console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
  return 0;
}

/** Waits until fewer than MAX_ALIVE pods exist, so this launch keeps the node within bounds. */
async function waitForRoom(watch: PodWatch): Promise<void> {
  await watch.until(`fewer than ${MAX_ALIVE} pods alive`, () => watch.alive.size < MAX_ALIVE, 120_000);
}

/** The real server, as deployed: compiled and run by node (or through tsx with --tsx), in its own process. */
async function startSortie(tmp: string, kubeconfig: string, namespace: string, appsFile: string): Promise<{ url: string; how: string; stop: () => Promise<void> }> {
  let argv: string[];
  let how: string;
  if (args.tsx) {
    argv = ['--import', 'tsx', path.join(repoRoot, 'server', 'src', 'main.ts')];
    how = 'server/src/main.ts run through tsx';
  } else {
    const started = Date.now();
    const { main } = await compileEntries([], path.join(tmp, 'build'));
    argv = [main];
    how = 'server compiled with tsc, run by node';
    log(`compiled Sortie in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  const child: ChildProcess = spawn(process.execPath, argv, {
    cwd: repoRoot,
    env: {
      ...process.env,
      SORTIE_PORT: '0',
      SORTIE_HOST: '127.0.0.1',
      SORTIE_RUNNER: 'kubernetes',
      SORTIE_NAMESPACE: namespace,
      KUBECONFIG: kubeconfig,
      SORTIE_APPS_FILE: appsFile,
      SORTIE_DB_PATH: path.join(tmp, 'sortie.db'),
      SORTIE_WEB_DIR: path.join(tmp, 'no-web-ui'),
      SORTIE_VNC_SIDECAR_IMAGE: DEFAULT_SIDECAR_IMAGE,
      SORTIE_IMAGE_PULL_POLICY: 'IfNotPresent',
      SORTIE_AUTH: 'disabled',
      SORTIE_LOG_LEVEL: 'info',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-100_000);
      const match = /"url":"(http:\/\/[^"]+)".*"msg":"Sortie is listening"/.exec(out);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`Sortie exited (${code}) before listening: ${err}${out.slice(-4000)}`)));
    setTimeout(() => reject(new Error(`Sortie did not listen within 60 s: ${err}${out.slice(-4000)}`)), 60_000).unref();
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  };
  return { url, how, stop };
}

main().then(
  async (code) => {
    await cleanup();
    process.exit(code);
  },
  async (err: unknown) => {
    console.error(`launch benchmark broke: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    await cleanup();
    process.exit(1);
  },
);
