import http, { type IncomingMessage } from 'node:http';
import { FILE_ENTRY_TYPES, type FileEntry, type FileEntryType } from '../../contract/files.js';
import { ConflictError, InputError, NotFoundError, PayloadTooLargeError } from '../../errors.js';
import { MAX_LIST_ENTRIES } from '../local/home-files.js';
import { uploadTooLarge, type HomeFileRead, type HomeFiles, type HomeTarget } from '../runner.js';
import { FILES_PORT } from './pod-spec.js';

/**
 * Files in a session pod's home, through the file endpoint in its sidecar
 * (docker/vnc-sidecar/files.py): the app and the sidecar mount the same home volume, and
 * the sidecar applies the same rules as the local runner's store as it opens each name.
 * Sortie needs no `pods/exec`; it dials the pod's IP with the session's secret, which only
 * Sortie and the sidecar know. Both directions stream: a download is the sidecar's
 * response, an upload is piped chunk by chunk with backpressure.
 */

export interface SidecarHomeFilesOptions {
  /** The sidecar's file port; the pod spec's by default. */
  port?: number;
  /** A connection to the sidecar silent this long is given up. */
  idleTimeoutMs?: number;
}

/** More than any honest listing of MAX_LIST_ENTRIES names takes; bounds what is buffered. */
const MAX_LISTING_BYTES = 32 * 1024 * 1024;
const MAX_ERROR_BYTES = 64 * 1024;
const DEFAULT_IDLE_TIMEOUT_MS = 5 * 60_000;

export class SidecarHomeFiles implements HomeFiles {
  private readonly port: number;
  private readonly idleTimeoutMs: number;

  constructor(options: SidecarHomeFilesOptions = {}) {
    this.port = options.port ?? FILES_PORT;
    this.idleTimeoutMs = options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  }

  async list(target: HomeTarget, segments: readonly string[]): Promise<FileEntry[]> {
    const res = await answered(this.request(target, 'GET', '/list', segments), this.port);
    if (res.statusCode !== 200) throw await refusal(res);
    const body = await readJson(res, MAX_LISTING_BYTES);
    const entries = (body as { entries?: unknown }).entries;
    if (!Array.isArray(entries)) throw new Error('The session\'s file endpoint sent a listing without entries');
    return entries
      .slice(0, MAX_LIST_ENTRIES)
      .map(toEntry)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async read(target: HomeTarget, segments: readonly string[]): Promise<HomeFileRead> {
    const res = await answered(this.request(target, 'GET', '/content', segments), this.port);
    if (res.statusCode !== 200) throw await refusal(res);
    const size = Number(res.headers['content-length']);
    const modifiedMs = Number(res.headers['x-modified-ms']);
    if (!Number.isSafeInteger(size) || size < 0 || !Number.isFinite(modifiedMs)) {
      res.destroy();
      throw new Error('The session\'s file endpoint sent a file without its size or time');
    }
    // The response is the stream: it ends after exactly Content-Length bytes, or fails.
    return { size, modified: new Date(modifiedMs).toISOString(), stream: res };
  }

  async write(target: HomeTarget, segments: readonly string[], body: AsyncIterable<Uint8Array>, maxBytes: number): Promise<{ size: number }> {
    // 100-continue: the sidecar checks the path (and refuses) before any of the body is sent.
    const req = this.request(target, 'PUT', '/content', segments, { max: String(maxBytes) }, { expect: '100-continue', 'content-type': 'application/octet-stream' });
    let response: IncomingMessage | undefined;
    let failure: Error | undefined;
    const settled = new Promise<void>((resolve) => {
      req.on('response', (res) => {
        response = res;
        resolve();
      });
      req.on('error', (err) => {
        failure ??= err;
        resolve();
      });
    });
    const waitFor = (event: 'continue' | 'drain') => Promise.race([new Promise<void>((resolve) => req.once(event, () => resolve())), settled]);
    try {
      await waitFor('continue');
      let size = 0;
      if (!response && !failure) {
        for await (const chunk of body) {
          size += chunk.byteLength;
          // Counted here too, so an upload over the limit stops at once.
          if (size > maxBytes) throw uploadTooLarge(maxBytes);
          if (!req.write(chunk)) await waitFor('drain');
          if (response || failure) break;
        }
        if (!response && !failure) {
          req.end();
          await settled;
        }
      }
      if (response) {
        if (response.statusCode !== 200) throw await refusal(response);
        const saved = (await readJson(response, MAX_ERROR_BYTES)) as { size?: unknown };
        if (saved.size !== size) throw new Error(`The session's file endpoint saved ${String(saved.size)} bytes of ${size}`);
        return { size };
      }
      throw unreachable(failure!, this.port);
    } finally {
      // Anything unfinished (the client went away, a refusal midway) is cut: the sidecar then
      // deletes its temporary file.
      if (!req.writableFinished || !response?.complete) req.destroy();
    }
  }

  private request(
    target: HomeTarget,
    method: 'GET' | 'PUT',
    route: string,
    segments: readonly string[],
    query: Record<string, string> = {},
    headers: Record<string, string> = {},
  ): http.ClientRequest {
    if (!target.secret) throw new ConflictError(`Session ${target.sessionId} has no secret, so its file endpoint cannot be reached`);
    let search: string;
    try {
      search = new URLSearchParams({ path: segments.join('/'), ...query }).toString();
      encodeURIComponent(segments.join('/')); // throws on a lone surrogate, which URLSearchParams would replace
    } catch {
      throw new InputError('The path is not valid Unicode');
    }
    const req = http.request({
      host: target.endpoint.host,
      port: this.port,
      method,
      path: `${route}?${search}`,
      headers: { authorization: `Bearer ${target.secret}`, ...headers },
      agent: false,
      timeout: this.idleTimeoutMs,
    });
    req.on('timeout', () => req.destroy(new Error(`no answer for ${Math.round(this.idleTimeoutMs / 1000)} s`)));
    if (method === 'GET') req.end();
    return req;
  }
}

/**
 * The response, or a connection failure said in words a person can act on. The listener
 * stays: a failure after the response arrived reaches the response's reader instead.
 */
function answered(req: http.ClientRequest, port: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.once('response', resolve);
    req.on('error', (err) => reject(unreachable(err, port)));
  });
}

