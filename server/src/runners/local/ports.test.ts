import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { displaysWithAbstractSockets } from './ports.js';

test('a display whose abstract X socket is bound counts as taken, whatever else the socket table holds', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-ports-'));
  try {
    const table = path.join(dir, 'unix');
    writeFileSync(
      table,
      [
        'Num       RefCount Protocol Flags    Type St Inode Path',
        '0000000000000000: 00000002 00000000 00010000 0001 01 844419 @/tmp/.X11-unix/X150',
        '0000000000000000: 00000002 00000000 00010000 0001 01 844420 /tmp/.X11-unix/X151',
        '0000000000000000: 00000002 00000000 00010000 0001 01 844421 @/tmp/.X11-unix/X7-other',
        '0000000000000000: 00000003 00000000 00000000 0001 03 844422 @/tmp/.X11-unix/X102',
        '0000000000000000: 00000003 00000000 00000000 0001 03 844423',
        '',
      ].join('\n'),
    );
    assert.deepEqual([...displaysWithAbstractSockets(table)].sort(), [102, 150]);
    assert.deepEqual([...displaysWithAbstractSockets(path.join(dir, 'missing'))], []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
