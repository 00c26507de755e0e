import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { launchFromCatalog, SCREENSHOT_DIR } from '../support/browser.js';
import { readPod, startClusterDesk, waitForPodGone, type ClusterBrowserDesk } from './cluster.js';

// A person in a real browser, against the real server on the kubernetes runner: the
// catalog's xterm runs as a pod in a namespace of this file's own.
let cluster: ClusterBrowserDesk;

before(async () => {
  cluster = await startClusterDesk({ name: 'browser', env: { SORTIE_AUTH: 'disabled' }, browser: true });
});

after(() => cluster?.cleanup());

test('launch xterm from the catalog onto a pod, see it in the noVNC canvas, end it from the viewer', async () => {
  const page = await cluster.browser.newPage({ viewport: { width: 1400, height: 900 } });
  const shot = 'browser-kubernetes-xterm.png';
  const { sessionId, colours } = await launchFromCatalog(page, cluster.sortie.url, 'xterm', shot);
  assert.ok(colours >= 2, `the canvas shows the desktop (${colours} colours), screenshot in ${path.join(SCREENSHOT_DIR, shot)}`);

  const api = cluster.sortie.api;
  const session = await api.session(sessionId);
  assert.equal(session.status, 'running');
  const pod = await readPod(cluster.kc, cluster.namespace.name, session.pod_name);
  assert.ok(pod, `pod ${session.pod_name} exists while the session runs`);
  assert.equal(pod.metadata?.labels?.['sortie.io/session-id'], sessionId);

  // Ending the session from the viewer deletes the pod for real.
  await page.getByTestId('end-session').click();
  await page.getByTestId('viewer-status').filter({ hasText: 'terminated' }).waitFor({ timeout: 10_000 });
  assert.equal((await api.session(sessionId)).status, 'terminated');
  // Sortie has asked for the pod's deletion by the time the session reads terminated; the
  // kubelet on the two-core test node then takes from seconds to over a minute to finish it.
  const ending = await readPod(cluster.kc, cluster.namespace.name, session.pod_name);
  assert.ok(!ending || ending.metadata?.deletionTimestamp, `pod ${session.pod_name} is being deleted`);
  await waitForPodGone(cluster.kc, cluster.namespace.name, session.pod_name);
  await page.close();
});
