/**
 * Sortie as an organisation runs it: the Helm chart with 3 replicas on PostgreSQL, in the
 * local cluster, reached through its Service. A person's desktop stream, open in Chromium,
 * must survive the replica relaying it going away, first by a deleted pod and then by a
 * `helm upgrade` that replaces every replica: each time the canvas draws again within 2 s,
 * on the same session, and nothing is left behind.
 *
 * - PostgreSQL is a throwaway server on the host (support/pod-reachable-postgres.ts says why
 *   not in the cluster), on the node's address, which pods reach through their gateway.
 * - The cluster has no kube-proxy: support/service-proxy.ts stands in for it for Sortie's
 *   Service, following its Endpoints as kube-proxy does, so the browser talks to the
 *   ClusterIP and each new connection lands on any ready replica. A port-forward to one
 *   pod could not show a stream moving to another.
 * - The image is the one `scripts/local-cluster.sh build-image sortie` builds (cached by
 *   content, so it is quick when in-cluster.test.ts built it already); the upgrade moves
 *   to the same image under a second tag, which changes the pod template as a release does.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHART, Cluster, requireCluster, run, runOk } from '../deploy/tools.js';
import { launchBrowser, SCREENSHOT_DIR } from '../support/browser.js';
import { REPO_ROOT } from '../support/paths.js';
import { startPodReachablePostgres, type PodReachablePostgres } from '../support/pod-reachable-postgres.js';
import { removeServiceProxy, startServiceProxy, type ServiceProxy } from '../support/service-proxy.js';
import { waitFor } from '../support/wait.js';

const NAMESPACE = 'sortie-replicas';
const RELEASE = 'sortie';
const REPOSITORY = 'ghcr.io/rjsadow/sortie';
const IMAGE = `${REPOSITORY}:latest`;
const UPGRADE_TAG = 'replicas-upgrade';
const SIDECAR_IMAGE = 'ghcr.io/rjsadow/sortie-vnc-sidecar:latest';
const SERVER_PODS = `app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=server`;
const SESSION_PODS = 'app.kubernetes.io/managed-by=sortie,app.kubernetes.io/component=session';
const CHAIN = 'SORTIE-REPLICAS-TEST';
const DATABASE_SECRET = 'sortie-database';
const REPLICAS = 3;
/** What the person gets: the desktop back within this long after the stream dropped. */
const BACK_WITHIN_MS = 2000;

const localCluster = (...args: string[]) => run('bash', [path.join(REPO_ROOT, 'scripts', 'local-cluster.sh'), ...args]);

// In-page code, typed structurally: the server's tsconfig has no DOM lib.
type Canvas = { width: number; height: number; dataset: Record<string, string>; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } };
interface Outage {
  /** When a stream that had drawn the desktop closed, and with which code. */
  closedAt: number;
  code: number;
  /** When a canvas of a later stream had drawn the desktop; null while it has not. */
  drawnAt: number | null;
  /** What the viewer did meanwhile, in ms after the close: each new connection, its opening and its close code. */
  trace: string[];
  /** What the stream had brought when the desktop was drawn. */
  received?: string;
}
type PageGlobals = {
  WebSocket: new (url: string | URL, protocols?: string | string[]) => { addEventListener(type: string, listener: (event: { code: number; data?: unknown }) => void): void };
  document: { querySelectorAll(selector: string): Iterable<Canvas> };
  requestAnimationFrame(callback: () => void): void;
  sortieOutages: Outage[];
};

/**
 * Installed before the page's own scripts: every desktop stream that closes after the
 * desktop was drawn starts an outage, which ends when a canvas of a later connection has
 * drawn it again (xterm's white, sampled), checked on every animation frame. Refused
 * attempts in between (a replica going away too) belong to the same outage.
 */
