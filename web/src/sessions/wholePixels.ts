/** The part of noVNC's RFB object (1.7) that measures the viewer's element; not in its public API. */
interface MeasuresScreen {
  _screenSize?: () => { w: number; h: number };
}

/**
 * Makes noVNC measure the viewer's element in whole pixels. With "Fit to window" it asks the
 * VNC server for the element's size and, once answered, asks again unless the desktop now
 * matches. It compares the element's size, fractional under CSS layout, with the desktop's
 * whole pixels, so a stage 599.5 px high asks for 599 every 100 ms for as long as the viewer
 * is open. Each request resizes the X screen, and the VNC server drops any other viewer that
 * connects meanwhile, before it has said it can follow a change of size: a colleague joining
 * a shared session is cut within a second. Rounded down, the sizes match after one request.
 * Answers false when this noVNC measures differently (nothing was changed).
 */
export function measureInWholePixels(rfb: object): boolean {
  const target = rfb as MeasuresScreen;
  const measure = target._screenSize;
  if (typeof measure !== 'function') return false;
  target._screenSize = () => {
    const { w, h } = measure.call(rfb);
    return { w: Math.floor(w), h: Math.floor(h) };
  };
  return true;
}
