import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import { freePort } from './ports.js';

/**
 * A throwaway PostgreSQL on the host that pods of the local cluster can reach: Debian's
 * server binaries (as support/postgres.ts uses them), listening on the node's address as
 * well as loopback, and letting in password sign-ins from the pod network only.
 *
 * On the host rather than in the cluster because the cluster has no registry and no
 * internet: its images are the ones scripts/local-cluster.sh builds, and none of them
 * holds a PostgreSQL server. The host's Debian package needs neither.
 */
export interface PodReachablePostgres {
  /** The database's URL as pods use it (the node's address). */
  podUrl: string;
  /** The same database from the host, over loopback. */
  hostUrl: string;
  stop: () => void;
}

function serverBin(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((v) => /^\d+$/.test(v) && existsSync(path.join(root, v, 'bin', 'pg_ctl'))) : [];
  if (versions.length === 0) throw new Error(`no PostgreSQL server under ${root}: install Debian's "postgresql" package (scripts/setup.sh does)`);
  return path.join(root, versions.sort((a, b) => Number(b) - Number(a))[0]!, 'bin');
}

/** PostgreSQL refuses to run as root: as root, its tools run as the `postgres` system user. */
function asServerUser(file: string, args: string[]): [string, string[]] {
  return userInfo().uid === 0 ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args];
}

/**
 * Starts the server. `nodeIp`: the address pods reach the host at (the node's InternalIP);
 * `podCidr`: the pod network, the only remote addresses allowed in.
 */
export async function startPodReachablePostgres(nodeIp: string, podCidr: string): Promise<PodReachablePostgres> {
  const bin = serverBin();
  const dir = mkdtempSync(path.join(tmpdir(), 'sortie-pod-postgres-'));
  const dataDir = path.join(dir, 'data');
  const password = randomBytes(18).toString('base64url');
  const owner = userInfo().uid === 0
    ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) }
    : undefined;
  const run = (file: string, args: string[]) => {
    const [cmd, rest] = asServerUser(file, args);
    execFileSync(cmd, rest, { stdio: ['ignore', 'pipe', 'pipe'] });
  };
  let started = false;
  const stop = () => {
    if (started) {
      started = false;
      const [cmd, rest] = asServerUser(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-m', 'immediate', '-w', 'stop']);
      spawnSync(cmd, rest, { stdio: 'ignore' });
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    if (owner) chownSync(dir, owner.uid, owner.gid);
    const pwfile = path.join(dir, 'pw');
    writeFileSync(pwfile, password, { mode: 0o600 });
    if (owner) chownSync(pwfile, owner.uid, owner.gid);
    // Code-point order, as the README advises for the same list order as SQLite.
    run(path.join(bin, 'initdb'), ['-D', dataDir, '-U', 'sortie', `--pwfile=${pwfile}`, '--auth=scram-sha-256', '--encoding=UTF8', '--locale=C.UTF-8', '--no-sync']);
    rmSync(pwfile);
    appendFileSync(path.join(dataDir, 'pg_hba.conf'), `host all all ${podCidr} scram-sha-256\n`);
    for (let attempt = 0; ; attempt++) {
      const port = await freePort();
      const options = `-p ${port} -c listen_addresses=127.0.0.1,${nodeIp} -c unix_socket_directories=${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
      try {
        run(path.join(bin, 'pg_ctl'), ['-D', dataDir, '-l', path.join(dir, 'server.log'), '-o', options, '-w', '-t', '60', 'start']);
        started = true;
        return {
          podUrl: `postgres://sortie:${password}@${nodeIp}:${port}/postgres`,
          hostUrl: `postgres://sortie:${password}@127.0.0.1:${port}/postgres`,
          stop,
        };
      } catch (err) {
        // Another process took the port between the probe and the start.
        if (attempt >= 2) throw err;
      }
    }
  } catch (err) {
    stop();
    throw new Error(`cannot start a PostgreSQL for the cluster's pods: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