function recordOutages(): void {
  const g = globalThis as unknown as PageGlobals;
  g.sortieOutages = [];
  /** What the newest canvas shows, for the trace: its size and how many sampled pixels are white. */
  let seen = '';
  const drawn = () => {
    seen = 'no canvas';
    for (const c of g.document.querySelectorAll('[data-testid="vnc-container"] canvas')) {
      if (c.dataset.old || c.width === 0) continue;
      // The terminal's corner only: reading the whole canvas on every frame would hold up
      // the page's own work (the stream's messages, noVNC's drawing) that is being timed.
      const data = c.getContext('2d').getImageData(0, 0, Math.min(c.width, 400), Math.min(c.height, 200)).data;
      let n = 0;
      for (let i = 0; i < data.length; i += 4 * 7) if (data[i]! > 200 && data[i + 1]! > 200 && data[i + 2]! > 200) n++;
      seen = `canvas ${c.width}x${c.height} white ${n}`;
      if (n > 1000) return true;
    }
    return false;
  };
  let ever = false;
  const watchFirst = () => {
    if (drawn()) ever = true;
    else g.requestAnimationFrame(watchFirst);
  };
  let latest: unknown;
  const watch = (socket: InstanceType<PageGlobals['WebSocket']>) => {
    latest = socket;
    if (!ever) g.requestAnimationFrame(watchFirst);
    const during = g.sortieOutages.at(-1);
    const note = (what: string) => {
      if (during && during.drawnAt === null) during.trace.push(`+${Date.now() - during.closedAt} ${what}`);
    };
    note('new');
    socket.addEventListener('open', () => note('open'));
    // When the desktop's bytes came: the first message after the handshake's four (version,
    // security types, result, ServerInit), and how much had come by the time it was drawn.
    let messages = 0;
    let bytes = 0;
    socket.addEventListener('message', (event) => {
      messages++;
      bytes += (event.data as { byteLength?: number } | undefined)?.byteLength ?? 0;
      // Each message of the handshake and the first updates, with its size, for the trace.
      if (messages <= 10) note(`m${messages} ${(event.data as { byteLength?: number } | undefined)?.byteLength ?? 0}B`);
      if (during && during.drawnAt === null) during.received = `${messages} messages, ${bytes >> 10} KiB, the last at +${Date.now() - during.closedAt}`;
    });
    socket.addEventListener('close', (event) => {
      note(`close ${event.code}`);
      const open = g.sortieOutages.at(-1);
      // A close that comes after the viewer opened a newer connection (one it closed
      // itself, whose closing handshake ended late) interrupts nothing.
      if (!ever || latest !== socket || (open && open.drawnAt === null)) return;
      // The canvas on screen is this connection's; the viewer mounts a new one to reconnect.
      for (const c of g.document.querySelectorAll('[data-testid="vnc-container"] canvas')) c.dataset.old = '1';
      const outage: Outage = { closedAt: Date.now(), code: event.code, drawnAt: null, trace: [] };
      g.sortieOutages.push(outage);
      // What the canvas showed, each time it changed, and how many animation frames ran.
      let frames = 0;
      let last = '';
      const check = () => {
        frames++;
        const done = drawn();
        if (seen !== last) outage.trace.push(`+${Date.now() - outage.closedAt} frame ${frames}: ${(last = seen)}`);
        if (done) outage.drawnAt = Date.now();
        else g.requestAnimationFrame(check);
      };
      g.requestAnimationFrame(check);
    });
  };
  // A Proxy, not a subclass: the sockets stay native WebSockets (noVNC checks the
  // properties of the socket's own prototype), and statics and instanceof still hold.
  g.WebSocket = new Proxy(g.WebSocket, {
    construct(Native, args: [string | URL, (string | string[])?]) {
      const socket = new Native(...args);
      if (String(args[0]).includes('/ws/sessions/')) watch(socket);
      return socket;
    },
  });
}

const outagesOf = (page: Page) => page.evaluate(() => (globalThis as unknown as PageGlobals).sortieOutages);

/** Dark pixels in the terminal's top-left corner, where typed characters appear. */
async function inkInTerminal(page: Page): Promise<number> {
  return page.locator('[data-testid="vnc-container"] canvas:not([data-old])').first().evaluate((el) => {
    const data = (el as unknown as Canvas).getContext('2d').getImageData(0, 0, 600, 60).data;
    let n = 0;
    for (let i = 0; i < data.length; i += 4) if (data[i]! < 100 && data[i + 1]! < 100 && data[i + 2]! < 100) n++;
    return n;
  });
}

