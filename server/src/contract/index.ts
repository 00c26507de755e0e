/**
 * What Sortie's API and stream promise their clients: the shapes the API sends, the error
 * body, the stream's close codes and their meanings, and the ids and limits input is held
 * to. Pure types and constants with no Node or browser imports, so the server, the web UI,
 * the tests and the benchmarks all read the same definitions.
 */
export * from './apps.js';
export * from './audit.js';
export * from './clipboard.js';
export * from './close-codes.js';
export * from './errors.js';
export * from './files.js';
export * from './pages.js';
export * from './quantity.js';
export * from './recordings.js';
export * from './sessions.js';
export * from './shares.js';
export * from './users.js';
