// The desktop benchmark's viewer: runs in Chromium, served by bench/lib/desktop-page.ts.
// noVNC (the same @novnc/novnc the web UI bundles) on a socket the page opens itself, 1:1
// (no scaling, no remote resize), with counters of the WebSocket payload each way and a
// probe that times a key press until the canvas shows its echo.
import RFB from './novnc/core/rfb.js';

const params = new URLSearchParams(location.search);
const target = document.getElementById('screen');
const counts = { rx: 0, tx: 0, rxMessages: 0, txMessages: 0 };

const socket = new WebSocket(params.get('ws'), ['binary']);
socket.binaryType = 'arraybuffer';
const send = socket.send.bind(socket);
socket.send = (data) => {
  counts.tx += data.byteLength ?? data.size ?? data.length;
  counts.txMessages++;
  return send(data);
};

const rfb = new RFB(target, socket);
rfb.scaleViewport = false;
rfb.resizeSession = false;
rfb.focusOnClick = true;

let connected = false;
let ended = '';
rfb.addEventListener('connect', () => {
  connected = true;
  rfb.focus({ preventScroll: true });
});
rfb.addEventListener('disconnect', (e) => (ended = `disconnected (clean: ${e.detail.clean})`));
rfb.addEventListener('securityfailure', (e) => (ended = `security failure: ${e.detail.reason}`));

// The probe. A region of the canvas is copied when armed; the first key press after that
// starts the clock (taken in a capture listener, before noVNC sees the key), and the clock
// stops at the first check that finds the region different. Checks run right after noVNC
// has handled each WebSocket message (this listener is added after noVNC's, and noVNC
// draws an update synchronously, flipping at its end) and at every animation frame (for
// anything drawn later, such as a decoded JPEG). `frame` is the first animation frame at or
// after the change: when the change can be on screen.
let probe = null;

function canvas() {
  return target.querySelector('canvas');
}

function pixels(r) {
  const c = canvas();
  const ctx = c.getContext('2d', { willReadFrequently: true });
  return new Uint32Array(ctx.getImageData(r.x, r.y, r.w, r.h).data.buffer);
}

function differs(a, b) {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return true;
  return false;
}

function check(via) {
  if (!probe || probe.keyAt === undefined || probe.changedAt !== undefined) return;
  if (differs(pixels(probe.region), probe.base)) {
    probe.changedAt = performance.now();
    probe.via = via;
  }
}

socket.addEventListener('message', (e) => {
  counts.rx += e.data.byteLength;
  counts.rxMessages++;
  check('message');
});

function onFrame() {
  if (probe && probe.keyAt !== undefined) {
    check('frame');
    if (probe.changedAt !== undefined && probe.frameAt === undefined) {
      probe.frameAt = performance.now();
      probe.done?.();
    }
  }
  requestAnimationFrame(onFrame);
}
requestAnimationFrame(onFrame);

window.addEventListener(
  'keydown',
  (e) => {
    if (probe && probe.keyAt === undefined && e.key === probe.key) probe.keyAt = performance.now();
  },
  true,
);

window.bench = {
  state: () => ({ connected, ended, width: canvas()?.width ?? 0, height: canvas()?.height ?? 0 }),
  counts: () => ({ ...counts }),
  /** How many pixels of the region are close to white (the terminal's background), and a hash of it. */
  look(region) {
    if (!canvas()) return { white: 0, hash: 0 };
    const px = pixels(region);
    let white = 0;
    let hash = 0;
    for (let i = 0; i < px.length; i++) {
      if ((px[i] & 0xf0f0f0) === 0xf0f0f0) white++;
      hash = (Math.imul(hash, 31) + px[i]) | 0;
    }
    return { white, hash };
  },
  arm(key, region) {
    probe = { key, region, base: pixels(region) };
  },
  /** Resolves with the probe's times (ms, page clock) once the echo is on a frame, or with what went missing after timeoutMs. */
  result(timeoutMs) {
    const p = probe;
    return new Promise((resolve) => {
      const finish = () => {
        clearTimeout(timer);
        p.done = undefined;
        resolve(
          p.frameAt === undefined
            ? { timedOut: true, keySeen: p.keyAt !== undefined }
            : { keyAt: p.keyAt, changedAt: p.changedAt, frameAt: p.frameAt, via: p.via },
        );
      };
      const timer = setTimeout(finish, timeoutMs);
      if (p.frameAt !== undefined) finish();
      else p.done = finish;
    });
  },
  disconnect() {
    rfb.disconnect();
  },
};
