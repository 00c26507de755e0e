import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { PostgresSessionFeed } from '../src/sessions/session-feed.js';
import { freshTestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// The moving-streams notices of the session feed on a real PostgreSQL: two replicas' feeds on one
// database, as a draining replica names its streams to the others (see stream-handoff.ts).

let database: Awaited<ReturnType<typeof freshTestDatabase>>;
let draining: PostgresSessionFeed;
let other: PostgresSessionFeed;

before(async () => {
  database = await freshTestDatabase();
  const logger = pino({ level: 'silent' });
  draining = await PostgresSessionFeed.open(database.url, logger);
  other = await PostgresSessionFeed.open(database.url, logger);
});

after(async () => {
  await draining?.close();
  await other?.close();
  await database?.drop();
});

test('a replica naming 400 streams sends them as notices of at most 150 ids, each under PostgreSQL\'s 8000-byte limit; the others hear every id', async () => {
  const ids = Array.from({ length: 400 }, () => randomUUID());
  const heard: string[][] = [];
  const stop = other.onMoving((notice) => heard.push(notice));
  try {
    draining.announceMoving(ids);
    await waitFor(() => heard.flat().length === ids.length, { what: 'every id heard', timeoutMs: 10_000 });
  } finally {
    stop();
  }
  assert.deepEqual(heard.map((n) => n.length), [150, 150, 100]);
  assert.deepEqual(heard.flat(), ids);
});

test('a notice naming more than 150 ids, or ids no stream path takes, is cut to what a notice may hold', async () => {
  const heard: string[][] = [];
  const stop = other.onMoving((notice) => heard.push(notice));
  // Written by hand, as anyone who can NOTIFY on the channel could: 200 ids and two that are not ids.
  const ids = Array.from({ length: 200 }, (_, i) => `s-${i}`);
  const client = new pg.Client({ connectionString: database.url });
  await client.connect();
  try {
    await client.query('select pg_notify($1, $2)', ['sortie_session_changes', JSON.stringify({ moving: ['../etc', 'x'.repeat(65), ...ids] })]);
    await waitFor(() => heard.length === 1, { what: 'the notice heard', timeoutMs: 10_000 });
  } finally {
    stop();
    await client.end();
  }
  assert.deepEqual(heard[0], ids.slice(0, 150));
});
