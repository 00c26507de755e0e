import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { fullUpdatePixels, openDeskView, resize } from '../support/desk.js';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { clientCutText } from '../support/rfb.js';
import { adminKubeConfig, createTestNamespace, DEMO_IMAGE, kubernetesSortieEnv } from './cluster.js';

// The sidecar's desktop, TigerVNC's Xvnc, through Sortie's relay on a real pod: a viewer
// resizes it to its window with RFB SetDesktopSize, and a size that would take the
// sidecar's memory is refused while the session goes on.

const small = { cpu_request: '50m', cpu_limit: '1', memory_request: '64Mi', memory_limit: '512Mi' };
let kc: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> };
let sortie: TestSortie;

before(async () => {
  kc = await adminKubeConfig();
  namespace = await createTestNamespace(kc, 'desktop');
  sortie = await startTestSortie({
    name: 'k8s-desktop',
    apps: [{ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: small, clipboard: 'none' }],
    env: kubernetesSortieEnv(namespace.name),
  });
});

after(async () => {
  await sortie?.cleanup();
  await namespace?.remove();
});

test('a viewer resizes the pod\'s desktop through Sortie, a huge size is refused, and the session goes on', async () => {
  const session = await sortie.api.launch('xterm', 'alice');
  await sortie.api.waitFor(session.id, 'running', 90_000);
  const desk = await openDeskView(sortie, session.id);
  try {
    assert.deepEqual([desk.desktop.width, desk.desktop.height], [1280, 800], 'the default size');
    assert.equal(desk.screens.length, 1, 'the sidecar speaks ExtendedDesktopSize');

    const answer = await resize(desk, 1600, 900);
    assert.deepEqual({ status: answer.status, width: answer.width, height: answer.height }, { status: 0, width: 1600, height: 900 });
    assert.equal(await fullUpdatePixels(desk, 1600, 900), 1600 * 900, 'the whole new desktop is drawn');

    // 32000x32000 would be 4 GiB of framebuffer: refused within Xvnc's address-space cap.
    const huge = await resize(desk, 32000, 32000);
    assert.notEqual(huge.status, 0);
    // Cut text from a viewer is dropped under "clipboard": "none" and changes nothing here.
    desk.viewer.send(clientCutText('not for the app'));
    const upright = await resize(desk, 720, 1280);
    assert.equal(upright.status, 0, 'the desktop still takes sizes it can hold');
    assert.equal(upright.before.some((m) => m.type === 'cut'), false, 'no cut text comes back under "none"');
    assert.equal((await sortie.api.session(session.id)).status, 'running');
  } finally {
    desk.viewer.close();
  }
});
