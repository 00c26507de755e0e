import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CloseCode, CLOSE_CODE_MESSAGES } from '../contract';
import { afterStreamEnd, describeStreamEnd, DROPPED_DELAYS_MS, pollInterval, reconnectsBeforeRecheck, RECONNECT_NOW_DELAYS_MS, RETRY_DELAYS_MS, streamLabel } from './streamEnd';
import { websocketUrl } from './sessionsApi';

const closed = (code: number | null, reason = '', wasConnected = true) => ({ code, reason, wasConnected });

test('every close code the relay sends reads as its contract sentence when the relay gave no reason', () => {
  for (const code of Object.values(CloseCode)) assert.equal(describeStreamEnd(closed(code)), CLOSE_CODE_MESSAGES[code]);
  assert.equal(describeStreamEnd(closed(4401)), 'Your sign-in has expired. Sign in again to see the desktop.');
  assert.equal(describeStreamEnd(closed(4403)), 'This page is not allowed to open the desktop stream. Open Sortie from its own address.');
});

test("the relay's own reason wins; an unknown close falls back to what the viewer saw", () => {
  assert.equal(describeStreamEnd(closed(4429, 'This session already has 2 viewers')), 'This session already has 2 viewers');
  assert.equal(describeStreamEnd(closed(1006, '', true)), 'The connection to the desktop was lost.');
  assert.equal(describeStreamEnd(closed(null, '', false)), 'Could not connect to the desktop.');
});

test('a close that retrying cannot fix goes straight to the person', () => {
  for (const code of [4401, 4403, 4404, 4410, 4413, 4429]) assert.deepEqual(afterStreamEnd(closed(code), 0), { retry: false }, `${code}`);
});

test('other ends are retried after each delay in turn, then left to the person', () => {
  const of = RETRY_DELAYS_MS.length;
  for (const code of [null, 1000, 4400, 4408, 4409, 4502]) {
    assert.deepEqual(afterStreamEnd(closed(code), 0), { retry: true, attempt: 1, of, delayMs: RETRY_DELAYS_MS[0], quiet: false }, `${code}`);
    assert.deepEqual(afterStreamEnd(closed(code), 1), { retry: true, attempt: 2, of, delayMs: RETRY_DELAYS_MS[1], quiet: false }, `${code}`);
    assert.deepEqual(afterStreamEnd(closed(code), RETRY_DELAYS_MS.length), { retry: false }, `${code}`);
  }
});

test('a Sortie that is shutting down (4307, 4503) is left at once, quietly, and again soon if the next one is going too', () => {
  for (const code of [4307, 4503]) {
    assert.deepEqual(afterStreamEnd(closed(code), 0), { retry: true, attempt: 1, of: RECONNECT_NOW_DELAYS_MS.length, delayMs: 0, quiet: true }, `${code}`);
    const delays = RECONNECT_NOW_DELAYS_MS.map((_, i) => (afterStreamEnd(closed(code), i) as { delayMs: number }).delayMs);
    assert.ok(delays.every((d, i) => i === 0 || d > delays[i - 1]!), 'backing off');
    assert.ok(delays.reduce((a, b) => a + b, 0) <= 5000, 'a whole rolling update is waited out within seconds');
    assert.deepEqual(afterStreamEnd(closed(code), RECONNECT_NOW_DELAYS_MS.length), { retry: false });
  }
});

test('only a Sortie handing the stream on (4307, 4503) is reconnected before the session is re-read, and only on its first, immediate try', () => {
  for (const code of [4307, 4503]) {
    assert.equal(reconnectsBeforeRecheck(afterStreamEnd(closed(code), 0)), true, `${code}`);
    // A later try follows a refusal too: the session may have ended meanwhile.
    assert.equal(reconnectsBeforeRecheck(afterStreamEnd(closed(code), 1)), false, `${code} again`);
    assert.equal(reconnectsBeforeRecheck(afterStreamEnd(closed(code), RECONNECT_NOW_DELAYS_MS.length)), false, `${code} past the budget`);
  }
  // Any of these may mean the session itself ended: read it first.
  for (const code of [null, 1000, 1006, 4401, 4404, 4410, 4502]) assert.equal(reconnectsBeforeRecheck(afterStreamEnd(closed(code), 0)), false, `${code}`);
});

test('a dropped connection (1006) is retried sooner than other failures', () => {
  const first = afterStreamEnd(closed(1006), 0);
  assert.deepEqual(first, { retry: true, attempt: 1, of: DROPPED_DELAYS_MS.length, delayMs: DROPPED_DELAYS_MS[0], quiet: false });
  assert.ok(DROPPED_DELAYS_MS[0]! < RETRY_DELAYS_MS[0]!);
  assert.deepEqual(afterStreamEnd(closed(1006), DROPPED_DELAYS_MS.length), { retry: false });
});

test('the viewer polls fast while a session boots, slowly while it runs, and not once it is over', () => {
  assert.equal(pollInterval(null, false), 500);
  assert.equal(pollInterval({ status: 'creating' }, false), 500);
  assert.equal(pollInterval({ status: 'queued' }, false), 1000);
  assert.equal(pollInterval({ status: 'running' }, false), 5000);
  assert.equal(pollInterval({ status: 'failed' }, false), null);
  assert.equal(pollInterval({ status: 'terminated' }, false), null);
  assert.equal(pollInterval({ status: 'running' }, true), null);
});

test('the stream label names each state', () => {
  assert.equal(streamLabel({ state: 'connecting' }), 'Connecting…');
  assert.equal(streamLabel({ state: 'connected' }), 'Connected');
  assert.equal(streamLabel({ state: 'retrying', attempt: 1, of: 2, message: '', quiet: false }), 'Reconnecting…');
  assert.equal(streamLabel({ state: 'connecting', again: true }), 'Reconnecting…');
  assert.equal(streamLabel({ state: 'lost', message: '', everConnected: true }), 'Disconnected');
});

test('the stream URL follows the page: wss under https, on the same host', () => {
  const session = { id: 'abc', websocket_url: '/ws/sessions/abc' };
  assert.equal(websocketUrl(session, { protocol: 'https:', host: 'sortie.example.com' }), 'wss://sortie.example.com/ws/sessions/abc');
  assert.equal(websocketUrl(session, { protocol: 'http:', host: 'localhost:8080' }), 'ws://localhost:8080/ws/sessions/abc');
  assert.equal(websocketUrl({ id: 'a/b', websocket_url: '' }, { protocol: 'http:', host: 'h' }), 'ws://h/ws/sessions/a%2Fb');
  assert.equal(websocketUrl({ id: 'x', websocket_url: 'wss://elsewhere/ws/sessions/x' }, { protocol: 'http:', host: 'h' }), 'wss://elsewhere/ws/sessions/x');
});
