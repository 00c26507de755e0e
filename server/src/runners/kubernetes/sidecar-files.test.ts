import assert from 'node:assert/strict';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buffer, text } from 'node:stream/consumers';
import { after, before, beforeEach, describe, test } from 'node:test';
import { freePort } from '../../../test/support/ports.js';
import { REPO_ROOT } from '../../../test/support/paths.js';
import { waitFor } from '../../../test/support/wait.js';
import { ConflictError, InputError, NotFoundError, PayloadTooLargeError } from '../../errors.js';
import { MAX_LIST_ENTRIES } from '../local/home-files.js';
import type { HomeTarget } from '../runner.js';
import { SidecarHomeFiles } from './sidecar-files.js';

// The sidecar's real file endpoint (docker/vnc-sidecar/files.py, run by this machine's
// Python as the image runs it) with Sortie's client for it: the same rules and answers as
// the local runner's store, over HTTP, while the fixture plants what a hostile app would.

const SECRET = 'sidecar-secret-1';
let root: string;
let home: string;
let outside: string;
let server: ChildProcess;
let port: number;
let files: SidecarHomeFiles;
let target: HomeTarget;

const bytes = (...chunks: Array<string | Buffer>) =>
  (async function* () {
    for (const c of chunks) yield Buffer.from(c);
  })();

const tree = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
const noTemp = () => !tree(home).some((n) => path.basename(n).startsWith('.sortie-upload-'));

