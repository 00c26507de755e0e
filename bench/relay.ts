/**
 * Relay benchmark: the same websockify (in front of a TCP echo server) reached three ways,
 * measured side by side in one run:
 *
 *   direct  ws client → websockify
 *   sortie  ws client → Sortie (real server, own process) → websockify
 *   chp     ws client → configurable-http-proxy (own process) → websockify
 *
 * Throughput (64 KiB frames, fixed byte budget, 1 and 4 streams), round-trip latency of
 * 64-byte messages (1 and 50 concurrent streams), and the CPU the relaying process spends
 * per GB. Paths are interleaved (A B C, A B C, …) after a warm-up. Prints a table, writes
 * JSON to bench/results/. Exits 0 whatever the figures; non-zero only if the bench broke.
 *
 *   npx tsx bench/relay.ts [--rounds 6] [--mib 64] [--echo child|inproc] [--placement none|split]
 *                          [--sortie-rev REV] [--tsx] [--max-seconds 150] [--quick]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { childPids, installCleanup, machineCpu, procCpuSeconds, procSchedstat, procStat, shutdown } from './lib/procs.js';
import { sleep } from '../server/test/support/wait.js';
import { log, machineDescription, runBenchmark } from './lib/cli.js';
import { exportRevision, startStack, type BenchPath, type GcStats, type PathName, type Stack } from './lib/stack.js';
import { median, percentile, round, sortedCopy } from './lib/stats.js';
import { closeStreams, latency, openStreams, throughput, verifyEcho } from './lib/ws-load.js';

const MiB = 1024 * 1024;
const FRAME = 64 * 1024;
const PING = 64;
const TARGET_THROUGHPUT_RATIO = 0.9;
const TARGET_ADDED_P99_MS = 1;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '6' },
    mib: { type: 'string', default: '64' },
    window: { type: 'string', default: '1024' },
    echo: { type: 'string', default: 'child' },
    'max-seconds': { type: 'string', default: '150' },
    'sortie-rev': { type: 'string' },
    'relay-only': { type: 'boolean', default: false },
    placement: { type: 'string', default: 'none' },
    tsx: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const ROUNDS = quick ? 1 : positive('rounds', args.rounds);
const BUDGET = (quick ? 16 : positive('mib', args.mib)) * MiB; // bytes per throughput run, split over its streams
const WINDOW = positive('window', args.window) * 1024; // bytes in flight per stream
const ECHO_MODE: 'child' | 'inproc' = args.echo === 'inproc' ? 'inproc' : 'child';
const PLACEMENT: 'none' | 'split' = args.placement === 'split' ? 'split' : 'none';
if (PLACEMENT === 'split' && os.cpus().length < 2) throw new Error('--placement split needs at least 2 CPUs');
const RTT_1 = quick ? 500 : 2000; // round trips per round at 1 stream
const RTT_50 = quick ? 50 : 200; // round trips per stream per round at 50 streams
/** Measurement stops after the round that crosses this, so a loaded machine can't run on and on. */
const MAX_SECONDS = positive('max-seconds', args['max-seconds']);

interface ThroughputRun {
  round: number;
  streams: number;
  mbPerSec: number;
  seconds: number;
  bytes: number;
  /** User+system CPU seconds of the relaying process during the run. */
  relayCpuSeconds?: number;
  /** The relaying process's user/system split and minor page faults per MB echoed (/proc). */
  relayKernel?: { userSeconds: number; systemSeconds: number; minorFaultsPerMB: number };
  /** CPU use of each process during the run, in cores (1 = one CPU busy throughout). */
  cores: { client: number; websockify: number; echo?: number; relay?: number };
  /** Share of the machine's CPU in use during the run, and the part not used by this benchmark. */
  machineBusy: number;
  foreignBusy: number;
}

interface LatencyRun {
  round: number;
  streams: number;
  p50: number;
  p99: number;
  /** Seconds the relaying process sat runnable waiting for a CPU (run-queue delay), per second of run. */
  relayRunqueueWaitPerSec?: number;
  /** Relaying process, per round trip: microseconds on a CPU, and microseconds runnable but waiting for one. */
  relayCpuUsPerRtt?: number;
  relayWaitUsPerRtt?: number;
  relayGc?: GcStats;
}

type PerPath<T> = Record<PathName, T>;
/** One T per measured path (relay-only only when asked for). */
const perPath = <T>(names: PathName[], make: () => T): PerPath<T> => Object.fromEntries(names.map((n) => [n, make()])) as PerPath<T>;

