import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { homeFilesContract, noTemp, useHomeFiles, type HomeFilesSetup } from '../../../test/support/home-files-contract.js';
import { freePort } from '../../../test/support/ports.js';
import { REPO_ROOT } from '../../../test/support/paths.js';
import { waitFor } from '../../../test/support/wait.js';
import { ConflictError, InputError } from '../../errors.js';
import { SidecarHomeFiles } from './sidecar-files.js';

// The sidecar's real file endpoint (docker/vnc-sidecar/files.py, run by this machine's
// Python as the image runs it) with Sortie's client for it. The rules every store keeps are
// in the contract; below are what only this one has: an endpoint others could dial, its
// secret, and its own count of an upload's bytes.

const SECRET = 'sidecar-secret-1';

interface SidecarSetup extends HomeFilesSetup {
  port: number;
}

async function sidecarStore(): Promise<SidecarSetup> {
  const root = mkdtempSync(path.join(tmpdir(), 'sortie-sidecar-files-'));
  const home = path.join(root, 'home');
  const port = await freePort();
  const server = spawn('python3', ['-X', 'utf8', path.join(REPO_ROOT, 'docker/vnc-sidecar/files.py')], {
    env: { PATH: process.env['PATH'], VNC_PASSWORD: SECRET, FILES_ROOT: home, FILES_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const close = () => {
    server.kill();
    rmSync(root, { recursive: true, force: true });
  };
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  try {
    await waitFor(() => {
      if (server.exitCode !== null) throw new Error(`files.py exited: ${log}`);
      return log.includes('serving');
    }, { what: 'files.py to listen' });
  } catch (err) {
    close();
    throw err;
  }
  return {
    files: new SidecarHomeFiles({ port }),
    target: { sessionId: 's1', endpoint: { host: '127.0.0.1', port: 6080 }, secret: SECRET },
    home,
    outside: path.join(root, 'outside'),
    port,
    close,
  };
}

homeFilesContract('the sidecar store keeps the rules of every home store', sidecarStore);

describe('the sidecar store only', () => {
  const under = useHomeFiles(sidecarStore);

  /** A request straight to the endpoint, as something other than Sortie's client would send it. */
  function raw(method: string, urlPath: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; json: { error?: string; message?: string } }> {
    return new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: under().port, method, path: urlPath, headers, agent: false }, (res) => {
        void text(res).then((t) => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t || '{}') as { error?: string } }), reject);
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  test('the endpoint counts too: a body over max sent anyway is refused with 413 and not kept', async () => {
    const auth = { authorization: `Bearer ${SECRET}` };
    const declared = await raw('PUT', '/content?path=a.bin&max=10', { ...auth, 'content-length': '11' }, Buffer.alloc(11));
    assert.equal(declared.status, 413);
    const chunked = await raw('PUT', '/content?path=a.bin&max=10', { ...auth, 'transfer-encoding': 'chunked' }, Buffer.alloc(500_000));
    assert.deepEqual([chunked.status, chunked.json.error], [413, 'payload_too_large']);
    assert.equal(existsSync(path.join(under().home, 'a.bin')), false);
    await waitFor(() => noTemp(under().home), { what: 'the partial upload to be removed' });
  });

  test('without the secret, or with another, every request is 401 and nothing is read or written', async () => {
    const { files, target, home } = under();
    for (const headers of [{} as Record<string, string>, { authorization: 'Bearer wrong' }, { authorization: `Bearer ${SECRET}x` }, { authorization: SECRET }]) {
      assert.equal((await raw('GET', '/list?path=', headers)).status, 401);
      assert.equal((await raw('GET', '/content?path=notes.txt', headers)).status, 401);
      const put = await raw('PUT', '/content?path=intruder.txt&max=100', { ...headers, 'content-length': '2' }, Buffer.from('hi'));
      assert.deepEqual([put.status, put.json.error], [401, 'unauthorized']);
    }
    assert.equal(existsSync(path.join(home, 'intruder.txt')), false);
    // Sortie's client with a wrong secret fails loudly, not as the user's mistake.
    await assert.rejects(files.list({ ...target, secret: 'wrong' }, []), (err: Error) => !(err instanceof InputError) && /refused Sortie's secret/.test(err.message));
  });

  test('a sidecar without the endpoint is a conflict a person can read; no secret is refused before dialing', async () => {
    const { files, target } = under();
    const closed = new SidecarHomeFiles({ port: await freePort() });
    await assert.rejects(closed.list(target, []), (err: Error) => err instanceof ConflictError && /does not serve files/.test(err.message));
    await assert.rejects(files.list({ sessionId: 's1', endpoint: target.endpoint }, []), ConflictError);
  });
});
