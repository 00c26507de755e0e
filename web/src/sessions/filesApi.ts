import type { FileListing } from '../contract';
import { request } from '../api/request';
import { refreshSession } from '../auth/refresh';
import { uploadErrorMessage } from './filePaths';

const filesPath = (sessionId: string) => `/api/sessions/${encodeURIComponent(sessionId)}/files`;

export function listFiles(sessionId: string, dir: string, signal?: AbortSignal): Promise<FileListing> {
  return request<FileListing>('GET', `${filesPath(sessionId)}?path=${encodeURIComponent(dir)}`, undefined, signal);
}

/** A plain link: the browser streams the download to disk, the sign-in cookie goes along. */
export function fileContentUrl(sessionId: string, file: string): string {
  return `${filesPath(sessionId)}/content?path=${encodeURIComponent(file)}`;
}

export class UploadError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'UploadError';
  }
}

export interface Upload {
  done: Promise<void>;
  cancel: () => void;
}

/**
 * PUTs `file` as the raw body to `path` in the session's home. XMLHttpRequest rather than
 * fetch: only it reports upload progress. A 401 refreshes the sign-in once and starts over.
 */
export function uploadFile(sessionId: string, path: string, file: File, onProgress: (sent: number, total: number) => void): Upload {
  let xhr: XMLHttpRequest | null = null;
  let cancelled = false;
  const attempt = () =>
    new Promise<number>((resolve, reject) => {
      const req = new XMLHttpRequest();
      xhr = req;
      req.open('PUT', fileContentUrl(sessionId, path));
      req.withCredentials = true;
      req.setRequestHeader('Content-Type', 'application/octet-stream');
      req.setRequestHeader('Accept', 'application/json');
      req.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
      req.onload = () => {
        if (req.status >= 200 && req.status < 300) return resolve(req.status);
        if (req.status === 401) return resolve(401);
        reject(new UploadError(uploadErrorMessage(file.name, req.status, serverMessage(req.responseText)), req.status));
      };
      req.onerror = () => reject(new UploadError(uploadErrorMessage(file.name, 0, null), 0));
      req.onabort = () => reject(new UploadError(`“${file.name}” was not uploaded: cancelled.`, 0));
      req.send(file);
    });
  const done = (async () => {
    if ((await attempt()) !== 401) return;
    if (cancelled || !(await refreshSession()) || (await attempt()) === 401) {
      throw new UploadError(uploadErrorMessage(file.name, 401, null), 401);
    }
  })();
  return {
    done,
    cancel: () => {
      cancelled = true;
      (xhr as XMLHttpRequest | null)?.abort();
    },
  };
}

function serverMessage(body: string): string | null {
  try {
    const parsed = JSON.parse(body) as { message?: unknown };
    return typeof parsed.message === 'string' && parsed.message ? parsed.message : null;
  } catch {
    return null;
  }
}
