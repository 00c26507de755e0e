import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, afterEach, describe, test } from 'node:test';
import { pino } from 'pino';
import { appSchema, type App } from '../src/catalog/app.js';
import { InputError } from '../src/errors.js';
import type { LaunchSpec, WorkloadEvent } from '../src/runners/runner.js';
import { LocalRunner } from '../src/runners/local/local-runner.js';
import { isLeaderRunning, liveGroups, readProcStat, terminateGroups } from '../src/runners/local/process-group.js';
import { homeDirPath, homesDirPath, readStateFiles, stateFilePath, vncSocketPath, type SessionRecord } from '../src/runners/local/state-file.js';
import { overSocket, overWebSocket, RFB_VERSION, RfbViewer } from './support/rfb.js';
import { waitFor } from './support/wait.js';
import { processTreeOfGroups } from './support/processes.js';

// Real Xvnc, websockify and X clients: these tests prove the runner against the
// programs it drives, not against a model of them.

const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
const stateDirs: string[] = [];
const runners: LocalRunner[] = [];
let counter = 0;

function app(id: string, command?: string[]): App {
  return appSchema.parse({ id, name: id, launch_type: 'container', container_image: 'unused', command });
}

function spec(application: App): LaunchSpec {
  const sessionId = `t${process.pid}-${counter++}`;
  // Without streamSecret: Xvnc then runs without a password (the test below adds one).
  return { sessionId, workloadName: `sortie-session-${sessionId}`, userId: 'tester', app: application } as LaunchSpec;
}

class Harness {
  readonly events: WorkloadEvent[] = [];
  /** Launch steps, kept apart: the tests here wait for what a workload became. */
  readonly steps: WorkloadEvent[] = [];
  private readonly waiters = new Set<() => void>();

  constructor(readonly runner: LocalRunner) {}

  readonly onEvent = (event: WorkloadEvent) => {
    if (event.type === 'progress') {
      this.steps.push(event);
      return;
    }
    this.events.push(event);
    for (const wake of this.waiters) wake();
  };

  async next(sessionId: string, timeoutMs = 10_000): Promise<WorkloadEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find((e) => e.sessionId === sessionId);
      if (found) {
        this.events.splice(this.events.indexOf(found), 1);
        return found;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event for ${sessionId} within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const wake = () => {
          clearTimeout(timer);
          this.waiters.delete(wake);
          resolve();
        };
        const timer = setTimeout(wake, left);
        this.waiters.add(wake);
      });
    }
  }
}

function newStateDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-local-runner-'));
  stateDirs.push(dir);
  return dir;
}

async function startRunner(stateDir = newStateDir(), screen?: string): Promise<{ harness: Harness; stateDir: string; workloads: Awaited<ReturnType<LocalRunner['start']>> }> {
  const runner = new LocalRunner({ stateDir, logger, livenessPollMs: 200, ...(screen ? { screen } : {}) });
  runners.push(runner);
  const harness = new Harness(runner);
  const workloads = await runner.start(harness.onEvent);
  return { harness, stateDir, workloads };
}

function record(stateDir: string, sessionId: string): SessionRecord {
  return JSON.parse(readFileSync(stateFilePath(stateDir, sessionId), 'utf8')) as SessionRecord;
}

function assertAllGone(rec: SessionRecord): void {
  for (const p of rec.processes) assert.equal(isLeaderRunning(p), false, `${p.name} (pid ${p.pid}) still runs`);
  assert.deepEqual(liveGroups(rec.processes), [], 'a process group still has members');
}

/** Non-zombie processes this test process spawned (directly), other than tsx's esbuild. */
function liveChildren(): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let text: string;
    try {
      text = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = text.slice(text.indexOf('(') + 1, text.lastIndexOf(')'));
    const [state, ppid] = text.slice(text.lastIndexOf(')') + 2).split(' ');
    if (Number(ppid) === process.pid && state !== 'Z' && comm !== 'esbuild') found.push(`${comm}:${entry}`);
  }
  return found;
}

