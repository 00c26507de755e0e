import { useEffect, useRef } from 'react';
import type RFB from '@novnc/novnc';
import type { StreamEnd } from './streamEnd';


interface Props {
  url: string;
  onConnect: () => void;
  onEnd: (end: StreamEnd) => void;
}

/**
 * Mounts one noVNC connection for its lifetime. Re-mount it (change its `key`) to
 * reconnect: an RFB object cannot be reused after it disconnects.
 */
export function VncScreen({ url, onConnect, onEnd }: Props) {
  const targetRef = useRef<HTMLDivElement>(null);
  const callbacks = useRef({ onConnect, onEnd });
  useEffect(() => {
    callbacks.current = { onConnect, onEnd };
  });

  useEffect(() => {
    const target = targetRef.current;
    if (!target) return;
    let disposed = false;
    let rfb: RFB | null = null;
    let socket: WebSocket | null = null;
    let wasConnected = false;
    let rfbEnded = false;
    let close: { code: number; reason: string } | null = null;

    const end = (fallback = '') => {
      if (disposed) return;
      disposed = true;
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
      rfb.scaleViewport = true;
      rfb.resizeSession = false;
      rfb.background = '#0b0d12';
      rfb.focusOnClick = true;

      rfb.addEventListener('connect', () => {
        wasConnected = true;
        rfb?.focus({ preventScroll: true });
        callbacks.current.onConnect();
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
      // A second disconnect() on an ended RFB only logs noise.
      if (rfb && !rfbEnded) rfb.disconnect();
      else if (socket && socket.readyState <= WebSocket.OPEN) socket.close();
    };
  }, [url]);

  return <div ref={targetRef} className="vnc-screen" data-testid="vnc-container" />;
}
