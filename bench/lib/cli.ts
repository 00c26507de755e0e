import os from 'node:os';
import { interruptedBy, shutdown } from './procs.js';

/** Progress goes to stderr, so stdout holds only the report. */
export function log(msg: string): void {
  process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
}

export function positiveInt(name: string, raw: string | undefined): number {
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} must be a positive integer, got "${raw}"`);
  return v;
}

/** The machine a figure was measured on, for the report's header. */
export function machineDescription(): string {
  const cpus = os.cpus();
  return `${cpus.length} x ${cpus[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${process.version}`;
}

/**
 * Runs a benchmark's main and exits with its code; on Ctrl-C (130) or a crash (1) it first
 * stops every child process it started.
 */
export function runBenchmark(name: string, main: () => Promise<number>): void {
  main().then(
    (code) => process.exit(code),
    async (err: unknown) => {
      if (interruptedBy()) {
        await shutdown();
        process.exit(130);
      }
      console.error(`${name} benchmark broke: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      await shutdown();
      process.exit(1);
    },
  );
}