/** Types `text` into the terminal and waits until the desktop has drawn more ink: the stream is live both ways. */
async function typeAndSee(page: Page, text: string): Promise<void> {
  const canvas = page.locator('[data-testid="vnc-container"] canvas:not([data-old])').first();
  await canvas.waitFor({ timeout: 30_000 }).catch(async () => {
    assert.fail(`no live canvas to type "${text}" into; ${await viewerState(page, `typing-${text}.png`)}; interruptions: ${JSON.stringify(await outagesOf(page))}`);
  });
  const before = await inkInTerminal(page);
  // No window manager: X gives keys to the window under the pointer.
  await canvas.click({ position: { x: 200, y: 100 } });
  await page.keyboard.type(text, { delay: 20 });
  const deadline = Date.now() + 15_000;
  while ((await inkInTerminal(page)) <= before) {
    if (Date.now() >= deadline) assert.fail(`typing "${text}" drew nothing on the desktop; ${await viewerState(page, `typing-${text}.png`)}`);
    await page.waitForTimeout(100);
  }
}

/** What the viewer shows, for a failure: its status line and a screenshot. */
async function viewerState(page: Page, screenshot: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, screenshot) }).catch(() => undefined);
  const status = await page.getByTestId('viewer-status').textContent({ timeout: 2000 }).catch(() => '(no status)');
  const body = await page.locator('main').innerText({ timeout: 2000 }).catch(() => '');
  return `viewer: ${status}; page: ${body.replace(/\s+/g, ' ').slice(0, 400)}; screenshot test-results/${screenshot}`;
}

