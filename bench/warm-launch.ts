/**
 * Warm launch benchmark: how long a person waits for the desktop, cold and from the warm
 * pool, on a real cluster. One Sortie (in this process, kubernetes runner, SQLite, sign-in
 * off) with two apps that differ only in their id: `xterm-cold` (no pool) and `xterm-warm`
 * (`warm_pool: 1`).
 *
 *   t0 = POST /api/sessions → poll GET /api/sessions/{id} every 10 ms until `running` (a warm
 *   launch is running in the POST answer) → open /ws/sessions/{id}, VNC handshake, ask for a
 *   full framebuffer update in noVNC's encodings (Tight; `--encoding raw`: Raw, 4 MB);
 *   t1 = when its last byte has arrived. Then DELETE.
 *
 * Every step in between is timed (see STEPS), Sortie's own connection to the pod included.
 * A warm launch first waits, untimed, until the pool holds a ready session again, and then
 * `--settle` ms (3000). Rounds alternate which kind goes first. Prints the table, the steps
 * and the ratio, writes JSON to bench/results/. Exit 0 whatever the figures; non-zero only if
 * it broke.
 *
 *   npx tsx bench/warm-launch.ts [--rounds 5] [--warm-only] [--encoding tight|raw] [--settle 3000] [--log sortie.log]
 */
import diagnostics from 'node:diagnostics_channel';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { readCatalogFile } from '../server/src/catalog/catalog-file.js';
import { DEFAULT_SIDECAR_IMAGE, loadConfig } from '../server/src/config/config.js';
import { startSortie } from '../server/src/main.js';
import type { Session } from '../server/src/sessions/session.js';
import { frameRequest, overWebSocket, RfbViewer } from '../server/test/support/rfb.js';
import { sleep } from '../server/test/support/wait.js';
import { log, machineDescription, positiveInt } from './lib/cli.js';
import { createBenchNamespace, describeCluster, kubeconfigPath, loadKubeConfig } from './lib/kube.js';
import { median, percentile, round, sortedCopy } from './lib/stats.js';

const repoRoot = path.resolve(import.meta.dirname, '..');
const TARGET_WARM_MS = 300;
const { values: args } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, 'warm-only': { type: 'boolean', default: false }, log: { type: 'string' }, encoding: { type: 'string', default: 'tight' }, settle: { type: 'string', default: '3000' } } });
if (args.encoding !== 'tight' && args.encoding !== 'raw') throw new Error(`--encoding must be tight or raw, got "${args.encoding}"`);
const SETTLE_MS = Number(args.settle);
const ROUNDS = positiveInt('rounds', args.rounds);
const TIMEOUT_MS = 180_000;

/** The pods' websockify port (pod-spec.ts), to tell Sortie's upstream sockets from its others. */
const WEBSOCKIFY_PORT = 6080;

interface LaunchResult {
  ms: number;
  runningMs: number;
  runningInAnswer: boolean;
  /** ms since the POST was sent, at each step (see STEPS). */
  marks: Record<string, number>;
  /** Bytes of the first update's rectangles (after their headers). */
  updateBytes: number;
}

const ENCODING_RAW = 0;
const ENCODING_TIGHT = 7;
/**
 * What noVNC (1.7, the web UI's) asks first and the server picks from: Tight, with its JPEG
 * quality 6 and compression level 2 (pseudo-encodings), CopyRect, Raw. The pseudo-encodings
 * for cursor, resize, fences and the clipboard are left out: they add messages, not pixels.
 */
const NOVNC_ENCODINGS = [ENCODING_TIGHT, 1, ENCODING_RAW, -32 + 6, -256 + 2];

function setEncodings(encodings: number[]): Buffer {
  const message = Buffer.alloc(4 + 4 * encodings.length);
  message.writeUInt8(2, 0);
  message.writeUInt16BE(encodings.length, 2);
  encodings.forEach((e, i) => message.writeInt32BE(e, 4 + 4 * i));
  return message;
}

/**
 * Reads past one Tight rectangle without decoding it; answers its size in bytes. Pixels are
 * 3 bytes (TPIXEL: 32 bits per pixel, depth 24). https://github.com/rfbproto/rfbproto/blob/master/rfbproto.rst#tight-encoding
 */
