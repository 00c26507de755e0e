/**
 * Sortie as `node server/src/main.ts` runs it (configured by the environment, stopped by the
 * same signal handling), but with a SharedDesktopRunner, so that several of these processes
 * serve one desktop as replicas serve one cluster. Env: SHARED_RUNNER_STORE (the runner's
 * file), SHARED_DESKTOP_WS (websockify's host:port).
 */
import { loadConfig } from '../../src/config/config.js';
import { startSortie, stopOnSignals } from '../../src/main.js';
import { SharedDesktopRunner } from './shared-desktop-runner.js';

const [host, port] = process.env.SHARED_DESKTOP_WS!.split(':') as [string, string];
const runner = new SharedDesktopRunner(process.env.SHARED_RUNNER_STORE!, { host, port: Number(port) });
const sortie = await startSortie(loadConfig(), { runner });
stopOnSignals(sortie);
