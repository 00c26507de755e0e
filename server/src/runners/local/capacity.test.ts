import assert from 'node:assert/strict';
import { test } from 'node:test';
import { estimateCapacity, framebufferBytes, localCapacity, readMachine, sessionFootprint } from './capacity.js';

const GiB = 1024 ** 3;
const per = sessionFootprint('1280x800x24');

test('a framebuffer is width × height × 4 bytes at depth 24', () => {
  assert.equal(framebufferBytes('1280x800x24'), 1280 * 800 * 4);
  assert.equal(framebufferBytes('1024x768x16'), 1024 * 768 * 2);
  assert.equal(framebufferBytes('640x480'), 640 * 480 * 4);
  assert.throws(() => framebufferBytes('big'), /WIDTHxHEIGHT/);
});

test('the kernel default of 4096 shared memory ids holds fewer sessions than a roomy machine has memory for', () => {
  // The machine where 200 launches left 105 failed with `shmget: No space left on device`.
  const estimate = estimateCapacity({ memAvailableBytes: 23 * GiB, devShmFreeBytes: 23 * GiB, shmSegmentsFree: 4096 }, per);
  assert.equal(estimate.limitedBy, 'shm-segments');
  assert.ok(estimate.sessions < 4096 / 42, `${estimate.sessions} sessions would run out of shm ids`);
  assert.ok(estimate.sessions >= 50, `${estimate.sessions} is needlessly low`);
});

test('a small machine is limited by its free memory', () => {
  const estimate = estimateCapacity({ memAvailableBytes: 1 * GiB, devShmFreeBytes: 8 * GiB, shmSegmentsFree: 4096 }, per);
  assert.equal(estimate.limitedBy, 'memory');
  assert.equal(estimate.sessions, Math.floor((1 * GiB * 0.8) / per.memoryBytes));
});

test('a container with a 64 MiB /dev/shm and a real SHMALL is limited by them', () => {
  const devShm = estimateCapacity({ memAvailableBytes: 16 * GiB, devShmFreeBytes: 64 * 1024 ** 2, shmSegmentsFree: 4096 }, per);
  assert.equal(devShm.limitedBy, 'dev-shm');
  assert.equal(devShm.sessions, Math.floor((64 * 1024 ** 2 * 0.8) / per.devShmBytes));
  const shmall = estimateCapacity({ memAvailableBytes: 16 * GiB, shmSegmentsFree: 4096, shmBytesFree: 40 * 1024 ** 2 }, per);
  assert.equal(shmall.limitedBy, 'shm-bytes');
});

test('a full machine still allows one session (it queues the rest), and an unknown one a small default', () => {
  assert.deepEqual(estimateCapacity({ memAvailableBytes: 10 * 1024 ** 2, shmSegmentsFree: 0 }, per).sessions, 1);
  assert.deepEqual(estimateCapacity({}, per), { sessions: 8, limitedBy: 'nothing known' });
});

test('this machine: its figures are read, and the estimate is a whole number of at least one', () => {
  const machine = readMachine();
  assert.ok(machine.memAvailableBytes! > 0, 'MemAvailable is read from /proc/meminfo');
  assert.ok(machine.shmSegmentsFree! >= 0, 'shm ids are read from /proc/sys/kernel/shmmni and /proc/sysvipc/shm');
  const { sessions } = localCapacity('1280x800x24');
  assert.ok(Number.isInteger(sessions) && sessions >= 1, String(sessions));
});
