import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pino from 'pino';
import type { Session } from '../src/sessions/session.js';
import { FakeRunner } from './support/fake-runner.js';
import { startTestSortie, type TestSortie } from './support/harness.js';
import { waitFor } from './support/wait.js';

// A launch that claims a warm-pool session tells the runner who owns the workload now (on
// Kubernetes, the pod's sortie.io/user-id annotation); a runner that cannot say so does not
// cost the person the claim. A fake runner, the real service and database.

const POOLED = { id: 'xterm', name: 'XTerm', launch_type: 'container', command: ['xterm'], warm_pool: 1 };

describe('the owner of a claimed pooled session', () => {
  const runner = new FakeRunner();
  const lines: Array<Record<string, unknown>> = [];
  let sortie: TestSortie;
  before(async () => {
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
    sortie = await startTestSortie({ name: 'pool-owner', apps: [POOLED], runner, logger });
  });
  after(async () => {
    if (sortie) await sortie.api.request('PUT', '/api/apps/xterm', { ...POOLED, warm_pool: 0 });
    await sortie?.cleanup();
  });

  async function warm(): Promise<string> {
    return waitFor(
      async () => {
        const res = await sortie.api.request<{ sessions: Session[] }>('GET', '/api/sessions?status=running&limit=200');
        return res.body.sessions.find((s) => s.pooled)?.id;
      },
      { what: 'a running pooled session' },
    );
  }

  test('is handed to the runner right after the claim', async () => {
    const pooled = await warm();
    assert.equal(runner.workloads.owners.get(pooled), undefined, 'nobody owns it while pooled');
    const claimed = await sortie.api.launch('xterm', 'alice');
    assert.equal(claimed.id, pooled);
    assert.equal(claimed.status, 'running');
    await waitFor(() => runner.workloads.owners.get(pooled) === 'alice', { what: 'the runner to be told alice owns it' });
  });

  test('a runner that refuses leaves the claim standing, and says so in the log', async () => {
    runner.assignOwnerError = new Error('pods "sortie-session-x" is forbidden: cannot patch resource "pods"');
    const pooled = await warm();
    const claimed = await sortie.api.launch('xterm', 'bob');
    assert.equal(claimed.id, pooled);
    assert.equal(claimed.status, 'running', 'running in the POST answer all the same');
    assert.equal(claimed.user_id, 'bob');
    const line = await waitFor(() => lines.find((l) => l.sessionId === pooled && l.userId === 'bob'), { what: 'a warning naming the session' });
    assert.equal(line.msg, "could not name a claimed session's owner on its workload");
    assert.match(String(line.err), /cannot patch resource "pods"/);
    const now = await sortie.api.session(pooled);
    assert.equal(now.status, 'running');
    assert.equal(now.user_id, 'bob');
    assert.equal(runner.workloads.owners.get(pooled), undefined);
  });
});
