import { useCallback, useState } from 'react';

type During = <T>(id: string, work: () => Promise<T>) => Promise<T>;

/**
 * Which things (by id) have an action under way, such as apps being launched.
 * `during(id, work)` marks `id` for as long as `work` runs; the function never changes.
 */
export function usePendingIds(): [ReadonlySet<string>, During] {
  const [pending, setPending] = useState<ReadonlySet<string>>(new Set());
  const during = useCallback<During>(async (id, work) => {
    setPending((prev) => new Set(prev).add(id));
    try {
      return await work();
    } finally {
      setPending((prev) => {
        const next = new Set(prev);
        next.delete(id);
        return next;
      });
    }
  }, []);
  return [pending, during];
}
