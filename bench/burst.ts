/**
 * Launch-burst benchmark: N launches at once against one Sortie on the local runner (real
 * desktops, SORTIE_MAX_SESSIONS of them running, the rest queued), with /healthz probed
 * every 50 ms throughout. The peer, in the same run, is the same burst against the same
 * Sortie code on the fake runner (no processes): what the service and its queue cost
 * alone, so the ratio shows what starting real desktops on Sortie's own cores adds.
 *
 * Reports: time until every POST was answered, /healthz median/p99/max during it, how many
 * were created, refused (429) or failed, and whether the queue started sessions in arrival
 * order as room freed. Exits 0 whatever the figures; non-zero only if it broke.
 *
 *   npx tsx bench/burst.ts [--launches 200] [--max-sessions 20]
 */
import { parseArgs } from 'node:util';
import type { Runner } from '../server/src/runners/runner.js';
import { FakeRunner } from '../server/test/support/fake-runner.js';
import { startTestSortie } from '../server/test/support/harness.js';
import { sleep, waitFor, WaitTimedOut } from '../server/test/support/wait.js';
import { log, machineDescription, positiveInt, runBenchmark } from './lib/cli.js';
import { percentile, round, sortedCopy } from './lib/stats.js';

interface Figures {
  answeredMs: number;
  created: number;
  refused: number;
  failed: number;
  healthz: { median: number; p99: number; max: number; samples: number };
  inOrder: boolean;
}

type Listed = { id: string; status: string; queue_position: number | null };

async function burst(label: string, launches: number, maxSessions: number, runner?: Runner): Promise<Figures> {
  const sortie = await startTestSortie({
    name: `bench-burst-${label}`,
    env: { SORTIE_MAX_SESSIONS: String(maxSessions), SORTIE_MAX_SESSIONS_PER_USER: '3' },
    ...(runner ? { runner } : {}),
  });
  const json = <T>(method: string, path: string, body?: unknown) => sortie.api.request<T>(method, path, body);
  // A benchmark reports what it saw when something does not happen in time, rather than stop.
  const inTime = (waiting: Promise<unknown>) => waiting.then(
    () => true,
    (err: unknown) => {
      if (err instanceof WaitTimedOut) return false;
      throw err;
    },
  );
  try {
    const latencies: number[] = [];
    let probing = true;
    const prober = (async () => {
      while (probing) {
        const t = performance.now();
        await json('GET', '/healthz');
        latencies.push(performance.now() - t);
        await sleep(50);
      }
    })();
    const t0 = performance.now();
    // Three launches per user: every one is within SORTIE_MAX_SESSIONS_PER_USER.
    const replies = await Promise.all(
      Array.from({ length: launches }, (_, i) => json<{ id: string }>('POST', '/api/sessions', { app_id: 'xterm', user_id: `burst-${Math.floor(i / 3)}` })),
    );
    const answeredMs = performance.now() - t0;
    probing = false;
    await prober;

    const ids = replies.filter((r) => r.status === 201).map((r) => r.body.id);
    let list: Listed[] = [];
    await inTime(
      waitFor(
        async () => {
          list = (await json<{ sessions: Listed[] }>('GET', '/api/sessions')).body.sessions;
          return !list.some((s) => s.status === 'creating');
        },
        { what: 'no session to be creating', timeoutMs: 120_000, intervalMs: 250 },
      ),
    );
    // Room frees: the next queued sessions, by place, start.
    const next = list.filter((s) => s.status === 'queued').sort((a, b) => a.queue_position! - b.queue_position!).slice(0, 3).map((s) => s.id);
    for (const s of list.filter((x) => x.status === 'running').slice(0, 3)) await json('DELETE', `/api/sessions/${s.id}`);
    const inOrder = await inTime(
      waitFor(
        async () => {
          const now = await Promise.all(next.map(async (id) => (await json<Listed>('GET', `/api/sessions/${id}`)).body.status));
          return now.every((s) => s === 'creating' || s === 'running');
        },
        { what: 'the next queued sessions to start', timeoutMs: 30_000, intervalMs: 250 },
      ),
    );
    const failed = list.filter((s) => s.status === 'failed').length;
    for (const id of ids) await json('DELETE', `/api/sessions/${id}`);
    const sorted = sortedCopy(latencies);
    return {
      answeredMs: round(answeredMs),
      created: ids.length,
      refused: replies.filter((r) => r.status === 429).length,
      failed,
      healthz: { median: round(percentile(sorted, 50)), p99: round(percentile(sorted, 99)), max: round(sorted[sorted.length - 1] ?? 0), samples: sorted.length },
      inOrder,
    };
  } finally {
    await sortie.cleanup();
  }
}

runBenchmark('burst', async () => {
  const { values } = parseArgs({ options: { launches: { type: 'string', default: '200' }, 'max-sessions': { type: 'string', default: '20' } } });
  const launches = positiveInt('launches', values.launches);
  const maxSessions = positiveInt('max-sessions', values['max-sessions']);
  log(`fake runner: ${launches} launches, ${maxSessions} at a time`);
  const peer = await burst('fake', launches, maxSessions, new FakeRunner({ startLatencyMs: () => 500 }));
  log(`local runner: ${launches} launches, ${maxSessions} at a time (real desktops)`);
  const local = await burst('local', launches, maxSessions);
  console.log(`# Launch burst, ${launches} at once, SORTIE_MAX_SESSIONS=${maxSessions}\n${machineDescription()}\n`);
  console.log('| runner | all answered (ms) | created | 429 | failed | /healthz median | p99 | max | queue in order |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const [name, f] of [['fake (peer)', peer], ['local', local]] as const) {
    console.log(`| ${name} | ${f.answeredMs} | ${f.created} | ${f.refused} | ${f.failed} | ${f.healthz.median} | ${f.healthz.p99} | ${f.healthz.max} | ${f.inOrder} |`);
  }
  const ratio = (a: number, b: number) => (b > 0 ? round(a / b) : 'n/a');
  console.log(`\nlocal / fake: answered ${ratio(local.answeredMs, peer.answeredMs)}x, /healthz p99 ${ratio(local.healthz.p99, peer.healthz.p99)}x, max ${ratio(local.healthz.max, peer.healthz.max)}x`);
  return 0;
});
