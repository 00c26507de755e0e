import net from 'node:net';

type Target = { host: string; port: number } | { path: string };

/**
 * Connects, optionally waits for the first bytes, and always hangs up. Resolves with what
 * was read ('' if nothing was asked for), or undefined if the connection failed or timed out.
 */
function connectAndRead(target: Target, bytes: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const socket = net.connect(target);
    const finish = (result: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => finish(undefined), timeoutMs);
    socket.once('error', () => finish(undefined));
    socket.once('close', () => finish(undefined));
    socket.once('connect', () => {
      if (bytes === 0) finish('');
    });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length >= bytes) finish(received.subarray(0, bytes).toString('latin1'));
    });
  });
}

/** An RFB server greets every client with its protocol version, e.g. "RFB 003.008\n". */
export async function vncAnswers(target: Target, timeoutMs = 1000): Promise<boolean> {
  const greeting = await connectAndRead(target, 12, timeoutMs);
  return greeting !== undefined && /^RFB 003\.00\d\n$/.test(greeting);
}

export async function tcpAccepts(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return (await connectAndRead({ host, port }, 0, timeoutMs)) !== undefined;
}

/**
 * An X server (the session's Xvnc) listens on /tmp/.X11-unix/X<n> and, on Linux, on the
 * abstract socket of the same name; the latter still works when /tmp/.X11-unix is not writable.
 */
export async function xServerAccepts(socketPath: string, timeoutMs = 500): Promise<boolean> {
  if ((await connectAndRead({ path: socketPath }, 0, timeoutMs)) !== undefined) return true;
  if (process.platform !== 'linux') return false;
  return (await connectAndRead({ path: `\0${socketPath}` }, 0, timeoutMs)) !== undefined;
}
