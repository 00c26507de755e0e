import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { after, before, beforeEach, describe, test } from 'node:test';
import { InputError, NotFoundError, PayloadTooLargeError } from '../../errors.js';
import type { HomeTarget } from '../runner.js';
import { LocalHomeFiles, MAX_LIST_ENTRIES } from './home-files.js';

// The app owns its home and may swap any name in it for a symlink at any moment; these
// tests plant what a hostile app would and check that nothing outside the home is read,
// listed or written.

const target: HomeTarget = { sessionId: 's1', endpoint: { host: '127.0.0.1', port: 1 } };
const isRoot = process.getuid?.() === 0;
/** Files written by Sortie go to this owner when Sortie is root (nobody, as a stand-in for the session user). */
const OWNER = { uid: 65534, gid: 65534 };

let root: string;
let home: string;
let outside: string;
let files: LocalHomeFiles;

const bytes = (...chunks: string[]) =>
  (async function* () {
    for (const c of chunks) yield Buffer.from(c);
  })();

/** Everything below `dir`, as relative paths, to prove a refusal wrote nothing. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

before(() => {
  root = mkdtempSync(path.join(tmpdir(), 'sortie-home-files-'));
});
after(() => rmSync(root, { recursive: true, force: true }));

beforeEach(() => {
  rmSync(path.join(root, 'home'), { recursive: true, force: true });
  rmSync(path.join(root, 'outside'), { recursive: true, force: true });
  home = path.join(root, 'home');
  outside = path.join(root, 'outside');
  mkdirSync(path.join(home, 'docs', 'deep'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(path.join(outside, 'secret.txt'), 'outside the home');
  writeFileSync(path.join(home, 'notes.txt'), 'hello from the app');
  writeFileSync(path.join(home, 'docs', 'deep', 'report.bin'), Buffer.from([0, 1, 2, 255]));
  symlinkSync(outside, path.join(home, 'escape'));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(home, 'secret-link'));
  symlinkSync('docs', path.join(home, 'docs-link'));
  execFileSync('mkfifo', [path.join(home, 'pipe')]);
  files = new LocalHomeFiles({
    homeOf: (id) => {
      if (id !== 's1') throw new NotFoundError(`no session ${id}`);
      return home;
    },
    owner: () => (isRoot ? OWNER : undefined),
  });
});

describe('listing a folder of the home', () => {
  test('lists names, types, sizes and times, links as links, sorted by name', async () => {
    const entries = await files.list(target, []);
    assert.deepEqual(
      entries.map((e) => [e.name, e.type]),
      [
        ['docs', 'directory'],
        ['docs-link', 'symlink'],
        ['escape', 'symlink'],
        ['notes.txt', 'file'],
        ['pipe', 'other'],
        ['secret-link', 'symlink'],
      ],
    );
    const notes = entries.find((e) => e.name === 'notes.txt')!;
    assert.equal(notes.size, 'hello from the app'.length);
    assert.equal(notes.modified, statSync(path.join(home, 'notes.txt')).mtime.toISOString());
    assert.deepEqual((await files.list(target, ['docs', 'deep'])).map((e) => e.name), ['report.bin']);
  });

  test('a symlink anywhere in the path is refused, wherever it points', async () => {
    for (const segments of [['escape'], ['docs-link'], ['docs-link', 'deep']]) {
      await assert.rejects(files.list(target, segments), (err: Error) => err instanceof InputError && /symbolic link/.test(err.message), segments.join('/'));
    }
  });

  test('a file, a missing folder and a non-name are told apart', async () => {
    await assert.rejects(files.list(target, ['notes.txt']), (err: Error) => err instanceof InputError && /not a folder/.test(err.message));
    await assert.rejects(files.list(target, ['nope']), NotFoundError);
    await assert.rejects(files.list(target, ['..']), InputError);
    await assert.rejects(files.list(target, ['a/b']), InputError);
    await assert.rejects(files.list(target, ['']), InputError);
    await assert.rejects(files.list({ ...target, sessionId: 'other' }, []), NotFoundError);
  });

  test(`a folder of more than ${MAX_LIST_ENTRIES} entries is listed up to that many`, async () => {
    const big = path.join(home, 'big');
    mkdirSync(big);
    for (let i = 0; i <= MAX_LIST_ENTRIES; i++) writeFileSync(path.join(big, `f${i}`), '');
    assert.equal((await files.list(target, ['big'])).length, MAX_LIST_ENTRIES);
  });
});

describe('reading a file of the home', () => {
  test('answers the size and exactly the bytes', async () => {
    const read = await files.read(target, ['docs', 'deep', 'report.bin']);
    assert.equal(read.size, 4);
    const chunks: Buffer[] = [];
    for await (const c of read.stream) chunks.push(c as Buffer);
    assert.deepEqual(Buffer.concat(chunks), Buffer.from([0, 1, 2, 255]));
  });

  test('an empty file reads as nothing', async () => {
    writeFileSync(path.join(home, 'empty'), '');
    const read = await files.read(target, ['empty']);
    assert.equal(read.size, 0);
    assert.equal(await text(read.stream), '');
  });

  test('links, folders, FIFOs and missing files are refused without reading anything outside', async () => {
    await assert.rejects(files.read(target, ['secret-link']), (err: Error) => err instanceof InputError && /symbolic link/.test(err.message));
    await assert.rejects(files.read(target, ['escape', 'secret.txt']), (err: Error) => err instanceof InputError && /symbolic link/.test(err.message));
    await assert.rejects(files.read(target, ['docs']), (err: Error) => err instanceof InputError && /is a folder/.test(err.message));
    // Opening a FIFO for reading would wait for a writer forever; it must be refused at once.
    await assert.rejects(files.read(target, ['pipe']), (err: Error) => err instanceof InputError && /not a regular file/.test(err.message));
    await assert.rejects(files.read(target, ['missing.txt']), NotFoundError);
    await assert.rejects(files.read(target, ['notes.txt', 'x']), (err: Error) => err instanceof InputError && /not a folder/.test(err.message));
    await assert.rejects(files.read(target, []), InputError);
  });
});

describe('writing a file into the home', () => {
  test('a new file gets the bytes, mode 0644 and the app user as owner', async () => {
    const saved = await files.write(target, ['docs', 'upload.txt'], bytes('part one, ', 'part two'), 1024);
    assert.equal(saved.size, 18);
    const file = path.join(home, 'docs', 'upload.txt');
    assert.equal(readFileSync(file, 'utf8'), 'part one, part two');
    const stats = statSync(file);
    assert.equal(stats.mode & 0o777, 0o644);
    assert.equal(stats.uid, isRoot ? OWNER.uid : process.getuid!());
    assert.deepEqual(tree(path.join(home, 'docs')), ['deep', 'deep/report.bin', 'upload.txt'], 'no temporary file is left');
  });

  test('replacing a file keeps its mode', async () => {
    chmodSync(path.join(home, 'notes.txt'), 0o600);
    await files.write(target, ['notes.txt'], bytes('new'), 1024);
    assert.equal(readFileSync(path.join(home, 'notes.txt'), 'utf8'), 'new');
    assert.equal(statSync(path.join(home, 'notes.txt')).mode & 0o777, 0o600);
  });

  test('over the limit: refused, and neither the old file nor anything new is touched', async () => {
    const before = tree(home);
    await assert.rejects(files.write(target, ['notes.txt'], bytes('12345', '67890', 'x'), 10), PayloadTooLargeError);
    assert.equal(readFileSync(path.join(home, 'notes.txt'), 'utf8'), 'hello from the app');
    await assert.rejects(files.write(target, ['fresh.txt'], bytes('12345678901'), 10), PayloadTooLargeError);
    assert.deepEqual(tree(home), before);
  });

  test('a body that breaks off leaves the old file as it was', async () => {
    const cut = (async function* () {
      yield Buffer.from('half of it');
      throw new Error('connection reset');
    })();
    await assert.rejects(files.write(target, ['notes.txt'], cut, 1024), /connection reset/);
    assert.equal(readFileSync(path.join(home, 'notes.txt'), 'utf8'), 'hello from the app');
    assert.ok(!readdirSync(home).some((n) => n.startsWith('.sortie-upload-')));
  });

  test('links (final or on the way), folders and missing folders are refused; nothing is written outside', async () => {
    const outsideBefore = tree(outside);
    await assert.rejects(files.write(target, ['secret-link'], bytes('pwned'), 1024), (err: Error) => err instanceof InputError && /symbolic link/.test(err.message));
    await assert.rejects(files.write(target, ['escape', 'new.txt'], bytes('pwned'), 1024), (err: Error) => err instanceof InputError && /symbolic link/.test(err.message));
    await assert.rejects(files.write(target, ['docs'], bytes('x'), 1024), (err: Error) => err instanceof InputError && /is a folder/.test(err.message));
    await assert.rejects(files.write(target, ['no-such-folder', 'a.txt'], bytes('x'), 1024), NotFoundError);
    await assert.rejects(files.write(target, ['pipe'], bytes('x'), 1024), InputError);
    await assert.rejects(files.write(target, ['..', 'x'], bytes('x'), 1024), InputError);
    assert.deepEqual(tree(outside), outsideBefore);
    assert.equal(readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'outside the home');
    assert.equal(lstatSync(path.join(home, 'secret-link')).isSymbolicLink(), true);
  });

  test('a folder swapped for a symlink to outside while the upload runs: the file still lands in the home', async () => {
    // What a hostile app can do between Sortie's checks: move the folder away and put a
    // link to outside in its place. The upload holds the folder it opened, not its name.
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
