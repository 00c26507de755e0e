import { startEchoVnc } from '../../server/test/support/echo-vnc.js';

// The echoing VNC stand-in as a process of its own, so the bench can measure its CPU apart
// from Sortie's: forked with an IPC channel, it reports `{port}` and answers `{type:'cpu'}`.
if (!process.send) throw new Error('bench/lib/echo-server.ts runs as a forked child with an IPC channel (see stack.ts)');
const echo = await startEchoVnc(Number(process.env.ECHO_PORT ?? 0));
process.on('message', (msg: { id: number; type: string }) => {
  if (msg.type === 'cpu') process.send!({ id: msg.id, cpu: process.cpuUsage() });
  else if (msg.type === 'stop') void echo.close().then(() => process.exit(0));
});
process.on('disconnect', () => process.exit(0));
process.send({ port: echo.port, pid: process.pid });