async function main(): Promise<number> {
  installCleanup();
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  let stack: Stack | undefined;
  const exported = args['sortie-rev'] ? exportRevision(args['sortie-rev']) : undefined;
  const sortieVersion = describeSortie(args['sortie-rev']);
  try {
    stack = await startStack({ echo: ECHO_MODE, log, sortieRoot: exported?.root, sortieRuntime: args.tsx ? 'tsx' : 'compiled', placement: PLACEMENT, relayOnly: args['relay-only'] });
    const { paths } = stack;
    const NAMES = paths.map((p) => p.name);

    // ---- correctness and warm-up -----------------------------------------------------
    for (const p of paths) {
      const [ws] = await openStreams(p.url, 1);
      await verifyEcho(ws!);
      await throughput([ws!], { bytesPerStream: (quick ? 8 : 32) * MiB, frameSize: FRAME, window: WINDOW });
      await latency([ws!], { roundTrips: 500, size: PING });
      closeStreams([ws!]);
      const many = await openStreams(p.url, 50);
      await latency(many, { roundTrips: 20, size: PING });
      closeStreams(many);
      await p.gc?.();
      log(`checked and warmed up ${p.name}`);
    }

    // ---- measurement, interleaved ----------------------------------------------------
    const tput = perPath<ThroughputRun[]>(NAMES, () => []);
    const lat = perPath<LatencyRun[]>(NAMES, () => []);
    const rtt1 = perPath<number[]>(NAMES, () => []);
    const rtt50 = perPath<number[]>(NAMES, () => []);
    const measureStart = Date.now();
    let rounds = 0;

    for (let round = 1; round <= ROUNDS; round++) {
      for (const streams of [1, 4]) {
        for (const p of paths) {
          const run = await measureThroughput(stack, p, streams);
          tput[p.name].push({ round, ...run });
          log(`round ${round} throughput ${streams}x ${p.name.padEnd(6)} ${run.mbPerSec.toFixed(1).padStart(6)} MB/s`);
        }
      }
      for (const [streams, roundTrips, sink] of [
        [1, RTT_1, rtt1],
        [50, RTT_50, rtt50],
      ] as const) {
        for (const p of paths) {
          const { samples, ...run } = await measureLatency(p, streams, roundTrips);
          for (const v of samples) sink[p.name].push(v);
          lat[p.name].push({ round, ...run });
          log(`round ${round} latency ${String(streams).padStart(2)}x ${p.name.padEnd(6)} p50 ${run.p50.toFixed(3)} p99 ${run.p99.toFixed(3)} ms`);
        }
      }
      rounds = round;
      if ((Date.now() - measureStart) / 1000 > MAX_SECONDS && round < ROUNDS) {
        log(`stopping after ${round} rounds: past --max-seconds ${MAX_SECONDS}`);
        break;
      }
    }

    // ---- figures ---------------------------------------------------------------------
    const rows = NAMES.map((name) => {
      const runs = (streams: number) => tput[name].filter((r) => r.streams === streams);
      const s1 = sortedCopy(rtt1[name]);
      const s50 = sortedCopy(rtt50[name]);
      const cpuRuns = tput[name].filter((r) => r.relayCpuSeconds !== undefined);
      const relayedBytes = cpuRuns.reduce((a, r) => a + 2 * r.bytes, 0); // each echoed byte crosses the relay twice
      const cpuSeconds = cpuRuns.reduce((a, r) => a + r.relayCpuSeconds!, 0);
      const lat50 = lat[name].filter((r) => r.streams === 50);
      return {
        path: name,
        mbPerSec1: median(runs(1).map((r) => r.mbPerSec)),
        mbPerSec4: median(runs(4).map((r) => r.mbPerSec)),
        p50_1: percentile(s1, 50),
        p99_1: percentile(s1, 99),
        p50_50: percentile(s50, 50),
        p99_50: percentile(s50, 99),
        cpuSecondsPerGB: cpuRuns.length > 0 ? cpuSeconds / (relayedBytes / 1e9) : undefined,
        /** Medians over the 50-stream latency runs. */
        runqueueWaitPerSec50: medianOf(lat50, (r) => r.relayRunqueueWaitPerSec),
        cpuUsPerRtt50: medianOf(lat50, (r) => r.relayCpuUsPerRtt),
        waitUsPerRtt50: medianOf(lat50, (r) => r.relayWaitUsPerRtt),
        cpuUsPerRtt1: medianOf(lat[name].filter((r) => r.streams === 1), (r) => r.relayCpuUsPerRtt),
        gc50: lat50.some((r) => r.relayGc)
          ? {
              count: lat50.reduce((a, r) => a + r.relayGc!.count, 0),
              totalMs: lat50.reduce((a, r) => a + r.relayGc!.totalMs, 0),
              maxMs: Math.max(...lat50.map((r) => r.relayGc!.maxMs)),
            }
          : undefined,
        samples: { rtt1: s1.length, rtt50: s50.length },
        throughputRuns: tput[name],
        latencyRuns: lat[name],
      };
    });
    const by = Object.fromEntries(rows.map((r) => [r.path, r])) as PerPath<(typeof rows)[number]>;

    // Same-round comparisons (paths ran seconds apart) show how much the figures move with
    // the machine's load; the verdicts use the pooled figures in the table.
    const paired = (name: PathName, streams: number) =>
      tput[name].filter((r) => r.streams === streams).map((r, i) => r.mbPerSec / tput.direct.filter((d) => d.streams === streams)[i]!.mbPerSec);
    const pairedP99 = (name: PathName, streams: number) =>
      lat[name].filter((r) => r.streams === streams).map((r, i) => r.p99 - lat.direct.filter((d) => d.streams === streams)[i]!.p99);
    const ratios = {
      sortieOverDirect1: by.sortie.mbPerSec1 / by.direct.mbPerSec1,
      sortieOverDirect4: by.sortie.mbPerSec4 / by.direct.mbPerSec4,
      chpOverDirect1: by.chp.mbPerSec1 / by.direct.mbPerSec1,
      chpOverDirect4: by.chp.mbPerSec4 / by.direct.mbPerSec4,
      sortieAddedP99_1: by.sortie.p99_1 - by.direct.p99_1,
      sortieAddedP99_50: by.sortie.p99_50 - by.direct.p99_50,
      chpAddedP99_1: by.chp.p99_1 - by.direct.p99_1,
      chpAddedP99_50: by.chp.p99_50 - by.direct.p99_50,
      sortieAddedP50_1: by.sortie.p50_1 - by.direct.p50_1,
      sortieAddedP50_50: by.sortie.p50_50 - by.direct.p50_50,
      chpAddedP50_1: by.chp.p50_1 - by.direct.p50_1,
      chpAddedP50_50: by.chp.p50_50 - by.direct.p50_50,
    };
    const perRound = {
      sortieOverDirect1: paired('sortie', 1),
      sortieOverDirect4: paired('sortie', 4),
      chpOverDirect1: paired('chp', 1),
      chpOverDirect4: paired('chp', 4),
      sortieAddedP99_50: pairedP99('sortie', 50),
      chpAddedP99_50: pairedP99('chp', 50),
    };
    const verdicts = {
      throughput: ratios.sortieOverDirect1 >= TARGET_THROUGHPUT_RATIO ? 'PASS' : 'FAIL',
      addedP99: ratios.sortieAddedP99_50 <= TARGET_ADDED_P99_MS ? 'PASS' : 'FAIL',
    };
    const allRuns = NAMES.flatMap((n) => tput[n]);
    const load = {
      loadavgBefore: loadBefore.map((v) => round(v, 2)),
      loadavgAfter: os.loadavg().map((v) => round(v, 2)),
      /** Median share of the machine's CPU used by processes outside this benchmark during throughput runs. */
      foreignBusyMedian: median(allRuns.map((r) => r.foreignBusy)),
      foreignBusyMax: Math.max(...allRuns.map((r) => r.foreignBusy)),
    };
    const machine = relayMachineDescription();

    // ---- report ----------------------------------------------------------------------
    const f1 = (v: number) => v.toFixed(1);
    const f2 = (v: number) => v.toFixed(2);
    const f3 = (v: number) => v.toFixed(3);
    const ms = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)} ms`;
    const range = (v: number[], fmt: (x: number) => string) => (v.length > 1 ? `[rounds ${fmt(Math.min(...v))}..${fmt(Math.max(...v))}]` : '');
    const lines: string[] = [];
    lines.push(`Sortie relay benchmark  ${startedAt.toISOString()}`);
    lines.push(machine);
    lines.push(sortieVersion);
    lines.push(
      `${rounds} interleaved rounds. Throughput: ${BUDGET / MiB} MiB of 64 KiB frames per run, split over the streams, ` +
        `${WINDOW / 1024} KiB in flight per stream; MB/s = 10^6 payload bytes echoed per second, median of rounds.`,
    );
    lines.push(
      `Latency: 64 B ping-pong, ${RTT_1} per round at 1 stream, ${RTT_50} per stream per round at 50 streams, percentiles of pooled samples ` +
        `(${by.direct.samples.rtt1} / ${by.direct.samples.rtt50} per path).`,
    );
    lines.push(
      `Processes: load generator (this process${ECHO_MODE === 'inproc' ? ', also the echo server' : ''}), ` +
        `${ECHO_MODE === 'child' ? 'echo server, ' : ''}websockify (a fork per connection), Sortie, configurable-http-proxy; ` +
        (PLACEMENT === 'split' ? 'pinned: load generator, echo and websockify on CPU 0, Sortie and CHP on CPU 1.' : 'no CPU pinning.'),
    );
    lines.push('');
    lines.push(
      `${'path'.padEnd(11)}${'MB/s 1x'.padStart(9)}${'MB/s 4x'.padStart(9)}${'p50/p99 ms 1x'.padStart(17)}${'p50/p99 ms 50x'.padStart(18)}${'CPU s/GB'.padStart(10)}`,
    );
    for (const r of rows) {
      lines.push(
        `${r.path.padEnd(11)}${f1(r.mbPerSec1).padStart(9)}${f1(r.mbPerSec4).padStart(9)}` +
          `${`${f3(r.p50_1)}/${f3(r.p99_1)}`.padStart(17)}${`${f3(r.p50_50)}/${f3(r.p99_50)}`.padStart(18)}` +
          `${(r.cpuSecondsPerGB === undefined ? '-' : f2(r.cpuSecondsPerGB)).padStart(10)}`,
      );
    }
    lines.push('');
    lines.push(
      `throughput sortie/direct  1x ${f3(ratios.sortieOverDirect1)} ${range(perRound.sortieOverDirect1, f2)}  4x ${f3(ratios.sortieOverDirect4)} ${range(perRound.sortieOverDirect4, f2)}` +
        `  target >= ${TARGET_THROUGHPUT_RATIO} at 1x: ${verdicts.throughput}`,
    );
    lines.push(
      `throughput chp/direct     1x ${f3(ratios.chpOverDirect1)} ${range(perRound.chpOverDirect1, f2)}  4x ${f3(ratios.chpOverDirect4)} ${range(perRound.chpOverDirect4, f2)}`,
    );
    lines.push(
      `added p99 sortie          1x ${ms(ratios.sortieAddedP99_1)}  50x ${ms(ratios.sortieAddedP99_50)} ${range(perRound.sortieAddedP99_50, f1)}` +
        `  target <= ${TARGET_ADDED_P99_MS} ms at 50x: ${verdicts.addedP99}`,
    );
    lines.push(`added p99 chp             1x ${ms(ratios.chpAddedP99_1)}  50x ${ms(ratios.chpAddedP99_50)} ${range(perRound.chpAddedP99_50, f1)}`);
    lines.push(`added p50 sortie          1x ${ms(ratios.sortieAddedP50_1)}  50x ${ms(ratios.sortieAddedP50_50)}`);
    lines.push(`added p50 chp             1x ${ms(ratios.chpAddedP50_1)}  50x ${ms(ratios.chpAddedP50_50)}`);
    const ro = by['relay-only'];
    if (ro) {
      lines.push(
        `relay-only (Sortie's StreamRelay on a bare http server): throughput/direct 1x ${f3(ro.mbPerSec1 / by.direct.mbPerSec1)}  4x ${f3(ro.mbPerSec4 / by.direct.mbPerSec4)}; ` +
          `added p99 1x ${ms(ro.p99_1 - by.direct.p99_1)}  50x ${ms(ro.p99_50 - by.direct.p99_50)}; CPU ${f2(ro.cpuSecondsPerGB ?? NaN)} s/GB vs sortie ${f2(by.sortie.cpuSecondsPerGB ?? NaN)}`,
      );
    }
    lines.push('');
    lines.push(`CPU s/GB: the relaying process's user+system CPU seconds per 10^9 payload bytes it relayed (both directions), over all throughput runs.`);
    const us = (v: number | undefined) => (v === undefined ? '-' : `${v.toFixed(0)} us`);
    lines.push(
      `Relay process per round trip, 50x: sortie ${us(by.sortie.cpuUsPerRtt50)} on CPU + ${us(by.sortie.waitUsPerRtt50)} waiting for a CPU, ` +
        `chp ${us(by.chp.cpuUsPerRtt50)} + ${us(by.chp.waitUsPerRtt50)}; 1x on CPU: sortie ${us(by.sortie.cpuUsPerRtt1)}, chp ${us(by.chp.cpuUsPerRtt1)} (medians of runs, /proc schedstat).`,
    );
    lines.push(
      `Sortie GC pauses during 50x latency runs: ${by.sortie.gc50?.count ?? 0}, totalling ${f1(by.sortie.gc50?.totalMs ?? 0)} ms (longest ${f1(by.sortie.gc50?.maxMs ?? 0)} ms).`,
    );
    const coresLine = (name: PathName) => {
      const one = tput[name].filter((r) => r.streams === 1);
      const pct = (pick: (r: ThroughputRun) => number | undefined) => {
        const v = medianOf(one, pick);
        return v === undefined ? undefined : `${(v * 100).toFixed(0)}%`;
      };
      const parts = [
        `client ${pct((r) => r.cores.client)}`,
        `websockify ${pct((r) => r.cores.websockify)}`,
        ...(stack!.echoCpu ? [`echo ${pct((r) => r.cores.echo)}`] : []),
        ...(name !== 'direct' ? [`${name} ${pct((r) => r.cores.relay)}`] : []),
      ];
      return `${name}: ${parts.join(', ')}`;
    };
    lines.push(`CPU by process during 1x throughput runs (% of one core, medians): ${NAMES.map(coresLine).join('; ')}.`);
    lines.push(
      `Machine: load average ${load.loadavgBefore.join(' ')} before, ${load.loadavgAfter.join(' ')} after; CPU used by processes outside the benchmark ` +
        `during throughput runs: median ${(load.foreignBusyMedian * 100).toFixed(0)}%, max ${(load.foreignBusyMax * 100).toFixed(0)}% of the machine.`,
    );
    console.log(`\n${lines.join('\n')}`);

    const resultsDir = path.resolve(import.meta.dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `relay-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(
        {
          startedAt: startedAt.toISOString(),
          machine,
          sortie: sortieVersion,
          settings: {
            rounds,
            roundsRequested: ROUNDS,
            budgetBytes: BUDGET,
            frameBytes: FRAME,
            windowBytes: WINDOW,
            pingBytes: PING,
            rtt1PerRound: RTT_1,
            rtt50PerStreamPerRound: RTT_50,
            echo: ECHO_MODE,
            placement: PLACEMENT,
            sortieRuntime: args.tsx ? 'tsx' : 'compiled',
            quick,
          },
          targets: { throughputRatio: TARGET_THROUGHPUT_RATIO, addedP99Ms: TARGET_ADDED_P99_MS },
          paths: rows,
          ratios,
          perRound,
          verdicts,
          load,
          table: lines,
        },
        (_k, v: unknown) => (typeof v === 'number' ? round(v, 4) : v),
        2,
      )}\n`,
    );
    console.log(`\nwrote ${path.relative(process.cwd(), file)}`);
    return 0;
  } finally {
    await stack?.close();
    await shutdown();
    exported?.remove();
  }
}

