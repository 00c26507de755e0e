import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { homeDirPath } from '../src/runners/local/state-file.js';
import type { Api } from './support/api.js';
import { scratchDir, startTestSortie, type TestSortie } from './support/harness.js';
import { rawRequest, type RawAnswer, type RawRequestOptions } from './support/raw-request.js';
import { waitFor } from './support/wait.js';

// The session file API on the real local runner: a real sandboxed app writes files and
// plants symlinks in its home, and the API lists, downloads and uploads through real HTTP
// as its owner, another user and an admin.

const ADMIN_PASSWORD = 'files-admin-password-1';
const PASSWORD = 'files-user-password-1';
const MiB = 1024 * 1024;

let sortie: TestSortie;
let scratch: { dir: string; remove: () => void };
let admin: Api;
let alice: Api;
let bob: Api;
let sessionId: string;
let home: string;
/** Names of files that refused requests tried to create; none may exist anywhere afterwards. */
const refusedNames: string[] = [];

/** A request as `api`'s user, its body as an upload's (application/octet-stream unless `headers` say otherwise). */
function send(api: Api, method: string, urlPath: string, options: Omit<RawRequestOptions, 'token'> = {}): Promise<RawAnswer> {
  const contentType: Record<string, string> = options.body ? { 'content-type': 'application/octet-stream' } : {};
  return rawRequest(sortie.url, method, urlPath, { ...options, token: api.token!, headers: { ...contentType, ...options.headers } });
}

const q = (p: string) => encodeURIComponent(p);
const filesUrl = (id: string, p?: string) => `/api/sessions/${id}/files${p === undefined ? '' : `?path=${q(p)}`}`;
const contentUrl = (id: string, p: string) => `/api/sessions/${id}/files/content?path=${q(p)}`;

/** Every file or folder under `dir` whose name is one of `names`. */
function findNamed(dir: string, names: string[]): string[] {
  let all: string[];
  try {
    all = readdirSync(dir, { recursive: true, encoding: 'utf8' });
  } catch {
    return [];
  }
  return all.filter((p) => names.includes(path.basename(p))).map((p) => path.join(dir, p));
}

function sessionUserUid(): number {
  return Number(execFileSync('getent', ['passwd', 'sortie-session'], { encoding: 'utf8' }).split(':')[2]);
}

before(async () => {
  scratch = scratchDir('session-files');
  // The app writes what the tests read, and plants the links a hostile app would: to the
  // host's /etc, to a file in it, and to Sortie's own data folder (which the sandbox cannot
  // see, but Sortie, resolving on the host, could).
  const script = [
    'cd "$HOME"',
    'head -c 300000 /dev/urandom > random.bin',
    'mkdir docs',
    'printf "from the app" > docs/note.txt',
    'ln -s /etc etc-link',
    'ln -s /etc/passwd passwd-link',
    'ln -s "$1" data-link',
    'touch ready',
    'exec sleep infinity',
  ].join(' && ');
  sortie = await startTestSortie({
    name: 'session-files',
    dir: scratch.dir,
    env: { SORTIE_AUTH: 'enabled', SORTIE_ADMIN_PASSWORD: ADMIN_PASSWORD, SORTIE_MAX_UPLOAD_MB: '1', SORTIE_MAX_SESSIONS_PER_USER: '10' },
    apps: [{ id: 'filer', name: 'Filer', launch_type: 'container', command: ['sh', '-c', script, 'sh', scratch.dir] }],
  });
  admin = await sortie.signIn('admin', ADMIN_PASSWORD);
  await admin.createUser('alice', PASSWORD);
  await admin.createUser('bob', PASSWORD);
  alice = await sortie.signIn('alice', PASSWORD);
  bob = await sortie.signIn('bob', PASSWORD);
  const session = await alice.launch('filer');
  sessionId = session.id;
  await alice.waitFor(sessionId, 'running');
  home = homeDirPath(sortie.stateDir, sessionId);
  await waitFor(() => existsSync(path.join(home, 'ready')), { what: 'the app to write its files' });
});

after(async () => {
  await sortie?.cleanup();
  scratch?.remove();
});

