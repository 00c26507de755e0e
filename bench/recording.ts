/**
 * Recording benchmark, two parts in one run:
 *
 *   1. relay cost: one Sortie with two apps identical but for `"recording"` (`off` and
 *      `always`), one session per stream, in front of the echoing VNC stand-in. Throughput
 *      (1 and 4 streams), round-trip latency (1 and 50 streams), Sortie's CPU per GB, and the
 *      bytes written to recordings; off and on alternate round by round (A B, B A, …), with
 *      websockify straight as the floor. Every recording file is read back afterwards and
 *      its RFB bytes checked against what was echoed.
 *   2. size per minute: a real desktop (Xvnc + xterm, bench/lib/vnc-stacks.ts) viewed in
 *      Chromium through Sortie with recording `always`: idle for a while, then the desktop
 *      bench's scripted scene over and over for a fixed time; bytes recorded per minute of
 *      each, from the recording file's own timestamps.
 *
 * Prints a table, writes JSON to bench/results/. Exits 0 whatever the figures; non-zero
 * only if the bench broke.
 *
 *   npx tsx bench/recording.ts [--rounds 4] [--mib 64] [--max-seconds 300] [--idle-seconds 60]
 *                              [--scene-seconds 60] [--skip-desktop] [--sortie-rev REV] [--quick]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { WebSocket } from 'ws';
import { buildSortie } from './lib/build.js';
import { log, machineDescription, positiveInt, runBenchmark } from './lib/cli.js';
import { serveViewer } from './lib/desktop-page.js';
import { counts, openViewer, settle, typeSceneLines } from './lib/desktop-scene.js';
import { forkTs, installCleanup, machineCpu, registerTempDir, shutdown, type IpcChild } from './lib/procs.js';
import { cpuOf, exportRevision, startStack, type Stack } from './lib/stack.js';
import { median, percentile, round, sortedCopy } from './lib/stats.js';
import { SCREEN, runSceneWindow, startNewStack, startTerminal } from './lib/vnc-stacks.js';
import { closeStreams, latency, openStreamsTo, throughput, verifyEcho } from './lib/ws-load.js';
import type { Recording, RecordingPage } from '../server/src/contract/recordings.js';
import { FramePayloads, KIND_SEGMENT, KIND_SERVER, MAGIC, MAX_RECORD_PAYLOAD, RECORD_HEADER, hasMagic, parseRecording } from '../server/src/recordings/recording-format.js';
import { Api } from '../server/test/support/api.js';
import { launchBrowser } from '../server/test/support/browser.js';
import { sleep, waitFor } from '../server/test/support/wait.js';

const MiB = 1024 * 1024;
const FRAME = 64 * 1024;
const WINDOW = 1024 * 1024;
const PING = 64;
const ECHO_CHECK = 200_000;

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '4' },
    mib: { type: 'string', default: '64' },
    'max-seconds': { type: 'string', default: '300' },
    'idle-seconds': { type: 'string', default: '60' },
    'scene-seconds': { type: 'string', default: '60' },
    'skip-desktop': { type: 'boolean', default: false },
    'sortie-rev': { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const ROUNDS = quick ? 1 : positiveInt('rounds', args.rounds);
const BUDGET = (quick ? 16 : positiveInt('mib', args.mib)) * MiB;
const MAX_SECONDS = positiveInt('max-seconds', args['max-seconds']);
const IDLE_SECONDS = quick ? 15 : positiveInt('idle-seconds', args['idle-seconds']);
const SCENE_SECONDS = quick ? 20 : positiveInt('scene-seconds', args['scene-seconds']);
const RTT_1 = quick ? 500 : 2000;
const RTT_50 = quick ? 50 : 200;
const MANY = 50;

type Mode = 'direct' | 'off' | 'on';

/** Where each mode's streams go: websockify itself, or one session of its own per stream. */
interface Target {
  mode: Mode;
  urls: string[];
  sessionIds: string[];
}

interface ThroughputRun {
  round: number;
  mode: Mode;
  streams: number;
  mbPerSec: number;
  bytes: number;
  /** Sortie's CPU seconds from the first byte until the last echo came back. */
  sortieCpuSeconds?: number;
  /** Sortie's CPU seconds after that, until the streams closed and (on) every segment was closed (a few admin API polls included). */
  tailCpuSeconds?: number;
  /** Bytes the recordings grew by, and how long after the streams closed every segment was closed. */
  recordedBytes?: number;
  /** recordedBytes over the bytes relayed down (a little over 1 when all was recorded: framing and record headers). */
  recordedShare?: number;
  closeMs?: number;
  machineBusy: number;
}

interface LatencyRun {
  round: number;
  mode: Mode;
  streams: number;
  p50: number;
  p99: number;
  /** Sortie's CPU per round trip (microseconds). */
  sortieCpuUsPerRtt?: number;
  recordedBytes?: number;
  closeMs?: number;
}