/** Which server code ran: a commit, plus whether the working tree's server differed from it. */
function describeSortie(rev: string | undefined): string {
  const git = (...a: string[]) => execFileSync('git', a, { encoding: 'utf8' }).trim();
  try {
    const how = args.tsx ? 'run from source through tsx' : 'compiled with tsc, run by node';
    if (rev) return `Sortie server from commit ${git('rev-parse', '--short', `${rev}^{commit}`)} (git archive of ${rev}), ${how}`;
    const dirty = git('status', '--porcelain', '--', 'server/src') !== '';
    return `Sortie server from the working tree at ${git('rev-parse', '--short', 'HEAD')}${dirty ? ' with uncommitted server changes' : ''}, ${how}`;
  } catch {
    return 'Sortie server (version unknown)';
  }
}

function medianOf<T>(items: T[], pick: (item: T) => number | undefined): number | undefined {
  const values = items.map(pick).filter((v): v is number => v !== undefined);
  return values.length > 0 ? median(values) : undefined;
}

/** CPU seconds used so far by each part of this benchmark (to tell its load from other tenants', and find the bottleneck). */
async function benchCpu(stack: Stack, p: BenchPath): Promise<CpuBreakdown> {
  const self = process.cpuUsage();
  let websockify = 0;
  for (const pid of childPids(stack.websockifyPid)) {
    try {
      websockify += procCpuSeconds(pid);
    } catch {
      /* exited */
    }
  }
  const relays = await Promise.all(stack.paths.map((q) => (q.cpu ? q.cpu() : 0)));
  return {
    client: (self.user + self.system) / 1e6,
    echo: stack.echoCpu ? await stack.echoCpu() : 0,
    websockify,
    relay: p.cpu ? relays[stack.paths.indexOf(p)]! : 0,
    total: 0,
    allRelays: relays.reduce((a, b) => a + b, 0),
  };
}

