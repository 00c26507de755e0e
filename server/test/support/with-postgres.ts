import { spawn } from 'node:child_process';
import { startPostgresCluster } from './postgres.js';

/**
 * `node --import tsx server/test/support/with-postgres.ts <command…>` runs the command with
 * one throwaway PostgreSQL cluster for all of it (SORTIE_TEST_DATABASE=postgres and the
 * cluster's URL in SORTIE_TEST_POSTGRES_URL), then removes the cluster. One cluster for a
 * whole pass: starting one takes seconds, a database in it a fraction of one.
 */
const [command, ...args] = process.argv.slice(2);
if (!command) {
  console.error('usage: with-postgres.ts <command> [args…]');
  process.exit(2);
}
const cluster = await startPostgresCluster();
process.once('exit', cluster.stop);
const child = spawn(command, args, {
  stdio: 'inherit',
  env: { ...process.env, SORTIE_TEST_DATABASE: 'postgres', SORTIE_TEST_POSTGRES_URL: cluster.url },
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
