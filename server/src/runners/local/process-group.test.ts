import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, rmSync } from 'node:fs';
import { getPriority, tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { isLeaderRunning, killProcessesWithArgs, processesWithArgs, readProcStat, spawnGroupLeader } from './process-group.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a gated program starts only when released, keeping the pid the gate had', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-gate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const flag = path.join(dir, 'ran');
  const log = openSync(path.join(dir, 'log'), 'a');
  const { child, release } = await spawnGroupLeader(['/bin/sh', '-c', `touch ${flag}; exec sleep 30`], log, {});
  closeSync(log);
  const leader = { pid: child.pid!, startTime: readProcStat(child.pid!)?.startTime };
  await sleep(200);
  assert.equal(existsSync(flag), false, 'it ran before release()');
  release();
  for (let i = 0; i < 100 && !existsSync(flag); i++) await sleep(20);
  assert.ok(existsSync(flag), 'it ran after release()');
  assert.ok(isLeaderRunning(leader), 'same pid and start time after exec');
  process.kill(-child.pid!, 'SIGKILL');
});

test('a gate whose Sortie dies before release exits without starting the program', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-gate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const flag = path.join(dir, 'ran');
  const module = JSON.stringify(new URL('./process-group.ts', import.meta.url).href);
  const sortie = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
    const { spawnGroupLeader } = await import(${module});
    const { child } = await spawnGroupLeader(['/bin/sh', '-c', 'touch ${flag}; exec sleep 30'], 1, {});
    console.log(child.pid);
    setInterval(() => {}, 1000);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve) => sortie.stdout.once('data', (d: Buffer) => resolve(Number(d.toString()))));
  sortie.kill('SIGKILL');
  for (let i = 0; i < 100 && readProcStat(pid) && readProcStat(pid)!.state !== 'Z'; i++) await sleep(20);
  const stat = readProcStat(pid);
  assert.ok(stat === undefined || stat.state === 'Z', 'the gate exited');
  assert.equal(existsSync(flag), false, 'the program never ran');
});

test('processes are found and killed by consecutive arguments only', async () => {
  const child = spawn('/bin/sh', ['-c', 'sleep 30', 'sortie-test', '--bind', `/x/${process.pid}`, '/home/session'], { stdio: 'ignore' });
  await sleep(100);
  assert.deepEqual(processesWithArgs(['--bind', `/x/${process.pid}`, '/home/session']), [child.pid]);
  assert.deepEqual(processesWithArgs(['--bind', '/home/session']), [], 'not consecutive');
  assert.deepEqual(processesWithArgs([`/x/${process.pid}/`]), [], 'whole arguments only');
  assert.deepEqual(await killProcessesWithArgs(['--bind', `/x/${process.pid}`]), []);
  assert.deepEqual(processesWithArgs(['--bind', `/x/${process.pid}`]), []);
});

test('session processes run below Sortie (nice 5), and so does what they start', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-gate-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const log = openSync(path.join(dir, 'log'), 'a');
  const { child, release } = await spawnGroupLeader(['/bin/sh', '-c', 'sleep 30 & exec sleep 30'], log, {});
  closeSync(log);
  release();
  await sleep(200);
  const niceOf = (pid: number) => getPriority(pid);
  // 5, or Sortie's own niceness if an operator already runs it lower.
  const expected = Math.max(5, getPriority(process.pid));
  assert.equal(niceOf(child.pid!), expected);
  const members = readdirSync('/proc').map(Number).filter((pid) => readProcStat(pid)?.pgrp === child.pid);
  assert.ok(members.length >= 2, `the leader and the child it started (${members.join(', ')})`);
  for (const pid of members) assert.equal(niceOf(pid), expected, `pid ${pid}`);
  process.kill(-child.pid!, 'SIGKILL');
});
