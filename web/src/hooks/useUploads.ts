import { useCallback, useEffect, useRef, useState } from 'react';
import { uploadFile, UploadError, type Upload } from '../sessions/filesApi';
import { joinPath } from '../sessions/filePaths';

export interface UploadItem {
  key: number;
  name: string;
  /** Where it goes, relative to the home. */
  path: string;
  sent: number;
  total: number;
  state: 'waiting' | 'sending' | 'done' | 'failed';
  error?: string;
}

/**
 * Files on their way into a session's home, one at a time (one upload already fills the
 * link), each with its progress and, when refused, the reason in words.
 */
export function useUploads(sessionId: string, onUploaded: () => void) {
  const [items, setItems] = useState<UploadItem[]>([]);
  const queue = useRef(Promise.resolve());
  const active = useRef<Upload | null>(null);
  const nextKey = useRef(0);
  const mounted = useRef(true);
  const onUploadedRef = useRef(onUploaded);
  onUploadedRef.current = onUploaded;

  useEffect(() => {
    mounted.current = true;
    return () => {
      mounted.current = false;
      active.current?.cancel();
    };
  }, []);

  const patch = (key: number, change: Partial<UploadItem>) => {
    if (mounted.current) setItems((all) => all.map((item) => (item.key === key ? { ...item, ...change } : item)));
  };

  const add = useCallback(
    (files: File[], dir: string) => {
      for (const file of files) {
        const key = nextKey.current++;
        const path = joinPath(dir, file.name);
        setItems((all) => [...all, { key, name: file.name, path, sent: 0, total: file.size, state: 'waiting' }]);
        queue.current = queue.current.then(async () => {
          if (!mounted.current) return;
          patch(key, { state: 'sending' });
          const upload = uploadFile(sessionId, path, file, (sent, total) => patch(key, { sent, total }));
          active.current = upload;
          try {
            await upload.done;
            patch(key, { state: 'done', sent: file.size });
            onUploadedRef.current();
          } catch (err) {
            patch(key, { state: 'failed', error: err instanceof UploadError ? err.message : `“${file.name}” was not uploaded.` });
          } finally {
            active.current = null;
          }
        });
      }
    },
    [sessionId],
  );

  const dismiss = useCallback((key: number) => setItems((all) => all.filter((item) => item.key !== key)), []);
  const clearFinished = useCallback(() => setItems((all) => all.filter((item) => item.state === 'waiting' || item.state === 'sending')), []);

  return { items, add, dismiss, clearFinished };
}
