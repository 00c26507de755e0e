import type { TestSortie } from './harness.js';
import { Encoding, frameRequest, setDesktopSize, setEncodings, type Desktop, type RfbViewer, type Screen, type ServerMessage } from './rfb.js';

/** A session's desktop as a viewer through Sortie sees it, with the screens ExtendedDesktopSize named. */
export interface DeskView {
  id: string;
  viewer: RfbViewer;
  desktop: Desktop;
  screens: Screen[];
  /** What the server sent before the first update (the clipboard capabilities). */
  early: ServerMessage[];
}

/** Opens a running session's stream through Sortie, asks for ExtendedDesktopSize (and `encodings`) and reads the first update. */
export async function openDeskView(sortie: TestSortie, sessionId: string, encodings: number[] = []): Promise<DeskView> {
  const { viewer, desktop } = await sortie.openStream(sessionId);
  const desk: DeskView = { id: sessionId, viewer, desktop, screens: [], early: [] };
  viewer.send(setEncodings([Encoding.Raw, Encoding.ExtendedDesktopSize, Encoding.DesktopSize, ...encodings]));
  viewer.send(frameRequest(desktop.width, desktop.height));
  const first = await within(
    desk,
    'ExtendedDesktopSize in the first update',
    viewer.until(desktop.bytesPerPixel, (m) => {
      const found = m.type === 'update' && m.rects.some((r) => r.encoding === Encoding.ExtendedDesktopSize);
      if (!found) desk.early.push(m);
      return found;
    }),
  );
  desk.screens = (first as Extract<ServerMessage, { type: 'update' }>).rects.find((r) => r.screens)!.screens!;
  return desk;
}

/** `promise`, or an error naming `what` once `ms` passed (the viewer is closed, ending any read). */
export async function within<T>(desk: Pick<DeskView, 'viewer'>, what: string, promise: Promise<T>, ms = 15_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      desk.viewer.close();
      reject(new Error(`no ${what} within ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The next message from the server that `wanted` accepts, within a bound. */
export function awaitMessage(desk: DeskView, what: string, wanted: (m: ServerMessage) => boolean): Promise<ServerMessage> {
  return within(desk, what, desk.viewer.until(desk.desktop.bytesPerPixel, wanted));
}

/**
 * Asks for a new desktop size and reads up to the server's answer to it, which comes after
 * everything the server sent before (so also after any cut text it was going to send).
 */
export async function resize(desk: DeskView, width: number, height: number): Promise<{ status: number; width: number; height: number; before: ServerMessage[] }> {
  const { viewer, desktop } = desk;
  viewer.send(setDesktopSize(width, height, [{ ...desk.screens[0]!, x: 0, y: 0, width, height }]));
  // The answer comes as a framebuffer update, which the server sends only when asked for one.
  viewer.send(frameRequest(width, height, true));
  const seen: ServerMessage[] = [];
  for (;;) {
    const message = await within(desk, `answer to SetDesktopSize ${width}x${height}`, viewer.next(desktop.bytesPerPixel));
    // x 1: the answer to this client's own request; y: its status (0 is success).
    const answer = message.type === 'update' && message.rects.find((r) => r.encoding === Encoding.ExtendedDesktopSize && r.x === 1);
    if (answer) {
      if (answer.screens?.length) desk.screens = answer.screens;
      return { status: answer.y, width: answer.width, height: answer.height, before: seen };
    }
    seen.push(message);
  }
}

/** Asks for the whole desktop (again after each update without pixels, as noVNC does) and counts the pixels of the first full update. */
export async function fullUpdatePixels(desk: DeskView, width: number, height: number): Promise<number> {
  desk.viewer.send(frameRequest(width, height));
  const update = await awaitMessage(desk, `a full update of the ${width}x${height} desktop`, (m) => {
    const pixels = m.type === 'update' && m.rects.some((r) => r.encoding === Encoding.Raw);
    if (!pixels && m.type === 'update') desk.viewer.send(frameRequest(width, height, true));
    return pixels;
  });
  return (update as Extract<ServerMessage, { type: 'update' }>).rects.filter((r) => r.encoding === Encoding.Raw).reduce((sum, r) => sum + r.width * r.height, 0);
}
