import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'kysely';
import pg from 'pg';
import pino from 'pino';
import { PostgresCoordination } from '../src/db/coordination.js';
import { LOCK_KEYS, openDatabase, type Db } from '../src/db/database.js';
import { freshTestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// What two replicas agree on through one real PostgreSQL, each with its own pool and its own
// coordination, as two Sortie processes have. replicas.test.ts proves the same through the
// API; here the work inside is slowed on purpose, so two replicas overlap every time and a
// missing lock cannot pass by luck.

const logger = pino({ level: 'silent' });

describe('coordination of two replicas on one PostgreSQL', () => {
  let database: { url: string; drop: () => Promise<void> };
  let dbs: Db[] = [];
  let replicas: PostgresCoordination[] = [];

  before(async () => {
    database = await freshTestDatabase();
    dbs = [await openDatabase(database.url), await openDatabase(database.url)];
    replicas = dbs.map((db) => new PostgresCoordination(db, database.url, logger));
    await sql`create table counter (n integer not null)`.execute(dbs[0]!);
    await sql`insert into counter values (0)`.execute(dbs[0]!);
  });

  after(async () => {
    for (const r of replicas) await r.close();
    for (const db of dbs) await db.destroy();
    await database?.drop();
  });

  /** A check followed by a write, on replica `i`'s own pool, with a pause between the two. */
  async function readPauseWrite(i: number, inside: { now: number; most: number }): Promise<void> {
    inside.now++;
    inside.most = Math.max(inside.most, inside.now);
    const db = dbs[i]!;
    const { rows } = await sql<{ n: number }>`select n from counter`.execute(db);
    await sleep(20);
    await sql`update counter set n = ${rows[0]!.n + 1}`.execute(db);
    inside.now--;
  }

  async function counter(): Promise<number> {
    const { rows } = await sql<{ n: number }>`select n from counter`.execute(dbs[0]!);
    return rows[0]!.n;
  }

  test('without the lock, the same work split over two replicas loses updates (what the lock is for)', async () => {
    await sql`update counter set n = 0`.execute(dbs[0]!);
    const inside = { now: 0, most: 0 };
    await Promise.all(Array.from({ length: 10 }, (_, k) => readPauseWrite(k % 2, inside)));
    assert.ok(inside.most > 1, 'the work overlapped');
    assert.ok((await counter()) < 10, `updates were lost: ${await counter()} of 10`);
  });

  test('exclusive work runs one at a time across both replicas: nothing is lost', async () => {
    await sql`update counter set n = 0`.execute(dbs[0]!);
    const inside = { now: 0, most: 0 };
    await Promise.all(Array.from({ length: 10 }, (_, k) => replicas[k % 2]!.exclusive('queue', () => readPauseWrite(k % 2, inside))));
    assert.equal(inside.most, 1, 'never two at once');
    assert.equal(await counter(), 10);
  });

  test('different kinds of exclusive work do not wait on each other', async () => {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const queuePass = replicas[0]!.exclusive('queue', () => held);
    // An admission on the other replica finishes while the queue pass still holds its lock.
    const admitted = await Promise.race([replicas[1]!.exclusive('admission', async () => 'admitted'), sleep(5_000).then(() => 'waited')]);
    release();
    await queuePass;
    assert.equal(admitted, 'admitted');
  });

  test('exactly one replica leads; when its connection is cut by the server, the other takes over', async () => {
    const first = await Promise.all(replicas.map((r) => r.lead()));
    assert.deepEqual([...first].sort(), [false, true], 'one leads');
    const leader = first.indexOf(true);
    const other = 1 - leader;
    // The server drops the leader's connection (as when its replica's machine vanished and the
    // keepalives ran out): its lock goes with it.
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      const { rows } = await admin.query<{ pid: number }>(
        "select pid from pg_locks where locktype = 'advisory' and granted and objid = $1",
        [LOCK_KEYS.lead],
      );
      assert.equal(rows.length, 1, 'one connection holds the lead lock');
      await admin.query('select pg_terminate_backend($1)', [rows[0]!.pid]);
    } finally {
      await admin.end();
    }
    await waitFor(async () => (await replicas[other]!.lead()) || undefined, { timeoutMs: 10_000, what: 'the other replica to lead' });
    assert.equal(await replicas[leader]!.lead(), false, 'the replica that lost its connection no longer leads');
  });
});
