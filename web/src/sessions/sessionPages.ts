import type { Session } from '../contract';

/** Whether `a` comes after `b` in the server's order: newest first, ties by id, descending. */
function olderThan(a: Session, b: Session): boolean {
  return a.created_at < b.created_at || (a.created_at === b.created_at && a.id < b.id);
}

/**
 * A freshly polled first page in place of the one shown, over the older pages loaded
 * below it. Sessions that the new first page pushed out (because newer ones arrived) stay
 * where they were, so nothing between the first page and the older pages goes missing.
 */
export function mergeFirstPage(first: Session[], shown: Session[] | null): Session[] {
  const last = first.at(-1);
  if (!shown || !last) return first;
  const inFirst = new Set(first.map((s) => s.id));
  return [...first, ...shown.filter((s) => !inFirst.has(s.id) && olderThan(s, last))];
}