async function skipTight(viewer: RfbViewer, width: number, height: number): Promise<number> {
  let bytes = 0;
  const take = async (n: number) => {
    bytes += n;
    return viewer.take(n);
  };
  const compactLength = async () => {
    let length = 0;
    for (let shift = 0; shift < 21; shift += 7) {
      const b = (await take(1))[0]!;
      length |= (b & 0x7f) << shift;
      if (!(b & 0x80) || shift === 14) return shift === 14 ? length | (b << 14) : length;
    }
    return length;
  };
  const control = (await take(1))[0]! >> 4;
  if (control === 0x08) return bytes + (await take(3)).length; // fill: one pixel
  if (control === 0x09) return bytes + (await take(await compactLength())).length; // JPEG
  if (control > 0x09) throw new Error(`unexpected Tight compression control ${control}`);
  let rowBytes = width * 3;
  if (control & 0x04) {
    const filter = (await take(1))[0];
    if (filter === 1) {
      const colours = (await take(1))[0]! + 1;
      await take(colours * 3);
      rowBytes = colours === 2 ? Math.ceil(width / 8) : width;
    } else if (filter !== 0 && filter !== 2) {
      throw new Error(`unexpected Tight filter ${filter}`);
    }
  }
  const size = rowBytes * height;
  await take(size < 12 ? size : await compactLength());
  return bytes;
}

/** The steps in the order they happen; `up_*` are Sortie's own socket to the pod's websockify. */
const STEPS: Array<[string, string]> = [
  ['answered', 'POST answered'],
  ['running', 'running seen'],
  ['up_socket', 'Sortie dials the pod'],
  ['up_connect', 'TCP connected to websockify'],
  ['up_101', "websockify's 101"],
  ['up_rfb_1', 'RFB banner from Xvnc'],
  ['up_rfb_2', 'security types'],
  ['up_rfb_3', 'VncAuth challenge'],
  ['up_rfb_4', 'SecurityResult'],
  ['ws_open', "Sortie's 101 to the viewer"],
  ['banner', 'RFB banner at the viewer'],
  ['security_result', 'SecurityResult at the viewer'],
  ['server_init', 'ServerInit at the viewer'],
  ['update_first_byte', 'first byte of the update'],
  ['update_last_byte', 'last byte of the update'],
];

