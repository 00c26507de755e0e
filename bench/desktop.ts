/**
 * Desktop benchmark: what a person at the keyboard gets from the old VNC sidecar (Xvfb +
 * x11vnc + websockify) and the new one (Xvnc + websockify), each reached through Sortie
 * (`/ws/sessions/{id}`) and straight at websockify, in one run, in the real browser:
 *
 *   - latency: a key press in the page until the noVNC canvas shows its echo (xterm running
 *     `cat`), timed in the page; p50/p95 over every press;
 *   - bytes: what a fixed scripted scene (typed text that scrolls the terminal; a second
 *     window that opens, scrolls 80 lines, moves and closes) puts on the wire, both ways.
 *
 * The four setups alternate round by round (their order rotates) so drift in the machine's
 * load hits all alike. Prints a table and ratios, writes JSON to bench/results/. Exits 0
 * whatever the figures; non-zero only if the bench broke.
 *
 *   npx tsx bench/desktop.ts [--rounds 5] [--presses 40] [--sortie-rev REV] [--quick]
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { BrowserContext, Page } from 'playwright-core';
import { log, machineDescription, positiveInt, runBenchmark } from './lib/cli.js';
import { buildSortie } from './lib/build.js';
import { serveViewer } from './lib/desktop-page.js';
import { ECHO_REGION, SCENE_KEY_DELAY_MS, SCENE_LINES, counts, openViewer, settle, typeSceneLines } from './lib/desktop-scene.js';
import { childPids, forkTs, installCleanup, machineCpu, procCpuSeconds, registerTempDir, shutdown, type IpcChild } from './lib/procs.js';
import { cpuOf, exportRevision } from './lib/stack.js';
import { median, percentile, round, sortedCopy } from './lib/stats.js';
import { SCREEN, runSceneWindow, startNewStack, startOldStack, startTerminal, type VncStack } from './lib/vnc-stacks.js';
import { wireDelta, wireSnapshot } from './lib/wire-bytes.js';
import { Api } from '../server/test/support/api.js';
import { launchBrowser } from '../server/test/support/browser.js';
import { sleep } from '../server/test/support/wait.js';

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    presses: { type: 'string', default: '40' },
    'sortie-rev': { type: 'string' },
    quick: { type: 'boolean', default: false },
  },
});
const quick = args.quick;
const ROUNDS = quick ? 1 : positiveInt('rounds', args.rounds);
const PRESSES = quick ? 10 : positiveInt('presses', args.presses);
const WARMUP_PRESSES = 3;

const ECHO_TIMEOUT_MS = 5000;

type SetupName = 'old direct' | 'old sortie' | 'new direct' | 'new sortie';

interface Setup {
  name: SetupName;
  stack: VncStack;
  /** The page's origin (the stream's own origin: same-origin for Sortie, as from its UI). */
  origin: string;
  wsUrl: string;
  /** The port the browser connects to, for the wire counts. */
  port: number;
  /** The Sortie in the path, if any. */
  sortie?: IpcChild;
  /** The Sortie in front of the same stack: on a direct setup it idles, and its CPU shows Sortie's background cost. */
  stackSortie: IpcChild;
}

interface Press {
  /** ms from the key press in the page until the canvas differs. */
  canvas: number;
  /** ms from the key press until the first animation frame showing it. */
  frame: number;
  via: string;
}

interface SceneBytes {
  /** WebSocket payload (RFB bytes) received and sent by the page. */
  down: number;
  up: number;
  /** Of `down`, what arrived after the scripted actions ended, until the desktop was quiet. */
  afterDown: number;
  /** WebSocket messages received and sent by the page. */
  messagesDown: number;
  messagesUp: number;
  /** TCP payload of the browser's connection (RFB plus WebSocket framing), from the kernel. */
  wireDown: number;
  wireUp: number;
  /** CPU of the VNC server process(es), of websockify (with its fork for this connection), and of Sortie when in the path, during the scene. */
  serverCpuMs: number;
  websockifyCpuMs: number;
  /** On a direct setup: the idle Sortie of the same stack. */
  sortieCpuMs: number;
  /** From the first key to the end of the quiet period; and its parts: typing, the second window's script. */
  seconds: number;
  typingSeconds: number;
  windowSeconds: number;
}

