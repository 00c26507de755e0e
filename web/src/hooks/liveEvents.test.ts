import assert from 'node:assert/strict';
import { afterEach, beforeEach, mock, test } from 'node:test';
import { LiveEvents, RACE_MS, REOPEN_MS, RETRY_MS, type SessionEvent, type StreamHandlers } from './liveEvents';

/** Streams as the server would drive them, and what the page was told. */
function harness(refresh: () => Promise<boolean> = async () => true) {
  const streams: Array<{ url: string; handlers: StreamHandlers; closed: boolean }> = [];
  const events: SessionEvent[] = [];
  const health: boolean[] = [];
  const refreshes = { count: 0 };
  const live = new LiveEvents({
    url: '/api/events',
    connect: (url, handlers) => {
      const stream = { url, handlers, closed: false };
      streams.push(stream);
      return { close: () => void (stream.closed = true) };
    },
    refresh: () => {
      refreshes.count++;
      return refresh();
    },
    onEvent: (event) => events.push(event),
    onHealth: (healthy) => health.push(healthy),
  });
  const last = () => streams.at(-1)!;
  return { live, streams, events, health, refreshes, last };
}

/** Lets promise callbacks (the refresh) run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
afterEach(() => mock.timers.reset());

test('announcements reach the page; the first ready makes the stream healthy and is no change itself', () => {
  const h = harness();
  h.live.start();
  h.last().handlers.event('ready', '{}');
  h.last().handlers.event('session', '{"id":"s1","status":"running"}');
  h.last().handlers.event('queue', '{}');
  h.last().handlers.event('resync', '{}');
  assert.deepEqual(h.events, [{ id: 's1', status: 'running' }, {}, {}]);
  assert.deepEqual(h.health, [true]);
});

test('a stream ended by its expired access token is followed at once by one with a refreshed token, healthy all along, and the page re-reads what the gap may have hidden', async () => {
  const h = harness();
  h.live.start();
  const first = h.last();
  first.handlers.event('ready', '{}');
  first.handlers.event('expired', '{"message":"The access token this stream was opened with has expired"}');
  assert.equal(first.closed, true, 'the ended stream is closed, so the browser does not retry it with the old token');
  await settle();
  assert.equal(h.refreshes.count, 1);
  assert.equal(h.streams.length, 2, 'the next stream opens without waiting for a timer');
  h.last().handlers.event('ready', '{}');
  assert.deepEqual(h.events, [{}]);
  assert.deepEqual(h.health, [true, true], 'never unhealthy, so the page never fell back to polling');
  // The old stream's late words change nothing.
  first.handlers.error(true);
  assert.deepEqual(h.health, [true, true]);
  assert.equal(h.streams.length, 2);
});

test('a refused refresh still tries one stream: another tab may have won the refresh and renewed the shared cookie', async () => {
  const h = harness(async () => false);
  h.live.start();
  h.last().handlers.event('ready', '{}');
  h.last().handlers.event('expired', '{}');
  await settle();
  assert.equal(h.streams.length, 1);
  mock.timers.tick(RACE_MS);
  assert.equal(h.streams.length, 2);
  h.last().handlers.event('ready', '{}');
  assert.deepEqual(h.health, [true, true]);
  assert.deepEqual(h.events, [{}]);
});

test('when the refresh is refused and so is the stream, the sign-in is over: no new stream until REOPEN_MS, and polling takes over', async () => {
  const h = harness(async () => false);
  h.live.start();
  h.last().handlers.event('ready', '{}');
  h.last().handlers.event('expired', '{}');
  await settle();
  mock.timers.tick(RACE_MS);
  h.last().handlers.error(true);
  await settle();
  assert.equal(h.refreshes.count, 1, 'no second refresh');
  assert.equal(h.streams.length, 2);
  assert.equal(h.health.at(-1), false);
  mock.timers.tick(REOPEN_MS - 1);
  assert.equal(h.streams.length, 2);
  mock.timers.tick(1);
  assert.equal(h.streams.length, 3);
});

test('when the server cannot be reached to refresh, the stream is tried again after RETRY_MS', async () => {
  const h = harness(() => Promise.reject(new Error('offline')));
  h.live.start();
  h.last().handlers.event('expired', '{}');
  await settle();
  assert.equal(h.health.at(-1), false);
  mock.timers.tick(RETRY_MS);
  assert.equal(h.streams.length, 2);
});

test('a refused stream (a token that expired unseen) refreshes and retries at once; refused again, it waits REOPEN_MS', async () => {
  const h = harness();
  h.live.start();
  h.last().handlers.error(true);
  assert.deepEqual(h.health, [false]);
  await settle();
  assert.equal(h.refreshes.count, 1);
  assert.equal(h.streams.length, 2);
  h.last().handlers.error(true);
  await settle();
  assert.equal(h.refreshes.count, 1, 'a second refusal is not the token: over the limit, say');
  mock.timers.tick(REOPEN_MS);
  assert.equal(h.streams.length, 3);
  // A stream that was accepted again resets the count.
  h.last().handlers.event('ready', '{}');
  h.last().handlers.error(true);
  await settle();
  assert.equal(h.refreshes.count, 2);
  assert.equal(h.streams.length, 4);
});

test('a dropped stream the browser retries by itself is unhealthy meanwhile, and nothing else is opened', async () => {
  const h = harness();
  h.live.start();
  h.last().handlers.event('ready', '{}');
  h.last().handlers.error(false);
  await settle();
  mock.timers.tick(REOPEN_MS);
  assert.deepEqual(h.health, [true, false]);
  assert.equal(h.streams.length, 1);
  assert.equal(h.refreshes.count, 0);
});

test('a stream ended because the sign-in did (revoked) is not reopened before REOPEN_MS', async () => {
  const h = harness();
  h.live.start();
  h.last().handlers.event('ready', '{}');
  h.last().handlers.event('revoked', '{"message":"This sign-in has ended"}');
  await settle();
  assert.equal(h.last().closed, true);
  assert.equal(h.refreshes.count, 0);
  assert.equal(h.health.at(-1), false);
  mock.timers.tick(REOPEN_MS);
  assert.equal(h.streams.length, 2);
});

test('stopping closes the stream and cancels what was to come', async () => {
  const h = harness();
  h.live.start();
  h.last().handlers.event('revoked', '{}');
  h.live.stop();
  mock.timers.tick(REOPEN_MS);
  assert.equal(h.streams.length, 1);
  const g = harness();
  g.live.start();
  g.last().handlers.event('expired', '{}');
  g.live.stop();
  await settle();
  assert.equal(g.streams.length, 1, 'a refresh that answers after the page left opens nothing');
});
