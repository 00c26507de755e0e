import type { Readable } from 'node:stream';
import type { Principal } from '../auth/principal.js';
import type { App } from '../catalog/app.js';
import type { FileListing, FileTransfer } from '../contract/files.js';
import { ConflictError, ForbiddenError, InputError } from '../errors.js';
import { uploadTooLarge, type HomeTarget, type Runner } from '../runners/runner.js';
import type { SessionService } from './session-service.js';

/** Longer than any path a person types; a bound on what is split and checked. */
export const MAX_PATH_LENGTH = 4096;
/** Linux's NAME_MAX, in bytes. */
const MAX_NAME_BYTES = 255;

export interface SessionFilesOptions {
  sessions: Pick<SessionService, 'streamTarget'>;
  runner: Pick<Runner, 'kind' | 'files'>;
  /** The catalog's current definition of an app: its file_transfer setting applies from the next request. */
  appById: (appId: string) => Promise<App | undefined>;
  /** SORTIE_MAX_UPLOAD_MB in bytes. */
  maxUploadBytes: number;
}

type Direction = 'download' | 'upload';

/**
 * The session file API's rules, whatever runner holds the home: only the session's owner
 * and admins (others get the same 404 as for a missing session), only while it runs, only
 * in the directions its app's `file_transfer` allows, only paths inside the home. The
 * runner's HomeFiles does the file system work and checks the path again as it opens it.
 */
export class SessionFiles {
  constructor(private readonly o: SessionFilesOptions) {}

  async list(principal: Principal, sessionId: string, rawPath: unknown): Promise<FileListing> {
    const { target, files } = await this.admit(principal, sessionId, 'download');
    const segments = parseHomePath(rawPath, { allowHome: true });
    return { path: segments.join('/'), entries: await files.list(target, segments) };
  }

  async download(principal: Principal, sessionId: string, rawPath: unknown): Promise<{ name: string; size: number; modified: string; stream: Readable }> {
    const { target, files } = await this.admit(principal, sessionId, 'download');
    const segments = parseHomePath(rawPath, { allowHome: false });
    const read = await files.read(target, segments);
    return { name: segments.at(-1)!, ...read };
  }

  /**
   * Checks everything that can be checked before a byte is read (owner, status, setting,
   * path, a declared Content-Length over the limit), then streams the body to the home.
   */
  async upload(
    principal: Principal,
    sessionId: string,
    rawPath: unknown,
    body: AsyncIterable<Uint8Array>,
    declaredLength: number | undefined,
  ): Promise<{ path: string; size: number }> {
    const { target, files } = await this.admit(principal, sessionId, 'upload');
    const segments = parseHomePath(rawPath, { allowHome: false });
    if (declaredLength !== undefined && declaredLength > this.o.maxUploadBytes) throw uploadTooLarge(this.o.maxUploadBytes);
    const { size } = await files.write(target, segments, body, this.o.maxUploadBytes);
    return { path: segments.join('/'), size };
  }

  private async admit(principal: Principal, sessionId: string, direction: Direction) {
    // A session the caller may not see answers 404 here, exactly like a missing one.
    const { session, endpoint, secret } = await this.o.sessions.streamTarget(principal, sessionId);
    if (session.status !== 'running' || !endpoint) {
      const state = session.status === 'queued' || session.status === 'creating' ? 'is still starting' : `has ended (${session.status})`;
      throw new ConflictError(`Session ${session.id} ${state}; its files can be reached only while it is running`);
    }
    const app = await this.o.appById(session.app_id);
    const setting: FileTransfer = app?.file_transfer ?? 'none';
    if (!allows(setting, direction)) {
      const why = app
        ? `its app "${app.id}" has "file_transfer": "${setting}"`
        : `its app "${session.app_id}" is no longer in the catalog, so "file_transfer" counts as "none"`;
      throw new ForbiddenError(`Files cannot be ${direction === 'upload' ? 'uploaded to' : 'downloaded or listed from'} this session: ${why}`);
    }
    const files = this.o.runner.files;
    if (!files) throw new ConflictError(`The ${this.o.runner.kind} runner cannot reach a session's files yet`);
    const target: HomeTarget = { sessionId: session.id, endpoint, ...(secret ? { secret } : {}) };
    return { target, files };
  }
}

function allows(setting: FileTransfer, direction: Direction): boolean {
  return setting === 'both' || setting === direction;
}

/**
 * A path as a person gives it, relative to the session's home, as plain names. "", "." and
 * "/"-runs are the home (when `allowHome`); "..", absolute paths, NUL bytes and names
 * longer than the file system allows are refused with a message saying which rule. The
 * query string is percent-decoded before this, so "%2e%2e" arrives as "..".
 */
export function parseHomePath(raw: unknown, { allowHome }: { allowHome: boolean }): string[] {
  if (raw === undefined) {
    if (allowHome) return [];
    throw new InputError('Give the file\'s path, relative to the session\'s home: ?path=folder/file.txt');
  }
  if (typeof raw !== 'string') throw new InputError('Give "path" once, as a single path relative to the session\'s home');
  if (raw.length > MAX_PATH_LENGTH) throw new InputError(`"path" is longer than ${MAX_PATH_LENGTH} characters`);
  if (raw.includes('\0')) throw new InputError('"path" must not contain a NUL byte');
  if (raw.startsWith('/')) throw new InputError(`"path" must be relative to the session's home, not absolute: "${raw}"`);
  const segments = raw.split('/').filter((s) => s !== '' && s !== '.');
  if (segments.includes('..')) throw new InputError(`"path" must stay inside the session's home; ".." is not allowed: "${raw}"`);
  const long = segments.find((s) => Buffer.byteLength(s) > MAX_NAME_BYTES);
  if (long !== undefined) throw new InputError(`"${long.slice(0, 40)}…" is longer than ${MAX_NAME_BYTES} bytes, more than a file name may be`);
  if (segments.length === 0 && !allowHome) throw new InputError('"path" names the home folder itself; give the path of a file');
  return segments;
}
