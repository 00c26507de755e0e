import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { buffer } from 'node:stream/consumers';
import { after, before, beforeEach, describe, test } from 'node:test';
import { InputError, NotFoundError, PayloadTooLargeError } from '../../src/errors.js';
import { MAX_LIST_ENTRIES } from '../../src/runners/local/home-files.js';
import type { HomeFiles, HomeTarget } from '../../src/runners/runner.js';
import { waitFor } from './wait.js';

// The rules every HomeFiles keeps (server/src/runners/runner.ts), as one suite that each
// implementation runs with its own setup, so a rule holds for all of them by construction.
// The app owns its home and may swap any name in it for a symlink at any moment; the
// fixture plants what a hostile app would, and the tests check that nothing outside the
// home is read, listed or written.

/** What a setup hands the contract: a store, and the folders on disk it reaches. */
export interface HomeFilesSetup {
  files: HomeFiles;
  target: HomeTarget;
  /** The home `target` names, on disk; the contract (re)creates it before each test. */
  home: string;
  /** A folder beside the home, where planted symlinks point; (re)created before each test. */
  outside: string;
  /** Ends what the setup started (a process) and removes its folders. */
  close(): void | Promise<void>;
}

/**
 * Registers before/after hooks in the current describe that start `setup` once and plant the
 * fixture before each test; the returned function gives what the setup made. For a suite of
 * an implementation's own tests, on the same fixture as the contract.
 */
export function useHomeFiles<T extends HomeFilesSetup>(setup: () => Promise<T>): () => T {
  let current: T | undefined;
  before(async () => {
    current = await setup();
  });
  after(async () => {
    await current?.close();
  });
  beforeEach(() => plantHome(current!.home, current!.outside));
  return () => current!;
}

/**
 * home/                          outside/
 *   docs/deep/report.bin (4 B)     secret.txt
 *   docs-link -> docs              (relative)
 *   escape -> outside/             (absolute, out of the home)
 *   secret-link -> outside/secret.txt
 *   notes.txt
 *   pipe (a FIFO)
 */
