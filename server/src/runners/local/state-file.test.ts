import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { hasAllRoles, readStateFile, readStateFiles, stateFilePath, writeStateFile, isSafeSessionId, type SessionRecord } from './state-file.js';

const record: SessionRecord = {
  version: 1,
  sessionId: 'abc',
  workloadName: 'sortie-session-abc',
  appId: 'xterm',
  userId: 'u1',
  startedAt: '2025-01-01T00:00:00.000Z',
  display: 100,
  vncPort: 40000,
  wsPort: 40001,
  processes: [{ role: 'xvnc', name: 'Xvnc', pid: 1234, startTime: '99' }],
};

test('a written state file reads back, and no temporary file is left', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeStateFile(dir, record);
  writeStateFile(dir, { ...record, readyAt: '2025-01-01T00:00:01.000Z' });
  assert.deepEqual(readdirSync(dir), ['abc.json']);
  assert.deepEqual(readStateFile(dir, 'abc'), { sessionId: 'abc', record: { ...record, readyAt: '2025-01-01T00:00:01.000Z' } });
});

test('broken, foreign and half-written files are reported or swept, not thrown', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(stateFilePath(dir, 'broken'), '{');
  writeFileSync(stateFilePath(dir, 'other'), JSON.stringify({ ...record, sessionId: 'abc' }));
  writeFileSync(path.join(dir, 'x.json.123.tmp'), '{');
  writeFileSync(path.join(dir, 'x.log'), 'log');
  const entries = readStateFiles(dir).sort((a, b) => a.sessionId.localeCompare(b.sessionId));
  assert.deepEqual(entries.map((e) => [e.sessionId, e.record === undefined]), [['broken', true], ['other', true]]);
  assert.ok(!readdirSync(dir).some((name) => name.endsWith('.tmp')));
  assert.deepEqual(readStateFiles(path.join(dir, 'missing')), []);
});

test('session ids that are not plain file names are refused', () => {
  assert.ok(isSafeSessionId('3f0c2a4e-9b1d-4c4e-8f7a-0d1e2f3a4b5c'));
  for (const bad of ['', '../x', 'a/b', '.hidden', 'a b']) assert.ok(!isSafeSessionId(bad), bad);
});

test('a session started by an earlier version (Xvfb and x11vnc) still reads, so the next Sortie adopts or ends it', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-state-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const roles = (...names: string[]) => names.map((role, i) => ({ role, name: role, pid: 1000 + i, startTime: '1' }));
  writeFileSync(stateFilePath(dir, 'old'), JSON.stringify({ ...record, sessionId: 'old', processes: roles('xvfb', 'x11vnc', 'websockify', 'app') }));
  const old = readStateFile(dir, 'old');
  assert.ok(old?.record, 'an earlier version\'s record reads');
  assert.equal(hasAllRoles(old.record), true);
  assert.equal(hasAllRoles({ processes: roles('xvnc', 'websockify', 'app') as SessionRecord['processes'] }), true);
  for (const partial of [roles('xvnc', 'websockify'), roles('xvfb', 'websockify', 'app'), roles('xvnc', 'x11vnc', 'websockify', 'app').slice(1)]) {
    assert.equal(hasAllRoles({ processes: partial as SessionRecord['processes'] }), false, partial.map((p) => p.role).join(','));
  }
});
