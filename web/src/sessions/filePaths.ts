import type { FileEntry, FileTransfer } from '../contract';

/** Which ways the viewer offers files for an app's `file_transfer` setting; the server enforces the same. */
export function fileDirections(setting: FileTransfer): { upload: boolean; download: boolean } {
  return { upload: setting === 'both' || setting === 'upload', download: setting === 'both' || setting === 'download' };
}

/** A path below `dir` in the home; `dir` "" is the home itself. */
export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** The folder holding `dir`; the home is its own parent. */
export function parentPath(dir: string): string {
  const cut = dir.lastIndexOf('/');
  return cut < 0 ? '' : dir.slice(0, cut);
}

/** The folders from the home down to `dir`, for a breadcrumb. */
export function breadcrumbs(dir: string): { name: string; path: string }[] {
  const crumbs = [{ name: 'Home', path: '' }];
  if (dir === '') return crumbs;
  let at = '';
  for (const part of dir.split('/')) {
    at = joinPath(at, part);
    crumbs.push({ name: part, path: at });
  }
  return crumbs;
}

/** Folders first, then by name as a person reads them. */
export function sortEntries(entries: readonly FileEntry[]): FileEntry[] {
  const rank = (e: FileEntry) => (e.type === 'directory' ? 0 : 1);
  return [...entries].sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name, undefined, { numeric: true, sensitivity: 'base' }));
}

const UNITS = ['B', 'KB', 'MB', 'GB', 'TB'];

/** 1536 → "1.5 KB": sizes in binary steps, as file managers show them. */
export function formatSize(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${value} B` : `${value < 10 ? value.toFixed(1) : Math.round(value)} ${UNITS[unit]}`;
}

/**
 * What to tell a person whose upload failed, by HTTP status. The server's own message
 * (which names the limit or the setting) comes after the sentence that says what to do.
 */
export function uploadErrorMessage(name: string, status: number, serverMessage: string | null): string {
  const detail = serverMessage ? ` (${serverMessage})` : '';
  switch (status) {
    case 0:
      return `“${name}” was not uploaded: the connection to Sortie broke. Check your connection and try again.`;
    case 401:
      return `“${name}” was not uploaded: your sign-in has expired. Sign in again and retry.`;
    case 403:
      return `“${name}” was not uploaded: this app does not allow uploads${detail}.`;
    case 404:
      return `“${name}” was not uploaded: the folder is gone${detail}. Open another folder and try again.`;
    case 409:
      return `“${name}” was not uploaded: the session's files cannot be reached now${detail}.`;
    case 413:
      return `“${name}” is too large to upload${detail}.`;
    default:
      return `“${name}” was not uploaded${detail || ` (HTTP ${status})`}.`;
  }
}
