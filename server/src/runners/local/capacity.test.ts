import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateCapacity, framebufferBytes, localCapacity, readMachine, sessionFootprint } from './capacity.js';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const per = sessionFootprint('1280x800x24');

test('a framebuffer is width × height × 4 bytes at depth 24', () => {
  assert.equal(framebufferBytes('1280x800x24'), 1280 * 800 * 4);
  assert.equal(framebufferBytes('1024x768x16'), 1024 * 768 * 2);
  assert.equal(framebufferBytes('640x480'), 640 * 480 * 4);
  assert.throws(() => framebufferBytes('big'), /WIDTHxHEIGHT/);
});

test('a session at 1280x800 is counted at more than Xvnc, websockify and a small app were measured to take', () => {
  // Measured: Xvnc 24 MiB private with a viewer, websockify about 20 MiB.
  assert.ok(per.memoryBytes >= 64 * MiB && per.memoryBytes <= 160 * MiB, `${per.memoryBytes / MiB} MiB`);
  assert.ok(sessionFootprint('2560x1600x24').memoryBytes - per.memoryBytes >= 31 * MiB, 'a larger desktop costs what Xvnc was measured to take more');
});

test('a small machine is limited by its free memory', () => {
  const estimate = estimateCapacity({ memAvailableBytes: 1 * GiB, displays: 900 }, per);
  assert.equal(estimate.limitedBy, 'memory');
  assert.equal(estimate.sessions, Math.floor((1 * GiB * 0.8) / per.memoryBytes));
});

test('a very large machine is limited by the displays the runner hands out', () => {
  const estimate = estimateCapacity({ memAvailableBytes: 512 * GiB, displays: 900 }, per);
  assert.deepEqual(estimate, { sessions: 900, limitedBy: 'displays' });
});

test('a full machine still allows one session (it queues the rest), and an unknown one a small default', () => {
  assert.deepEqual(estimateCapacity({ memAvailableBytes: 10 * MiB }, per).sessions, 1);
  assert.deepEqual(estimateCapacity({}, per), { sessions: 8, limitedBy: 'nothing known' });
});

test('this machine: its figures are read, and the estimate is a whole number of at least one', () => {
  const machine = readMachine();
  assert.ok(machine.memAvailableBytes! > 0, 'MemAvailable is read from /proc/meminfo');
  assert.equal(machine.displays, 900);
  const { sessions } = localCapacity('1280x800x24');
  assert.ok(Number.isInteger(sessions) && sessions >= 1, String(sessions));
});