describe('3 replicas of Sortie on PostgreSQL in the local cluster: streams survive a replica going away', () => {
  let cluster: Cluster;
  let database: PodReachablePostgres | undefined;
  let proxy: ServiceProxy | undefined;
  let browser: Browser | undefined;
  let closeBrowser: (() => Promise<void>) | undefined;
  const windows: BrowserContext[] = [];
  let metricsToken = '';
  let adminPassword = '';
  const viewers: { page: Page; sessionId: string; podName: string }[] = [];

  /**
   * A browser window of its own for each stream, signed in as the first one is when given
   * its storage. Not a tab each: Chromium draws only a window's front tab, and a tab behind
   * it idle for a few seconds gets about two animation frames a second (measured: the first
   * 470 ms after it asks), so its desktop would count as drawn up to a second late although
   * nobody could have seen it. A person looks at one desktop per window, or switches to it.
   */
  const openWindow = async (storageState?: Awaited<ReturnType<BrowserContext['storageState']>>) => {
    const w = await browser!.newContext({ viewport: { width: 1200, height: 800 }, storageState });
    windows.push(w);
    // As source text: tsx names inner functions through a helper (__name) the page lacks.
    await w.addInitScript({ content: `var __name = (f) => f; (${recordOutages.toString()})();` });
    return w.newPage();
  };

  const pods = async () => (await cluster.json<{ items: any[] }>(['get', 'pods', '-n', NAMESPACE, '-l', SERVER_PODS])).items;
  const isReady = (pod: any) => !pod.metadata.deletionTimestamp && pod.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True');

  /** What an operator would look at when the replicas do not come up. */
  const diagnostics = async () => {
    const described = await cluster.kubectl(['describe', 'pods', '-n', NAMESPACE, '-l', SERVER_PODS]);
    const logs = await cluster.kubectl(['logs', '-n', NAMESPACE, '-l', SERVER_PODS, '--tail=30', '--prefix']);
    return `--- kubectl describe pods\n${described.stdout}${described.stderr}\n--- kubectl logs\n${logs.stdout}${logs.stderr}`;
  };

  const waitForReplicas = async (what: string, ready: (pods: any[]) => boolean) => {
    try {
      await waitFor(async () => ready(await pods()), { what, timeoutMs: 240_000, intervalMs: 1000 });
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${await diagnostics()}`);
    }
  };

  /** Open streams each Ready replica relays now, by pod name, from its own /metrics. */
  const streamsByPod = async () => {
    const out: Record<string, number> = {};
    for (const pod of (await pods()).filter(isReady)) {
      const res = await fetch(`http://${pod.status.podIP}:8080/metrics`, { headers: { authorization: `Bearer ${metricsToken}` }, signal: AbortSignal.timeout(10_000) });
      assert.equal(res.status, 200, `GET /metrics on ${pod.metadata.name}`);
      out[pod.metadata.name] = Number(/^sortie_streams_open (\d+)/m.exec(await res.text())?.[1]);
    }
    return out;
  };

  /**
   * What the relays took to open a session's streams (ms after the upgrade request at each
   * step), from the replicas' own logs, for the figures: the viewer's trace shows the whole,
   * this shows the server's part of it.
   */
  const relayTimings = async (sessionId: string) => {
    const res = await cluster.kubectl(['logs', '-n', NAMESPACE, '-l', SERVER_PODS, '--tail=-1', '--prefix', '--max-log-requests=10']);
    return res.stdout
      .split('\n')
      .filter((line) => line.includes('"stream opened"') && line.includes(sessionId))
      .map((line) => {
        const pod = /pod\/([^/\s]+)/.exec(line)?.[1] ?? '?';
        const entry = JSON.parse(line.slice(line.indexOf('{'))) as { time: number; ms: Record<string, number> };
        return `${pod.replace(`${RELEASE}-`, '')} ${new Date(entry.time).toISOString().slice(17, 23)} ${Object.entries(entry.ms).map(([k, v]) => `${k} ${v}`).join(' ')}`;
      })
      .join('; ');
  };

  /** The sessions the database holds as alive, beside the session pods that exist. */
  const liveSessions = async () => {
    const client = new pg.Client({ connectionString: database!.hostUrl });
    await client.connect();
    try {
      return (await client.query<{ id: string; status: string; pod_name: string }>("select id, status, pod_name from sessions where status not in ('terminated', 'failed') order by created_at")).rows;
    } finally {
      await client.end();
    }
  };
  const sessionPodNames = async () =>
    (await cluster.json<{ items: any[] }>(['get', 'pods', '-n', NAMESPACE, '-l', SESSION_PODS])).items
      .filter((p) => !p.metadata.deletionTimestamp)
      .map((p) => p.metadata.name as string)
      .sort();

  /** Nothing orphaned: exactly the viewers' sessions are alive, running, each with its one pod. */
  const assertNothingOrphaned = async () => {
    const rows = await liveSessions();
    assert.deepEqual(rows.map((r) => r.id).sort(), viewers.map((v) => v.sessionId).sort(), 'the sessions table holds exactly the open sessions');
    for (const row of rows) assert.equal(row.status, 'running', `session ${row.id}`);
    assert.deepEqual(rows.map((r) => r.pod_name).sort(), viewers.map((v) => v.podName).sort(), 'each session keeps its pod');
    assert.deepEqual(await sessionPodNames(), viewers.map((v) => v.podName).sort(), 'one session pod per session, and no other');
  };

  const cleanUp = async () => {
    const res = await cluster.helm(['uninstall', RELEASE, '-n', NAMESPACE, '--wait', '--timeout', '2m'], { timeoutMs: 150_000 });
    if (res.status !== 0 && !/not found/i.test(res.stderr)) throw new Error(`helm uninstall: ${res.stderr}`);
    // Session pods are Sortie's, not the release's; the namespace takes them (and any
    // claim) with it. PersistentVolumes are cluster-wide: none of this release's may stay.
    await cluster.kubectl(['delete', 'namespace', NAMESPACE, '--wait=true', '--timeout=180s'], { timeoutMs: 200_000 });
    const volumes = await cluster.json<{ items: any[] }>(['get', 'pv']);
    for (const pv of volumes.items.filter((v) => v.spec?.claimRef?.namespace === NAMESPACE)) {
      await cluster.kubectl(['delete', 'pv', pv.metadata.name, '--wait=false']);
    }
    await localCluster('ctr', 'images', 'rm', `${REPOSITORY}:${UPGRADE_TAG}`);
  };

  before(async () => {
    cluster = new Cluster(requireCluster());
    assert.equal(process.getuid?.(), 0, 'building and importing the image and the Service\'s NAT rules need root');
    // What an interrupted run left would hold the names this test uses.
    await removeServiceProxy(CHAIN);
    await cleanUp();
  });

  after(async () => {
    for (const v of viewers) await v.page.close().catch(() => undefined);
    for (const w of windows) await w.close().catch(() => undefined);
    await closeBrowser?.().catch(() => undefined);
    await proxy?.close().catch(() => undefined);
    await removeServiceProxy(CHAIN).catch(() => undefined);
    await cleanUp().catch(() => undefined);
    database?.stop();
  });

  test('the chart installs 3 replicas on a PostgreSQL the pods reach, behind their Service', { timeout: 30 * 60_000 }, async (t) => {
    const started = Date.now();
    await runOk('bash', [path.join(REPO_ROOT, 'scripts', 'local-cluster.sh'), 'build-image', 'sortie'], { timeoutMs: 25 * 60_000 });
    // The same image under a second tag, for the upgrade: a new pod template, as a release is.
    await runOk('bash', [path.join(REPO_ROOT, 'scripts', 'local-cluster.sh'), 'ctr', 'images', 'tag', '--force', IMAGE, `${REPOSITORY}:${UPGRADE_TAG}`]);
    t.diagnostic(`image ${IMAGE} ready (built or cached) in ${((Date.now() - started) / 1000).toFixed(1)} s`);

    // Pods reach the host at the node's address; only the pod network may sign in.
    const node = (await cluster.json<{ items: any[] }>(['get', 'nodes'])).items[0];
    const nodeIp: string = node.status.addresses.find((a: any) => a.type === 'InternalIP').address;
    database = await startPodReachablePostgres(nodeIp, podCidr());

    const databasePort = Number(new URL(database.podUrl).port);
    await cluster.ensureNamespace(NAMESPACE);
    await cluster.kubectlOk(['create', 'secret', 'generic', DATABASE_SECRET, '-n', NAMESPACE, `--from-literal=url=${database.podUrl}`]);
    const installStarted = Date.now();
    await cluster.helmOk([
      'install', RELEASE, CHART,
      '--namespace', NAMESPACE,
      '--set', `replicaCount=${REPLICAS}`,
      '--set', `database.existingSecret=${DATABASE_SECRET}`,
      '--set', 'image.pullPolicy=IfNotPresent',
      '--set', `vncSidecarImage=${SIDECAR_IMAGE}`,
      '--set', 'sessionImagePullPolicy=IfNotPresent',
      // Each replica's own /metrics tells which one relays a stream.
      '--set', 'metrics.enabled=true',
      // The relays log what each stream's opening took (see relayTimings).
      '--set', 'logLevel=debug',
      '--set', `networkPolicy.databasePorts={${databasePort}}`,
    ], { timeoutMs: 5 * 60_000 });
    await waitForReplicas(`${REPLICAS} Ready replicas`, (all) => all.filter(isReady).length === REPLICAS);
    t.diagnostic(`${REPLICAS} replicas Ready ${((Date.now() - installStarted) / 1000).toFixed(1)} s after helm install`);

    // The schema and the chart's guard rails for several replicas.
    const pdb = await cluster.json<any>(['get', 'poddisruptionbudget', RELEASE, '-n', NAMESPACE]);
    assert.equal(pdb.spec.maxUnavailable, 1);
    const deployment = await cluster.json<any>(['get', 'deployment', RELEASE, '-n', NAMESPACE]);
    assert.deepEqual(deployment.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });

    // The bridge CNI does not enforce policies, but one that does must let Sortie reach its database.
    const policy = await cluster.json<any>(['get', 'networkpolicy', `${RELEASE}-server`, '-n', NAMESPACE]);
    assert.ok(policy.spec.egress.some((rule: any) => !rule.to && rule.ports?.some((p: any) => p.port === databasePort)), 'the NetworkPolicy lets Sortie reach PostgreSQL');

    const service = await cluster.json<any>(['get', 'service', RELEASE, '-n', NAMESPACE]);
    proxy = await startServiceProxy({ kubeconfig: cluster.tools.kubeconfig, namespace: NAMESPACE, service: RELEASE, clusterIp: service.spec.clusterIP, port: service.spec.ports[0].port, chain: CHAIN });
    await waitFor(() => proxy!.endpoints().length === REPLICAS, { what: `the Service's Endpoints to list ${REPLICAS} replicas`, timeoutMs: 60_000, intervalMs: 250 });
    const ready = await fetch(`${proxy.url}/readyz`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(ready.status, 200, 'Sortie answers through its Service');

    const secret = async (name: string, key: string) =>
      Buffer.from((await cluster.json<{ data: Record<string, string> }>(['get', 'secret', name, '-n', NAMESPACE])).data[key]!, 'base64').toString('utf8');
    adminPassword = await secret(`${RELEASE}-auth`, 'admin-password');
    metricsToken = await secret(`${RELEASE}-metrics`, 'metrics-token');
  });

  test('the pod relaying a stream is deleted: the desktop draws again within 2 s on the same session, nothing orphaned', { timeout: 8 * 60_000 }, async (t) => {
    assert.ok(proxy && adminPassword, 'Sortie is not running (see the previous test)');
    ({ browser, close: closeBrowser } = await launchBrowser());
    const page = await openWindow();
    await page.goto(proxy.url);
    await page.getByTestId('signin-username').fill('admin');
    await page.getByTestId('signin-password').fill(adminPassword);
    await page.getByTestId('signin-submit').click();
    await page.getByTestId('user-name').waitFor({ timeout: 30_000 });

    await page.getByTestId('launch-xterm').click();
    await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}/, { timeout: 30_000 });
    const sessionId = /#\/sessions\/([0-9a-f-]{36})/.exec(page.url())![1]!;
    await page.getByTestId('viewer-status').filter({ hasText: 'running' }).waitFor({ timeout: 180_000 });
    const [row] = await liveSessions();
    viewers.push({ page, sessionId, podName: row!.pod_name });
    await typeAndSee(page, 'before');

    // The replica relaying it, as it reports itself; the others relay nothing.
    const before = await streamsByPod();
    const relaying = Object.keys(before).filter((name) => before[name] === 1);
    assert.equal(relaying.length, 1, `one replica relays the one stream: ${JSON.stringify(before)}`);
    const gone = relaying[0]!;

    const deleted = Date.now();
    await cluster.kubectlOk(['delete', 'pod', gone, '-n', NAMESPACE, '--wait=false']);
    let outages: Outage[] = [];
    await waitFor(async () => (outages = await outagesOf(page)).length > 0 && outages.every((o) => o.drawnAt !== null), {
      what: 'the desktop to be drawn again after its replica was deleted', timeoutMs: 60_000, intervalMs: 100,
    }).catch(async (err: Error) => {
      throw new Error(`${err.message}; ${await viewerState(page, 'replica-deleted.png')}; interruptions: ${JSON.stringify(outages)}`);
    });
    assert.equal(outages.length, 1, `one interruption: ${JSON.stringify(outages)}`);
    const outage = outages[0]!;
    const backMs = outage.drawnAt! - outage.closedAt;
    t.diagnostic(`pod ${gone} deleted: the stream closed (code ${outage.code}) ${outage.closedAt - deleted} ms after the delete; the desktop drawn again ${backMs} ms after the close (viewer: ${outage.trace.join(', ')}; drawn after ${outage.received})`);
    t.diagnostic(`relay: ${await relayTimings(sessionId)}`);
    assert.equal(outage.code, 4307, 'the draining replica asked the viewer to reconnect at once');
    assert.ok(backMs <= BACK_WITHIN_MS, `the desktop came back ${backMs} ms after the stream dropped`);
    await typeAndSee(page, 'after');

    // The same session, relayed by another replica now.
    assert.ok(page.url().endsWith(`#/sessions/${sessionId}`));
    const now = await streamsByPod();
    assert.equal(now[gone], undefined, 'the deleted replica is no longer Ready');
    assert.equal(Object.values(now).reduce((a, b) => a + b, 0), 1, `another replica relays the stream: ${JSON.stringify(now)}`);
    await assertNothingOrphaned();
    await waitForReplicas(`the Deployment to replace ${gone}`, (all) => all.filter(isReady).length === REPLICAS && !all.some((p) => p.metadata.name === gone));
  });

  test('helm upgrade to a new image tag with 3 streams open: each is back within 2 s, no session lost', { timeout: 12 * 60_000 }, async (t) => {
    assert.ok(proxy && windows.length === 1 && viewers.length === 1, 'the first stream is not open (see the previous test)');
    for (let i = 1; i < 3; i++) {
      const page = await openWindow(await windows[0]!.storageState());
      await page.goto(proxy.url);
      const known = new Set(viewers.map((v) => v.sessionId));
      await page.getByTestId('launch-xterm').click();
      await page.waitForURL(/#\/sessions\/[0-9a-f-]{36}/, { timeout: 30_000 });
      const sessionId = /#\/sessions\/([0-9a-f-]{36})/.exec(page.url())![1]!;
      assert.ok(!known.has(sessionId));
      await page.getByTestId('viewer-status').filter({ hasText: 'running' }).waitFor({ timeout: 180_000 });
      const row = (await liveSessions()).find((r) => r.id === sessionId);
      viewers.push({ page, sessionId, podName: row!.pod_name });
      await typeAndSee(page, `s${i}`);
    }
    const counted = await Promise.all(viewers.map(async (v) => (await outagesOf(v.page)).length));
    const oldPods = (await pods()).map((p) => p.metadata.name as string);

    const started = Date.now();
    await cluster.helmOk(['upgrade', RELEASE, CHART, '-n', NAMESPACE, '--reuse-values', '--set', `image.tag=${UPGRADE_TAG}`], { timeoutMs: 5 * 60_000 });
    await cluster.kubectlOk(['rollout', 'status', `deployment/${RELEASE}`, '-n', NAMESPACE, '--timeout=8m'], { timeoutMs: 9 * 60_000 });
    await waitForReplicas('the old replicas to be gone', (all) => all.length === REPLICAS && all.every((p) => isReady(p) && !oldPods.includes(p.metadata.name)));
    t.diagnostic(`rollout of ${REPLICAS} replicas done in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const since = (iso: string) => ((Date.parse(iso) - started) / 1000).toFixed(0);
    for (const pod of await pods()) {
      assert.equal(pod.spec.containers[0].image, `${REPOSITORY}:${UPGRADE_TAG}`);
      const ready = pod.status.conditions.find((c: any) => c.type === 'Ready').lastTransitionTime;
      t.diagnostic(`new replica ${pod.metadata.name}: created at +${since(pod.metadata.creationTimestamp)} s, Ready at +${since(ready)} s`);
    }

    // Every stream's figures first, so a slow one does not hide the others'.
    const slow: string[] = [];
    for (const [i, v] of viewers.entries()) {
      let outages: Outage[] = [];
      await waitFor(async () => (outages = (await outagesOf(v.page)).slice(counted[i])).every((o) => o.drawnAt !== null), {
        what: `stream ${i + 1} to be drawn again`, timeoutMs: 30_000, intervalMs: 200,
      }).catch(async (err: Error) => {
        throw new Error(`${err.message}; ${await viewerState(v.page, `upgrade-stream-${i + 1}.png`)}; interruptions: ${JSON.stringify(outages)}`);
      });
      // Every stream was on a replica the rollout replaced, so it moved at least once.
      assert.ok(outages.length >= 1, `stream ${i + 1} was never moved`);
      const times = outages.map((o) => o.drawnAt! - o.closedAt);
      t.diagnostic(`stream ${i + 1} (session ${v.sessionId}): ${outages.length} move(s), back after ${times.join(', ')} ms (close codes ${outages.map((o) => o.code).join(', ')}; viewer: ${outages.map((o) => `${o.trace.join(' ')}, drawn after ${o.received}`).join(' | ')})`);
      t.diagnostic(`stream ${i + 1} relay: ${await relayTimings(v.sessionId)}`);
      for (const ms of times) if (ms > BACK_WITHIN_MS) slow.push(`stream ${i + 1} came back ${ms} ms after it dropped`);
    }
    assert.deepEqual(slow, [], `every stream back within ${BACK_WITHIN_MS} ms`);
    for (const v of viewers) {
      assert.ok(v.page.url().endsWith(`#/sessions/${v.sessionId}`));
      await typeAndSee(v.page, 'upgraded');
    }
    const relayed = await streamsByPod();
    assert.equal(Object.values(relayed).reduce((a, b) => a + b, 0), viewers.length, `the new replicas relay every stream: ${JSON.stringify(relayed)}`);
    await assertNothingOrphaned();
  });
});

/** The pod network, from the cluster's CNI configuration (scripts/local-cluster.sh writes it). */
function podCidr(): string {
  const dir = path.join(process.env.SORTIE_CLUSTER_DIR ?? '/var/lib/sortie-local-cluster', 'cni', 'net.d');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.conflist'))) {
    const subnet = /"subnet":\s*"([^"]+)"/.exec(readFileSync(path.join(dir, file), 'utf8'))?.[1];
    if (subnet) return subnet;
  }
  throw new Error(`no pod subnet in the CNI configuration under ${dir}`);
}
