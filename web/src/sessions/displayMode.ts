/**
 * How the remote desktop meets the tab. `fit`: the desktop takes the viewer's size and
 * follows it (RFB SetDesktopSize through noVNC's resizeSession); `scale`: the desktop keeps
 * its size and is drawn shrunk or grown into the viewer; `real`: one desktop pixel per
 * screen pixel, scrolling where it does not fit.
 */
export const DISPLAY_MODES = ['fit', 'scale', 'real'] as const;
export type DisplayMode = (typeof DISPLAY_MODES)[number];

export const DEFAULT_DISPLAY_MODE: DisplayMode = 'fit';

export const DISPLAY_MODE_LABELS: Record<DisplayMode, string> = {
  fit: 'Fit to window',
  scale: 'Scale',
  real: '1:1',
};

/** Where the choice is remembered in this browser. */
export const DISPLAY_MODE_KEY = 'sortie.viewer.display';

/** The noVNC settings of a mode. */
export function rfbDisplaySettings(mode: DisplayMode): { resizeSession: boolean; scaleViewport: boolean } {
  return { resizeSession: mode === 'fit', scaleViewport: mode === 'scale' };
}

export function isDisplayMode(value: unknown): value is DisplayMode {
  return typeof value === 'string' && (DISPLAY_MODES as readonly string[]).includes(value);
}

type Store = Pick<Storage, 'getItem' | 'setItem'>;

/** The mode this browser chose last; the default when none was stored, or storage is refused. */
export function loadDisplayMode(store: Store | undefined): DisplayMode {
  try {
    const stored = store?.getItem(DISPLAY_MODE_KEY);
    return isDisplayMode(stored) ? stored : DEFAULT_DISPLAY_MODE;
  } catch {
    return DEFAULT_DISPLAY_MODE; // storage blocked by the browser's privacy settings
  }
}

export function saveDisplayMode(store: Store | undefined, mode: DisplayMode): void {
  try {
    store?.setItem(DISPLAY_MODE_KEY, mode);
  } catch {
    // Not remembered; the choice still applies to this page.
  }
}
