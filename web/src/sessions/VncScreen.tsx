import { useEffect, useRef } from 'react';
import type RFB from '@novnc/novnc';
import type { StreamEnd } from './streamEnd';
import { rfbDisplaySettings, type DisplayMode } from './displayMode';
import { CONNECT_KEYSYM, DeadKeyComposer } from './keyboard';
import { measureInWholePixels } from './wholePixels';

interface Props {
  url: string;
  /** How the desktop meets the viewer; changing it applies to the live connection. */
  mode: DisplayMode;
  onConnect: () => void;
  onEnd: (end: StreamEnd) => void;
  /** The connection, once connected; null when it is gone. */
  onRfb?: (rfb: RFB | null) => void;
  /** Watching only: noVNC sends no keys, pointer, clipboard or resize (the relay drops them anyway). */
  viewOnly?: boolean;
}

/**
 * Mounts one noVNC connection for its lifetime. Re-mount it (change its `key`) to
 * reconnect: an RFB object cannot be reused after it disconnects.
 */
export function VncScreen({ url, mode, onConnect, onEnd, onRfb, viewOnly = false }: Props) {
  const targetRef = useRef<HTMLDivElement>(null);
  const rfbRef = useRef<RFB | null>(null);
  const callbacks = useRef({ onConnect, onEnd, onRfb });
  const modeRef = useRef(mode);
  useEffect(() => {
    callbacks.current = { onConnect, onEnd, onRfb };
  });

  useEffect(() => {
    modeRef.current = mode;
    const rfb = rfbRef.current;
    if (rfb) Object.assign(rfb, rfbDisplaySettings(mode));
  }, [mode]);

  useEffect(() => {
    const target = targetRef.current;
    if (!target) return;
    let disposed = false;
    let rfb: RFB | null = null;
    let socket: WebSocket | null = null;
    let wasConnected = false;
    let rfbEnded = false;
    let close: { code: number; reason: string } | null = null;
    // Ahead of noVNC's own listeners on its canvas, for dead keys (see keyboard.ts).
    const composer = new DeadKeyComposer({
      sendKeysym: (keysym) => rfb?.sendKey(keysym, null),
      releaseKey: (key, code, element) => element?.dispatchEvent(new KeyboardEvent('keyup', { key, code })),
    });
    const onKey = (event: KeyboardEvent) => composer.handle(event);
    const keyEvents = ['keydown', 'keypress', 'keyup'] as const;
    for (const type of keyEvents) target.addEventListener(type, onKey, true);

    const end = (fallback = '') => {
      if (disposed) return;
      disposed = true;
      rfbRef.current = null;
      callbacks.current.onRfb?.(null);
      callbacks.current.onEnd({ wasConnected, code: close?.code || null, reason: close?.reason || fallback });
    };

    const start = async () => {
      let RFBClass: typeof RFB;
      try {
        // Loaded on demand: the catalog and sessions pages never pay for the VNC client.
        RFBClass = (await import('@novnc/novnc')).default;
      } catch {
        end('The remote desktop viewer failed to load. Reload the page and try again.');
        return;
      }
      if (disposed) return;

      // Opening the socket ourselves (rather than handing noVNC the URL) is the only
      // way to see the close code and reason Sortie sends when it refuses a stream.
      socket = new WebSocket(url, ['binary']);
      socket.addEventListener('close', (e) => {
        close = { code: e.code, reason: e.reason };
      });

      try {
        rfb = new RFBClass(target, socket);
      } catch {
        end('Could not open the remote desktop connection.');
        return;
      }
      // With resizeSession, noVNC asks for the viewer's size as soon as the server says it
      // can resize, and again whenever the viewer's element changes size (window, rotation);
      // in whole pixels, or it asks without end (see wholePixels.ts).
      measureInWholePixels(rfb);
      Object.assign(rfb, rfbDisplaySettings(modeRef.current));
      rfb.viewOnly = viewOnly;
      rfbRef.current = rfb;
      rfb.background = '#0b0d12';
      rfb.focusOnClick = true;

      rfb.addEventListener('connect', () => {
        wasConnected = true;
        rfb?.focus({ preventScroll: true });
        if (!viewOnly) rfb?.sendKey(CONNECT_KEYSYM, null);
        callbacks.current.onConnect();
        callbacks.current.onRfb?.(rfb);
      });
      rfb.addEventListener('disconnect', () => {
        rfbEnded = true;
        // noVNC may report the disconnect before the socket's close event arrives;
        // give the close event a tick so its code and reason are not lost.
        setTimeout(() => end(), 0);
      });
      rfb.addEventListener('securityfailure', (e) => {
        close ??= { code: 0, reason: e.detail.reason || 'The desktop refused the connection.' };
      });
      rfb.addEventListener('credentialsrequired', () => {
        close = { code: 0, reason: 'The desktop asked for a password, which Sortie does not support.' };
        rfb?.disconnect();
      });
    };

    void start();

    return () => {
      disposed = true;
      for (const type of keyEvents) target.removeEventListener(type, onKey, true);
      rfbRef.current = null;
      callbacks.current.onRfb?.(null);
      // A second disconnect() on an ended RFB only logs noise.
      if (rfb && !rfbEnded) rfb.disconnect();
      else if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
    };
  }, [url, viewOnly]);

  return <div ref={targetRef} className="vnc-screen" data-testid="vnc-container" />;
}