async function main(): Promise<number> {
  installCleanup();
  const startedAt = new Date();
  const load0 = os.loadavg();
  log(`machine: ${machineDescription()}; load average ${load0.map((l) => l.toFixed(2)).join(' ')}`);
  const exported = args['sortie-rev'] ? exportRevision(args['sortie-rev']) : undefined;
  try {
    const relay = await relayPart(exported?.root);
    const desktop = args['skip-desktop'] ? undefined : await desktopPart(exported?.root);
    const load1 = os.loadavg();
    const lines = [
      `Sortie recording benchmark  ${startedAt.toISOString()}`,
      `${machineDescription()}; Sortie ${args['sortie-rev'] ? `at ${args['sortie-rev']} (git archive)` : 'from the working tree'}, compiled, run by node`,
      `Load average at start ${load0.map((l) => l.toFixed(2)).join(' ')}, at end ${load1.map((l) => l.toFixed(2)).join(' ')}`,
      '',
      ...relay.table,
      ...(desktop ? ['', ...desktop.table] : []),
    ];
    console.log(`\n${lines.join('\n')}`);
    const resultsDir = path.resolve(import.meta.dirname, 'results');
    mkdirSync(resultsDir, { recursive: true });
    const file = path.join(resultsDir, `recording-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
    writeFileSync(
      file,
      `${JSON.stringify(
        { startedAt, machine: machineDescription(), loadAverage: { start: load0, end: load1 }, settings: { rounds: ROUNDS, budgetBytes: BUDGET, rtt1: RTT_1, rtt50: RTT_50, idleSeconds: IDLE_SECONDS, sceneSeconds: SCENE_SECONDS, quick }, relay: relay.json, desktop: desktop?.json, table: lines },
        (_k, v: unknown) => (typeof v === 'number' ? round(v, 4) : v),
        2,
      )}\n`,
    );
    log(`wrote ${path.relative(process.cwd(), file)}`);
    return 0;
  } finally {
    await shutdown();
    exported?.remove();
  }
}

// ---------------------------------------------------------------------------------------
// Part 1: what recording costs the relay
// ---------------------------------------------------------------------------------------

async function relayPart(sortieRoot: string | undefined) {
  let stack: Stack | undefined;
  try {
    stack = await startStack({
      echo: 'child',
      log,
      sortieRoot,
      chp: false,
      sortieEnv: { BENCH_RECORDED_APP: '1', BENCH_MAX_SESSIONS_PER_USER: String(2 * MANY + 10) },
    });
    const s = stack;
    const api = new Api(s.sortieUrl);
    const sortie = s.paths.find((p) => p.name === 'sortie')!;
    const wsBase = s.sortieUrl.replace(/^http/, 'ws');
    const sessions = async (app: string, recorded: boolean): Promise<Target> => {
      const ids: string[] = [];
      const urls: string[] = [];
      for (let i = 0; i < MANY; i++) {
        // The signed-in user's own sessions (sign-in is off: the anonymous admin's), since only the owner's stream is recorded.
        const session = await api.waitFor((await api.launch(app)).id, 'running', 10_000);
        if (session.recorded !== recorded) throw new Error(`a session of ${app} says recorded: ${session.recorded}`);
        ids.push(session.id);
        urls.push(`${wsBase}${session.websocket_url}`);
      }
      return { mode: recorded ? 'on' : 'off', urls, sessionIds: ids };
    };
    const targets: Record<Mode, Target> = {
      direct: { mode: 'direct', urls: Array.from({ length: MANY }, () => s.paths[0]!.url), sessionIds: [] },
      off: await sessions('bench-echo', false),
      on: await sessions('bench-echo-recorded', true),
    };
    log(`${MANY} sessions of bench-echo (recording off) and ${MANY} of bench-echo-recorded (always)`);

    /** RFB bytes echoed on each recorded session's streams: what its file must hold. */
    const expected = new Map<string, { bytes: number; segments: number }>(targets.on.sessionIds.map((id) => [id, { bytes: 0, segments: 0 }]));
    const recorded = new Recordings(api);
    const opened = async (t: Target, n: number): Promise<WebSocket[]> => {
      const conns = await openStreamsTo(t.urls.slice(0, n));
      if (t.mode === 'on') for (const id of t.sessionIds.slice(0, n)) expected.get(id)!.segments++;
      return conns;
    };
    const echoed = (t: Target, n: number, bytesPerStream: number) => {
      if (t.mode === 'on') for (const id of t.sessionIds.slice(0, n)) expected.get(id)!.bytes += bytesPerStream;
    };
    /** Closes the streams; for recorded ones, waits until every segment is closed (the next stream is recorded only then). */
    const closed = async (t: Target, conns: WebSocket[], before?: number): Promise<{ recordedBytes?: number; closeMs?: number }> => {
      closeStreams(conns);
      const t0 = Date.now();
      if (t.mode !== 'on') {
        await sleep(100);
        return {};
      }
      const after = await recorded.waitClosed(t.sessionIds.slice(0, conns.length), expected);
      return { recordedBytes: before === undefined ? undefined : after - before, closeMs: Date.now() - t0 };
    };

    // ---- correctness and warm-up -----------------------------------------------------
    for (const t of Object.values(targets)) {
      const before = await recorded.total();
      const [ws] = await opened(t, 1);
      await verifyEcho(ws!, ECHO_CHECK);
      await throughput([ws!], { bytesPerStream: (quick ? 8 : 32) * MiB, frameSize: FRAME, window: WINDOW });
      await latency([ws!], { roundTrips: 500, size: PING });
      echoed(t, 1, ECHO_CHECK + (quick ? 8 : 32) * MiB + 500 * PING);
      await closed(t, [ws!], before);
      const many = await opened(t, MANY);
      await latency(many, { roundTrips: 20, size: PING });
      echoed(t, MANY, 20 * PING);
      await closed(t, many);
      await sortie.gc?.();
      log(`checked and warmed up ${t.mode}`);
    }
    const warm = await recorded.list(targets.on.sessionIds);
    const notRecorded = targets.on.sessionIds.filter((id) => !warm.has(id));
    if (notRecorded.length > 0) throw new Error(`${notRecorded.length} recorded sessions have no recording after the warm-up`);

    // ---- measurement: off and on alternate (A B, B A, …), direct first as the floor -------
    const tput: ThroughputRun[] = [];
    const lat: LatencyRun[] = [];
    const samples = { 1: new Map<Mode, number[]>(), [MANY]: new Map<Mode, number[]>() } as Record<number, Map<Mode, number[]>>;
    // One measured run: `streams` fresh streams of `mode`, Sortie's CPU read around `work` and
    // after the close (the recording's tail), the echo checked, the recording's keep counted.
    const measured = async <R>(mode: Mode, streams: number, work: (conns: WebSocket[]) => Promise<R>, echoedPerStream: number) => {
      const t = targets[mode];
      const before = mode === 'on' ? await recorded.total() : undefined;
      const conns = await opened(t, streams);
      await sleep(100);
      const cpu0 = mode === 'direct' ? 0 : await sortie.cpu!();
      const m0 = machineCpu();
      const result = await work(conns);
      const m1 = machineCpu();
      const cpu1 = mode === 'direct' ? 0 : await sortie.cpu!();
      echoed(t, streams, echoedPerStream);
      const end = await closed(t, conns, before);
      const cpu2 = mode === 'direct' ? 0 : await sortie.cpu!();
      return { result, end, sortieCpuSeconds: cpu1 - cpu0, tailCpuSeconds: cpu2 - cpu1, machineBusy: (m1.busy - m0.busy) / (m1.total - m0.total) };
    };
    const measureStart = Date.now();
    let rounds = 0;
    for (let round = 1; round <= ROUNDS; round++) {
      const order: Mode[] = round % 2 === 1 ? ['direct', 'off', 'on'] : ['direct', 'on', 'off'];
      for (const streams of [1, 4]) {
        for (const mode of order) {
          const { result: r, end, sortieCpuSeconds, tailCpuSeconds, machineBusy } = await measured(
            mode,
            streams,
            (conns) => throughput(conns, { bytesPerStream: BUDGET / streams, frameSize: FRAME, window: WINDOW }),
            BUDGET / streams,
          );
          tput.push({
            round,
            mode,
            streams,
            mbPerSec: r.mbPerSec,
            bytes: r.bytes,
            ...(end.recordedBytes !== undefined ? { recordedShare: end.recordedBytes / r.bytes } : {}),
            ...(mode === 'direct' ? {} : { sortieCpuSeconds, tailCpuSeconds }),
            ...end,
            machineBusy,
          });
          log(`round ${round} throughput ${streams}x ${mode.padEnd(6)} ${r.mbPerSec.toFixed(1).padStart(6)} MB/s${end.recordedBytes !== undefined ? `, recorded ${(end.recordedBytes / 1e6).toFixed(1)} of ${(r.bytes / 1e6).toFixed(1)} MB, closed ${end.closeMs} ms after` : ''}`);
        }
      }
      for (const [streams, roundTrips] of [
        [1, RTT_1],
        [MANY, RTT_50],
      ] as const) {
        for (const mode of order) {
          const { result: rtts, end, sortieCpuSeconds } = await measured(mode, streams, (conns) => latency(conns, { roundTrips, size: PING }), roundTrips * PING);
          const pool = samples[streams]!.get(mode) ?? [];
          for (const v of rtts) pool.push(v);
          samples[streams]!.set(mode, pool);
          const sorted = sortedCopy(rtts);
          const run: LatencyRun = {
            round,
            mode,
            streams,
            p50: percentile(sorted, 50),
            p99: percentile(sorted, 99),
            ...(mode === 'direct' ? {} : { sortieCpuUsPerRtt: (sortieCpuSeconds * 1e6) / rtts.length }),
            ...end,
          };
          lat.push(run);
          log(`round ${round} latency ${String(streams).padStart(2)}x ${mode.padEnd(6)} p50 ${run.p50.toFixed(3)} p99 ${run.p99.toFixed(3)} ms`);
        }
      }
      rounds = round;
      if ((Date.now() - measureStart) / 1000 > MAX_SECONDS && round < ROUNDS) {
        log(`stopping after ${round} rounds: past --max-seconds ${MAX_SECONDS}`);
        break;
      }
    }

    // ---- the files, read back ----------------------------------------------------------
    const rows = await recorded.list(targets.on.sessionIds);
    const check = await checkFiles(s.dataDir, rows, expected);
    log(`recording files: ${check.summary}`);

    return reportRelay({ tput, lat, samples, rounds, check, rows: [...rows.values()] });
  } finally {
    await stack?.close();
  }
}

/** The recordings of the bench's sessions, through the admin API (sign-in is off: the caller is an admin). */
class Recordings {
  constructor(private readonly api: Api) {}

  /** Every recording, newest first, all pages. */
  async all(): Promise<Recording[]> {
    const out: Recording[] = [];
    let cursor: string | null = null;
    do {
      const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const res = await this.api.request<RecordingPage>('GET', `/api/admin/recordings?limit=100${q}`);
      if (res.status !== 200) throw new Error(`GET /api/admin/recordings: ${res.status} ${res.text}`);
      out.push(...res.body.recordings);
      cursor = res.body.next_cursor;
    } while (cursor);
    return out;
  }

  async list(sessionIds: string[]): Promise<Map<string, Recording>> {
    const wanted = new Set(sessionIds);
    return new Map((await this.all()).filter((r) => wanted.has(r.session_id)).map((r) => [r.session_id, r]));
  }

  /** Bytes of every recording so far, as their rows say (updated when a segment closes). */
  async total(): Promise<number> {
    return (await this.all()).reduce((a, r) => a + r.size_bytes, 0);
  }

  /**
   * Waits until each session's recording has every segment its streams opened, all closed;
   * answers the bytes of all recordings then. A segment the recorder stopped early (the disk
   * fell more than its buffer behind) is a figure, not a failure: the run's recorded bytes
   * then fall short of what was relayed, and the table says by how much.
   */
  async waitClosed(sessionIds: string[], expected: Map<string, { segments: number }>): Promise<number> {
    let rows = new Map<string, Recording>();
    await waitFor(
      async () => {
        rows = await this.list(sessionIds);
        return sessionIds.every((id) => {
          const r = rows.get(id);
          return r && r.ended_at !== null && r.segments === expected.get(id)!.segments;
        });
      },
      { what: `${sessionIds.length} recording(s) closed with every segment`, timeoutMs: 60_000, intervalMs: 100 },
    );
    return this.total();
  }
}

interface FileCheck {
  files: number;
  segments: number;
  fileBytes: number;
  rfbBytes: number;
  expectedRfbBytes: number;
  /** Files whose records are whole, whose segment count and RFB bytes match what was echoed. */
  ok: number;
  /** Recordings the recorder stopped early (disk behind): their RFB bytes fall short by design. */
  stoppedEarly: number;
  problems: string[];
  summary: string;
}

/**
 * Reads every recording file back, a block at a time: whole records only, one segment per
 * stream opened, and the RFB bytes inside the recorded WebSocket frames equal to the bytes
 * the streams echoed. Reports rather than throws: a mismatch is a finding about Sortie.
 */
async function checkFiles(dataDir: string, rows: Map<string, Recording>, expected: Map<string, { bytes: number; segments: number }>): Promise<FileCheck> {
  const check: FileCheck = { files: 0, segments: 0, fileBytes: 0, rfbBytes: 0, expectedRfbBytes: 0, ok: 0, stoppedEarly: 0, problems: [], summary: '' };
  for (const [sessionId, want] of expected) {
    check.expectedRfbBytes += want.bytes;
    const row = rows.get(sessionId);
    if (!row) {
      check.problems.push(`session ${sessionId}: no recording`);
      continue;
    }
    const file = path.join(dataDir, 'recordings', `${row.id}.rec`);
    const got = await walkRecording(file);
    check.files++;
    check.segments += got.segments;
    check.fileBytes += got.size;
    check.rfbBytes += got.rfbBytes;
    const wrong = [
      got.validLength !== got.size && `${got.size - got.validLength} bytes past the last whole record`,
      got.size !== row.size_bytes && `file ${got.size} bytes, row says ${row.size_bytes}`,
      got.segments !== want.segments && `${got.segments} segments, ${want.segments} streams opened`,
      // A recording stopped early holds less than was echoed, never more.
      (row.incomplete ? got.rfbBytes > want.bytes : got.rfbBytes !== want.bytes) && `${got.rfbBytes} RFB bytes, ${want.bytes} echoed`,
    ].filter(Boolean);
    if (row.incomplete) check.stoppedEarly++;
    if (wrong.length === 0) check.ok++;
    else check.problems.push(`recording ${row.id}: ${wrong.join('; ')}`);
  }
  check.summary =
    `${check.ok}/${expected.size} files whole and matching (${check.segments} segments, ${(check.fileBytes / 1e6).toFixed(1)} MB on disk, ` +
    `${(check.rfbBytes / 1e6).toFixed(1)} MB of RFB inside against ${(check.expectedRfbBytes / 1e6).toFixed(1)} MB echoed; ` +
    `${check.stoppedEarly} stopped early by the recorder, holding a prefix of each stream)` +
    (check.problems.length > 0 ? `; ${check.problems.slice(0, 3).join(' | ')}` : '');
  return check;
}

/** A recording file's records walked without holding it in memory: its segments, and the RFB bytes in its frames. */
async function walkRecording(file: string): Promise<{ size: number; validLength: number; segments: number; rfbBytes: number }> {
  const fh = await open(file, 'r');
  try {
    const size = (await fh.stat()).size;
    const head = Buffer.alloc(MAGIC.length);
    await fh.read(head, 0, head.length, 0);
    if (!hasMagic(head)) return { size, validLength: 0, segments: 0, rfbBytes: 0 };
    let pos = MAGIC.length;
    let segments = 0;
    let rfbBytes = 0;
    let frames = new FramePayloads();
    const header = Buffer.alloc(RECORD_HEADER);
    while (pos + RECORD_HEADER <= size) {
      await fh.read(header, 0, RECORD_HEADER, pos);
      const kind = header[0]!;
      const length = header.readUInt32BE(5);
      if ((kind !== KIND_SEGMENT && kind !== KIND_SERVER) || length > MAX_RECORD_PAYLOAD || pos + RECORD_HEADER + length > size) break;
      if (kind === KIND_SEGMENT) {
        segments++;
        frames = new FramePayloads();
      } else {
        const payload = Buffer.alloc(length);
        await fh.read(payload, 0, length, pos + RECORD_HEADER);
        for (const data of frames.push(payload)) rfbBytes += data.length;
      }
      pos += RECORD_HEADER + length;
    }
    return { size, validLength: pos, segments, rfbBytes };
  } finally {
    await fh.close();
  }
}

function reportRelay(r: { tput: ThroughputRun[]; lat: LatencyRun[]; samples: Record<number, Map<Mode, number[]>>; rounds: number; check: FileCheck; rows: Recording[] }) {
  const modes: Mode[] = ['direct', 'off', 'on'];
  const runs = (mode: Mode, streams: number) => r.tput.filter((t) => t.mode === mode && t.streams === streams);
  const pooled = (mode: Mode, streams: number, p: number) => percentile(sortedCopy(r.samples[streams]!.get(mode) ?? []), p);
  const cpuPerGB = (mode: Mode) => {
    const rs = r.tput.filter((t) => t.mode === mode && t.sortieCpuSeconds !== undefined);
    const bytes = rs.reduce((a, t) => a + 2 * t.bytes, 0); // each echoed byte crosses the relay twice
    return rs.length > 0 ? rs.reduce((a, t) => a + t.sortieCpuSeconds!, 0) / (bytes / 1e9) : undefined;
  };
  const rows = modes.map((mode) => ({
    mode,
    mbPerSec1: median(runs(mode, 1).map((t) => t.mbPerSec)),
    mbPerSec4: median(runs(mode, 4).map((t) => t.mbPerSec)),
    p50_1: pooled(mode, 1, 50),
    p99_1: pooled(mode, 1, 99),
    p50_50: pooled(mode, MANY, 50),
    p99_50: pooled(mode, MANY, 99),
    cpuSecondsPerGB: cpuPerGB(mode),
    recordedBytes: r.tput.filter((t) => t.mode === mode).reduce((a, t) => a + (t.recordedBytes ?? 0), 0) + r.lat.filter((t) => t.mode === mode).reduce((a, t) => a + (t.recordedBytes ?? 0), 0),
  }));
  const by = Object.fromEntries(rows.map((x) => [x.mode, x])) as Record<Mode, (typeof rows)[number]>;
  // The same round's on and off (run seconds apart): how far the load moved a ratio.
  const perRound = (pick: (mode: Mode, round: number) => number | undefined) => {
    const out: number[] = [];
    for (let round = 1; round <= r.rounds; round++) {
      const on = pick('on', round);
      const off = pick('off', round);
      if (on !== undefined && off !== undefined && off !== 0) out.push(on / off);
    }
    return out;
  };
  const tputOf = (streams: number) => (mode: Mode, round: number) => r.tput.find((t) => t.mode === mode && t.streams === streams && t.round === round)?.mbPerSec;
  const latOf = (streams: number, key: 'p50' | 'p99') => (mode: Mode, round: number) => r.lat.find((t) => t.mode === mode && t.streams === streams && t.round === round)?.[key];
  const cpuOfRound = (mode: Mode, round: number) => {
    const rs = r.tput.filter((t) => t.mode === mode && t.round === round);
    const bytes = rs.reduce((a, t) => a + 2 * t.bytes, 0);
    return rs.length > 0 ? rs.reduce((a, t) => a + (t.sortieCpuSeconds ?? 0), 0) / (bytes / 1e9) : undefined;
  };
  const ratios = {
    throughput1: { pooled: by.on.mbPerSec1 / by.off.mbPerSec1, rounds: perRound(tputOf(1)) },
    throughput4: { pooled: by.on.mbPerSec4 / by.off.mbPerSec4, rounds: perRound(tputOf(4)) },
    p50_1: { pooled: by.on.p50_1 / by.off.p50_1, rounds: perRound(latOf(1, 'p50')) },
    p99_1: { pooled: by.on.p99_1 / by.off.p99_1, rounds: perRound(latOf(1, 'p99')) },
    p50_50: { pooled: by.on.p50_50 / by.off.p50_50, rounds: perRound(latOf(MANY, 'p50')) },
    p99_50: { pooled: by.on.p99_50 / by.off.p99_50, rounds: perRound(latOf(MANY, 'p99')) },
    cpuPerGB: { pooled: (by.on.cpuSecondsPerGB ?? NaN) / (by.off.cpuSecondsPerGB ?? NaN), rounds: perRound(cpuOfRound) },
  };
  const onT = r.tput.filter((t) => t.mode === 'on');
  const relayedDown = onT.reduce((a, t) => a + t.bytes, 0);
  const recordedT = onT.reduce((a, t) => a + (t.recordedBytes ?? 0), 0);
  const closeMs = onT.map((t) => t.closeMs ?? 0);
  const short = onT.filter((t) => (t.recordedShare ?? 0) < 0.999);
  const closeMsLat = r.lat.filter((t) => t.mode === 'on').map((t) => t.closeMs ?? 0);
  const usPerRtt = (mode: Mode, streams: number) => median(r.lat.filter((t) => t.mode === mode && t.streams === streams).map((t) => t.sortieCpuUsPerRtt ?? NaN));
  const tailMs = (mode: Mode) => median(r.tput.filter((t) => t.mode === mode).map((t) => (t.tailCpuSeconds ?? 0) * 1000));
  const busy = median(r.tput.map((t) => t.machineBusy));

  const f1 = (v: number) => v.toFixed(1);
  const f2 = (v: number) => v.toFixed(2);
  const f3 = (v: number) => v.toFixed(3);
  const ms = (v: number) => `${v >= 0 ? '+' : ''}${v.toFixed(3)}`;
  const range = (v: number[]) => (v.length > 0 ? `[${f2(Math.min(...v))}..${f2(Math.max(...v))}]` : '');
  const ratioLine = (label: string, x: { pooled: number; rounds: number[] }) =>
    `  ${label.padEnd(26)} ${f3(x.pooled).padStart(6)}   rounds median ${x.rounds.length > 0 ? f2(median(x.rounds)) : '-'} ${range(x.rounds)}`;
  const table = [
    `Part 1: relay cost of recording. One Sortie, two apps identical but for "recording" (off / always), one session per stream, echo VNC stand-in behind websockify.`,
    `${r.rounds} rounds; in each, direct first, then off and on in turn (off, on / on, off). Throughput: ${BUDGET / MiB} MiB of 64 KiB frames per run over the streams; ` +
      `latency: 64 B ping-pong, ${RTT_1} at 1 stream, ${RTT_50} per stream at ${MANY}; p50/p99 of pooled samples; MB/s median of rounds.`,
    '',
    `${'path'.padEnd(9)}${'MB/s 1x'.padStart(9)}${'MB/s 4x'.padStart(9)}${'p50/p99 ms 1x'.padStart(17)}${`p50/p99 ms ${MANY}x`.padStart(19)}${'added p99 1x/50x'.padStart(19)}${'CPU s/GB'.padStart(10)}${'recorded MB'.padStart(13)}`,
    ...rows.map(
      (x) =>
        `${(x.mode === 'direct' ? 'direct' : `rec ${x.mode}`).padEnd(9)}${f1(x.mbPerSec1).padStart(9)}${f1(x.mbPerSec4).padStart(9)}` +
        `${`${f3(x.p50_1)}/${f3(x.p99_1)}`.padStart(17)}${`${f3(x.p50_50)}/${f3(x.p99_50)}`.padStart(19)}` +
        `${(x.mode === 'direct' ? '-' : `${ms(x.p99_1 - by.direct.p99_1)}/${ms(x.p99_50 - by.direct.p99_50)}`).padStart(19)}` +
        `${(x.cpuSecondsPerGB === undefined ? '-' : f2(x.cpuSecondsPerGB)).padStart(10)}${(x.mode === 'on' ? f1(x.recordedBytes / 1e6) : '-').padStart(13)}`,
    ),
    '',
    `on/off                       pooled   same-round ratios`,
    ratioLine('throughput 1x', ratios.throughput1),
    ratioLine('throughput 4x', ratios.throughput4),
    ratioLine('latency p50 1x', ratios.p50_1),
    ratioLine('latency p99 1x', ratios.p99_1),
    ratioLine(`latency p50 ${MANY}x`, ratios.p50_50),
    ratioLine(`latency p99 ${MANY}x`, ratios.p99_50),
    ratioLine('Sortie CPU s/GB', ratios.cpuPerGB),
    '',
    `Recorded during the measured throughput runs: ${f1(recordedT / 1e6)} MB for ${f1(relayedDown / 1e6)} MB echoed (${f2((recordedT / relayedDown) * 100)}%; above 100% when all was recorded: WebSocket framing and 9-byte record headers); ` +
      `segments closed ${median(closeMs).toFixed(0)} ms (median; max ${Math.max(...closeMs).toFixed(0)}) after the throughput streams closed, ${median(closeMsLat).toFixed(0)} ms after the latency streams.`,
    `Throughput runs with recording on that recorded less than they relayed (the recorder stopped a segment: the disk fell more than 8 MiB behind): ` +
      `${short.length} of ${onT.length}${short.length > 0 ? ` (recorded ${short.map((t) => `${t.streams}x r${t.round} ${(100 * t.recordedShare!).toFixed(0)}%`).join(', ')})` : ''}.`,
    `Files read back: ${r.check.summary}.`,
    `Sortie CPU per round trip (medians of runs): 1x off ${usPerRtt('off', 1).toFixed(0)} us, on ${usPerRtt('on', 1).toFixed(0)} us; ${MANY}x off ${usPerRtt('off', MANY).toFixed(0)} us, on ${usPerRtt('on', MANY).toFixed(0)} us.`,
    `CPU s/GB: Sortie's user+system CPU seconds per 10^9 bytes relayed (both directions), from the first byte until the last echo came back. After that, until the streams ` +
      `closed (and every segment was closed, a few admin API polls included): median ${tailMs('off').toFixed(0)} ms off, ${tailMs('on').toFixed(0)} ms on per throughput run.`,
    `Machine busy during throughput runs (all processes): median ${(busy * 100).toFixed(0)}%.`,
  ];
  return { table, json: { rows, ratios, throughputRuns: r.tput, latencyRuns: r.lat, fileCheck: r.check, recordings: r.rows } };
}

// ---------------------------------------------------------------------------------------
// Part 2: recording size per minute of a real desktop
// ---------------------------------------------------------------------------------------

async function desktopPart(sortieRoot: string | undefined) {
  const tmp = registerTempDir(mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-recording-')));
  const stack = await startNewStack();
  log(`desktop: ${stack.description} on :${stack.wsPort}`);
  const t = Date.now();
  const { sortie: entry } = await buildSortie(sortieRoot ?? path.resolve(import.meta.dirname, '..'), path.join(tmp, 'build'));
  log(`compiled Sortie in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const dataDir = path.join(tmp, 'data');
  mkdirSync(dataDir);
  const child: IpcChild = forkTs(entry, { BENCH_WS_PORT: String(stack.wsPort), BENCH_TMP: dataDir, BENCH_RECORDED_APP: '1' }, [], false);
  const { port } = await child.ready<{ port: number }>(30_000);
  const api = new Api(`http://127.0.0.1:${port}`);
  const session = await api.waitFor((await api.launch('bench-echo-recorded')).id, 'running', 10_000);
  if (!session.recorded) throw new Error('the desktop session is not recorded');
  const origin = `http://127.0.0.1:${port}`;
  const wsUrl = `ws://127.0.0.1:${port}${session.websocket_url}`;

  const { browser, close: closeBrowser } = await launchBrowser();
  const phases: { name: string; from: number; to: number; rx: number; sortieCpuMs: number; iterations?: number }[] = [];
  try {
    const context = await browser.newContext({ viewport: { width: SCREEN.width, height: SCREEN.height }, permissions: ['local-network-access'] });
    await serveViewer(context, SCREEN);
    const terminal = await startTerminal(stack.display);
    const page = await context.newPage();
    page.on('pageerror', (err) => log(`page error: ${err.message}`));
    try {
      const connectAt = Date.now();
      await openViewer(page, origin, wsUrl, 'recorded desktop');
      await settle(page);
      let c = await counts(page);
      let cpu = await cpuOf(child);
      phases.push({ name: 'connect', from: connectAt, to: Date.now(), rx: c.rx, sortieCpuMs: 0 });
      const phase = async (name: string, body: () => Promise<number | undefined>) => {
        const from = Date.now();
        const rx0 = c.rx;
        const cpu0 = cpu;
        const iterations = await body();
        const to = Date.now();
        c = await counts(page);
        cpu = await cpuOf(child);
        phases.push({ name, from, to, rx: c.rx - rx0, sortieCpuMs: (cpu - cpu0) * 1000, ...(iterations ? { iterations } : {}) });
        log(`${name}: ${((to - from) / 1000).toFixed(1)} s, ${((c.rx - rx0) / 1000).toFixed(1)} KB to the viewer`);
      };
      log(`idle for ${IDLE_SECONDS} s`);
      await phase('idle', async () => {
        await sleep(IDLE_SECONDS * 1000);
        return undefined;
      });
      log(`scene for ${SCENE_SECONDS} s`);
      await phase('scene', async () => {
        const end = Date.now() + SCENE_SECONDS * 1000;
        let n = 0;
        while (Date.now() < end) {
          await typeSceneLines(page);
          if (Date.now() < end) await runSceneWindow(stack.display);
          n++;
        }
        return n;
      });
    } finally {
      await page.close();
      await terminal.stop();
    }
  } finally {
    await closeBrowser();
  }
  const recordings = new Recordings(api);
  await recordings.waitClosed([session.id], new Map([[session.id, { segments: 1 }]]));
  const row = (await recordings.list([session.id])).get(session.id)!;
  const file = path.join(dataDir, 'recordings', `${row.id}.rec`);
  const bytes = await readFile(file);
  const { records, validLength } = parseRecording(bytes);
  const size = (await stat(file)).size;
  const startedMs = Date.parse(row.started_at);
  const figures = phases.map((p) => {
    // By the records' own times (ms since the recording began): what was written while the phase ran.
    const inPhase = records.filter((rec) => rec.kind === KIND_SERVER && rec.at >= p.from - startedMs && rec.at < p.to - startedMs);
    const recorded = inPhase.reduce((a, rec) => a + RECORD_HEADER + rec.payload.length, 0);
    const minutes = (p.to - p.from) / 60_000;
    return { ...p, seconds: (p.to - p.from) / 1000, records: inPhase.length, recordedBytes: recorded, perMinute: recorded / minutes, viewerPerMinute: p.rx / minutes };
  });
  await child.request('stop').catch(() => {});

  const kb = (v: number) => (v / 1000).toFixed(1);
  const table = [
    `Part 2: recording size of a real desktop (${stack.description}), viewed 1:1 at ${SCREEN.width}x${SCREEN.height} in Chromium (noVNC 1.7.0) through Sortie, recording always.`,
    `Scene: the desktop bench's (12 typed lines into xterm running cat, then a second xterm that scrolls 80 lines, moves 15 times and closes), repeated for ${SCENE_SECONDS} s.`,
    '',
    `${'phase'.padEnd(9)}${'seconds'.padStart(9)}${'recorded KB'.padStart(13)}${'records'.padStart(9)}${'KB/min recorded'.padStart(17)}${'KB/min to viewer'.padStart(18)}${'Sortie CPU ms'.padStart(15)}`,
    ...figures.map(
      (f) =>
        `${f.name.padEnd(9)}${f.seconds.toFixed(1).padStart(9)}${kb(f.recordedBytes).padStart(13)}${String(f.records).padStart(9)}` +
        `${(f.name === 'connect' ? '-' : kb(f.perMinute)).padStart(17)}${(f.name === 'connect' ? '-' : kb(f.viewerPerMinute)).padStart(18)}${(f.name === 'connect' ? '-' : f.sortieCpuMs.toFixed(0)).padStart(15)}`,
    ),
    '',
    `Recording ${row.id}: ${kb(size)} KB, ${row.duration_ms} ms, ${row.segments} segment, incomplete: ${row.incomplete ?? 'no'}; file whole: ${validLength === size ? 'yes' : `no (${size - validLength} bytes past the last whole record)`}` +
      `; scene ran ${figures.find((f) => f.name === 'scene')?.iterations ?? 0} time(s).`,
    `At the scene's rate an hour records ${((figures.find((f) => f.name === 'scene')!.perMinute * 60) / 1e6).toFixed(1)} MB; an idle hour ${((figures.find((f) => f.name === 'idle')!.perMinute * 60) / 1e6).toFixed(2)} MB.`,
  ];
  return { table, json: { phases: figures, recording: row, fileBytes: size, validLength } };
}

runBenchmark('recording', main);