describe('the owner works with the files of a running session', () => {
  test('lists the home and a folder in it, links as links', async () => {
    const res = await send(alice, 'GET', filesUrl(sessionId));
    assert.equal(res.status, 200, res.body.toString());
    assert.equal(res.json.path, '');
    const entries = res.json.entries as Array<{ name: string; type: string; size: number; modified: string }>;
    const byName = new Map(entries.map((e) => [e.name, e]));
    assert.equal(byName.get('random.bin')?.type, 'file');
    assert.equal(byName.get('random.bin')?.size, 300_000);
    assert.equal(byName.get('docs')?.type, 'directory');
    assert.equal(byName.get('etc-link')?.type, 'symlink');
    assert.equal(byName.get('data-link')?.type, 'symlink');
    assert.equal(byName.get('.Xauthority'), undefined, 'the display cookie is not among the files');
    assert.ok(!Number.isNaN(Date.parse(byName.get('random.bin')!.modified)));

    const docs = await send(alice, 'GET', filesUrl(sessionId, 'docs'));
    assert.equal(docs.status, 200);
    assert.deepEqual(docs.json, { path: 'docs', entries: [{ name: 'note.txt', type: 'file', size: 12, modified: new Date(Math.floor(statSync(path.join(home, 'docs', 'note.txt')).mtimeMs)).toISOString() }] });
  });

  test('downloads a file the app wrote, byte for byte, as an attachment', async () => {
    const res = await send(alice, 'GET', contentUrl(sessionId, 'random.bin'));
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, readFileSync(path.join(home, 'random.bin')));
    assert.equal(res.headers['content-type'], 'application/octet-stream');
    assert.equal(res.headers['content-length'], '300000');
    assert.equal(res.headers['content-disposition'], `attachment; filename="random.bin"; filename*=UTF-8''random.bin`);
    // HEAD answers the same headers and no body.
    const head = await send(alice, 'HEAD', contentUrl(sessionId, 'random.bin'));
    assert.equal(head.status, 200);
    assert.equal(head.headers['content-length'], '300000');
    assert.equal(head.body.length, 0);
  });

  test('uploads a file: the app finds it in its home, owned by the user it runs as', async () => {
    const data = randomBytes(200_000);
    const res = await send(alice, 'PUT', contentUrl(sessionId, 'docs/résumé "1".bin'), { body: data });
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(res.json, { path: 'docs/résumé "1".bin', size: 200_000 });
    const onDisk = path.join(home, 'docs', 'résumé "1".bin');
    assert.deepEqual(readFileSync(onDisk), data);
    const stats = statSync(onDisk);
    assert.equal(stats.uid, process.getuid?.() === 0 ? sessionUserUid() : process.getuid?.());
    assert.equal(stats.mode & 0o777, 0o644);
    // And it comes back the same way, its name made safe for the header.
    const back = await send(alice, 'GET', contentUrl(sessionId, 'docs/résumé "1".bin'));
    assert.deepEqual(back.body, data);
    assert.equal(back.headers['content-disposition'], `attachment; filename="r_sum_ _1_.bin"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.bin`);
  });

  test('a chunked upload (no Content-Length) within the limit is saved', async () => {
    const data = randomBytes(300_000);
    const res = await send(alice, 'PUT', contentUrl(sessionId, 'chunked.bin'), { body: data, chunked: true });
    assert.equal(res.status, 200, res.body.toString());
    assert.deepEqual(readFileSync(path.join(home, 'chunked.bin')), data);
  });

  test('an admin may reach the files of anyone\'s session', async () => {
    assert.equal((await send(admin, 'GET', filesUrl(sessionId))).status, 200);
  });
});

