import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { KubeConfig } from '@kubernetes/client-node';
import { sql } from 'kysely';
import type { Db } from '../../src/db/database.js';
import { startTestSortie, type TestSortie } from '../support/harness.js';
import { openTestDatabase } from '../support/postgres.js';
import { waitFor } from '../support/wait.js';
import { adminKubeConfig, captureLogger, createTestNamespace, DEMO_IMAGE, kubernetesSortieEnv, readPod, SMALL_LIMITS, waitForPodGone } from './cluster.js';

// A replica that ends a session and dies before deleting its pod leaves the pod running with
// its row final. The running (leading) Sortie's sweep finds it and deletes it; a live
// session's pod beside it is untouched. Real pods on the local cluster, in a namespace of
// this file's own; sweeps a second apart instead of a minute.

const XTERM = { id: 'xterm', name: 'XTerm', launch_type: 'container', container_image: DEMO_IMAGE, command: ['xterm'], resource_limits: SMALL_LIMITS };

let kc: KubeConfig;
let namespace: { name: string; remove: () => Promise<void> };
let sortie: TestSortie;
let db: Db;
const log = captureLogger();

before(async () => {
  kc = await adminKubeConfig();
  namespace = await createTestNamespace(kc, 'orphans');
  sortie = await startTestSortie({
    name: 'k8s-orphans',
    apps: [XTERM],
    env: kubernetesSortieEnv(namespace.name),
    logger: log.logger,
    sessionTimers: { queuePassIntervalMs: 500, orphanSweepIntervalMs: 1_000 },
  });
  db = await openTestDatabase(sortie.dir);
});

after(async () => {
  await db?.destroy();
  await sortie?.cleanup();
  await namespace?.remove();
});

test("a pod whose session ended behind Sortie's back is deleted by the sweep; a live session's pod stays", async () => {
  const live = await sortie.api.launch('xterm', 'alice');
  const over = await sortie.api.launch('xterm', 'bob');
  await sortie.api.waitFor(live.id, 'running', 180_000);
  await sortie.api.waitFor(over.id, 'running', 180_000);

  // What a replica that died between ending the session and deleting its pod leaves behind.
  const at = new Date().toISOString();
  await sql`update sessions set status = 'terminated', reason = 'Ended by its user', endpoint = null, updated_at = ${at} where id = ${over.id}`.execute(db);
  const ended = Date.now();

  // Asked to go within a few sweeps (a second apart); the kubelet then takes its own time.
  await waitFor(async () => {
    const pod = await readPod(kc, namespace.name, over.pod_name);
    return pod === undefined || pod.metadata?.deletionTimestamp !== undefined;
  }, { what: `pod ${over.pod_name} to be deleted`, timeoutMs: 20_000, intervalMs: 100 });
  const deletedAfterMs = Date.now() - ended;
  assert.ok(
    log.lines.some((line) => line.msg === 'removed a workload whose session is over' && line.sessionId === over.id),
    'the sweep removed it',
  );
  await waitForPodGone(kc, namespace.name, over.pod_name);

  const livePod = await readPod(kc, namespace.name, live.pod_name);
  assert.ok(livePod, "the live session's pod is there");
  assert.equal(livePod.metadata?.deletionTimestamp, undefined, "the live session's pod is not being deleted");
  assert.equal((await sortie.api.session(live.id)).status, 'running');
  assert.ok(!log.lines.some((line) => line.msg === 'removed a workload whose session is over' && line.sessionId === live.id));
  process.stdout.write(`pod of the ended session asked to go ${deletedAfterMs} ms after its row was ended\n`);
});
