import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import type { Session } from '../src/sessions/session.js';
import { CloseCode } from '../src/stream/close-codes.js';
import { Api, type Reply } from './support/api.js';
import { startEchoVnc } from './support/echo-vnc.js';
import { FakeRunner } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { canConnect, freePort } from './support/ports.js';
import { overWebSocket, RfbViewer, StreamClosed } from './support/rfb.js';
import { waitFor } from './support/wait.js';

// GET /metrics of a real Sortie (HTTP API, session service, SQLite, relay) whose sessions
// are a FakeRunner's, streaming through a real websockify to a stand-in VNC server that
// echoes: what the test does (launches, ends, failures, a queue, bytes both ways, broken
// handshakes) must show in the scraped text with the same counts.

const TOKEN = 'metrics-test-token-0123456789abcdef';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** The Prometheus text format's samples (comments and HELP/TYPE lines skipped). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(match, `not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

/** The value of the one sample with this name whose labels include `labels`; 0 when there is none. */
function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const found = samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  assert.ok(found.length <= 1, `${name} ${JSON.stringify(labels)} names ${found.length} samples`);
  return found[0]?.value ?? 0;
}

describe('GET /metrics', () => {
  let echo: Awaited<ReturnType<typeof startEchoVnc>>;
  let websockify: ChildProcess;
  let runner: FakeRunner;
  let sortie: TestSortie;
  const scraper = () => sortie.api.as(TOKEN);

  const scrape = async (): Promise<Sample[]> => {
    const res = await scraper().request('GET', '/metrics');
    assert.equal(res.status, 200, res.text);
    return parse(res.text);
  };
  const launch = async (): Promise<Session> => {
    const res = await sortie.api.request<Session>('POST', '/api/sessions', { app_id: 'xterm' });
    assert.equal(res.status, 201, res.text);
    return res.body;
  };
  const statusOf = async (id: string) => (await sortie.api.request<Session>('GET', `/api/sessions/${id}`)).body.status;
  const until = (id: string, status: Session['status']) => waitFor(async () => (await statusOf(id)) === status, { what: `session ${id} to be ${status}` });

  before(async () => {
    echo = await startEchoVnc();
    const wsPort = await freePort();
    websockify = spawn('/usr/bin/websockify', [`127.0.0.1:${wsPort}`, `127.0.0.1:${echo.port}`], { stdio: 'ignore' });
    await waitFor(() => canConnect(wsPort), { what: 'websockify to listen' });
    runner = new FakeRunner({ endpoint: { host: '127.0.0.1', port: wsPort }, startLatencyMs: () => 30 });
    sortie = await startTestSortie({ name: 'metrics', runner, env: { SORTIE_METRICS_TOKEN: TOKEN, SORTIE_MAX_SESSIONS: '2' } });
  });

  after(async () => {
    await sortie?.cleanup();
    websockify?.kill();
    await echo?.close();
  });

  test('answers 401 without the token or with a wrong one, in the same way', async () => {
    const none = await sortie.api.request('GET', '/metrics');
    const wrong = await sortie.api.as(`${TOKEN.slice(0, -1)}X`).request('GET', '/metrics');
    const short = await sortie.api.as('x').request('GET', '/metrics');
    for (const res of [none, wrong, short] as Reply[]) {
      assert.equal(res.status, 401);
      assert.match(res.text, /SORTIE_METRICS_TOKEN/);
      assert.doesNotMatch(res.text, /sortie_/);
    }
    const ok = await scraper().request('GET', '/metrics');
    assert.equal(ok.status, 200);
    assert.match(String(ok.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    assert.equal(sortie.sortie.metricsUrl, `${sortie.url}/metrics`);
  });

  test('counts what sessions, the queue, streams and failures did', async () => {
    // Two run (SORTIE_MAX_SESSIONS=2); the third waits in the queue.
    const first = await launch();
    const second = await launch();
    await until(first.id, 'running');
    await until(second.id, 'running');
    const third = await launch();
    assert.equal(third.status, 'queued');
    let m = await scrape();
    assert.equal(value(m, 'sortie_queue_length'), 1);
    assert.equal(value(m, 'sortie_sessions', { status: 'queued', app: 'xterm' }), 1);
    assert.equal(value(m, 'sortie_sessions', { status: 'running', app: 'xterm' }), 2);
    assert.equal(value(m, 'sortie_session_launch_seconds_count', { runner: 'local', app: 'xterm' }), 2);

    // Ending one lets the queued one start.
    assert.equal((await sortie.api.request('DELETE', `/api/sessions/${first.id}`)).status, 200);
    await until(third.id, 'running');

    // A stream: 256 KiB to the desktop, echoed back.
    const viewer = new RfbViewer(overWebSocket(sortie.wsUrl(second.websocket_url)));
    const { offered } = await viewer.greet();
    assert.ok(await viewer.authenticate(offered));
    const payload = Buffer.alloc(256 * 1024, 7);
    viewer.send(payload);
    assert.deepEqual(await viewer.take(payload.length), payload);
    m = await scrape();
    assert.equal(value(m, 'sortie_streams_open'), 1);
    const toViewer = value(m, 'sortie_stream_bytes_total', { direction: 'to_viewer' });
    const fromViewer = value(m, 'sortie_stream_bytes_total', { direction: 'from_viewer' });
    // The payload plus the handshake and WebSocket framing: a few KiB at most.
    for (const bytes of [toViewer, fromViewer]) assert.ok(bytes >= payload.length && bytes < payload.length + 16 * 1024, `bytes relayed: ${bytes}`);
    viewer.close();
    await waitFor(async () => value(await scrape(), 'sortie_streams_open') === 0, { what: 'the stream to be counted closed' });
    m = await scrape();
    assert.ok(value(m, 'sortie_stream_bytes_total', { direction: 'to_viewer' }) >= toViewer, 'bytes of a closed stream stay counted');

    // A viewer that does not speak VNC, and a stream of a session that does not exist.
    const notVnc = overWebSocket(sortie.wsUrl(second.websocket_url));
    await notVnc.bytes.take(12);
    notVnc.send(Buffer.from('HTTP/1.1 200\n'));
    const closed = await notVnc.bytes.take(1).catch((err: unknown) => err);
    assert.ok(closed instanceof StreamClosed && closed.code === CloseCode.HandshakeFailed, String(closed));
    const missing = overWebSocket(sortie.wsUrl('/ws/sessions/no-such-session'));
    const refused = await missing.bytes.take(1).catch((err: unknown) => err);
    assert.ok(refused instanceof StreamClosed && refused.code === CloseCode.SessionNotFound, String(refused));

    // A running session whose workload breaks, and a launch the runner refuses.
    runner.fail(second.id, 'The app container exited with code 139');
    await until(second.id, 'failed');
    runner.launchError = new Error('exceeded quota');
    const refusedLaunch = await launch();
    await until(refusedLaunch.id, 'failed');

    m = await scrape();
    assert.equal(value(m, 'sortie_session_failures_total', { app: 'xterm', reason: 'launch_refused' }), 1);
    assert.equal(value(m, 'sortie_session_failures_total', { app: 'xterm', reason: 'workload_failed' }), 1);
    assert.equal(value(m, 'sortie_runner_errors_total', { runner: 'local', operation: 'launch' }), 1);
    assert.equal(value(m, 'sortie_stream_handshake_failures_total', { side: 'viewer' }), 1);
    assert.equal(value(m, 'sortie_stream_handshake_failures_total', { side: 'session' }), 0);
    assert.equal(value(m, 'sortie_stream_refusals_total', { code: String(CloseCode.SessionNotFound) }), 1);
    assert.deepEqual(
      Object.fromEntries(['queued', 'creating', 'running', 'terminated', 'failed'].map((status) => [status, value(m, 'sortie_sessions', { status, app: 'xterm' })])),
      { queued: 0, creating: 0, running: 1, terminated: 1, failed: 2 },
    );
    assert.equal(value(m, 'sortie_queue_length'), 0);

    // One observation per launch that reached running, none for the refused one.
    const launches = { runner: 'local', app: 'xterm' };
    assert.equal(value(m, 'sortie_session_launch_seconds_count', launches), 3);
    assert.equal(value(m, 'sortie_session_launch_seconds_bucket', { ...launches, le: '+Inf' }), 3);
    const launchSeconds = value(m, 'sortie_session_launch_seconds_sum', launches);
    assert.ok(launchSeconds > 0 && launchSeconds < 60, `launch seconds: ${launchSeconds}`);
    // Every session that left the queue, the refused launch included; only the third waited.
    assert.equal(value(m, 'sortie_queue_wait_seconds_count', { app: 'xterm' }), 4);
    assert.ok(value(m, 'sortie_queue_wait_seconds_sum', { app: 'xterm' }) > 0);
    assert.equal(value(m, 'sortie_http_requests_total', { method: 'POST', route: '/api/sessions', status: '201' }), 4);

    // The process defaults.
    for (const name of ['process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      assert.ok(m.some((s) => s.name === name), `${name} is exported`);
    }
  });
});

describe('GET /metrics on a port of its own (SORTIE_METRICS_PORT)', () => {
  const started: TestSortie[] = [];
  after(async () => {
    for (const s of started) await s.cleanup();
  });

  test('is served there only, without a token when none is set, and two Sorties in one process keep their own counts', async () => {
    const open = await startTestSortie({ name: 'metrics-port', runner: new FakeRunner(), env: { SORTIE_METRICS_PORT: '0' } });
    started.push(open);
    const guarded = await startTestSortie({ name: 'metrics-port-token', runner: new FakeRunner(), env: { SORTIE_METRICS_PORT: '0', SORTIE_METRICS_TOKEN: TOKEN } });
    started.push(guarded);

    assert.equal((await open.api.request('GET', '/metrics')).status, 404, 'the main port does not serve /metrics');
    const openUrl = new URL(open.sortie.metricsUrl!);
    assert.notEqual(openUrl.port, String(open.sortie.port));
    const metricsApi = new Api(openUrl.origin);
    assert.equal((await metricsApi.request('POST', '/api/sessions', { app_id: 'xterm' })).status, 404, 'the metrics port serves nothing else');

    assert.equal((await open.api.request('POST', '/api/sessions', { app_id: 'xterm' })).status, 201);
    const res = await metricsApi.request('GET', '/metrics');
    assert.equal(res.status, 200);
    const m = parse(res.text);
    assert.equal(value(m, 'sortie_http_requests_total', { method: 'POST', route: '/api/sessions', status: '201' }), 1);

    const guardedApi = new Api(new URL(guarded.sortie.metricsUrl!).origin);
    assert.equal((await guardedApi.request('GET', '/metrics')).status, 401);
    const theirs = await guardedApi.as(TOKEN).request('GET', '/metrics');
    assert.equal(theirs.status, 200);
    assert.equal(value(parse(theirs.text), 'sortie_http_requests_total', { method: 'POST', route: '/api/sessions', status: '201' }), 0, 'the other instance launched nothing');
  });
});