type CpuBreakdown = { client: number; echo: number; websockify: number; relay: number; total: number; allRelays: number };

async function measureThroughput(stack: Stack, p: BenchPath, streams: number): Promise<Omit<ThroughputRun, 'round'>> {
  const conns = await openStreams(p.url, streams);
  try {
    await sleep(100); // let websockify's fresh forks settle
    const c0 = await benchCpu(stack, p);
    const k0 = p.pid ? procStat(p.pid) : undefined;
    const m0 = machineCpu();
    const r = await throughput(conns, { bytesPerStream: BUDGET / streams, frameSize: FRAME, window: WINDOW });
    const m1 = machineCpu();
    const k1 = p.pid ? procStat(p.pid) : undefined;
    const c1 = await benchCpu(stack, p);
    const machineSeconds = (m1.total - m0.total) / 100; // jiffies at USER_HZ=100, all CPUs
    const busy = (m1.busy - m0.busy) / (m1.total - m0.total);
    const used = (k: keyof CpuBreakdown) => c1[k] - c0[k];
    const ours = used('client') + used('echo') + used('websockify') + used('allRelays');
    return {
      streams,
      mbPerSec: r.mbPerSec,
      seconds: r.seconds,
      bytes: r.bytes,
      relayCpuSeconds: p.cpu ? used('relay') : undefined,
      relayKernel:
        k0 && k1
          ? { userSeconds: k1.user - k0.user, systemSeconds: k1.system - k0.system, minorFaultsPerMB: (k1.minorFaults - k0.minorFaults) / (r.bytes / 1e6) }
          : undefined,
      cores: {
        client: used('client') / r.seconds,
        websockify: used('websockify') / r.seconds,
        echo: stack.echoCpu ? used('echo') / r.seconds : undefined,
        relay: p.cpu ? used('relay') / r.seconds : undefined,
      },
      machineBusy: busy,
      foreignBusy: Math.max(0, busy - ours / machineSeconds),
    };
  } finally {
    closeStreams(conns);
    await sleep(100);
  }
}