async function launchReady(harness: Harness, s: LaunchSpec) {
  const started = Date.now();
  await harness.runner.launch(s);
  const event = await harness.next(s.sessionId);
  assert.equal(event.type, 'ready', `expected ready, got ${JSON.stringify(event)}`);
  if (event.type !== 'ready') throw new Error('unreachable');
  // Every launch says what it starts before it is ready: the desktop, then the app.
  const steps = harness.steps.flatMap((e) => (e.type === 'progress' && e.sessionId === s.sessionId ? [e] : []));
  assert.deepEqual(steps.map((e) => e.step), ['starting', 'app']);
  assert.ok(!Number.isNaN(Date.parse(steps[0]!.at)) && steps[0]!.at <= steps[1]!.at, 'in order, with their times');
  return { endpoint: event.endpoint, ms: Date.now() - started };
}

/** The first bytes a websockify sends: the VNC server's banner, relayed. */
async function firstWebSocketMessage(port: number): Promise<string> {
  const viewer = new RfbViewer(overWebSocket(`ws://127.0.0.1:${port}/`));
  try {
    return (await viewer.take(RFB_VERSION.length)).toString('latin1');
  } finally {
    viewer.close();
  }
}

/** The RFB 3.8 security types a session's Xvnc offers on its VNC socket (1 = none, 2 = VNC password). */
async function securityTypes(stateDir: string, sessionId: string): Promise<number[]> {
  const viewer = new RfbViewer(overSocket({ path: vncSocketPath(stateDir, sessionId) }));
  try {
    return (await viewer.greet()).offered;
  } finally {
    viewer.close();
  }
}

