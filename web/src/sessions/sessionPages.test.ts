import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Session } from '../contract';
import { mergeFirstPage } from './sessionPages';

const at = (minute: number) => new Date(Date.UTC(2026, 0, 1, 10, minute)).toISOString();
const session = (id: string, minute: number, status: Session['status'] = 'running'): Session => ({
  id,
  user_id: 'alice',
  app_id: 'xterm',
  app_name: 'XTerm',
  pod_name: `sortie-session-${id}`,
  status,
  reason: null,
  websocket_url: `/ws/sessions/${id}`,
  created_at: at(minute),
  updated_at: at(minute),
  queue_position: null,
  progress: null,
});
const ids = (list: Session[]) => list.map((s) => s.id);

test('the first load is the first page', () => {
  assert.deepEqual(ids(mergeFirstPage([session('b', 2), session('a', 1)], null)), ['b', 'a']);
});

test('a polled first page replaces the old one and keeps the older pages loaded below it', () => {
  // Shown: first page d, c; a later page b, a. Then e is created: the new first page is e, d.
  const shown = [session('d', 4), session('c', 3), session('b', 2), session('a', 1)];
  const merged = mergeFirstPage([session('e', 5), session('d', 4, 'terminated')], shown);
  assert.deepEqual(ids(merged), ['e', 'd', 'c', 'b', 'a'], 'c, pushed off the first page, is still shown');
  assert.equal(merged[1]!.status, 'terminated', 'the first page brings news');
});

test('sessions newer than the last of the first page but missing from it are gone, not kept', () => {
  // c was in the first page and no longer is, while d and b are: it left the filtered list.
  const shown = [session('d', 4), session('c', 3), session('b', 2), session('a', 1)];
  assert.deepEqual(ids(mergeFirstPage([session('d', 4), session('b', 2)], shown)), ['d', 'b', 'a']);
});

test('an empty first page empties the list', () => {
  assert.deepEqual(mergeFirstPage([], [session('a', 1)]), []);
});

test('ties in time follow the server: the larger id first', () => {
  const shown = [session('y', 1), session('x', 1), session('w', 1)];
  assert.deepEqual(ids(mergeFirstPage([session('z', 1), session('y', 1)], shown)), ['z', 'y', 'x', 'w']);
});