export function plantHome(home: string, outside: string): void {
  rmSync(home, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
  mkdirSync(path.join(home, 'docs', 'deep'), { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(path.join(outside, 'secret.txt'), 'outside the home');
  writeFileSync(path.join(home, 'notes.txt'), 'hello from the app');
  writeFileSync(path.join(home, 'docs', 'deep', 'report.bin'), Buffer.from([0, 1, 2, 255]));
  symlinkSync(outside, path.join(home, 'escape'));
  symlinkSync(path.join(outside, 'secret.txt'), path.join(home, 'secret-link'));
  symlinkSync('docs', path.join(home, 'docs-link'));
  execFileSync('mkfifo', [path.join(home, 'pipe')]);
}

/** A request body in the given chunks. */
export const bytes = (...chunks: Array<string | Buffer>) =>
  (async function* () {
    for (const c of chunks) yield Buffer.from(c);
  })();

/** Everything below `dir`, as relative paths, to prove a refusal wrote nothing. */
export const tree = (dir: string) => readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();

/** No upload's temporary file is left anywhere in `home`. */
export const noTemp = (home: string) => !tree(home).some((n) => path.basename(n).startsWith('.sortie-upload-'));

const refusedAs = (kind: typeof InputError, pattern: RegExp) => (err: Error) => err instanceof kind && pattern.test(err.message);
const symlinkRefused = refusedAs(InputError, /symbolic link/);
const notAFolder = refusedAs(InputError, /not a folder/);
const isAFolder = refusedAs(InputError, /is a folder/);

/**
 * A file time with a fraction of a millisecond (…05.2507 s): every store shows it to the
 * millisecond, the rest cut off (…05.250), so one file shows the same time through either.
 */
const PLANTED_TIME = 1704164645.2507;
const PLANTED_SHOWN = '2024-01-02T03:04:05.250Z';

export function homeFilesContract<T extends HomeFilesSetup>(name: string, setup: () => Promise<T>): void {
  describe(name, () => {
    const under = useHomeFiles(setup);
    const files = () => under().files;
    const target = () => under().target;
    const home = (...names: string[]) => path.join(under().home, ...names);

    describe('listing a folder of the home', () => {
      test('lists names, types, sizes and times, links as links, sorted by name', async () => {
        utimesSync(home('notes.txt'), PLANTED_TIME, PLANTED_TIME);
        const entries = await files().list(target(), []);
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
        assert.equal(notes.modified, PLANTED_SHOWN);
        assert.deepEqual((await files().list(target(), ['docs', 'deep'])).map((e) => [e.name, e.size]), [['report.bin', 4]]);
      });

      test('a symlink anywhere in the path is refused, wherever it points', async () => {
        for (const segments of [['escape'], ['docs-link'], ['docs-link', 'deep']]) {
          await assert.rejects(files().list(target(), segments), symlinkRefused, segments.join('/'));
        }
      });

      test('a file, a missing folder and a non-name are told apart', async () => {
        await assert.rejects(files().list(target(), ['notes.txt']), notAFolder);
        await assert.rejects(files().list(target(), ['nowhere']), refusedAs(NotFoundError, /does not exist/));
        await assert.rejects(files().list(target(), ['..']), InputError);
      });

      test(`a folder of more than ${MAX_LIST_ENTRIES} entries is listed up to that many`, async () => {
        mkdirSync(home('many'));
        for (let i = 0; i < MAX_LIST_ENTRIES + 20; i++) writeFileSync(home('many', `f${i}`), '');
        assert.equal((await files().list(target(), ['many'])).length, MAX_LIST_ENTRIES);
      });
    });

    describe('reading a file of the home', () => {
      test('answers the size, the time and exactly the bytes', async () => {
        // Larger than any one chunk either store reads or sends at a time.
        const data = randomBytes(3 * 1024 * 1024 + 7);
        writeFileSync(home('docs', 'big.bin'), data);
        utimesSync(home('docs', 'big.bin'), PLANTED_TIME, PLANTED_TIME);
        const big = await files().read(target(), ['docs', 'big.bin']);
        assert.equal(big.size, data.length);
        assert.equal(big.modified, PLANTED_SHOWN);
        assert.deepEqual(await buffer(big.stream), data);
        const small = await files().read(target(), ['docs', 'deep', 'report.bin']);
        assert.equal(small.size, 4);
        assert.deepEqual(await buffer(small.stream), Buffer.from([0, 1, 2, 255]));
      });

      test('an empty file reads as nothing', async () => {
        writeFileSync(home('empty'), '');
        const read = await files().read(target(), ['empty']);
        assert.equal(read.size, 0);
        assert.deepEqual(await buffer(read.stream), Buffer.alloc(0));
      });

      test('links, folders, FIFOs and missing files are refused without reading anything outside', async () => {
        await assert.rejects(files().read(target(), ['secret-link']), symlinkRefused);
        await assert.rejects(files().read(target(), ['escape', 'secret.txt']), symlinkRefused);
        await assert.rejects(files().read(target(), ['docs-link', 'deep', 'report.bin']), symlinkRefused);
        await assert.rejects(files().read(target(), ['docs']), isAFolder);
        // Opening a FIFO for reading would wait for a writer forever; it must be refused at once.
        await assert.rejects(files().read(target(), ['pipe']), refusedAs(InputError, /not a regular file/));
        await assert.rejects(files().read(target(), ['missing.txt']), NotFoundError);
        await assert.rejects(files().read(target(), ['notes.txt', 'x']), notAFolder);
        await assert.rejects(files().read(target(), []), InputError);
      });
    });

    describe('writing a file into the home', () => {
      test('a new file gets exactly the bytes, streamed in many chunks, and mode 0644; no temporary file is left', async () => {
        const parts = Array.from({ length: 40 }, () => randomBytes(100_000));
        assert.deepEqual(await files().write(target(), ['docs', 'up.bin'], bytes(...parts), 10_000_000), { size: 4_000_000 });
        assert.deepEqual(readFileSync(home('docs', 'up.bin')), Buffer.concat(parts));
        assert.equal(statSync(home('docs', 'up.bin')).mode & 0o777, 0o644);
        assert.deepEqual(tree(home('docs')), ['deep', 'deep/report.bin', 'up.bin']);
      });

      test('replacing a file keeps its mode', async () => {
        chmodSync(home('notes.txt'), 0o600);
        assert.deepEqual(await files().write(target(), ['notes.txt'], bytes('new'), 1024), { size: 3 });
        assert.equal(readFileSync(home('notes.txt'), 'utf8'), 'new');
        assert.equal(statSync(home('notes.txt')).mode & 0o777, 0o600);
      });

      test('an empty upload leaves an empty file', async () => {
        assert.deepEqual(await files().write(target(), ['notes.txt'], bytes(''), 10), { size: 0 });
        assert.equal(readFileSync(home('notes.txt'), 'utf8'), '');
      });

      test('over the limit: refused, and neither the old file nor anything new is touched', async () => {
        const before = tree(home());
        await assert.rejects(files().write(target(), ['notes.txt'], bytes('12345', '67890', 'x'), 10), PayloadTooLargeError);
        await assert.rejects(files().write(target(), ['fresh.txt'], bytes('12345678901'), 10), refusedAs(PayloadTooLargeError, /upload limit/));
        assert.equal(readFileSync(home('notes.txt'), 'utf8'), 'hello from the app');
        // A store behind a connection may remove its partial file just after it answered.
        await waitFor(() => noTemp(home()), { what: 'the partial uploads to be removed' });
        assert.deepEqual(tree(home()), before);
      });

      test('a body that breaks off leaves the old file as it was and no temporary file', async () => {
        const cut = (async function* () {
          yield Buffer.from('half of it');
          // Breaks off only once the store is writing, so there is a partial file to clean up.
          await waitFor(() => !noTemp(home()), { what: 'the upload to begin' });
          throw new Error('connection reset');
        })();
        await assert.rejects(files().write(target(), ['notes.txt'], cut, 1024), /connection reset/);
        await waitFor(() => noTemp(home()), { what: 'the temporary file to be removed' });
        assert.equal(readFileSync(home('notes.txt'), 'utf8'), 'hello from the app');
      });

      test('links (final or on the way), folders, FIFOs and missing folders are refused; nothing is written outside', async () => {
        const outside = under().outside;
        const outsideBefore = tree(outside);
        await assert.rejects(files().write(target(), ['secret-link'], bytes('pwned'), 1024), symlinkRefused);
        await assert.rejects(files().write(target(), ['escape', 'new.txt'], bytes('pwned'), 1024), symlinkRefused);
        await assert.rejects(files().write(target(), ['docs-link', 'new.txt'], bytes('x'), 1024), symlinkRefused);
        await assert.rejects(files().write(target(), ['docs'], bytes('x'), 1024), isAFolder);
        await assert.rejects(files().write(target(), ['no-such-folder', 'a.txt'], bytes('x'), 1024), NotFoundError);
        await assert.rejects(files().write(target(), ['pipe'], bytes('x'), 1024), InputError);
        await assert.rejects(files().write(target(), ['..', 'x'], bytes('x'), 1024), InputError);
        assert.deepEqual(tree(outside), outsideBefore);
        assert.equal(readFileSync(path.join(outside, 'secret.txt'), 'utf8'), 'outside the home');
        assert.equal(lstatSync(home('secret-link')).isSymbolicLink(), true);
        assert.equal(existsSync(home('docs', 'new.txt')), false);
      });

      test('a folder swapped for a symlink to outside while the upload runs: the file still lands in the home', async () => {
        // What a hostile app can do between the store's checks: move the folder away and put
        // a link to outside in its place. The upload holds the folder it opened, not its name.
        const swap = (async function* () {
          yield Buffer.from('first ');
          renameSync(home('docs'), home('moved'));
          symlinkSync(under().outside, home('docs'));
          yield Buffer.from('second');
        })();
        await files().write(target(), ['docs', 'swapped.txt'], swap, 1024);
        assert.equal(existsSync(path.join(under().outside, 'swapped.txt')), false);
        assert.equal(readFileSync(home('moved', 'swapped.txt'), 'utf8'), 'first second');
      });
    });
  });
}