/** A request straight to the endpoint, as something other than Sortie's client would send it. */
function raw(method: string, urlPath: string, headers: Record<string, string>, body?: Buffer): Promise<{ status: number; json: { error?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false }, (res) => {
      void text(res).then((t) => resolve({ status: res.statusCode ?? 0, json: JSON.parse(t || '{}') as { error?: string } }), reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

before(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'sortie-sidecar-files-'));
  home = path.join(root, 'home');
  outside = path.join(root, 'outside');
  port = await freePort();
  server = spawn('python3', ['-X', 'utf8', path.join(REPO_ROOT, 'docker/vnc-sidecar/files.py')], {
    env: { PATH: process.env['PATH'], VNC_PASSWORD: SECRET, FILES_ROOT: home, FILES_PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  server.stderr!.on('data', (d: Buffer) => (log += d.toString()));
  await waitFor(() => {
    if (server.exitCode !== null) throw new Error(`files.py exited: ${log}`);
    return log.includes('serving');
  }, { what: 'files.py to listen' });
  files = new SidecarHomeFiles({ port });
  target = { sessionId: 's1', endpoint: { host: '127.0.0.1', port: 6080 }, secret: SECRET };
});

after(() => {
  server?.kill();
  rmSync(root, { recursive: true, force: true });
});

beforeEach(() => {
  rmSync(home, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
  mkdirSync(path.join(home, 'docs', 'deep'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.txt'), 'outside the home');
  writeFileSync(path.join(home, 'notes.txt'), 'hello from the app');
  writeFileSync(path.join(home, 'docs', 'deep', 'report.bin'), Buffer.from([0, 1, 2, 255]));
  symlinkSync(outside, path.join(home, 'escape'));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(home, 'secret-link'));
  execFileSync('mkfifo', [path.join(home, 'pipe')]);
});

const symlinkRefused = (err: Error) => err instanceof InputError && /symbolic link/.test(err.message);

describe('listing', () => {
  test('names, types, sizes and times, links as links, sorted by name', async () => {
    const entries = await files.list(target, []);
    assert.deepEqual(entries.map((e) => [e.name, e.type]), [['docs', 'directory'], ['escape', 'symlink'], ['notes.txt', 'file'], ['pipe', 'other'], ['secret-link', 'symlink']]);
    const notes = entries.find((e) => e.name === 'notes.txt')!;
    assert.equal(notes.size, 18);
    assert.equal(notes.modified, new Date(Math.floor(statSync(path.join(home, 'notes.txt')).mtimeMs)).toISOString());
    assert.deepEqual((await files.list(target, ['docs', 'deep'])).map((e) => [e.name, e.size]), [['report.bin', 4]]);
  });

  test('a symlink on the way, a file, a missing folder are told apart', async () => {
    await assert.rejects(files.list(target, ['escape']), symlinkRefused);
    await assert.rejects(files.list(target, ['notes.txt']), (err: Error) => err instanceof InputError && /not a folder/.test(err.message));
    await assert.rejects(files.list(target, ['nowhere']), (err: Error) => err instanceof NotFoundError && /does not exist/.test(err.message));
    await assert.rejects(files.list(target, ['..']), InputError);
  });

  test(`a folder of more than ${MAX_LIST_ENTRIES} entries is listed up to that many`, async () => {
    const many = path.join(home, 'many');
    mkdirSync(many);
    for (let i = 0; i < MAX_LIST_ENTRIES + 20; i++) writeFileSync(path.join(many, `f${i}`), '');
    assert.equal((await files.list(target, ['many'])).length, MAX_LIST_ENTRIES);
  });
});

describe('reading', () => {
  test('the size, the time and exactly the bytes', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 7);
    writeFileSync(path.join(home, 'docs', 'big.bin'), data);
    const read = await files.read(target, ['docs', 'big.bin']);
    assert.equal(read.size, data.length);
    assert.deepEqual(await buffer(read.stream), data);
    const empty = await files.read(target, ['docs', 'deep', 'report.bin']);
    assert.deepEqual(await buffer(empty.stream), Buffer.from([0, 1, 2, 255]));
  });

  test('links, folders, FIFOs and missing files are refused without reading anything outside', async () => {
    await assert.rejects(files.read(target, ['secret-link']), symlinkRefused);
    await assert.rejects(files.read(target, ['escape', 'secret.txt']), symlinkRefused);
    await assert.rejects(files.read(target, ['docs']), (err: Error) => err instanceof InputError && /is a folder/.test(err.message));
    await assert.rejects(files.read(target, ['pipe']), (err: Error) => err instanceof InputError && /not a regular file/.test(err.message));
    await assert.rejects(files.read(target, ['missing.txt']), NotFoundError);
  });
});

describe('writing', () => {
  test('a new file gets the bytes (streamed in many chunks) and mode 0644; a replaced one keeps its mode', async () => {
    const parts = Array.from({ length: 40 }, () => randomBytes(100_000));
    assert.deepEqual(await files.write(target, ['docs', 'up.bin'], bytes(...parts), 10_000_000), { size: 4_000_000 });
    assert.deepEqual(readFileSync(path.join(home, 'docs', 'up.bin')), Buffer.concat(parts));
    assert.equal(statSync(path.join(home, 'docs', 'up.bin')).mode & 0o777, 0o644);
    execFileSync('chmod', ['0600', path.join(home, 'notes.txt')]);
    assert.deepEqual(await files.write(target, ['notes.txt'], bytes(''), 10), { size: 0 });
    assert.equal(readFileSync(path.join(home, 'notes.txt'), 'utf8'), '');
    assert.equal(statSync(path.join(home, 'notes.txt')).mode & 0o777, 0o600);
    assert.ok(noTemp());
  });

  test('over the limit: 413, the old file untouched, nothing new', async () => {
    const before = tree(home);
    await assert.rejects(files.write(target, ['notes.txt'], bytes('12345', '67890', 'x'), 10), PayloadTooLargeError);
    await assert.rejects(files.write(target, ['fresh.txt'], bytes('12345678901'), 10), (err: Error) => err instanceof PayloadTooLargeError && /upload limit/.test(err.message));
    assert.equal(readFileSync(path.join(home, 'notes.txt'), 'utf8'), 'hello from the app');
    await waitFor(noTemp, { what: 'the partial uploads to be removed' });
    assert.deepEqual(tree(home), before);
  });

  test('the endpoint counts too: a body over max sent anyway is refused with 413 and not kept', async () => {
    const auth = { authorization: `Bearer ${SECRET}` };
    const declared = await raw('PUT', '/content?path=a.bin&max=10', { ...auth, 'content-length': '11' }, Buffer.alloc(11));
    assert.equal(declared.status, 413);
    const chunked = await raw('PUT', '/content?path=a.bin&max=10', { ...auth, 'transfer-encoding': 'chunked' }, Buffer.alloc(500_000));
    assert.deepEqual([chunked.status, chunked.json.error], [413, 'payload_too_large']);
    assert.equal(existsSync(path.join(home, 'a.bin')), false);
    await waitFor(noTemp, { what: 'the partial upload to be removed' });
  });

  test('a body that breaks off leaves the old file as it was and no temporary file', async () => {
    const cut = (async function* () {
      yield Buffer.from('half of it');
      await waitFor(() => !noTemp(), { what: 'the upload to begin' });
      throw new Error('connection reset');
    })();
    await assert.rejects(files.write(target, ['notes.txt'], cut, 1024), /connection reset/);
    await waitFor(noTemp, { what: 'the temporary file to be removed' });
    assert.equal(readFileSync(path.join(home, 'notes.txt'), 'utf8'), 'hello from the app');
  });

  test('links (final or on the way), folders, FIFOs and missing folders are refused; nothing is written outside', async () => {
    const outsideBefore = tree(outside);
    await assert.rejects(files.write(target, ['secret-link'], bytes('pwned'), 1024), symlinkRefused);
    await assert.rejects(files.write(target, ['escape', 'new.txt'], bytes('pwned'), 1024), symlinkRefused);
    await assert.rejects(files.write(target, ['docs'], bytes('x'), 1024), (err: Error) => err instanceof InputError && /is a folder/.test(err.message));
    await assert.rejects(files.write(target, ['no-such-folder', 'a.txt'], bytes('x'), 1024), NotFoundError);
    await assert.rejects(files.write(target, ['pipe'], bytes('x'), 1024), InputError);
    await assert.rejects(files.write(target, ['..', 'x'], bytes('x'), 1024), InputError);
    assert.deepEqual(tree(outside), outsideBefore);
    assert.equal(readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'outside the home');
    assert.equal(lstatSync(path.join(home, 'secret-link')).isSymbolicLink(), true);
  });

  test('a folder swapped for a symlink to outside while the upload runs: the file still lands in the home', async () => {
    const swap = (async function* () {
      yield Buffer.from('first ');
      renameSync(path.join(home, 'docs'), path.join(home, 'moved'));
      symlinkSync(outside, path.join(home, 'docs'));
      yield Buffer.from('second');
    })();
    await files.write(target, ['docs', 'swapped.txt'], swap, 1024);
    assert.equal(existsSync(path.join(outside, 'swapped.txt')), false);
    assert.equal(readFileSync(path.join(home, 'moved', 'swapped.txt'), 'utf8'), 'first second');
  });
});

describe('only Sortie', () => {
  test('without the secret, or with another, every request is 401 and nothing is read or written', async () => {
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
    const closed = new SidecarHomeFiles({ port: await freePort() });
    await assert.rejects(closed.list(target, []), (err: Error) => err instanceof ConflictError && /does not serve files/.test(err.message));
    await assert.rejects(files.list({ sessionId: 's1', endpoint: target.endpoint }, []), ConflictError);
  });
});
