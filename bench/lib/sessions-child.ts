/**
 * The server side of bench/sessions-list.ts, in its own process (started with --expose-gc
 * and an IPC channel; reports `{port, pid}` once listening). BENCH_MODE picks what serves:
 *
 *   sortie  the real Sortie (startSortie: HTTP API, session service, SQLite file, sign-in
 *           off) with a runner whose sessions are ready at once at a dummy endpoint: every
 *           session is an idle `running` one, and nothing but Sortie itself uses memory.
 *   bare    the floor over HTTP: node:http answering GET /api/sessions[?user_id=][&limit=] with
 *           the same rows read by better-sqlite3 and JSON.stringify, nothing else; without
 *           `limit`, every session in one answer (as Sortie answered before lists paged).
 *
 * IPC: `{type:'mem'}` → memoryUsage() after two full GCs; `{type:'podcache', json, copies}`
 * → heap bytes held by `copies` parsed copies of one pod object (what the kubernetes
 * runner's informer keeps per session pod); `{type:'stop'}`.
 *
 * Env: BENCH_MODE, BENCH_TMP (scratch dir: apps file, sortie.db), BENCH_DATABASE_URL (Sortie
 * on this PostgreSQL database instead of the SQLite file).
 */
import http from 'node:http';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import SQLite from 'better-sqlite3';
import pino from 'pino';
import { loadConfig } from '../../server/src/config/config.js';
import type { SessionsTable } from '../../server/src/db/schema.js';
import { startSortie } from '../../server/src/main.js';
import { toSession } from '../../server/src/sessions/session.js';
import { FakeRunner } from '../../server/test/support/fake-runner.js';

const tmp = process.env.BENCH_TMP!;
const mode = process.env.BENCH_MODE ?? 'sortie';
const dbPath = path.join(tmp, 'sortie.db');

const gc = (globalThis as { gc?: () => void }).gc;

function memory(): NodeJS.MemoryUsage {
  if (!gc) throw new Error('start this child with --expose-gc');
  gc();
  gc();
  return process.memoryUsage();
}

/** Heap held by `copies` parsed copies of a JSON document, after full GCs on both sides. */
function heldBy(json: string, copies: number): { bytesPerCopy: number; jsonBytes: number } {
  const before = memory().heapUsed;
  const held: unknown[] = [];
  for (let i = 0; i < copies; i++) held.push(JSON.parse(json));
  const after = memory().heapUsed;
  const bytesPerCopy = (after - before) / copies;
  held.length = 0;
  return { bytesPerCopy, jsonBytes: Buffer.byteLength(json) };
}

async function startBare(): Promise<{ port: number; close: () => Promise<void> }> {
  const db = new SQLite(dbPath, { readonly: true, fileMustExist: true });
  // Newest first, ties by id: the order Sortie's pages follow.
  const all = db.prepare('select * from sessions order by created_at desc, id desc limit ?');
  const byUser = db.prepare('select * from sessions where user_id = ? order by created_at desc, id desc limit ?');
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (req.method !== 'GET' || url.pathname !== '/api/sessions') {
      res.writeHead(404).end();
      return;
    }
    const user = url.searchParams.get('user_id');
    const limit = Number(url.searchParams.get('limit') ?? -1);
    const rows = (user === null ? all.all(limit) : byUser.all(user, limit)) as SessionsTable[];
    const body = JSON.stringify({ sessions: rows.map(toSession) });
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body) }).end(body);
  });
  await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
  return {
    port: (server.address() as import('node:net').AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      db.close();
    },
  };
}

async function startReal(): Promise<{ port: number; close: () => Promise<void> }> {
  const appsFile = path.join(tmp, 'apps.json');
  writeFileSync(
    appsFile,
    JSON.stringify({
      applications: [{ id: 'bench-idle', name: 'Bench idle desktop', launch_type: 'container', container_image: 'bench:none', command: ['true'] }],
    }),
  );
  const config = loadConfig({
    SORTIE_PORT: '0',
    SORTIE_HOST: '127.0.0.1',
    SORTIE_APPS_FILE: appsFile,
    SORTIE_DB_PATH: dbPath,
    ...(process.env.BENCH_DATABASE_URL ? { SORTIE_DATABASE_URL: process.env.BENCH_DATABASE_URL } : {}),
    SORTIE_WEB_DIR: path.join(tmp, 'no-web-ui'),
    SORTIE_LOCAL_STATE_DIR: path.join(tmp, 'local-sessions'),
    SORTIE_AUTH: 'disabled',
    // Every session stays running: the per-user limit (3 by default) would stop the fill.
    SORTIE_MAX_SESSIONS_PER_USER: '1000000',
    SORTIE_LOG_LEVEL: 'error',
  });
  // Nothing listens there: the stream is never opened, the session only has to be `running`.
  // Stateless: the runner holds nothing per session, so the memory measured is Sortie's.
  const runner = new FakeRunner({ stateless: true });
  const sortie = await startSortie(config, { runner, logger: pino({ level: 'error', base: { service: 'sortie-bench' } }) });
  return { port: sortie.port, close: () => sortie.dispose() };
}

try {
  const server = mode === 'bare' ? await startBare() : await startReal();
  process.on('message', (msg: { id: number; type: string; json?: string; copies?: number }) => {
    try {
      if (msg.type === 'mem') process.send!({ id: msg.id, mem: memory() });
      else if (msg.type === 'podcache') process.send!({ id: msg.id, ...heldBy(msg.json!, msg.copies!) });
      else if (msg.type === 'stop') void server.close().finally(() => process.exit(0));
    } catch (err) {
      process.send!({ id: msg.id, error: err instanceof Error ? err.message : String(err) });
    }
  });
  process.on('disconnect', () => void server.close().finally(() => process.exit(0)));
  process.send!({ port: server.port, pid: process.pid });
} catch (err) {
  process.send!({ error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
  process.exit(1);
}
