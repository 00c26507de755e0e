import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { startSortie } from '../src/main.js';
import { FakeRunner } from './support/fake-runner.js';
import { scratchDir, testConfig } from './support/harness.js';
import { freePort } from './support/ports.js';
import { freshTestDatabase } from './support/postgres.js';
import { waitFor } from './support/wait.js';

// A Sortie that fails part-way through start-up (here: a port already taken) rejects with the
// reason and keeps nothing of what it had set going: an embedder or a test that catches the
// error holds no database connection or file, no leader lock, no runner, no listening port.

/** A port something else listens on, for as long as the test needs it taken. */
async function takenPort(): Promise<{ port: number; close: () => Promise<void> }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/** Whether something listens on `port` of 127.0.0.1 (a fresh server there would fail). */
async function listening(port: number): Promise<boolean> {
  const server = net.createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(true));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(false)));
  });
}

/** This process's open descriptors that lead to files under `dir`. */
function openFilesUnder(dir: string): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      const target = readlinkSync(`/proc/self/fd/${fd}`);
      return target.startsWith(dir) ? [target] : [];
    } catch {
      return []; // closed meanwhile (the readdir's own descriptor)
    }
  });
}

/** Captures Sortie's log, to check that stopping what had started raised nothing. */
function capturedLogger(): { logger: pino.Logger; lines: () => Array<{ level: number; msg: string }> } {
  const lines: string[] = [];
  const logger = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
  return { logger, lines: () => lines.map((line) => JSON.parse(line) as { level: number; msg: string }) };
}

describe('a Sortie that fails to start', () => {
  const scratch = scratchDir('startup-failure');
  let database: Awaited<ReturnType<typeof freshTestDatabase>>;
  before(async () => {
    database = await freshTestDatabase();
  });
  after(async () => {
    await database?.drop();
    scratch.remove();
  });

  test('on PostgreSQL, with its port taken: it says so, and leaves no connection (nor the leader lock) behind', async () => {
    const taken = await takenPort();
    const { logger, lines } = capturedLogger();
    try {
      const config = testConfig(scratch.dir, { SORTIE_PORT: String(taken.port), SORTIE_DATABASE_URL: database.url });
      await assert.rejects(startSortie(config, { logger, runner: new FakeRunner() }), /EADDRINUSE/);
    } finally {
      await taken.close();
    }
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    try {
      const others = async () =>
        (await client.query<{ n: string }>('select count(*) as n from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid()')).rows[0]!.n;
      // The leader's connection (holding the lock) and the live-update feed's LISTEN among them.
      await waitFor(async () => (await others()) === '0', { what: 'the failed Sortie’s connections to close', timeoutMs: 5_000 });
      const locks = await client.query<{ n: string }>("select count(*) as n from pg_locks where locktype = 'advisory'");
      assert.equal(locks.rows[0]!.n, '0');
    } finally {
      await client.end();
    }
    assert.deepEqual(lines().filter((l) => l.level >= 40 && /could not stop/.test(l.msg)), []);
  });

  test('on SQLite, with its metrics port taken: its HTTP port is free again and its database file closed', async () => {
    const taken = await takenPort();
    const httpPort = await freePort();
    const dir = path.join(scratch.dir, 'sqlite');
    const { logger, lines } = capturedLogger();
    try {
      const config = testConfig(dir, {
        SORTIE_PORT: String(httpPort),
        SORTIE_DB_PATH: path.join(dir, 'sortie.db'),
        SORTIE_METRICS_TOKEN: 'metrics-token-of-at-least-32-characters',
        SORTIE_METRICS_PORT: String(taken.port),
      });
      await assert.rejects(startSortie(config, { logger, runner: new FakeRunner() }), /EADDRINUSE/);
    } finally {
      await taken.close();
    }
    // It had been listening on its HTTP port when the metrics port failed.
    assert.ok(lines().some((l) => /Sortie is listening|serving metrics|session limits/.test(l.msg)), 'start-up got far');
    assert.equal(await listening(httpPort), false, 'the HTTP port is still taken');
    assert.deepEqual(openFilesUnder(dir), [], 'the database file is still open');
    assert.deepEqual(lines().filter((l) => l.level >= 40 && /could not stop/.test(l.msg)), []);
  });

  test('on SQLite, with a file that is no database: it says so, and the file is not left open', async () => {
    const dir = path.join(scratch.dir, 'garbage');
    mkdirSync(dir, { mode: 0o700 });
    const file = path.join(dir, 'sortie.db');
    writeFileSync(file, 'not a database, but long enough to have a header: '.repeat(20), { mode: 0o600 });
    const config = testConfig(dir, { SORTIE_DB_PATH: file });
    await assert.rejects(startSortie(config, { logger: pino({ level: 'silent' }), runner: new FakeRunner() }), /database .*sortie\.db: file is not a database/);
    assert.deepEqual(openFilesUnder(dir), []);
  });
});