interface Run {
  setup: SetupName;
  round: number;
  presses: Press[];
  connectDown: number;
  scene?: SceneBytes;
}

async function main(): Promise<number> {
  installCleanup();
  const startedAt = new Date();
  const load0 = os.loadavg();
  log(`machine: ${machineDescription()}; load average ${load0.map((l) => l.toFixed(2)).join(' ')}`);
  const tmp = registerTempDir(mkdtempSync(path.join(os.tmpdir(), 'sortie-bench-desktop-')));

  const oldStack = await startOldStack();
  log(`old: ${oldStack.description} on :${oldStack.wsPort}`);
  const newStack = await startNewStack();
  log(`new: ${newStack.description} on :${newStack.wsPort}`);

  const t = Date.now();
  // --sortie-rev runs a committed revision's server (git archive), whatever the working tree holds.
  const root = args['sortie-rev'] ? exportRevision(args['sortie-rev']).root : path.resolve(import.meta.dirname, '..');
  const { sortie: sortieEntry } = await buildSortie(root, path.join(tmp, 'build'));
  log(`compiled Sortie in ${((Date.now() - t) / 1000).toFixed(1)} s`);
  const sortieFor = async (stack: VncStack) => {
    const dir = path.join(tmp, stack.name);
    mkdirSync(dir);
    const child = forkTs(sortieEntry, { BENCH_WS_PORT: String(stack.wsPort), BENCH_TMP: dir }, [], false);
    const { port } = await child.ready<{ port: number }>(30_000);
    const api = new Api(`http://127.0.0.1:${port}`);
    const session = await api.waitFor((await api.launch('bench-echo', 'bench')).id, 'running', 10_000);
    log(`Sortie for ${stack.name} on :${port}, session ${session.id}`);
    return { child, port, wsPath: session.websocket_url as string };
  };
  const sortieOld = await sortieFor(oldStack);
  const sortieNew = await sortieFor(newStack);

  const setups: Setup[] = [
    direct('old direct', oldStack, sortieOld),
    viaSortie('old sortie', oldStack, sortieOld),
    direct('new direct', newStack, sortieNew),
    viaSortie('new sortie', newStack, sortieNew),
  ];

  const { browser, close: closeBrowser } = await launchBrowser();
  // The page comes from this process (request interception), not from a loopback server, so
  // Chromium counts it as public and would block its stream to 127.0.0.1 without this grant.
  const context = await browser.newContext({ viewport: { width: SCREEN.width, height: SCREEN.height }, permissions: ['local-network-access'] });
  await serveViewer(context, SCREEN);
  log(`browser: Chromium ${browser.version()}`);

  const runs: Run[] = [];
  const machine0 = machineCpu();
  try {
    log(`warm-up: ${WARMUP_PRESSES} presses on each setup${quick ? '' : ' and the scene'}`);
    for (const setup of setups) await runOnce(context, setup, 0, WARMUP_PRESSES, !quick);
    for (let round = 1; round <= ROUNDS; round++) {
      // Rotate the order each round: A B C D, B C D A, … so no setup always runs first.
      const order = setups.map((_, i) => setups[(i + round - 1) % setups.length]!);
      for (const setup of order) {
        const run = await runOnce(context, setup, round, PRESSES, true);
        runs.push(run);
        const s = sortedCopy(run.presses.map((p) => p.canvas));
        log(`round ${round}/${ROUNDS} ${setup.name}: p50 ${percentile(s, 50).toFixed(1)} ms, scene ${kb(run.scene!.down)} KB down / ${kb(run.scene!.up)} KB up`);
      }
    }
  } finally {
    await closeBrowser();
  }
  const machine1 = machineCpu();
  const load1 = os.loadavg();

  const report = summarize(runs, setups);
  const busy = (machine1.busy - machine0.busy) / (machine1.total - machine0.total);
  const lines = [
    `Machine: ${machineDescription()}; Chromium ${browser.version()}; noVNC 1.7.0; 1:1 (no scaling, no remote resize), ${SCREEN.width}x${SCREEN.height}`,
    `Load average at start ${load0.map((l) => l.toFixed(2)).join(' ')}, at end ${load1.map((l) => l.toFixed(2)).join(' ')}; machine ${Math.round(busy * 100)}% busy during the run`,
    `${ROUNDS} round(s) x ${PRESSES} presses per setup; scene: ${SCENE_LINES.length} typed lines + a window that opens, scrolls 80 lines, moves 15 times, closes`,
    '',
    ...report.table,
  ];
  console.log(lines.join('\n'));

  const resultsDir = path.resolve(import.meta.dirname, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `desktop-${startedAt.toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(
    file,
    JSON.stringify(
      {
        startedAt,
        machine: machineDescription(),
        chromium: browser.version(),
        loadAverage: { start: load0, end: load1 },
        machineBusy: round(busy),
        options: { rounds: ROUNDS, presses: PRESSES, quick, scene: { lines: SCENE_LINES, keyDelayMs: SCENE_KEY_DELAY_MS } },
        stacks: { old: oldStack.description, new: newStack.description },
        summary: report.summary,
        ratios: report.ratios,
        runs,
      },
      null,
      2,
    ),
  );
  log(`wrote ${path.relative(process.cwd(), file)}`);
  await sortieOld.child.request('stop').catch(() => {});
  await sortieNew.child.request('stop').catch(() => {});
  await shutdown();
  return 0;
}

function direct(name: SetupName, stack: VncStack, idle: { child: IpcChild }): Setup {
  return { name, stack, origin: `http://127.0.0.1:${stack.wsPort}`, wsUrl: `ws://127.0.0.1:${stack.wsPort}/`, port: stack.wsPort, stackSortie: idle.child };
}

function viaSortie(name: SetupName, stack: VncStack, s: { child: IpcChild; port: number; wsPath: string }): Setup {
  return { name, stack, origin: `http://127.0.0.1:${s.port}`, wsUrl: `ws://127.0.0.1:${s.port}${s.wsPath}`, port: s.port, sortie: s.child, stackSortie: s.child };
}

/** One setup, one round: a fresh terminal, a fresh page and connection, the presses, then the scene. */
async function runOnce(context: BrowserContext, setup: Setup, roundNo: number, presses: number, scene: boolean): Promise<Run> {
  const terminal = await startTerminal(setup.stack.display);
  const page = await context.newPage();
  page.on('console', (msg) => {
    // Chromium's advice on readbacks is about the probe's own getImageData calls, which are meant.
    if ((msg.type() === 'error' || msg.type() === 'warning') && !msg.text().startsWith('Canvas2D:')) log(`${setup.name} page ${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => log(`${setup.name} page error: ${err.message}`));
  try {
    await openViewer(page, setup.origin, setup.wsUrl, setup.name);
    await settle(page);
    const connectDown = (await counts(page)).rx;

    const samples: Press[] = [];
    for (let i = 0; i < presses; i++) {
      samples.push(await pressAndTime(page, setup, 'x'));
      await pressAndTime(page, setup, 'Backspace');
      // Uneven gaps, so the presses do not lock onto a polling period of the VNC server.
      await sleep(20 + Math.random() * 40);
    }

    let sceneBytes: SceneBytes | undefined;
    if (scene) sceneBytes = await runScene(page, setup);
    return { setup: setup.name, round: roundNo, presses: samples, connectDown, scene: sceneBytes };
  } finally {
    await page.close();
    await terminal.stop();
  }
}

async function pressAndTime(page: Page, setup: Setup, key: string): Promise<Press> {
  await page.evaluate(([k, r]) => (globalThis as any).bench.arm(k, r), [key, ECHO_REGION] as const);
  await page.keyboard.press(key);
  const result = await page.evaluate((ms) => (globalThis as any).bench.result(ms), ECHO_TIMEOUT_MS);
  if (result.timedOut) {
    throw new Error(`${setup.name}: ${result.keySeen ? `no echo of "${key}" on the canvas` : `the page never saw the key "${key}"`} within ${ECHO_TIMEOUT_MS} ms`);
  }
  return { canvas: result.changedAt - result.keyAt, frame: result.frameAt - result.keyAt, via: result.via };
}

async function runScene(page: Page, setup: Setup): Promise<SceneBytes> {
  const cpu = () => setup.stack.pids.reduce((sum, p) => sum + procCpuSeconds(p.pid), 0);
  // websockify serves each connection in a fork, which lives as long as the connection.
  const wsPids = [setup.stack.websockifyPid, ...childPids(setup.stack.websockifyPid)];
  const wsCpu = () => wsPids.reduce((sum, pid) => sum + procCpuSeconds(pid), 0);
  const wsCpu0 = wsCpu();
  const sortieCpu = () => cpuOf(setup.stackSortie);
  const c0 = await counts(page);
  const w0 = await wireSnapshot(setup.port);
  const cpu0 = cpu();
  const scpu0 = await sortieCpu();
  const t0 = Date.now();
  await typeSceneLines(page);
  const typed = Date.now();
  await runSceneWindow(setup.stack.display);
  const windowDone = Date.now();
  const cWindowDone = await counts(page);
  await settle(page);
  const seconds = (Date.now() - t0) / 1000;
  const c1 = await counts(page);
  const w1 = await wireSnapshot(setup.port);
  const wire = wireDelta(w0, w1);
  if (wire.connections !== 1) throw new Error(`${setup.name}: expected traffic on the browser's one stream to :${setup.port}, found ${wire.connections} connections carrying bytes`);
  return {
    down: c1.rx - c0.rx,
    up: c1.tx - c0.tx,
    messagesDown: c1.rxMessages - c0.rxMessages,
    afterDown: c1.rx - cWindowDone.rx,
    messagesUp: c1.txMessages - c0.txMessages,
    wireDown: wire.received,
    wireUp: wire.sent,
    serverCpuMs: Math.round((cpu() - cpu0) * 1000),
    websockifyCpuMs: Math.round((wsCpu() - wsCpu0) * 1000),
    sortieCpuMs: Math.round(((await sortieCpu()) - scpu0) * 1000),
    seconds,
    typingSeconds: (typed - t0) / 1000,
    windowSeconds: (windowDone - typed) / 1000,
  };
}

const kb = (bytes: number) => (bytes / 1000).toFixed(1);

function summarize(runs: Run[], setups: Setup[]) {
  const names = setups.map((s) => s.name);
  const by = (name: SetupName) => runs.filter((r) => r.setup === name);
  const summary = Object.fromEntries(
    names.map((name) => {
      const rs = by(name);
      const canvas = sortedCopy(rs.flatMap((r) => r.presses.map((p) => p.canvas)));
      const frame = sortedCopy(rs.flatMap((r) => r.presses.map((p) => p.frame)));
      const scenes = rs.map((r) => r.scene!);
      return [
        name,
        {
          presses: canvas.length,
          canvasP50: round(percentile(canvas, 50), 2),
          canvasP95: round(percentile(canvas, 95), 2),
          frameP50: round(percentile(frame, 50), 2),
          frameP95: round(percentile(frame, 95), 2),
          sceneDown: median(scenes.map((s) => s.down)),
          sceneUp: median(scenes.map((s) => s.up)),
          sceneMessagesDown: median(scenes.map((s) => s.messagesDown)),
          sceneAfterDown: median(scenes.map((s) => s.afterDown)),
          sceneMessagesUp: median(scenes.map((s) => s.messagesUp)),
          sceneWireDown: median(scenes.map((s) => s.wireDown)),
          sceneWireUp: median(scenes.map((s) => s.wireUp)),
          connectDown: median(rs.map((r) => r.connectDown)),
          serverCpuMs: median(scenes.map((s) => s.serverCpuMs)),
          websockifyCpuMs: median(scenes.map((s) => s.websockifyCpuMs)),
          echoSeenOnMessage: round(rs.flatMap((r) => r.presses).filter((p) => p.via === 'message').length / canvas.length, 3),
          sortieCpuMs: median(scenes.map((s) => s.sortieCpuMs)),
          sceneSeconds: round(median(scenes.map((s) => s.seconds)), 2),
          sceneTypingSeconds: round(median(scenes.map((s) => s.typingSeconds)), 2),
          sceneWindowSeconds: round(median(scenes.map((s) => s.windowSeconds)), 2),
        },
      ];
    }),
  ) as unknown as Record<SetupName, Record<string, number | undefined>>;

  // A ratio of two setups: over everything pooled, and its spread over the rounds.
  const perRound = (name: SetupName, f: (r: Run) => number) => new Map(by(name).map((r) => [r.round, f(r)]));
  const p50 = (r: Run) => percentile(sortedCopy(r.presses.map((p) => p.canvas)), 50);
  const ratio = (a: SetupName, b: SetupName) => {
    const metric = (key: string, f: (r: Run) => number) => {
      const ra = perRound(a, f);
      const rb = perRound(b, f);
      const each = [...ra.keys()].filter((k) => rb.has(k)).map((k) => ra.get(k)! / rb.get(k)!);
      return { pooled: round(summary[a][key]! / summary[b][key]!), roundsMin: round(Math.min(...each)), roundsMax: round(Math.max(...each)) };
    };
    return {
      latencyP50: metric('canvasP50', p50),
      latencyP95: metric('canvasP95', (r) => percentile(sortedCopy(r.presses.map((p) => p.canvas)), 95)),
      sceneDown: metric('sceneDown', (r) => r.scene!.down),
      sceneUp: metric('sceneUp', (r) => r.scene!.up),
      sceneWireDown: metric('sceneWireDown', (r) => r.scene!.wireDown),
    };
  };
  const ratios = {
    'new/old direct': ratio('new direct', 'old direct'),
    'new/old sortie': ratio('new sortie', 'old sortie'),
    'sortie/direct old': ratio('old sortie', 'old direct'),
    'sortie/direct new': ratio('new sortie', 'new direct'),
  };

  const pad = (s: string, n: number) => s.padStart(n);
  const table = [
    `${'setup'.padEnd(11)} ${pad('presses', 7)} ${pad('key→canvas p50/p95 ms', 22)} ${pad('key→frame p50/p95 ms', 21)} ${pad('scene KB down/up', 17)} ${pad('wire KB down/up', 16)} ${pad('connect KB', 10)} ${pad('CPU ms VNC/wsfy/Sortie', 23)}`,
    ...names.map((name) => {
      const s = summary[name];
      return `${name.padEnd(11)} ${pad(String(s.presses), 7)} ${pad(`${s.canvasP50!.toFixed(1)}/${s.canvasP95!.toFixed(1)}`, 22)} ${pad(`${s.frameP50!.toFixed(1)}/${s.frameP95!.toFixed(1)}`, 21)} ${pad(`${kb(s.sceneDown!)}/${kb(s.sceneUp!)}`, 17)} ${pad(`${kb(s.sceneWireDown!)}/${kb(s.sceneWireUp!)}`, 16)} ${pad(kb(s.connectDown!), 10)} ${pad(`${s.serverCpuMs}/${s.websockifyCpuMs}/${name.endsWith('direct') ? `(${s.sortieCpuMs})` : s.sortieCpuMs}`, 23)}`;
    }),
    '',
    `${'ratio'.padEnd(18)} ${pad('latency p50', 24)} ${pad('latency p95', 24)} ${pad('scene bytes down', 24)} ${pad('scene bytes up', 24)}`,
    ...Object.entries(ratios).map(([label, r]) => {
      const cell = (m: { pooled: number; roundsMin: number; roundsMax: number }) =>
        pad(`${m.pooled.toFixed(2)} [${m.roundsMin.toFixed(2)}..${m.roundsMax.toFixed(2)}]`, 24);
      return `${label.padEnd(18)} ${cell(r.latencyP50)} ${cell(r.latencyP95)} ${cell(r.sceneDown)} ${cell(r.sceneUp)}`;
    }),
    '[a..b]: the ratio in each round, lowest to highest; (Sortie CPU) on a direct row: the same Sortie idling beside it',
  ];
  return { summary, ratios, table };
}

runBenchmark('desktop', main);
