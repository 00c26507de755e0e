/**
 * Session-list benchmark: 5,000 sessions in the database (five times DESIGN's scale target).
 *
 * A real Sortie (startSortie in its own process: HTTP API, session service, SQLite file or
 * the PostgreSQL database given with --database-url, sign-in off) gets 5,000 sessions
 * through POST /api/sessions (100 users x 50), with a bench runner that makes each one an
 * idle `running` session at once (no desktop: only Sortie's own cost is measured). Then,
 * interleaved in rounds:
 *
 *   page  GET /api/sessions?limit=50                 the first page, what the UI polls
 *   all   every session: Sortie pages through GET /api/sessions?limit=200 (25 requests at
 *         5,000, timed and counted as one answer); the peers answer all in one, unpaged,
 *         as Sortie did before lists paged
 *   user  GET /api/sessions?user_id=X&limit=200     one user's 50
 *
 * against two peers reading the same SQLite file in the same run (not with --database-url):
 *
 *   bare   node:http + better-sqlite3 + JSON.stringify in its own process (the floor over HTTP)
 *   floor  better-sqlite3 + JSON.stringify in this process, no HTTP (the absolute floor)
 *
 * Memory: Sortie's RSS and heap (after full GCs) before any session, at 5,000, and at 10,000
 * idle sessions; per idle session = (10,000 − 5,000) delta / 5,000, in the warmed-up server
 * (the first requests grow RSS whatever they do). With a cluster reachable,
 * also the heap one session pod costs in the kubernetes runner's informer cache (parsed
 * copies of a real pod object as the watch delivers it; --skip-pod-cache to skip).
 *
 * Target (docs/DESIGN.md): GET /api/sessions p99 <= 20 ms (the default page). Prints a table,
 * writes JSON to bench/results/. Exits 0 whatever the figures; non-zero only if it broke.
 *
 *   npx tsx bench/sessions-list.ts [--sessions 5000] [--users 100] [--rounds 10] [--per-round 50]
 *     [--database-url postgres://…] [--tsx] [--skip-pod-cache]
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api } from '@kubernetes/client-node';
import SQLite from 'better-sqlite3';
import { readCatalogFile } from '../server/src/catalog/catalog-file.js';
import { DEFAULT_SIDECAR_IMAGE } from '../server/src/config/config.js';
import { PAGE_LIMIT_DEFAULT, PAGE_LIMIT_MAX, type SessionPage } from '../server/src/contract/pages.js';
import type { SessionsTable } from '../server/src/db/schema.js';
import { buildSessionPod } from '../server/src/runners/kubernetes/pod-spec.js';
import { toSession } from '../server/src/sessions/session.js';
import { compileEntries } from './lib/compile-entries.js';
import { createBenchNamespace, kubeconfigPath, loadKubeConfig, PodWatch } from './lib/kube.js';
import { forkTs, installCleanup, machineCpu, procCpuSeconds, shutdown, type IpcChild } from './lib/procs.js';
import { sleep, waitFor } from '../server/test/support/wait.js';
import { log, machineDescription, positiveInt, runBenchmark } from './lib/cli.js';
import { percentile, round, sortedCopy } from './lib/stats.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const TARGET_P99_MS = 20;
const CHILD = 'bench/lib/sessions-child.ts';

const { values: args } = parseArgs({
  options: {
    sessions: { type: 'string', default: '5000' },
    users: { type: 'string', default: '100' },
    rounds: { type: 'string', default: '10' },
    'per-round': { type: 'string', default: '50' },
    'database-url': { type: 'string' },
    tsx: { type: 'boolean', default: false },
    'skip-pod-cache': { type: 'boolean', default: false },
  },
});
const SESSIONS = positiveInt('sessions', args.sessions);
const USERS = positiveInt('users', args.users);
const ROUNDS = positiveInt('rounds', args.rounds);
const PER_ROUND = positiveInt('per-round', args['per-round']);
/** Every session costs a whole list's worth per sample: fewer samples, same share of each round. */
const ALL_PER_ROUND = Math.max(1, Math.round(PER_ROUND / 5));
const DATABASE_URL = args['database-url'];
const DATABASE = DATABASE_URL ? 'PostgreSQL' : 'SQLite file';

