import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { openDatabase, type Db } from '../../src/db/database.js';
import { freePort } from './ports.js';

/**
 * A real PostgreSQL for the tests: Debian's `postgresql` package, one throwaway cluster in a
 * temporary folder, on a free port, with its socket in that folder. Each test Sortie gets a
 * database of its own in it.
 *
 * scripts/test.sh starts one cluster for the whole PostgreSQL pass (see with-postgres.ts)
 * and hands its URL down in SORTIE_TEST_POSTGRES_URL; a test file run by hand starts its
 * own, stopped when the process exits.
 */

/** Which database the integration tests give Sortie: `sqlite` (the default) or `postgres`. */
export function testDatabaseKind(): 'sqlite' | 'postgres' {
  const kind = process.env.SORTIE_TEST_DATABASE ?? 'sqlite';
  if (kind !== 'sqlite' && kind !== 'postgres') throw new Error(`SORTIE_TEST_DATABASE must be "sqlite" or "postgres", got "${kind}"`);
  return kind;
}

export interface PostgresCluster {
  /** The superuser's URL, on the `postgres` database. */
  url: string;
  dataDir: string;
  stop: () => void;
}

/** The newest PostgreSQL server Debian installed: /usr/lib/postgresql/<version>/bin. */
function serverBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(path.join(root, v, 'bin', 'pg_ctl'))) : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${root}: install Debian's "postgresql" package (scripts/setup.sh does)`);
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

/** PostgreSQL refuses to run as root: as root, its tools run as the `postgres` system user the package made. */
function asServerUser(file: string, args: string[]): string[] {
  return userInfo().uid === 0 ? ['runuser', '-u', 'postgres', '--', file, ...args] : [file, ...args];
}

function run(file: string, args: string[]): void {
  const [cmd, ...rest] = asServerUser(file, args);
  execFileSync(cmd!, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
}

/**
 * Where else, besides loopback, the server listens: `address` (the node's InternalIP, for the
 * local cluster's pods), letting in password sign-ins from `allowFrom` (a CIDR) only.
 */
export interface ExtraListen {
  address: string;
  allowFrom: string;
}

export async function startPostgresCluster(extra?: ExtraListen): Promise<PostgresCluster> {
  const bin = serverBin();
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-postgres-'));
  const dataDir = path.join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  const owner = userInfo().uid === 0 ? serverUserIds() : undefined;
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const pwfile = path.join(dir, 'pw');
  writeFileSync(pwfile, password, { mode: 0o600 });
  if (owner) chownSync(pwfile, owner.uid, owner.gid);
  try {
    // Text sorts as on most real servers (en_US.UTF-8): case aside, and punctuation weighed
    // last ("ka-shifted", as glibc does), not in SQLite's byte order. A query that only works
    // in byte order (a range over '.' and '/', say) fails here rather than in production.
    run(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'sortie', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale-provider=icu', '--icu-locale=en-US-u-ka-shifted', '--locale=C.UTF-8', '--no-sync']);
    rmSync(pwfile);
    if (extra) appendFileSync(path.join(dataDir, 'pg_hba.conf'), `host all all ${extra.allowFrom} scram-sha-256\n`);
    const listen = ['127.0.0.1', ...(extra ? [extra.address] : [])].join(',');
    let port = 0;
    for (let attempt = 0; ; attempt++) {
      port = await freePort();
      // A scratch server: durability is not worth the fsyncs; the socket stays in the folder.
      const options = `-p ${port} -c listen_addresses=${listen} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-l', path.join(dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
        break;
      } catch (err) {
        // Another process took the port between the probe and the start.
        if (attempt >= 2) throw err;
      }
    }
    let stopped = false;
    const stop = () => {
      if (stopped) return;
      stopped = true;
      const [cmd, ...rest] = asServerUser(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      spawnSync(cmd!, rest, { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    };
    return { url: `postgres://sortie:${password}@127.0.0.1:${port}/postgres`, dataDir, stop };
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot start a PostgreSQL cluster: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function serverUserIds(): { uid: number; gid: number } {
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim());
  return { uid: id('-u'), gid: id('-g') };
}

let ownCluster: Promise<PostgresCluster> | undefined;

/** The cluster's superuser URL: the shared one when the test script started it, else this process's own. */
async function clusterUrl(): Promise<string> {
  const shared = process.env.SORTIE_TEST_POSTGRES_URL;
  if (shared) return shared;
  ownCluster ??= startPostgresCluster().then((cluster) => {
    process.once('exit', cluster.stop);
    return cluster;
  });
  return (await ownCluster).url;
}

async function asAdmin<T>(work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: await clusterUrl() });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** A database's name for `key` (a scratch folder): the same folder finds the same database again, as a restart does. */
function databaseName(key: string): string {
  return `sortie_${createHash('sha256').update(key).digest('hex').slice(0, 24)}`;
}

function databaseUrl(name: string, admin: string): string {
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The URL of the database for `key`, created empty the first time. */
export async function testDatabaseUrl(key: string): Promise<string> {
  const name = databaseName(key);
  const admin = await clusterUrl();
  await asAdmin(async (client) => {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount === 0) await client.query(`create database ${name}`);
  });
  return databaseUrl(name, admin);
}

/** Drops the database for `key`, whoever is still connected to it. */
export async function dropTestDatabase(key: string): Promise<void> {
  await asAdmin((client) => client.query(`drop database if exists ${databaseName(key)} with (force)`));
}

/** A fresh, empty database of its own, for a test that opens the database itself. */
export async function freshTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const key = `fresh-${randomBytes(8).toString('hex')}`;
  const url = await testDatabaseUrl(key);
  return { url, drop: () => dropTestDatabase(key) };
}

/** Where a test that opens the database itself finds it: the SQLite `file`, or on PostgreSQL the database for that file. */
export async function testDatabaseLocation(file: string): Promise<string> {
  return testDatabaseKind() === 'postgres' ? testDatabaseUrl(file) : file;
}

/**
 * The database of the test Sortie whose scratch folder is `dir`, opened beside it, for a test
 * that reads or changes it behind Sortie's back: the SQLite file, or its PostgreSQL database.
 * Write the SQL with Kysely (`sql\`…\`.execute(db)`), and it runs on both.
 */
export async function openTestDatabase(dir: string): Promise<Db> {
  // Keyed as startTestSortie keys it: by the scratch folder.
  return openDatabase(testDatabaseKind() === 'postgres' ? await testDatabaseUrl(dir) : path.join(dir, 'sortie.db'));
}