/** Listening TCP sockets owned by the given pids, as "address:port". */
function listeningSockets(pids: number[]): string[] {
  const out = execFileSync('ss', ['-ltnpH'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((line) => pids.some((pid) => line.includes(`pid=${pid},`)))
    .map((line) => line.trim().split(/\s+/)[3]!);
}

afterEach(async () => {
  for (const runner of runners.splice(0)) await runner.close();
  for (const dir of stateDirs) {
    for (const entry of readStateFiles(dir)) if (entry.record) await terminateGroups(entry.record.processes, 200);
  }
});

after(() => {
  for (const dir of stateDirs) {
    rmSync(dir, { recursive: true, force: true });
    rmSync(homesDirPath(dir), { recursive: true, force: true });
  }
});

describe('LocalRunner', { timeout: 45_000 }, () => {
  test('validate refuses an app without a command', () => {
    const runner = new LocalRunner({ stateDir: newStateDir(), logger });
    assert.throws(() => runner.validate(app('noargv')), (err: unknown) => {
      assert.ok(err instanceof InputError);
      assert.equal(err.message, 'App "noargv" has no "command", which the local runner needs to start it');
      return true;
    });
    runner.validate(app('xterm', ['xterm']));
  });

  test('launches xterm, streams RFB through websockify on 127.0.0.1 only, and stop removes every trace', async () => {
    const { harness, stateDir } = await startRunner();
    const s = spec(app('xterm', ['xterm']));
    const { endpoint, ms } = await launchReady(harness, s);
    assert.equal(endpoint.host, '127.0.0.1');
    const rec = record(stateDir, s.sessionId);
    assert.equal(endpoint.port, rec.wsPort);
    assert.deepEqual(rec.processes.map((p) => p.role), ['xvnc', 'websockify', 'app']);
    assert.ok(rec.readyAt, 'readiness is recorded for a later adoption');

    assert.equal(await firstWebSocketMessage(endpoint.port), 'RFB 003.008\n');

    // One TCP port for the whole session, websockify's: Xvnc (in its sandbox, found by
    // descent) serves VNC on a socket in the display folder only.
    const tree = processTreeOfGroups(rec.processes.map((p) => p.pid));
    assert.ok(tree.some((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'Xvnc'), 'Xvnc is in the session’s process tree');
    assert.deepEqual(listeningSockets(tree), [`127.0.0.1:${rec.wsPort}`]);
    assert.equal(rec.vncPort, 0);

    const stopping = Date.now();
    await harness.runner.stop(s.sessionId);
    logger.info({ readyMs: ms, stopMs: Date.now() - stopping }, 'timings');
    assertAllGone(rec);
    assert.equal(existsSync(stateFilePath(stateDir, s.sessionId)), false);
    assert.equal(existsSync(`/tmp/.X${rec.display}-lock`), false, 'Xvnc left its lock file');
    assert.deepEqual(harness.events, [], 'a requested stop emits nothing');
    await harness.runner.stop(s.sessionId); // idempotent
    await harness.runner.stop('never-launched');
  });

  test('an app that exits after ready gives `exited`, and the rest is killed', async () => {
    const { harness, stateDir } = await startRunner();
    // The app sees only its home of the host's writable folders.
    const s = spec(app('waiter', ['sh', '-c', 'while [ ! -e "$HOME/quit" ]; do sleep 0.05; done']));
    await launchReady(harness, s);
    const rec = record(stateDir, s.sessionId);
    writeFileSync(path.join(homeDirPath(stateDir, s.sessionId), 'quit'), '');
    const event = await harness.next(s.sessionId);
    assert.deepEqual(event, { type: 'exited', sessionId: s.sessionId, reason: 'sh exited (code 0)' });
    assertAllGone(rec);
    assert.ok(existsSync(stateFilePath(stateDir, s.sessionId)), 'kept until the service calls stop()');
    await harness.runner.stop(s.sessionId);
    assert.equal(existsSync(stateFilePath(stateDir, s.sessionId)), false);
  });

  test('an app that dies before ready fails with its output in the reason', async () => {
    const { harness, stateDir } = await startRunner();
    const s = spec(app('crasher', ['sh', '-c', 'echo "cannot open the thing" >&2; exit 3']));
    let reason: string;
    try {
      await harness.runner.launch(s);
      const event = await harness.next(s.sessionId);
      assert.equal(event.type, 'failed');
      reason = (event as { reason: string }).reason;
      const rec = record(stateDir, s.sessionId);
      assertAllGone(rec);
      await harness.runner.stop(s.sessionId);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      reason = (err as Error).message; // it died while launch() was still running
    }
    assert.match(reason, /^sh exited \(code 3\)/);
    assert.match(reason, /cannot open the thing/);
    assert.deepEqual(liveChildren(), []);
    assert.deepEqual(readdirSync(stateDir), []);
  });

  test('a VNC process that dies after ready fails the session with the log tail', async () => {
    const { harness, stateDir } = await startRunner();
    const s = spec(app('xeyes', ['xeyes']));
    await launchReady(harness, s);
    const rec = record(stateDir, s.sessionId);
    process.kill(rec.processes.find((p) => p.role === 'websockify')!.pid, 'SIGKILL');
    const event = await harness.next(s.sessionId);
    assert.equal(event.type, 'failed');
    assert.match((event as { reason: string }).reason, /^websockify was killed \(SIGKILL\)\. Last lines of the session log:\n/);
    assertAllGone(rec);
    await harness.runner.stop(s.sessionId);
  });

  test('stop() during launch makes launch reject and kills what it had started', async () => {
    const { harness, stateDir } = await startRunner();
    const s = spec(app('xterm', ['xterm']));
    const launching = harness.runner.launch(s);
    launching.catch(() => {});
    let rec: SessionRecord | undefined;
    while (!rec || rec.processes.length === 0) {
      await new Promise((r) => setTimeout(r, 2));
      if (existsSync(stateFilePath(stateDir, s.sessionId))) rec = record(stateDir, s.sessionId);
    }
    await harness.runner.stop(s.sessionId);
    await assert.rejects(launching, { message: 'The session was stopped while it was starting' });
    assertAllGone(rec);
    assert.deepEqual(liveChildren(), []);
    assert.deepEqual(readdirSync(stateDir), []);
    assert.deepEqual(harness.events, []);
  });

  test('a command that does not exist rejects launch and leaves nothing behind', async () => {
    const { harness, stateDir } = await startRunner();
    const s = spec(app('ghost', ['/nonexistent/app']));
    await assert.rejects(harness.runner.launch(s), { message: 'Cannot start "/nonexistent/app": command not found' });
    assert.deepEqual(liveChildren(), []);
    assert.deepEqual(readdirSync(stateDir), []);
    assert.deepEqual(harness.events, []);
  });

  test('two sessions at once get their own display and ports, and a stream secret makes Xvnc demand it', async () => {
    const { harness, stateDir } = await startRunner();
    const a = spec(app('xeyes', ['xeyes']));
    const b = { ...spec(app('xterm', ['xterm'])), streamSecret: 's3cret-pw' };
    const [ra, rb] = await Promise.all([launchReady(harness, a), launchReady(harness, b)]);
    const recA = record(stateDir, a.sessionId);
    const recB = record(stateDir, b.sessionId);
    assert.notEqual(recA.display, recB.display);
    assert.notEqual(recA.wsPort, recB.wsPort);
    assert.notEqual(ra.endpoint.port, rb.endpoint.port);
    assert.notEqual(vncSocketPath(stateDir, a.sessionId), vncSocketPath(stateDir, b.sessionId));

    assert.deepEqual(await securityTypes(stateDir, a.sessionId), [1], 'no secret: no authentication');
    assert.deepEqual(await securityTypes(stateDir, b.sessionId), [2], 'secret: VNC authentication only');
    // Xvnc itself, below its gate and bwrap in the session's tree.
    const xvnc = processTreeOfGroups(recB.processes.filter((p) => p.role === 'xvnc').map((p) => p.pid)).find(
      (pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'Xvnc',
    )!;
    assert.ok(xvnc, 'Xvnc runs');
    assert.ok(!readFileSync(`/proc/${xvnc}/cmdline`, 'utf8').includes('s3cret'), 'the secret is not in argv');
    assert.ok(!readdirSync(stateDir).some((name) => name.endsWith('.passwd')), 'no password file is left on disk');
    // Xvnc reads it again at every authentication, through the descriptor of the deleted file.
    assert.match(readlinkSync(`/proc/${xvnc}/fd/3`), /\.passwd \(deleted\)$/);

    await Promise.all([harness.runner.stop(a.sessionId), harness.runner.stop(b.sessionId)]);
    assertAllGone(recA);
    assertAllGone(recB);
  });

  test("a failed launch quotes the failing process's own cause (a desktop size Xvnc refuses)", async () => {
    const { harness, stateDir } = await startRunner(undefined, '70000x800x24');
    const s = spec(app('xeyes', ['xeyes']));
    const failed = await harness.runner.launch(s).then(
      () => assert.fail('the launch should fail'),
      (err: Error) => err.message,
    );
    assert.match(failed, /^Cannot start the display: Xvnc exited \(code 1\)\. Last lines of the session log:\n/);
    assert.match(failed, /Invalid PixelBuffer stride of 70000 pixels requested/, failed);
    assert.deepEqual(liveChildren(), []);
    assert.deepEqual(readdirSync(stateDir), []);
    assert.deepEqual(harness.events, []);
  });

  describe('after a restart', () => {
    test('close() leaves a session running; the next runner adopts it and notices its app quit by polling', async () => {
      const first = await startRunner();
      const s = spec(app('xeyes', ['xeyes']));
      const { endpoint } = await launchReady(first.harness, s);
      await first.harness.runner.close();
      const rec = record(first.stateDir, s.sessionId);
      assert.ok(rec.processes.every(isLeaderRunning), 'close() must leave sessions running');

      const second = await startRunner(first.stateDir);
      assert.deepEqual(second.workloads, [{ sessionId: s.sessionId, state: 'ready', endpoint }]);
      assert.equal(await firstWebSocketMessage(endpoint.port), 'RFB 003.008\n');
      process.kill(rec.processes.find((p) => p.role === 'app')!.pid, 'SIGTERM');
      const event = await second.harness.next(s.sessionId, 5000);
      assert.deepEqual(event, { type: 'exited', sessionId: s.sessionId, reason: 'xeyes exited' });
      assertAllGone(rec);
      await second.harness.runner.stop(s.sessionId);
      assert.equal(existsSync(stateFilePath(first.stateDir, s.sessionId)), false);
    });

    test('a session survives Sortie being killed, and the next Sortie adopts it', async () => {
      const stateDir = newStateDir();
      const s = spec(app('xeyes', ['xeyes']));
      const script = path.join(stateDir, 'sortie.mjs');
      writeFileSync(script, `
        const { pino } = await import(${JSON.stringify(import.meta.resolve('pino'))});
        const { LocalRunner } = await import(${JSON.stringify(new URL('../src/runners/local/local-runner.ts', import.meta.url).href)});
        const runner = new LocalRunner({ stateDir: ${JSON.stringify(stateDir)}, logger: pino({ level: 'silent' }) });
        await runner.start((e) => e.type !== 'progress' && console.log(JSON.stringify(e)));
        await runner.launch(${JSON.stringify(s)});
      `);
      const sortie = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        sortie.stdout.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) resolve(out.split('\n')[0]!);
        });
        sortie.once('exit', (code) => reject(new Error(`the Sortie process exited early (code ${code})`)));
      });
      const ready = JSON.parse(line) as WorkloadEvent;
      assert.equal(ready.type, 'ready');
      sortie.kill('SIGTERM');
      await new Promise((resolve) => sortie.once('exit', resolve));
      const rec = record(stateDir, s.sessionId);
      await new Promise((r) => setTimeout(r, 100));
      assert.ok(rec.processes.every(isLeaderRunning), 'killing Sortie must not kill its sessions');

      const next = await startRunner(stateDir);
      assert.deepEqual(next.workloads, [{ sessionId: s.sessionId, state: 'ready', endpoint: (ready as { endpoint: unknown }).endpoint }]);
      await next.harness.runner.stop(s.sessionId);
      assertAllGone(rec);
      assert.equal(existsSync(stateFilePath(stateDir, s.sessionId)), false);
    });

    test('a session with a dead process is reported ended and its leftovers are killed', async () => {
      const first = await startRunner();
      const s = spec(app('xeyes', ['xeyes']));
      await launchReady(first.harness, s);
      await first.harness.runner.close();
      const rec = record(first.stateDir, s.sessionId);
      const xvnc = rec.processes.find((p) => p.role === 'xvnc')!;
      process.kill(-xvnc.pid, 'SIGKILL');
      await waitFor(() => !isLeaderRunning(xvnc), { what: 'Xvnc to die', intervalMs: 10 });

      const second = await startRunner(first.stateDir);
      // The app loses its display with Xvnc; whether it is gone too by the time the next runner
      // looks is a race, and the reason names whatever is gone.
      assert.equal(second.workloads.length, 1);
      assert.deepEqual({ ...second.workloads[0], reason: undefined }, { sessionId: s.sessionId, state: 'ended', reason: undefined });
      assert.match(second.workloads[0]!.reason ?? '', /^Xvnc(, xeyes)? exited while Sortie was not running$/);
      assertAllGone(rec);
      // Ended sessions keep their file until the service calls stop(), so start() is repeatable.
      assert.ok(existsSync(stateFilePath(first.stateDir, s.sessionId)));
      await second.harness.runner.stop(s.sessionId);
      assert.equal(existsSync(stateFilePath(first.stateDir, s.sessionId)), false);
    });

    test('a launch cut short by a crash is ended, and a pid now owned by a stranger is not killed', async () => {
      const stateDir = newStateDir();
      // A group leader standing in for an Xvnc whose Sortie crashed before starting the rest.
      const orphan = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
      // An unrelated process that happens to have the pid a state file names.
      const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
      try {
        const base = {
          version: 1, workloadName: 'w', appId: 'x', userId: 'u', startedAt: new Date().toISOString(),
          display: 999, vncPort: 1, wsPort: 2,
        };
        const orphanTime = readProcStat(orphan.pid!)!.startTime;
        writeFileSync(stateFilePath(stateDir, 'halfway'), JSON.stringify({
          ...base, sessionId: 'halfway', processes: [{ role: 'xvnc', name: 'Xvnc', pid: orphan.pid, startTime: orphanTime }],
        }));
        writeFileSync(stateFilePath(stateDir, 'reused'), JSON.stringify({
          ...base, sessionId: 'reused', processes: ['xvnc', 'websockify', 'app'].map((role) => ({
            role, name: role, pid: stranger.pid, startTime: '1',
          })),
        }));
        writeFileSync(stateFilePath(stateDir, 'garbled'), '{ not json');

        const { harness, workloads } = await startRunner(stateDir);
        const byId = new Map(workloads.map((w) => [w.sessionId, w]));
        assert.deepEqual(byId.get('halfway'), { sessionId: 'halfway', state: 'ended', reason: 'Sortie stopped while the session was starting' });
        assert.equal(byId.get('reused')?.state, 'ended');
        assert.equal(byId.get('garbled')?.state, 'ended');
        assert.match(byId.get('garbled')!.reason!, /state file cannot be read/);
        assert.ok(!isLeaderRunning({ pid: orphan.pid!, startTime: orphanTime }), 'the half-launched process is killed');
        const strangerNow = readProcStat(stranger.pid!);
        assert.ok(strangerNow && strangerNow.state !== 'Z', 'the stranger is left alone');
        for (const id of ['halfway', 'reused', 'garbled']) await harness.runner.stop(id);
        assert.deepEqual(readdirSync(stateDir), []);
      } finally {
        orphan.kill('SIGKILL');
        stranger.kill('SIGKILL');
      }
    });
  });
});