type Mem = NodeJS.MemoryUsage;
type Target = 'sortie' | 'bare' | 'floor';
type Kind = 'page' | 'all' | 'user';
// The peers read Sortie's SQLite file: with PostgreSQL there is only Sortie to measure.
const TARGETS: Target[] = DATABASE_URL ? ['sortie'] : ['sortie', 'bare', 'floor'];
const KINDS: Kind[] = ['page', 'all', 'user'];
const PAGE_QUERY = `/api/sessions?limit=${PAGE_LIMIT_DEFAULT}`;
const userQuery = (user: string) => `/api/sessions?user_id=${user}&limit=${PAGE_LIMIT_MAX}`;
const perKind = <T>(make: () => T): Record<Kind, T> => ({ page: make(), all: make(), user: make() });

async function main(): Promise<number> {
  installCleanup();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-sessions-'));
  try {
    let childFile = path.join(repoRoot, CHILD);
    let how = 'server run from source through tsx';
    if (!args.tsx) {
      const started = Date.now();
      childFile = (await compileEntries([CHILD], path.join(tmp, 'build'))).entries[0]!;
      how = 'server compiled with tsc, run by node';
      log(`compiled Sortie in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const dataDir = path.join(tmp, 'data');
    mkdirSync(dataDir);
    const env: Record<string, string> = { BENCH_TMP: dataDir, ...(DATABASE_URL ? { BENCH_DATABASE_URL: DATABASE_URL } : {}) };

    const sortie = forkTs(childFile, { ...env, BENCH_MODE: 'sortie' }, ['--expose-gc'], args.tsx);
    const { port: sortiePort } = await sortie.ready<{ port: number }>(60_000);
    const client = new Client(sortiePort);
    log(`Sortie (${how}, ${DATABASE}) on :${sortiePort}`);

    // Warm-up on an empty database: code paths compiled, pools and caches filled.
    for (let i = 0; i < 200; i++) await client.get('/api/sessions');
    for (let i = 0; i < 50; i++) await client.get(userQuery('user-0'));
    const mem: Record<string, Mem> = { empty: await memOf(sortie) };

    // ---- fill: 100 users x 10 sessions, every one `running` --------------------------
    const postMs: number[] = [];
    let created = 0;
    const createdIds: string[] = [];
    const fillTo = async (n: number) => {
      for (; created < n; created++) {
        const user = `user-${created % USERS}`;
        const t0 = process.hrtime.bigint();
        const res = await client.request('POST', '/api/sessions', JSON.stringify({ app_id: 'bench-idle', user_id: user }));
        postMs.push(Number(process.hrtime.bigint() - t0) / 1e6);
        if (res.status !== 201) throw new Error(`POST /api/sessions answered ${res.status}: ${res.body}`);
        createdIds.push((JSON.parse(res.body) as { id: string }).id);
      }
      // Small requests only until the memory reading: a full list here would leave its
      // transient allocations in the RSS figure (malloc keeps freed memory).
      await waitFor(
        async () => {
          const res = await client.get(`/api/sessions/${createdIds[n - 1]}`);
          return (JSON.parse(res.body) as { status: string }).status === 'running';
        },
        { what: `the last of ${n} sessions running`, timeoutMs: 30_000, intervalMs: 20 },
      );
      await sleep(200);
    };
    await fillTo(SESSIONS);
    mem.filled = await memOf(sortie);
    const running = await client.every('/api/sessions?status=running');
    if (running.sessions.length !== SESSIONS) throw new Error(`${running.sessions.length} of ${SESSIONS} sessions are running`);
    log(`${SESSIONS} sessions running for ${USERS} users`);

    // ---- peers -----------------------------------------------------------------------
    // Newest first, ties by id: the order Sortie's pages follow.
    const ORDER = 'order by created_at desc, id desc';
    const bare = DATABASE_URL ? undefined : forkTs(childFile, { ...env, BENCH_MODE: 'bare' }, ['--expose-gc'], args.tsx);
    const bareClient = bare && new Client((await bare.ready<{ port: number }>(30_000)).port);
    const db = DATABASE_URL ? undefined : new SQLite(path.join(dataDir, 'sortie.db'), { readonly: true, fileMustExist: true });
    const stmts = db && {
      page: db.prepare(`select * from sessions ${ORDER} limit ${PAGE_LIMIT_DEFAULT}`),
      all: db.prepare(`select * from sessions ${ORDER}`),
      user: db.prepare(`select * from sessions where user_id = ? ${ORDER} limit ${PAGE_LIMIT_MAX}`),
    };
    const floor = (kind: Kind, user?: string) => {
      const rows = (kind === 'user' ? stmts!.user.all(user) : stmts![kind].all()) as SessionsTable[];
      return JSON.stringify({ sessions: rows.map(toSession) });
    };
    const bareQuery = (kind: Kind, user?: string) => (kind === 'page' ? PAGE_QUERY : kind === 'all' ? '/api/sessions' : userQuery(user!));

    // The three answer the same sessions in the same order (checked as data).
    const ids = (body: string) => (JSON.parse(body) as { sessions: Array<{ id: string; status: string }> }).sessions.map((x) => `${x.id}:${x.status}`);
    for (const [kind, user] of [['page'], ['all'], ['user', 'user-7']] as Array<[Kind, string?]>) {
      const a = kind === 'all' ? (await client.every('/api/sessions')).sessions.map((x) => `${x.id}:${x.status}`) : ids((await client.get(kind === 'page' ? PAGE_QUERY : userQuery(user!))).body);
      const expected = { page: Math.min(PAGE_LIMIT_DEFAULT, SESSIONS), all: SESSIONS, user: Math.min(PAGE_LIMIT_MAX, Math.floor(SESSIONS / USERS)) }[kind];
      if (a.length !== expected) throw new Error(`Sortie answered ${a.length} sessions for ${kind}, not ${expected}`);
      if (a.some((x) => !x.endsWith(':running'))) throw new Error('not every session is running');
      if (!bareClient) continue;
      const b = ids((await bareClient.get(bareQuery(kind, user))).body);
      const c = ids(floor(kind, user));
      if (JSON.stringify(a) !== JSON.stringify(b) || JSON.stringify(a) !== JSON.stringify(c)) {
        throw new Error(`the three lists differ for ${kind}: ${a.length} / ${b.length} / ${c.length} sessions`);
      }
    }

    type Timed = { ms: number; bytes: number; requests: number };
    const run: Record<Target, (kind: Kind, user?: string) => Promise<Timed>> = {
      sortie: async (kind, user) => {
        if (kind !== 'all') return { ...(await client.timed(kind === 'page' ? PAGE_QUERY : userQuery(user!))), requests: 1 };
        const t0 = process.hrtime.bigint();
        const every = await client.every('/api/sessions');
        return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: every.bytes, requests: every.requests };
      },
      bare: async (kind, user) => ({ ...(await bareClient!.timed(bareQuery(kind, user))), requests: 1 }),
      floor: async (kind, user) => {
        const t0 = process.hrtime.bigint();
        const body = floor(kind, user);
        return { ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes: Buffer.byteLength(body), requests: 1 };
      },
    };
    const samples = Object.fromEntries(TARGETS.map((t) => [t, perKind<number[]>(() => [])])) as Record<Target, Record<Kind, number[]>>;
    // CPU seconds the serving process spent, summed over the measured batches (floor: this process).
    const cpuOf: Record<Target, () => number> = {
      sortie: () => procCpuSeconds(sortie.child.pid!),
      bare: () => procCpuSeconds(bare!.child.pid!),
      floor: () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1e6;
      },
    };
    const cpu = Object.fromEntries(TARGETS.map((t) => [t, perKind(() => 0)])) as Record<Target, Record<Kind, number>>;
    const bytes = Object.fromEntries(TARGETS.map((t) => [t, perKind(() => 0)])) as Record<Target, Record<Kind, number>>;
    const requests = Object.fromEntries(TARGETS.map((t) => [t, perKind(() => 0)])) as Record<Target, Record<Kind, number>>;
    let userIndex = 0;
    const measure = async (target: Target, kind: Kind, n: number, keep: boolean) => {
      const cpu0 = cpuOf[target]();
      for (let i = 0; i < n; i++) {
        const user = kind === 'user' ? `user-${userIndex++ % USERS}` : undefined;
        const r = await run[target](kind, user);
        if (keep) {
          samples[target][kind].push(r.ms);
          bytes[target][kind] = r.bytes;
          requests[target][kind] = r.requests;
        }
      }
      if (keep) cpu[target][kind] += cpuOf[target]() - cpu0;
    };
    const perRound = (kind: Kind) => (kind === 'all' ? ALL_PER_ROUND : PER_ROUND);
    for (const target of TARGETS) for (const kind of KINDS) await measure(target, kind, Math.min(perRound(kind), 50), false);
    log('warmed up; measuring');
    const machine0 = machineCpu();
    const ourCpu = () => TARGETS.reduce((sum, t) => sum + cpuOf[t](), 0);
    const ours0 = ourCpu();
    const wall0 = Date.now();
    for (let round = 1; round <= ROUNDS; round++) {
      for (const kind of KINDS) for (const target of TARGETS) await measure(target, kind, perRound(kind), true);
      log(`round ${round}/${ROUNDS}`);
    }
    const machine1 = machineCpu();
    const ours = ourCpu() - ours0;
    const machineBusy = (machine1.busy - machine0.busy) / (machine1.total - machine0.total);
    // jiffies at USER_HZ=100 over all CPUs, less what the bench and its two servers used.
    const foreignBusy = Math.max(0, machineBusy - ours / ((machine1.total - machine0.total) / 100));
    const measureSeconds = (Date.now() - wall0) / 1000;
    mem.afterLists = await memOf(sortie);

    // ---- memory per idle session -----------------------------------------------------
    // Measured as the slope from SESSIONS to 2 x SESSIONS in the warmed-up server. The first
    // thousands of requests raise RSS by several MiB whatever they do (malloc keeps what
    // requests freed; in a trial, 900 GETs that created nothing added 3 MiB and 1,000 more
    // sessions after that 0.5 MiB), so a slope from a cold start would charge that to sessions.
    await fillTo(2 * SESSIONS);
    mem.doubled = await memOf(sortie);

    // ---- the kubernetes runner's per-pod cache ---------------------------------------
    let podCache: { bytesPerPod: number; podJsonBytes: number; source: string } | { skipped: string };
    if (args['skip-pod-cache']) podCache = { skipped: '--skip-pod-cache' };
    else {
      try {
        const json = await realSessionPodJson();
        const held = await sortie.request<{ bytesPerCopy: number; jsonBytes: number }>('podcache', { json, copies: 1000 });
        podCache = { bytesPerPod: held.bytesPerCopy, podJsonBytes: held.jsonBytes, source: 'a Ready xterm session pod, as the watch delivers it' };
      } catch (err) {
        podCache = { skipped: `no cluster (${(err as Error).message.split('\n')[0]})` };
      }
    }

    await sortie.request('stop').catch(() => undefined);
    await bare?.request('stop').catch(() => undefined);
    db?.close();

    // ---- figures ---------------------------------------------------------------------
    const stats = (v: number[]) => {
      const s = sortedCopy(v);
      return { p50: percentile(s, 50), p99: percentile(s, 99), max: s[s.length - 1]!, n: s.length };
    };
    const table = Object.fromEntries(
      KINDS.map((kind) => [
        kind,
        Object.fromEntries(
          TARGETS.map((t) => [
            t,
            { ...stats(samples[t][kind]), bytes: bytes[t][kind], requests: requests[t][kind], cpuMsPerAnswer: (cpu[t][kind] * 1000) / samples[t][kind].length },
          ]),
        ),
      ]),
    ) as Record<Kind, Record<Target, ReturnType<typeof stats> & { bytes: number; requests: number; cpuMsPerAnswer: number }>>;
    const ratioOf = (kind: Kind) =>
      DATABASE_URL
        ? null
        : {
            sortieOverFloorP50: table[kind].sortie.p50 / table[kind].floor.p50,
            sortieOverFloorP99: table[kind].sortie.p99 / table[kind].floor.p99,
            sortieOverBareP50: table[kind].sortie.p50 / table[kind].bare.p50,
            sortieOverBareP99: table[kind].sortie.p99 / table[kind].bare.p99,
          };
    const ratios = perKind<ReturnType<typeof ratioOf>>(() => null);
    for (const kind of KINDS) ratios[kind] = ratioOf(kind);
    const post = stats(postMs.slice(0, SESSIONS)); // while the database grows from 0 to SESSIONS
    const from = mem.afterLists!;
    const to = mem.doubled!;
    const span = SESSIONS;
    const perSession = {
      heapUsedBytes: (to.heapUsed - from.heapUsed) / span,
      rssBytes: (to.rss - from.rss) / span,
      externalBytes: (to.external - from.external) / span,
    };
    const verdict = table.page.sortie.p99 <= TARGET_P99_MS ? 'PASS' : 'FAIL';
    const machine = machineDescription();
    const loadAfter = os.loadavg();

    const ms = (v: number) => v.toFixed(2);
    const kb = (v: number) => `${(v / 1024).toFixed(1)} KiB`;
    const mib = (v: number) => `${(v / 2 ** 20).toFixed(1)} MiB`;
    const lines: string[] = [];
    lines.push(`Sortie session-list benchmark  ${startedAt.toISOString()}`);
    lines.push(machine);
    lines.push(`Sortie: ${how}, ${DATABASE}, SORTIE_AUTH=disabled, bench runner (every session idle and running, no desktop)`);
    lines.push(
      `${SESSIONS} sessions (${USERS} users x ${SESSIONS / USERS}) created through POST /api/sessions; ${ROUNDS} interleaved rounds of ${PER_ROUND} sequential ` +
        `answers per target and query (${ALL_PER_ROUND} for all; keep-alive, one connection), after a warm-up. Times in ms, per answer; ` +
        `CPU = CPU ms the serving process spent per answer (floor: this process); reqs = HTTP requests per answer.`,
    );
    lines.push('');
    lines.push(`${''.padEnd(44)}${'p50'.padStart(8)}${'p99'.padStart(8)}${'max'.padStart(8)}${'CPU'.padStart(9)}${'bytes'.padStart(10)}${'reqs'.padStart(6)}`);
    const label: Record<Target, string> = { sortie: 'sortie', bare: 'bare node:http + better-sqlite3', floor: 'floor: better-sqlite3 + JSON, no HTTP' };
    const title: Record<Kind, string> = {
      page: `GET /api/sessions?limit=${PAGE_LIMIT_DEFAULT} (the first page of ${SESSIONS})`,
      all: `all ${SESSIONS}: sortie pages at limit=${PAGE_LIMIT_MAX}; peers unpaged`,
      user: `GET /api/sessions?user_id=X&limit=${PAGE_LIMIT_MAX} (${SESSIONS / USERS} each)`,
    };
    for (const kind of KINDS) {
      lines.push(title[kind]);
      for (const t of TARGETS) {
        const r = table[kind][t];
        lines.push(
          `  ${label[t].padEnd(42)}${ms(r.p50).padStart(8)}${ms(r.p99).padStart(8)}${ms(r.max).padStart(8)}${ms(r.cpuMsPerAnswer).padStart(9)}` +
            `${String(r.bytes).padStart(10)}${String(r.requests).padStart(6)}`,
        );
      }
    }
    lines.push('');
    for (const kind of KINDS) {
      const r = ratios[kind];
      if (!r) continue;
      lines.push(
        `${kind.padEnd(4)}: sortie/floor p50 ${r.sortieOverFloorP50.toFixed(2)}x p99 ${r.sortieOverFloorP99.toFixed(2)}x; ` +
          `sortie/bare p50 ${r.sortieOverBareP50.toFixed(2)}x p99 ${r.sortieOverBareP99.toFixed(2)}x`,
      );
    }
    lines.push(
      `GET /api/sessions?limit=${PAGE_LIMIT_DEFAULT} p99 with ${SESSIONS} sessions on ${DATABASE}: ${ms(table.page.sortie.p99)} ms ` +
        `(${table.page.sortie.bytes} bytes); target <= ${TARGET_P99_MS} ms: ${verdict}`,
    );
    if (!DATABASE_URL) {
      lines.push(`the unpaged answer (bare peer): p99 ${ms(table.all.bare.p99)} ms, ${table.all.bare.bytes} bytes`);
    }
    lines.push(`POST /api/sessions while filling 0 → ${SESSIONS}: p50 ${ms(post.p50)} ms, p99 ${ms(post.p99)} ms (${post.n} requests)`);
    lines.push('');
    lines.push(`Sortie memory after full GCs        ${'rss'.padStart(10)}${'heapTotal'.padStart(11)}${'heapUsed'.padStart(11)}${'external'.padStart(11)}`);
    for (const [name, m] of Object.entries(mem)) {
      const what = {
        empty: 'no sessions (warmed up)',
        filled: `${SESSIONS} sessions`,
        afterLists: `${SESSIONS} sessions, after the list runs`,
        doubled: `${2 * SESSIONS} sessions`,
      }[name] ?? name;
      lines.push(`  ${what.padEnd(34)}${mib(m.rss).padStart(10)}${mib(m.heapTotal).padStart(11)}${mib(m.heapUsed).padStart(11)}${mib(m.external).padStart(11)}`);
    }
    lines.push(
      `per idle session (${SESSIONS} → ${2 * SESSIONS}, warmed up): heap ${kb(perSession.heapUsedBytes)}, RSS ${kb(perSession.rssBytes)} ` +
        `(Sortie's own cost: the desktops' pods or processes are not counted)`,
    );
    if ('bytesPerPod' in podCache) {
      lines.push(
        `kubernetes runner, informer cache per session pod: heap ${kb(podCache.bytesPerPod)} (pod JSON ${kb(podCache.podJsonBytes)}; ${podCache.source}), ` +
          `so about ${kb(perSession.heapUsedBytes + podCache.bytesPerPod)} heap per idle session on Kubernetes`,
      );
    } else lines.push(`kubernetes runner, informer cache per session pod: skipped (${podCache.skipped})`);
    lines.push(
      `Machine during the ${measureSeconds.toFixed(0)} s of measurement: ${(machineBusy * 100).toFixed(0)}% busy, ` +
        `${(foreignBusy * 100).toFixed(0)}% of it by processes outside this benchmark.`,
    );
    lines.push(`Machine: load average ${loadBefore.map((v) => v.toFixed(2)).join(' ')} before, ${loadAfter.map((v) => v.toFixed(2)).join(' ')} after.`);
    console.log(`\n${lines.join('\n')}`);

    const resultsDir = path.join(repoRoot, 'bench', 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `sessions-list-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          machine,
          sortie: how,
          database: DATABASE,
          settings: { sessions: SESSIONS, users: USERS, rounds: ROUNDS, perRound: PER_ROUND, allPerRound: ALL_PER_ROUND },
          target: { listP99Ms: TARGET_P99_MS },
          latency: table,
          ratios,
          verdict,
          post,
          memory: mem,
          perSession,
          podCache,
          load: { before: loadBefore, after: loadAfter, machineBusy, foreignBusy, measureSeconds },
          table: lines,
        },
        (_k, v: unknown) => (typeof v === 'number' ? round(v, 3) : v),
        2,
      )}\n`,
    );
    console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
    return 0;
  } finally {
    await shutdown();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** A real session pod's object as Sortie's watch receives it: one xterm pod, Ready, in a scratch namespace. */
async function realSessionPodJson(): Promise<string> {
  const kc = loadKubeConfig(kubeconfigPath());
  const namespace = await createBenchNamespace(kc, 'sortie-bench-podcache');
  const watch = new PodWatch(kc, namespace.name);
  try {
    await watch.start();
    const app = readCatalogFile(path.join(repoRoot, 'examples', 'apps.json')).find((a) => a.id === 'xterm')!;
    const id = randomBytes(6).toString('hex');
    const pod = buildSessionPod(
      { sessionId: id, workloadName: `sortie-session-${id}`, userId: 'bench', app, streamSecret: randomBytes(4).toString('hex') },
      { namespace: namespace.name, sidecarImage: DEFAULT_SIDECAR_IMAGE, imagePullPolicy: 'IfNotPresent' },
    );
    await kc.makeApiClient(CoreV1Api).createNamespacedPod({ namespace: namespace.name, body: pod });
    const name = pod.metadata!.name!;
    await watch.until(`pod ${name} Ready`, () => watch.times(name).readyAt !== undefined, 120_000);
    return JSON.stringify(watch.latest.get(name));
  } finally {
    watch.stop();
    await namespace.remove();
  }
}

/** Sequential HTTP/1.1 requests over one keep-alive connection, as a browser tab would make them. */
class Client {
  private readonly agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  constructor(private readonly port: number) {}

  request(method: string, urlPath: string, body?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: this.port, method, path: urlPath, agent: this.agent, headers: body ? { 'content-type': 'application/json' } : {} },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  get(urlPath: string): Promise<{ status: number; body: string }> {
    return this.request('GET', urlPath);
  }

  /** Every page of a list at the largest page size, following next_cursor to the end. */
  async every(urlPath: string): Promise<{ sessions: SessionPage['sessions']; bytes: number; requests: number }> {
    const sessions: SessionPage['sessions'] = [];
    let bytes = 0;
    let requests = 0;
    let cursor: string | null = null;
    const sep = urlPath.includes('?') ? '&' : '?';
    do {
      const res = await this.get(`${urlPath}${sep}limit=${PAGE_LIMIT_MAX}${cursor === null ? '' : `&cursor=${cursor}`}`);
      if (res.status !== 200) throw new Error(`GET ${urlPath} answered ${res.status}: ${res.body}`);
      const page = JSON.parse(res.body) as SessionPage;
      sessions.push(...page.sessions);
      bytes += Buffer.byteLength(res.body);
      requests++;
      cursor = page.next_cursor;
    } while (cursor !== null);
    return { sessions, bytes, requests };
  }

  /** Milliseconds from sending the request to the last byte of the answer. */
  timed(urlPath: string): Promise<{ ms: number; bytes: number }> {
    return new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      const req = http.request({ host: '127.0.0.1', port: this.port, path: urlPath, agent: this.agent }, (res) => {
        let bytes = 0;
        res.on('data', (c: Buffer) => (bytes += c.length));
        res.on('end', () => {
          if (res.statusCode !== 200) return reject(new Error(`GET ${urlPath} answered ${res.statusCode}`));
          resolve({ ms: Number(process.hrtime.bigint() - t0) / 1e6, bytes });
        });
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }
}

async function memOf(child: IpcChild): Promise<Mem> {
  return (await child.request<{ mem: Mem }>('mem')).mem;
}

runBenchmark('sessions-list', main);
