import type { Clipboard } from '../contract';

/** Which ways the viewer moves text for an app's `clipboard` setting; the VNC server enforces the same. */
export function clipboardDirections(setting: Clipboard): { toSession: boolean; fromSession: boolean } {
  return {
    toSession: setting === 'both' || setting === 'to_session',
    fromSession: setting === 'both' || setting === 'from_session',
  };
}

/**
 * Whether text read from the person's clipboard should go to the session: only when the
 * person copied something since the page last read or wrote their clipboard. Text the
 * session copied (which the page wrote there) is not echoed back, and an old copy does not
 * overwrite what was sent from the clipboard panel meanwhile.
 */
export function shouldSendToSession(text: string, lastPageText: string | null): boolean {
  return text !== '' && text !== lastPageText;
}
