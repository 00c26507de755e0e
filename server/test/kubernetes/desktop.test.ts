import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { fullUpdatePixels, openDeskView, resize } from '../support/desk.js';
import type { TestSortie } from '../support/harness.js';
import { clientCutText } from '../support/rfb.js';
import { DEMO_IMAGE, SMALL_LIMITS, startClusterDesk, type ClusterDesk } from './cluster.js';

// The sidecar's desktop, TigerVNC's Xvnc, through Sortie's relay on a real pod: a viewer
// resizes it to its window with RFB SetDesktopSize, and a size that would take the
// sidecar's memory is refused while the session goes on.

let cluster: ClusterDesk;
let sortie: TestSortie;

before(async () => {
  cluster = await startClusterDesk({
    name: 'desktop',
    apps: [{ id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: SMALL_LIMITS, clipboard: 'none' }],
  });
  ({ sortie } = cluster);
});

after(() => cluster?.cleanup());

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
