import { overWebSocket, RfbViewer } from '../support/rfb.js';

export interface DesktopRead {
  banner: string;
  /** Security types the server offered: 2 alone means it insists on the VNC password. */
  offered: number[];
  /** Whether the password was accepted (undefined when none was tried). */
  accepted?: boolean;
  width?: number;
  height?: number;
  nonBlank?: boolean;
}

/**
 * Talks straight to a session's websockify, as something that bypassed Sortie would: reads
 * the banner and the offered security types, then (with a password) answers the VNC
 * challenge and reads one full framebuffer to see that an app is drawn.
 */
export async function readDesktop(url: string, password?: string, timeoutMs = 15_000): Promise<DesktopRead> {
  const viewer = new RfbViewer(overWebSocket(url));
  const timer = setTimeout(() => viewer.transport.bytes.fail(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const { banner, offered } = await viewer.greet();
    if (password === undefined) return { banner, offered };
    if (!(await viewer.authenticate([2], password))) return { banner, offered, accepted: false };
    const desktop = await viewer.init();
    const { nonBlank } = await viewer.frame(desktop);
    return { banner, offered, accepted: true, width: desktop.width, height: desktop.height, nonBlank };
  } finally {
    clearTimeout(timer);
    viewer.close();
  }
}
