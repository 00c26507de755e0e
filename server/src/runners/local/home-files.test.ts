import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { bytes, homeFilesContract, useHomeFiles, type HomeFilesSetup } from '../../../test/support/home-files-contract.js';
import { InputError, NotFoundError } from '../../errors.js';
import type { HomeTarget } from '../runner.js';
import { LocalHomeFiles } from './home-files.js';

// The local runner's store: the rules every store keeps are in the contract; below are
// what only this one has (a session to look up, an owner to give files, names it checks itself).

const isRoot = process.getuid?.() === 0;
/** Files written by Sortie go to this owner when Sortie is root (nobody, as a stand-in for the session user). */
const OWNER = { uid: 65534, gid: 65534 };

async function localStore(): Promise<HomeFilesSetup> {
  const root = mkdtempSync(path.join(tmpdir(), 'sortie-home-files-'));
  const home = path.join(root, 'home');
  const target: HomeTarget = { sessionId: 's1', endpoint: { host: '127.0.0.1', port: 1 } };
  const files = new LocalHomeFiles({
    homeOf: (id) => {
      if (id !== 's1') throw new NotFoundError(`no session ${id}`);
      return home;
    },
    owner: () => (isRoot ? OWNER : undefined),
  });
  return { files, target, home, outside: path.join(root, 'outside'), close: () => rmSync(root, { recursive: true, force: true }) };
}

homeFilesContract('the local store keeps the rules of every home store', localStore);

describe('the local store only', () => {
  const under = useHomeFiles(localStore);

  test('names are checked here too, and a session it does not hold has no home', async () => {
    const { files, target } = under();
    // The session layer checks the text first; this store does not trust that it did.
    await assert.rejects(files.list(target, ['a/b']), InputError);
    await assert.rejects(files.list(target, ['']), InputError);
    await assert.rejects(files.list({ ...target, sessionId: 'other' }, []), NotFoundError);
  });

  test('a new file belongs to the app user', async () => {
    const { files, target, home } = under();
    await files.write(target, ['docs', 'upload.txt'], bytes('part one, ', 'part two'), 1024);
    assert.equal(statSync(path.join(home, 'docs', 'upload.txt')).uid, isRoot ? OWNER.uid : process.getuid!());
  });
});