describe('refused: each with a clear 4xx, nothing written outside the home', () => {
  test('paths that leave the home: "..", encoded "..", absolute', async () => {
    const tries = ['../escaped-1.txt', 'docs/../../escaped-2.txt', '/tmp/escaped-3.txt', '/etc/escaped-4.txt'];
    for (const p of tries) {
      refusedNames.push(path.basename(p));
      for (const [method, url] of [
        ['GET', filesUrl(sessionId, p)],
        ['GET', contentUrl(sessionId, p)],
        ['PUT', contentUrl(sessionId, p)],
      ] as const) {
        const res = await send(alice, method, url, method === 'PUT' ? { body: Buffer.from('pwned') } : {});
        assert.equal(res.status, 400, `${method} ${url}: ${res.body.toString()}`);
        assert.match(String(res.json.message), /"\.\." is not allowed|not absolute/);
      }
    }
    // Spelled as an attacker would: the "." escaped in the query string, and a raw "../" in it.
    refusedNames.push('escaped-5.txt');
    for (const raw of [`/api/sessions/${sessionId}/files/content?path=%2e%2e/escaped-5.txt`, `/api/sessions/${sessionId}/files/content?path=%2E%2E%2Fescaped-5.txt`, `/api/sessions/${sessionId}/files?path=../`]) {
      for (const method of raw.includes('content') ? ['GET', 'PUT'] : ['GET']) {
        const res = await send(alice, method, raw, method === 'PUT' ? { body: Buffer.from('pwned') } : {});
        assert.equal(res.status, 400, `${method} ${raw}: ${res.body.toString()}`);
      }
    }
    const nul = await send(alice, 'GET', `/api/sessions/${sessionId}/files/content?path=a%00b`);
    assert.equal(nul.status, 400);
    assert.match(String(nul.json.message), /NUL/);
  });

  test('symlinks the app planted, to /etc and to Sortie\'s data folder, are not followed', async () => {
    for (const [method, url] of [
      ['GET', filesUrl(sessionId, 'etc-link')],
      ['GET', contentUrl(sessionId, 'etc-link/passwd')],
      ['GET', contentUrl(sessionId, 'passwd-link')],
      ['GET', filesUrl(sessionId, 'data-link')],
      ['GET', contentUrl(sessionId, 'data-link/sortie.db')],
    ] as const) {
      const res = await send(alice, method, url);
      assert.equal(res.status, 400, `${method} ${url}: ${res.body.toString()}`);
      assert.match(String(res.json.message), /symbolic link/);
    }
    const passwdBefore = readFileSync('/etc/passwd');
    refusedNames.push('pwned-via-link.txt');
    for (const p of ['data-link/pwned-via-link.txt', 'etc-link/pwned-via-link.txt', 'passwd-link']) {
      const res = await send(alice, 'PUT', contentUrl(sessionId, p), { body: Buffer.from('pwned\n') });
      assert.equal(res.status, 400, `PUT ${p}: ${res.body.toString()}`);
      assert.match(String(res.json.message), /symbolic link/);
    }
    assert.deepEqual(readFileSync('/etc/passwd'), passwdBefore);
  });

  test(`over SORTIE_MAX_UPLOAD_MB (1 here): 413 with or without Content-Length, no partial file`, async () => {
    const big = randomBytes(MiB + 1);
    const notesBefore = readFileSync(path.join(home, 'docs', 'note.txt'));
    for (const [name, chunked] of [['too-big-declared.bin', false], ['too-big-chunked.bin', true], ['note.txt', true]] as const) {
      const p = name === 'note.txt' ? 'docs/note.txt' : name;
      if (name !== 'note.txt') refusedNames.push(name);
      const res = await send(alice, 'PUT', contentUrl(sessionId, p), { body: big, chunked });
      assert.equal(res.status, 413, `${name}: ${res.body.toString()}`);
      assert.equal(res.json.error, 'payload_too_large');
      assert.match(String(res.json.message), /upload limit of 1 MiB \(SORTIE_MAX_UPLOAD_MB\)/);
    }
    assert.deepEqual(readFileSync(path.join(home, 'docs', 'note.txt')), notesBefore, 'the file an oversized upload would replace is unchanged');
    await waitFor(() => !readdirSync(home).some((n) => n.startsWith('.sortie-upload-')), { what: 'no partial upload to be left' });
    // Exactly the limit is still fine.
    assert.equal((await send(alice, 'PUT', contentUrl(sessionId, 'exactly-1-mib.bin'), { body: randomBytes(MiB) })).status, 200);
  });

  test('an upload cut off midway leaves nothing behind', async () => {
    refusedNames.push('cut.bin');
    const url = new URL(sortie.url);
    const req = http.request({
      host: url.hostname,
      port: url.port,
      path: contentUrl(sessionId, 'cut.bin'),
      method: 'PUT',
      headers: { authorization: `Bearer ${alice.token}`, 'content-length': String(500_000), 'content-type': 'application/octet-stream' },
    });
    req.on('error', () => {});
    req.write(randomBytes(100_000));
    await waitFor(() => readdirSync(home).some((n) => n.startsWith('.sortie-upload-')), { what: 'the upload to begin' });
    req.destroy();
    await waitFor(() => !readdirSync(home).some((n) => n.startsWith('.sortie-upload-')), { what: 'the partial upload to be removed' });
    assert.equal(existsSync(path.join(home, 'cut.bin')), false);
  });

  test('a path that does not exist is 404', async () => {
    for (const url of [filesUrl(sessionId, 'no-such-folder'), contentUrl(sessionId, 'no-such-file.txt'), contentUrl(sessionId, 'no-such-folder/x.txt')]) {
      const method = url.includes('/x.txt') ? 'PUT' : 'GET';
      const res = await send(alice, method, url, method === 'PUT' ? { body: Buffer.from('x') } : {});
      assert.equal(res.status, 404, `${method} ${url}: ${res.body.toString()}`);
      assert.equal(res.json.error, 'not_found');
      assert.match(String(res.json.message), /does not exist/);
    }
    refusedNames.push('x.txt');
  });

  test('another user\'s session is 404, as if it did not exist', async () => {
    refusedNames.push('bob-was-here.txt');
    for (const [method, url] of [
      ['GET', filesUrl(sessionId)],
      ['GET', contentUrl(sessionId, 'random.bin')],
      ['PUT', contentUrl(sessionId, 'bob-was-here.txt')],
    ] as const) {
      const res = await send(bob, method, url, method === 'PUT' ? { body: Buffer.from('hi') } : {});
      assert.equal(res.status, 404, `${method} ${url}`);
      assert.match(String(res.json.message), new RegExp(`No session with id "${sessionId}"`));
      assert.ok(!res.body.includes(readFileSync(path.join(home, 'random.bin')).subarray(0, 32)));
    }
  });

  test('an app\'s file_transfer setting is enforced: none, upload, download', async () => {
    const setTransfer = async (mode: string) => {
      const current = (await admin.request<{ applications: Array<Record<string, unknown>> }>('GET', '/api/apps')).body.applications.find((a) => a.id === 'filer')!;
      const res = await admin.request('PUT', '/api/apps/filer', { ...current, file_transfer: mode });
      assert.equal(res.status, 200, res.text);
    };
    const attempt = async () => ({
      list: (await send(alice, 'GET', filesUrl(sessionId))).status,
      download: (await send(alice, 'GET', contentUrl(sessionId, 'docs/note.txt'))).status,
      upload: (await send(alice, 'PUT', contentUrl(sessionId, 'setting.txt'), { body: Buffer.from('x') })).status,
    });
    try {
      await setTransfer('none');
      assert.deepEqual(await attempt(), { list: 403, download: 403, upload: 403 });
      const refused = await send(alice, 'PUT', contentUrl(sessionId, 'setting.txt'), { body: Buffer.from('x') });
      assert.match(String(refused.json.message), /"file_transfer": "none"/);
      assert.equal(existsSync(path.join(home, 'setting.txt')), false);
      await setTransfer('upload');
      assert.deepEqual(await attempt(), { list: 403, download: 403, upload: 200 });
      await setTransfer('download');
      assert.deepEqual(await attempt(), { list: 200, download: 200, upload: 403 });
      const bad = await admin.request<{ message: string }>('PUT', '/api/apps/filer', { id: 'filer', name: 'Filer', launch_type: 'container', command: ['sh'], file_transfer: 'sideways' });
      assert.equal(bad.status, 400);
      assert.match(bad.body.message, /file_transfer/);
    } finally {
      await setTransfer('both');
    }
  });

  test('a session that is not running is 409', async () => {
    const other = await alice.launch('filer');
    await alice.waitFor(other.id, 'running');
    await alice.end(other.id);
    for (const [method, url] of [
      ['GET', filesUrl(other.id)],
      ['GET', contentUrl(other.id, 'random.bin')],
      ['PUT', contentUrl(other.id, 'late.txt')],
    ] as const) {
      const res = await send(alice, method, url, method === 'PUT' ? { body: Buffer.from('late') } : {});
      assert.equal(res.status, 409, `${method} ${url}`);
      assert.match(String(res.json.message), /only while it is running/);
    }
    assert.equal(existsSync(homeDirPath(sortie.stateDir, other.id)), false, 'an ended session\'s home is gone and was not recreated');
  });

  test('no refused request wrote anywhere', () => {
    assert.ok(refusedNames.length > 5);
    const found = [scratch.dir, '/etc', '/tmp'].flatMap((dir) => (dir === '/tmp' ? readdirSync(dir).filter((n) => refusedNames.includes(n)) : findNamed(dir, refusedNames)));
    assert.deepEqual(found, []);
  });
});
