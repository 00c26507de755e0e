import pino, { type Logger } from 'pino';

/** Lines held while the log cannot be written; beyond this they are dropped, and counted. */
const MAX_PENDING_LOG_BYTES = 1024 * 1024;

/**
 * Sortie's logger, writing JSON lines to stdout. A log that cannot be written (a full disk
 * under a redirected stdout, a closed pipe) must not take the server down with it: pino's
 * destination would emit an unhandled 'error' and end the process. Instead the lines wait
 * in a bounded buffer, are retried with the next line, and when writing works again one
 * line says how long the log was out and how many lines were lost.
 */
export function createLogger(level: string): Logger {
  const destination = pino.destination({ dest: 1, sync: true, maxLength: MAX_PENDING_LOG_BYTES });
  let failingSince: number | undefined;
  let dropped = 0;
  destination.on('error', () => {
    failingSince ??= Date.now();
  });
  destination.on('drop', () => {
    dropped += 1;
  });
  const logger = pino({ level, base: { service: 'sortie' } }, destination);
  destination.on('write', () => {
    if (failingSince === undefined) return;
    const outage = { seconds: Math.round((Date.now() - failingSince) / 1000), droppedLines: dropped };
    failingSince = undefined;
    dropped = 0;
    logger.warn(outage, 'the log could not be written for a while (disk full?); writing again');
  });
  return logger;
}