function unreachable(err: Error, port: number): Error {
  if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
    return new ConflictError(`The session's sidecar does not serve files (nothing listens on port ${port}); sessions started with an older sidecar image cannot reach files`);
  }
  return new Error(`Could not reach the session's file endpoint: ${err.message}`);
}

/** The sidecar's refusal, as the error the local store would have thrown. */
async function refusal(res: IncomingMessage): Promise<Error> {
  let message: string;
  try {
    const body = (await readJson(res, MAX_ERROR_BYTES)) as { message?: unknown };
    message = typeof body.message === 'string' ? body.message.slice(0, 2000) : `status ${res.statusCode}`;
  } catch {
    message = `status ${res.statusCode}`;
  }
  switch (res.statusCode) {
    case 400:
      return new InputError(message);
    case 404:
      return new NotFoundError(message);
    case 413:
      return new PayloadTooLargeError(message);
    case 401:
      return new Error(`The session's file endpoint refused Sortie's secret: ${message}`);
    default:
      return new Error(`The session's file endpoint failed: ${message}`);
  }
}

async function readJson(res: IncomingMessage, limit: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of res) {
    length += (chunk as Buffer).length;
    if (length > limit) {
      res.destroy();
      throw new Error(`The session's file endpoint sent more than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
}

function toEntry(raw: unknown): FileEntry {
  const e = raw as { name?: unknown; type?: unknown; size?: unknown; mtime_ms?: unknown };
  if (
    typeof e?.name !== 'string' ||
    !FILE_ENTRY_TYPES.includes(e.type as FileEntryType) ||
    typeof e.size !== 'number' ||
    typeof e.mtime_ms !== 'number'
  ) {
    throw new Error('The session\'s file endpoint sent a malformed listing');
  }
  return { name: e.name, type: e.type as FileEntryType, size: e.size, modified: new Date(e.mtime_ms).toISOString() };
}