async function measureLatency(p: BenchPath, streams: number, roundTrips: number): Promise<Omit<LatencyRun, 'round'> & { samples: Float64Array }> {
  const conns = await openStreams(p.url, streams);
  try {
    await sleep(100);
    await p.gc?.(); // reset
    const s0 = p.pid ? procSchedstat(p.pid) : undefined;
    const t0 = process.hrtime.bigint();
    const samples = await latency(conns, { roundTrips, size: PING });
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const s1 = p.pid ? procSchedstat(p.pid) : undefined;
    const gc = await p.gc?.();
    const sorted = sortedCopy(samples);
    return {
      streams,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
      relayRunqueueWaitPerSec: s0 && s1 ? (s1.waitSeconds - s0.waitSeconds) / seconds : undefined,
      relayCpuUsPerRtt: s0 && s1 ? ((s1.runSeconds - s0.runSeconds) * 1e6) / samples.length : undefined,
      relayWaitUsPerRtt: s0 && s1 ? ((s1.waitSeconds - s0.waitSeconds) * 1e6) / samples.length : undefined,
      relayGc: gc,
      samples,
    };
  } finally {
    closeStreams(conns);
    await sleep(100);
  }
}

/** The shared machine line plus the versions of the peers this benchmark compares with. */
function relayMachineDescription(): string {
  let websockify = 'websockify (version unknown)';
  try {
    websockify = `websockify ${execFileSync('dpkg-query', ['-W', '-f=${Version}', 'websockify'], { encoding: 'utf8' })}`;
  } catch {
    /* not a Debian package */
  }
  return `${machineDescription()}, ${websockify}, configurable-http-proxy 5.3.0`;
}

function positive(name: string, raw: string | undefined): number {
  const v = Number(raw);
  if (!Number.isFinite(v) || v <= 0) throw new Error(`--${name} must be a positive number, got "${raw}"`);
  return v;
}

runBenchmark('relay', main);
