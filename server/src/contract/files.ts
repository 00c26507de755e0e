/** Which ways files may move between a person's computer and a session's home, per app. */
export const FILE_TRANSFER_MODES = ['both', 'upload', 'download', 'none'] as const;
/** `both` (the default), `upload` only, `download` only (browsing included), or `none`. */
export type FileTransfer = (typeof FILE_TRANSFER_MODES)[number];

export const DEFAULT_FILE_TRANSFER: FileTransfer = 'both';

export const FILE_ENTRY_TYPES = ['file', 'directory', 'symlink', 'other'] as const;
export type FileEntryType = (typeof FILE_ENTRY_TYPES)[number];

/** One entry of a folder in a session's home. A symlink is shown as itself, never followed. */
export interface FileEntry {
  name: string;
  type: FileEntryType;
  /** Bytes (for a symlink, the length of its target's name). */
  size: number;
  /** ISO-8601. */
  modified: string;
}

/** `GET /api/sessions/{id}/files?path=DIR`: `path` as asked, relative to the home ("" is the home). */
export interface FileListing {
  path: string;
  entries: FileEntry[];
}

/** The default of SORTIE_MAX_UPLOAD_MB: the largest upload, in MiB. */
export const DEFAULT_MAX_UPLOAD_MB = 1024;
