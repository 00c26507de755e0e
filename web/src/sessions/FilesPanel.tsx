import { useCallback, useEffect, useRef, useState } from 'react';
import type { FileEntry } from '../contract';
import { errorMessage } from '../api/http';
import { formatAbsolute } from '../ui/format';
import { Spinner } from '../ui/Spinner';
import { breadcrumbs, formatSize, joinPath, parentPath, sortEntries } from './filePaths';
import { fileContentUrl, listFiles } from './filesApi';

interface Props {
  sessionId: string;
  dir: string;
  onDir: (dir: string) => void;
  upload: boolean;
  download: boolean;
  /** Picked files, to upload into `dir`. */
  onUpload: (files: File[]) => void;
  /** Bumped when an upload finished, so the listing shows it. */
  refreshKey: number;
}

/** The session's home: folders to open, files to download, a button to upload into the folder shown. */
export function FilesPanel({ sessionId, dir, onDir, upload, download, onUpload, refreshKey }: Props) {
  const [entries, setEntries] = useState<FileEntry[] | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [reloads, setReloads] = useState(0);
  const picker = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (!download) return;
    const controller = new AbortController();
    setLoading(true);
    listFiles(sessionId, dir, controller.signal)
      .then((listing) => {
        setEntries(sortEntries(listing.entries));
        setProblem(null);
      })
      .catch((err: unknown) => {
        if (controller.signal.aborted) return;
        setEntries(null);
        setProblem(errorMessage(err));
      })
      .finally(() => {
        if (!controller.signal.aborted) setLoading(false);
      });
    return () => controller.abort();
  }, [sessionId, dir, download, refreshKey, reloads]);

  const pick = useCallback(() => picker.current?.click(), []);

  return (
    <div className="drawer__body" data-testid="files-panel">
      {upload && (
        <div className="drawer__row">
          <button type="button" className="btn btn--primary" onClick={pick} data-testid="upload-button">
            Upload files…
          </button>
          <input
            ref={picker}
            type="file"
            multiple
            hidden
            data-testid="upload-input"
            onChange={(e) => {
              const files = Array.from(e.target.files ?? []);
              e.target.value = '';
              if (files.length) onUpload(files);
            }}
          />
          <span className="drawer__hint">or drop them on the desktop</span>
        </div>
      )}
      {download ? (
        <>
          <nav className="files__crumbs" aria-label="Folder">
            {breadcrumbs(dir).map((crumb, i, all) =>
              i === all.length - 1 ? (
                <span key={crumb.path} className="files__crumb files__crumb--here" data-testid="files-here">
                  {crumb.name}
                </span>
              ) : (
                <button key={crumb.path} type="button" className="files__crumb" onClick={() => onDir(crumb.path)}>
                  {crumb.name}
                </button>
              ),
            )}
            <button type="button" className="files__refresh" onClick={() => setReloads((n) => n + 1)} title="Refresh" data-testid="files-refresh">
              ↻
            </button>
          </nav>
          {problem && <p className="drawer__error" role="alert">{problem}</p>}
          {loading && entries === null && <Spinner size="sm" label="Loading files" />}
          {entries && (
            <ul className="files__list" data-testid="files-list">
              {dir !== '' && (
                <li className="files__entry">
                  <button type="button" className="files__name files__name--dir" onClick={() => onDir(parentPath(dir))}>
                    ..
                  </button>
                </li>
              )}
              {entries.map((entry) => (
                <li key={entry.name} className="files__entry" data-testid={`file-${entry.name}`}>
                  {entry.type === 'directory' ? (
                    <button type="button" className="files__name files__name--dir" onClick={() => onDir(joinPath(dir, entry.name))}>
                      {entry.name}/
                    </button>
                  ) : entry.type === 'file' ? (
                    <a className="files__name" href={fileContentUrl(sessionId, joinPath(dir, entry.name))} download={entry.name} data-testid="file-download">
                      {entry.name}
                    </a>
                  ) : (
                    <span className="files__name files__name--other" title={entry.type === 'symlink' ? 'A link: Sortie does not follow links' : 'Not a regular file'}>
                      {entry.name}
                    </span>
                  )}
                  <span className="files__meta" title={formatAbsolute(entry.modified)}>
                    {entry.type === 'file' ? formatSize(entry.size) : entry.type === 'symlink' ? 'link' : ''}
                  </span>
                </li>
              ))}
              {entries.length === 0 && <li className="drawer__hint">This folder is empty.</li>}
            </ul>
          )}
        </>
      ) : (
        <p className="drawer__hint">This app lets files in but not out, so its home is not listed.</p>
      )}
      {!upload && download && <p className="drawer__hint">This app does not take uploads.</p>}
    </div>
  );
}
