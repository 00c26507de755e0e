import { randomBytes } from 'node:crypto';
import { constants, createReadStream, type Stats } from 'node:fs';
import { lstat, open, opendir, readlink, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import type { FileEntry, FileEntryType } from '../../contract/files.js';
import { InputError, NotFoundError, PayloadTooLargeError } from '../../errors.js';
import { uploadTooLarge, type HomeFileRead, type HomeFiles, type HomeTarget } from '../runner.js';

/**
 * Files in a local session's home, reached safely although the app (another user, in a
 * sandbox) owns the home and may replace any name in it by a symlink at any moment.
 *
 * Nothing here resolves a path string below the home. The home is opened once, then each
 * component is opened relative to the folder opened before it (through /proc/self/fd/N,
 * Linux's openat for Node), with O_NOFOLLOW so a symlink is refused instead of followed,
 * and O_DIRECTORY or an fstat after opening decides what it is. A swap after a step
 * changes nothing: the descriptor already held is the folder that was checked. As a
 * second line, the folder reached is read back from /proc and must lie inside the home.
 */

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = constants;
/** O_NONBLOCK: opening a FIFO the app planted must not hang the request. */
const DIR_FLAGS = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK;
const READ_FLAGS = O_RDONLY | O_NOFOLLOW | O_NONBLOCK;
const TEMP_FLAGS = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW;

/** A listing stops here, so one folder of millions of files cannot build an answer of any size. */
export const MAX_LIST_ENTRIES = 10_000;
/** Modes Sortie gives a new file: readable by the app's user and, as usual, by others in the sandbox. */
const NEW_FILE_MODE = 0o644;
const TEMP_PREFIX = '.sortie-upload-';

export interface LocalHomeFilesOptions {
  /** The session's home on the host; throws NotFoundError for a session this runner does not hold. */
  homeOf(sessionId: string): string;
  /** Who files written by Sortie must belong to (the sandbox user when Sortie is root); undefined: Sortie's own user. */
  owner(): { uid: number; gid: number } | undefined;
}

export class LocalHomeFiles implements HomeFiles {
  constructor(private readonly o: LocalHomeFilesOptions) {}

  async list(target: HomeTarget, segments: readonly string[]): Promise<FileEntry[]> {
    const dir = await this.openFolder(target, segments);
    try {
      const entries: FileEntry[] = [];
      const reading = await opendir(fdPath(dir));
      try {
        for await (const dirent of reading) {
          if (entries.length >= MAX_LIST_ENTRIES) break;
          let stats: Stats;
          try {
            // lstat: a symlink is listed as itself, never as what it points to.
            stats = await lstat(fdPath(dir, dirent.name));
          } catch {
            continue; // removed since the folder was read
          }
          entries.push({ name: dirent.name, type: entryType(stats), size: stats.size, modified: modifiedOf(stats) });
        }
      } finally {
        await reading.close().catch(() => {});
      }
      return entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    } finally {
      await dir.close();
    }
  }

  async read(target: HomeTarget, segments: readonly string[]): Promise<HomeFileRead> {
    const { folder, name, shown } = await this.openParent(target, segments, 'download');
    let file: FileHandle;
    try {
      file = await openBelow(folder, name, READ_FLAGS, shown);
    } finally {
      await folder.close();
    }
    try {
      const stats = await file.stat();
      if (stats.isDirectory()) throw new InputError(`"${shown}" is a folder; list it with GET /api/sessions/{id}/files?path=${shown}`);
      if (!stats.isFile()) throw new InputError(`"${shown}" is not a regular file (${entryType(stats)}), so it cannot be downloaded`);
      const size = stats.size;
      // Exactly the size announced in Content-Length, even if the app keeps writing to it.
      const stream = size === 0 ? Readable.from([]) : createReadStream('', { fd: file, start: 0, end: size - 1 });
      if (size === 0) await file.close();
      return { size, modified: modifiedOf(stats), stream };
    } catch (err) {
      await file.close();
      throw err;
    }
  }

  async write(target: HomeTarget, segments: readonly string[], body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<{ size: number }> {
    const { folder, name, shown } = await this.openParent(target, segments, 'upload');
    try {
      const mode = await modeToReplace(folder, name, shown);
      const temp = `${TEMP_PREFIX}${randomBytes(8).toString('hex')}.part`;
      const owner = this.o.owner();
      let file: FileHandle | undefined;
      try {
        // O_EXCL | O_NOFOLLOW: a name the app planted in the meantime fails, never gets followed.
        file = await open(fdPath(folder, temp), TEMP_FLAGS, 0o600);
        if (owner) await file.chown(owner.uid, owner.gid);
        const size = await copyBounded(body, file, maxBytes, shown);
        await file.chmod(mode);
        await file.datasync();
        await file.close();
        file = undefined;
        // rename replaces the name itself: whatever the app put there is not followed.
        await rename(fdPath(folder, temp), fdPath(folder, name)).catch((err: NodeJS.ErrnoException) => {
          throw fsError(err, shown);
        });
        return { size };
      } catch (err) {
        await file?.close().catch(() => {});
        await unlink(fdPath(folder, temp)).catch(() => {});
        throw err;
      }
    } finally {
      await folder.close();
    }
  }

  /** The folder that holds the last component, opened; the last component is returned unopened. */
  private async openParent(target: HomeTarget, segments: readonly string[], what: 'download' | 'upload') {
    const name = segments.at(-1);
    if (name === undefined) throw new InputError(`The path names the home folder itself; give the path of a file to ${what}`);
    const folder = await this.openFolder(target, segments.slice(0, -1));
    return { folder, name, shown: segments.join('/') };
  }

  /** Opens the home, then each component below the one before, refusing symlinks and non-folders. */
  private async openFolder(target: HomeTarget, segments: readonly string[]): Promise<FileHandle> {
    for (const segment of segments) assertPlainName(segment);
    const home = this.o.homeOf(target.sessionId);
    let dir: FileHandle;
    try {
      dir = await open(home, DIR_FLAGS);
    } catch (err) {
      throw new NotFoundError(`The session's home is not there (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
    try {
      for (let i = 0; i < segments.length; i++) {
        const next = await openBelow(dir, segments[i]!, DIR_FLAGS, segments.slice(0, i + 1).join('/'));
        await dir.close();
        dir = next;
      }
      await assertInside(dir, home, segments.join('/'));
      return dir;
    } catch (err) {
      await dir.close().catch(() => {});
      throw err;
    }
  }
}

/** `/proc/self/fd/N[/name]`: the folder held open, or one name directly inside it. */
function fdPath(dir: FileHandle, name?: string): string {
  return name === undefined ? `/proc/self/fd/${dir.fd}` : `/proc/self/fd/${dir.fd}/${name}`;
}

/** The session layer checked the text already; this store does not trust that it did. */
function assertPlainName(segment: string): void {
  if (segment === '' || segment === '.' || segment === '..' || segment.includes('/') || segment.includes('\0')) {
    throw new InputError(`"${segment}" is not a plain file or folder name`);
  }
}

/** Opens `name` inside `dir` without following a symlink; errors say what is in the way. */
async function openBelow(dir: FileHandle, name: string, flags: number, shown: string): Promise<FileHandle> {
  try {
    return await open(fdPath(dir, name), flags);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTDIR' || code === 'ELOOP') {
      // Only to word the refusal: the open above already refused whatever is there.
      const stats = await lstat(fdPath(dir, name)).catch(() => undefined);
      if (stats?.isSymbolicLink()) throw symlinkRefusal(shown);
      if (stats && !stats.isDirectory()) throw new InputError(`"${shown}" is not a folder`);
    }
    throw fsError(err as NodeJS.ErrnoException, shown);
  }
}

/** The second line: the folder held open must still lie inside the home, as the kernel names it. */
async function assertInside(dir: FileHandle, home: string, shown: string): Promise<void> {
  const [where, root] = await Promise.all([readlink(fdPath(dir)), realpath(home)]);
  const relative = path.relative(root, where);
  if (relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))) return;
  if (where.endsWith(' (deleted)')) throw new NotFoundError(`"${shown}" was removed`);
  throw new InputError(`"${shown}" leads out of the session's home`);
}

/** The mode the new file gets: that of the file it replaces (without set-id bits), else 0644. */
async function modeToReplace(folder: FileHandle, name: string, shown: string): Promise<number> {
  let stats: Stats;
  try {
    stats = await lstat(fdPath(folder, name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return NEW_FILE_MODE;
    throw fsError(err as NodeJS.ErrnoException, shown);
  }
  if (stats.isSymbolicLink()) throw symlinkRefusal(shown);
  if (stats.isDirectory()) throw new InputError(`"${shown}" is a folder; upload to a file name inside it`);
  if (!stats.isFile()) throw new InputError(`"${shown}" is not a regular file (${entryType(stats)}), so it cannot be replaced`);
  return stats.mode & 0o777;
}

/** Writes `body` to `file`, one chunk at a time (the body waits while the disk writes), at most `maxBytes`. */
async function copyBounded(body: AsyncIterable<Uint8Array>, file: FileHandle, maxBytes: number, shown: string): Promise<number> {
  let size = 0;
  for await (const chunk of body) {
    size += chunk.byteLength;
    if (size > maxBytes) throw uploadTooLarge(maxBytes);
    let written = 0;
    while (written < chunk.byteLength) {
      try {
        written += (await file.write(chunk, written, chunk.byteLength - written)).bytesWritten;
      } catch (err) {
        throw fsError(err as NodeJS.ErrnoException, shown);
      }
    }
  }
  return size;
}

function symlinkRefusal(shown: string): InputError {
  return new InputError(`"${shown}" is or passes through a symbolic link; Sortie does not follow links in a session's home, which could lead out of it`);
}

function fsError(err: NodeJS.ErrnoException, shown: string): Error {
  switch (err.code) {
    case 'ENOENT':
      return new NotFoundError(`"${shown}" does not exist in the session's home`);
    case 'ENOTDIR':
      return new InputError(`A part of "${shown}" is not a folder`);
    case 'ELOOP':
      return symlinkRefusal(shown);
    case 'EISDIR':
    case 'ENOTEMPTY':
    case 'EEXIST':
      return new InputError(`"${shown}" is a folder; upload to a file name inside it`);
    case 'ENAMETOOLONG':
      return new InputError(`"${shown}" is too long a name`);
    case 'EACCES':
    case 'EPERM':
      return new InputError(`"${shown}" cannot be reached: permission denied`);
    case 'ENOSPC':
    case 'EDQUOT':
      return new PayloadTooLargeError(`The session's home has no room left for "${shown}" (the disk is full)`);
    default:
      return err;
  }
}

function entryType(stats: Stats): FileEntryType {
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFile()) return 'file';
  return 'other';
}

/**
 * A file's time to the millisecond, the fraction below cut off as the sidecar's endpoint
 * does (files.py: st_mtime_ns // 1e6), so both stores show one file alike. Node's Stats.mtime
 * rounds instead.
 */
function modifiedOf(stats: { mtimeMs: number }): string {
  return new Date(Math.floor(stats.mtimeMs)).toISOString();
}