/** Set while a launch is timed: where Sortie's upstream socket events are marked. */
let upstreamMarks: ((name: string, at?: number) => void) | undefined;
diagnostics.subscribe('net.client.socket', (message) => {
  const { socket } = message as { socket: import('node:net').Socket };
  const mark = upstreamMarks;
  if (!mark) return;
  const created = performance.now();
  socket.once('connect', () => {
    if (socket.remotePort !== WEBSOCKIFY_PORT) return;
    mark('up_socket', created);
    mark('up_connect');
    let reads = 0;
    socket.on('data', (chunk: Buffer) => {
      if (reads === 0 && chunk.subarray(0, 12).toString('latin1') === 'HTTP/1.1 101') mark('up_101');
      else mark(`up_rfb_${reads}`);
      reads++;
    });
  });
});

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
    // --log FILE: Sortie's own log at debug level (the relay says what each step of a stream's opening took).
    { logger: args.log ? pino({ level: 'debug' }, pino.destination({ dest: args.log, sync: false })) : pino({ level: 'silent' }) },
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
  /**
   * POST → first full framebuffer update, with a timestamp (ms since the POST was sent) at
   * each step the client sees, and at each step of Sortie's own connection to the pod's
   * websockify (seen through Node's `net.client.socket` diagnostics channel, as Sortie runs
   * in this process).
   */
  const launch = async (appId: string): Promise<LaunchResult> => {
    const marks: Record<string, number> = {};
    const t0 = performance.now();
    const mark = (name: string, at = performance.now()) => {
      marks[name] ??= Math.round((at - t0) * 10) / 10;
    };
    const created = await api<Session>('POST', '/api/sessions', { app_id: appId, user_id: 'bench' });
    mark('answered');
    if (created.status !== 201) throw new Error(`POST answered ${created.status}: ${JSON.stringify(created.body)}`);
    let session = created.body;
    while (session.status !== 'running') {
      if (session.status !== 'creating' && session.status !== 'queued') throw new Error(`session ${session.id} is ${session.status}: ${session.reason}`);
      if (performance.now() - t0 > TIMEOUT_MS) throw new Error(`session ${session.id} not running`);
      await sleep(10);
      session = (await api<Session>('GET', `/api/sessions/${session.id}`)).body;
    }
    const runningMs = performance.now() - t0;
    mark('running');
    // Only from here: a socket to a pod before it is the pool's own (its refill's connection opened ahead).
    upstreamMarks = mark;
    const transport = overWebSocket(sortie.url.replace(/^http/, 'ws') + session.websocket_url);
    transport.ws.once('open', () => mark('ws_open'));
    const viewer = new RfbViewer(transport);
    const timer = setTimeout(() => transport.bytes.fail(new Error('no desktop within 30 s')), 30_000);
    let updateBytes = 0;
    try {
      const { offered } = await viewer.greet();
      mark('banner');
      if (!(await viewer.authenticate(offered))) throw new Error('security handshake failed');
      mark('security_result');
      const desktop = await viewer.init();
      mark('server_init');
      viewer.send(setEncodings(args.encoding === 'raw' ? [ENCODING_RAW] : NOVNC_ENCODINGS));
      viewer.send(frameRequest(desktop.width, desktop.height));
      const header = await viewer.take(4);
      mark('update_first_byte');
      if (header[0] !== 0) throw new Error(`expected a FramebufferUpdate, got message type ${header[0]}`);
      let pixels = 0;
      for (let i = 0, rects = header.readUInt16BE(2); i < rects; i++) {
        const rect = await viewer.take(12);
        const [width, height, encoding] = [rect.readUInt16BE(4), rect.readUInt16BE(6), rect.readInt32BE(8)];
        pixels += width * height;
        if (encoding === ENCODING_RAW) updateBytes += (await viewer.take(width * height * desktop.bytesPerPixel)).length;
        else if (encoding === ENCODING_TIGHT) updateBytes += await skipTight(viewer, width, height);
        else throw new Error(`unexpected encoding ${encoding}`);
      }
      mark('update_last_byte');
      if (pixels !== desktop.width * desktop.height) throw new Error(`the first update covered ${pixels} pixels, not the whole desktop`);
    } finally {
      clearTimeout(timer);
      viewer.close();
      upstreamMarks = undefined;
    }
    const ms = performance.now() - t0;
    await api('DELETE', `/api/sessions/${session.id}`);
    return { ms, runningMs, runningInAnswer: created.body.status === 'running', marks, updateBytes };
  };

  const cold: number[] = [];
  const warm: number[] = [];
  const coldRunning: number[] = [];
  const warmRunning: number[] = [];
  const coldMarks: Array<Record<string, number>> = [];
  const warmMarks: Array<Record<string, number>> = [];
  const warmBytes: number[] = [];
  let warmHits = 0;
  const loadAtStart = os.loadavg();
  try {
    // Warm-up, not counted: the node's first pod of the namespace, first requests.
    await poolReady();
    if (!args['warm-only']) await launch('xterm-cold');
    await launch('xterm-warm');
    for (let i = 1; i <= ROUNDS; i++) {
      for (const kind of args['warm-only'] ? ['warm'] : i % 2 === 1 ? ['cold', 'warm'] : ['warm', 'cold']) {
        if (kind === 'warm') {
          await poolReady();
          // A pooled session waits seconds to hours for its claim; one claimed the instant it
          // turned ready would time its own start-up (and Sortie's connection opened ahead, see
          // PreopenedUpstreams, still in flight), not a warm launch.
          await sleep(SETTLE_MS);
          const r = await launch('xterm-warm');
          warm.push(r.ms);
          warmRunning.push(r.runningMs);
          warmMarks.push(r.marks);
          warmBytes.push(r.updateBytes);
          if (r.runningInAnswer) warmHits++;
          log(`#${i} warm ${Math.round(r.ms)} ms (running after ${Math.round(r.runningMs)} ms)${r.runningInAnswer ? '' : ' (missed the pool)'} ${JSON.stringify(r.marks)}`);
        } else {
          const r = await launch('xterm-cold');
          cold.push(r.ms);
          coldRunning.push(r.runningMs);
          coldMarks.push(r.marks);
          log(`#${i} cold ${Math.round(r.ms)} ms (running after ${Math.round(r.runningMs)} ms)`);
        }
      }
    }
  } finally {
    await stop();
  }
  const loadAtEnd = os.loadavg();

  const row = (name: string, values: number[]) => {
    const sorted = sortedCopy(values);
    return `${name.padEnd(6)} ${String(Math.round(percentile(sorted, 0))).padStart(7)} ${String(Math.round(median(values))).padStart(7)} ${String(Math.round(percentile(sorted, 95))).padStart(7)} ${String(Math.round(percentile(sorted, 100))).padStart(7)}`;
  };
  const ratio = cold.length > 0 ? median(cold) / median(warm) : NaN;
  console.log(`POST → first framebuffer update through /ws/sessions/{id}, ms (${ROUNDS} rounds; ${cluster}; ${machineDescription()})`);
  console.log(`encodings asked: ${args.encoding === 'raw' ? 'Raw only' : "noVNC's (Tight, quality 6, compression 2)"}; first update of a warm launch: median ${Math.round(median(warmBytes) / 1024)} KiB; claimed ${SETTLE_MS} ms after the pool was ready`);
  console.log(`Load average at start ${loadAtStart.map((l) => l.toFixed(2)).join(' ')}, at end ${loadAtEnd.map((l) => l.toFixed(2)).join(' ')}`);
  console.log(`kind       min  median     p95     max`);
  if (cold.length > 0) console.log(row('cold', cold));
  console.log(row('warm', warm));
  console.log('');
  console.log(breakdown('warm', warmMarks));
  if (coldMarks.length > 0) console.log(`\n${breakdown('cold', coldMarks)}`);
  console.log(`POST → running seen by the client, ms: cold median ${Math.round(median(coldRunning))}, warm median ${Math.round(median(warmRunning))}`);
  console.log(`warm launches running in the POST answer: ${warmHits}/${warm.length}`);
  if (cold.length > 0) console.log(`cold / warm (medians): ${round(ratio, 1)}x`);
  console.log(`warm target <= ${TARGET_WARM_MS} ms: ${median(warm) <= TARGET_WARM_MS ? 'met' : 'missed'}`);
  const results = path.join(repoRoot, 'bench', 'results');
  mkdirSync(results, { recursive: true });
  const file = path.join(results, `warm-launch-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify({ startedAt, cluster, machine: machineDescription(), loadAtStart, loadAtEnd, rounds: ROUNDS, encoding: args.encoding, settleMs: SETTLE_MS, cold, warm, warmBytes, coldRunning, warmRunning, coldMarks, warmMarks, warmHits, ratio: round(ratio, 2) }, null, 2),
  );
  log(`wrote ${path.relative(repoRoot, file)}`);
  return 0;
}

/**
 * Where the time of a kind of launch went: for each step, the median time since the POST and
 * the median of each launch's own time since the step before it (so the second column does
 * not add up to the total exactly; a step a launch lacks is skipped for that launch).
 */
function breakdown(kind: string, launches: Array<Record<string, number>>): string {
  const lines = [`${kind} launch, step by step (ms; median over ${launches.length} launches)`, `${'step'.padEnd(34)} since POST   since the step before`];
  for (const [key, label] of STEPS) {
    const at = launches.map((m) => m[key]).filter((v): v is number => v !== undefined);
    if (at.length === 0) continue;
    const deltas = launches.flatMap((m) => {
      const i = STEPS.findIndex(([k]) => k === key);
      const before = STEPS.slice(0, i).map(([k]) => m[k]).filter((v): v is number => v !== undefined).at(-1) ?? 0;
      return m[key] === undefined ? [] : [m[key]! - before];
    });
    const sorted = sortedCopy(deltas);
    lines.push(`${label.padEnd(34)} ${String(Math.round(median(at))).padStart(10)}   ${String(Math.round(median(deltas))).padStart(6)} [${Math.round(percentile(sorted, 0))}..${Math.round(percentile(sorted, 100))}]`);
  }
  return lines.join('\n');
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`warm launch benchmark broke: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
