/**
 * Runs the real Sortie server (startSortie) in its own process, so its CPU use can be
 * measured apart from the load generator's. Started by bench/relay.ts with an IPC channel;
 * reports `{port, pid}` once listening, answers `{type:'cpu'}` with process.cpuUsage() and
 * `{type:'gc'}` with the GC pauses since the last such request.
 *
 * Env: BENCH_WS_PORT (the websockify to relay to), BENCH_TMP (a scratch dir),
 * BENCH_SORTIE_SRC (the server sources to run; default: this checkout's server/src), and for
 * bench/recording.ts BENCH_RECORDED_APP (adds `bench-echo-recorded`, `"recording": "always"`)
 * and BENCH_MAX_SESSIONS_PER_USER.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import { pathToFileURL } from 'node:url';
import { watchGcPauses } from './gc-pauses.js';
import { FakeRunner } from '../../server/test/support/fake-runner.js';

// Run from source (through tsx) this loads server/src/*.ts; compiled (bench/lib/build.ts), the .js next to it.
const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const src = process.env.BENCH_SORTIE_SRC ?? path.resolve(import.meta.dirname, '../../server/src');
const load = <T>(file: string): Promise<T> => import(pathToFileURL(path.join(src, file + ext)).href) as Promise<T>;
const { startSortie } = await load<typeof import('../../server/src/main.js')>('main');
const { loadConfig } = await load<typeof import('../../server/src/config/config.js')>('config/config');

const tmp = process.env.BENCH_TMP!;
const appsFile = path.join(tmp, 'apps.json');
writeFileSync(
  appsFile,
  JSON.stringify({
    applications: [
      {
        id: 'bench-echo',
        name: 'Bench echo',
        launch_type: 'container',
        container_image: 'bench:none',
        command: ['true'],
      },
      // The recording bench's second app: the same, but every session recorded.
      ...(process.env.BENCH_RECORDED_APP ? [{ id: 'bench-echo-recorded', name: 'Bench echo, recorded', launch_type: 'container', container_image: 'bench:none', command: ['true'], recording: 'always' }] : []),
    ],
  }),
);

const gc = watchGcPauses();

try {
  const config = loadConfig({
    SORTIE_PORT: '0',
    SORTIE_HOST: '127.0.0.1',
    SORTIE_APPS_FILE: appsFile,
    SORTIE_DB_PATH: path.join(tmp, 'sortie.db'),
    SORTIE_WEB_DIR: path.join(tmp, 'no-web-ui'),
    SORTIE_LOCAL_STATE_DIR: path.join(tmp, 'local-sessions'),
    SORTIE_LOG_LEVEL: 'error',
    // Sign-in checks happen once per connection, not per message; the relay is what's measured.
    SORTIE_AUTH: 'disabled',
    // The latency runs put 50 viewers on the one session; the default cap is 5.
    SORTIE_MAX_VIEWERS_PER_SESSION: '64',
    // The recording bench gives each stream a session of its own (one stream per session is recorded).
    ...(process.env.BENCH_MAX_SESSIONS_PER_USER ? { SORTIE_MAX_SESSIONS_PER_USER: process.env.BENCH_MAX_SESSIONS_PER_USER } : {}),
  });
  // Every session is ready at once at the websockify the bench started; no record is kept.
  const runner = new FakeRunner({ endpoint: { host: '127.0.0.1', port: Number(process.env.BENCH_WS_PORT) }, stateless: true });
  const logger = pino({ level: process.env.BENCH_SORTIE_LOG ?? 'error', base: { service: 'sortie-bench' } });
  const sortie = await startSortie(config, { runner, logger });
  process.on('message', (msg: { id: number; type: string }) => {
    if (msg.type === 'cpu') process.send!({ id: msg.id, cpu: process.cpuUsage(), rss: process.memoryUsage().rss });
    else if (msg.type === 'gc') process.send!({ id: msg.id, gc: gc.take() });
    else if (msg.type === 'stop') void sortie.dispose().then(() => process.exit(0));
  });
  process.on('disconnect', () => void sortie.dispose().finally(() => process.exit(0)));
  process.send!({ port: sortie.port, pid: process.pid });
} catch (err) {
  process.send!({ error: err instanceof Error ? err.stack ?? err.message : String(err) });
  process.exit(1);
}
