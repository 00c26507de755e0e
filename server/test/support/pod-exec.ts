import { Writable } from 'node:stream';
import { Exec, type KubeConfig, type V1Status } from '@kubernetes/client-node';

export interface ExecResult {
  /** The command's exit status (0 on success). */
  code: number;
  stdout: string;
  stderr: string;
}

/** The most output a command may give a test; more is an error, not a buffer. */
const MAX_OUTPUT = 16 * 1024 * 1024;

function collector(what: string, fail: (err: Error) => void): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  let size = 0;
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      size += chunk.length;
      if (size > MAX_OUTPUT) fail(new Error(`${what} passed ${MAX_OUTPUT} bytes`));
      else chunks.push(chunk);
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/**
 * Runs a command in a pod's container as the cluster admin does with `kubectl exec`
 * (Sortie itself never may: its Role has no pods/exec). For reading a session's desktop
 * and home from the inside. A command still running after `timeoutMs` fails the caller.
 */
export async function podExec(kc: KubeConfig, namespace: string, pod: string, container: string, command: string[], timeoutMs = 30_000): Promise<ExecResult> {
  let status: V1Status | undefined;
  return new Promise<ExecResult>((resolve, reject) => {
    const what = `${command.join(' ')} in ${pod}/${container}`;
    let settled = false;
    const settle = (err: Error | undefined, result?: ExecResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve(result!);
    };
    const stdout = collector(`the output of ${what}`, (err) => settle(err));
    const stderr = collector(`the errors of ${what}`, (err) => settle(err));
    const timer = setTimeout(() => {
      settle(new Error(`${what} did not finish within ${timeoutMs} ms`));
      socket?.close();
    }, timeoutMs);
    let socket: { close: () => void } | undefined;
    new Exec(kc)
      .exec(namespace, pod, container, command, stdout.stream, stderr.stream, null, false, (s) => (status = s))
      .then((ws) => {
        socket = ws;
        if (settled) ws.close();
        // Frames are handled in order: at the close, all output and the status are in.
        ws.on('close', () => {
          if (!status) return settle(new Error(`${what}: the exec stream closed without a status\n${stderr.text()}`));
          const exit = status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message;
          const code = status.status === 'Success' ? 0 : exit !== undefined ? Number(exit) : -1;
          settle(undefined, { code, stdout: stdout.text(), stderr: stderr.text() || (code === -1 ? String(status.message) : '') });
        });
      })
      .catch((err: unknown) => settle(err instanceof Error ? err : new Error(String(err))));
  });
}
