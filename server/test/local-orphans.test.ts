import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { pino } from 'pino';
import { LocalRunner } from '../src/runners/local/local-runner.js';
import { stateFilePath } from '../src/runners/local/state-file.js';
import { scratchDir } from './support/harness.js';
import { waitFor } from './support/wait.js';

// Sortie killed with SIGKILL at every point of a launch (before, between and after starting
// Xvnc, websockify and the app): the next Sortie must find and remove everything the
// dead one started. A process started but not yet recorded would otherwise run forever.

const KILL_POINTS = 30;
const scratch = scratchDir('orphans');
const root = scratch.dir;
const runnerModule = new URL('../src/runners/local/local-runner.ts', import.meta.url).href;

after(() => scratch.remove());

/** A Sortie that only launches one session; prints "launching" just before and "launched <ms>" after. */
function sortieScript(stateDir: string, sessionId: string, marker: string): string {
  const script = path.join(root, `${sessionId}.mjs`);
  const spec = {
    sessionId,
    workloadName: `sortie-session-${sessionId}`,
    userId: 'sweeper',
    streamSecret: 'sweep-secret',
    app: { id: 'sleeper', name: 'sleeper', command: ['sleep', marker] },
  };
  writeFileSync(script, `
    const { pino } = await import(${JSON.stringify(import.meta.resolve('pino'))});
    const { LocalRunner } = await import(${JSON.stringify(runnerModule)});
    const runner = new LocalRunner({ stateDir: ${JSON.stringify(stateDir)}, logger: pino({ level: 'silent' }) });
    await runner.start(() => {});
    const started = performance.now();
    process.stdout.write('launching\\n');
    await runner.launch(${JSON.stringify(spec)});
    process.stdout.write('launched ' + Math.round(performance.now() - started) + '\\n');
  `);
  return script;
}

interface Run {
  /** ms launch() took, as the Sortie measured it (undefined when killed first). */
  launchedAfter?: number;
  /** Processes the state file named when Sortie died. */
  recorded: number;
}

/** Runs the script, killing it (SIGKILL) `killAfter` ms after it says "launching". */
async function runSortie(script: string, stateDir: string, sessionId: string, killAfter?: number): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const run: Run = { recorded: 0 };
  await new Promise<void>((resolve, reject) => {
    let out = '';
    let started = 0;
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (!started && out.includes('launching\n')) {
        started = Date.now();
        if (killAfter !== undefined) setTimeout(() => { child.kill('SIGKILL'); resolve(); }, killAfter);
      }
      const launched = /launched (\d+)\n/.exec(out);
      if (launched) {
        run.launchedAfter ??= Number(launched[1]);
        if (killAfter === undefined) resolve();
      }
    });
    child.once('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`Sortie exited early (${code ?? signal})`))));
  });
  child.kill('SIGKILL');
  await exited;
  if (existsSync(stateFilePath(stateDir, sessionId))) {
    run.recorded = (JSON.parse(readFileSync(stateFilePath(stateDir, sessionId), 'utf8')) as { processes: unknown[] }).processes.length;
  }
  return run;
}

/** Live processes that belong to the session: by the state folder, the app's marker, or its VNC port. */
function leftovers(needles: string[]): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    let stat: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
    if (needles.some((n) => cmdline.includes(n))) found.push(`${entry}: ${cmdline.slice(0, 120)}`);
  }
  return found;
}

/** What the restarted Sortie does: adopt what is on disk, and stop every session that ended. */
async function restartAndReconcile(stateDir: string): Promise<void> {
  const runner = new LocalRunner({ stateDir, logger: pino({ level: 'silent' }) });
  try {
    const workloads = await runner.start(() => {});
    // The service stops sessions that ended; here every session is swept, ended or not.
    for (const w of workloads) await runner.stop(w.sessionId);
  } finally {
    await runner.close();
  }
}

describe('a Sortie killed during a launch leaves nothing running after a restart', { timeout: 300_000 }, () => {
  test(`SIGKILL at ${KILL_POINTS} points across the launch window`, async (t) => {
    const stateDir = path.join(root, 'state');
    // One clean launch to learn how long the window is on this machine.
    const probeId = 'sweep-probe';
    const probeMarker = `3600.${process.pid}0`;
    const probe = await runSortie(sortieScript(stateDir, probeId, probeMarker), stateDir, probeId);
    assert.ok(probe.launchedAfter !== undefined, 'the probe launch completed');
    await restartAndReconcile(stateDir);
    const window = Math.max(probe.launchedAfter!, 50);

    const byRecorded = new Map<number, number>();
    const left: string[] = [];
    for (let i = 0; i < KILL_POINTS; i++) {
      const sessionId = `sweep-${i}`;
      const marker = `3600.${process.pid}${i + 1}`;
      // From the moment launch() is called to a little after it returned.
      const killAfter = Math.round((i * window * 1.1) / (KILL_POINTS - 1));
      const run = await runSortie(sortieScript(stateDir, sessionId, marker), stateDir, sessionId, killAfter);
      byRecorded.set(run.recorded, (byRecorded.get(run.recorded) ?? 0) + 1);
      // Every process of a session names the state folder in its argv, but the two inside a
      // sandbox (Xvnc, the app), which die with their bwrap (its pid namespace) that names it.
      const needles = [stateDir, marker];
      await restartAndReconcile(stateDir);
      try {
        await waitFor(() => leftovers(needles).length === 0, { what: 'the session to have no process left', timeoutMs: 3000 });
      } catch {
        const found = leftovers(needles);
        left.push(...found.map((p) => `kill at ${killAfter} ms: ${p}`));
        for (const p of found) {
          try {
            process.kill(Number(p.split(':')[0]), 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }
      assert.ok(!existsSync(stateFilePath(stateDir, sessionId)), 'the restart removed the state file');
    }
    t.diagnostic(`launch window ${window} ms; kill points by processes recorded at the kill: ${JSON.stringify(Object.fromEntries([...byRecorded].sort()))}`);
    t.diagnostic(`processes left after restart: ${left.length}`);
    assert.deepEqual(left, [], 'processes survived the restart');
  });
});
