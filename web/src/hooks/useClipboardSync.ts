import { useCallback, useEffect, useRef, useState, type RefObject } from 'react';
import type RFB from '@novnc/novnc';
import { shouldSendToSession } from '../sessions/clipboardPolicy';

interface Options {
  rfb: RFB | null;
  /** The stage around the desktop: focusing it or pointing into it brings the person's clipboard along. */
  stageRef: RefObject<HTMLElement | null>;
  toSession: boolean;
  fromSession: boolean;
}

export interface ClipboardSync {
  /** The last text the session copied (shown in the clipboard panel). */
  fromSessionText: string;
  /** The page could not write the person's clipboard (permission, unfocused tab): the panel is the way. */
  writeRefused: boolean;
  /** Whether the browser lets the page read the clipboard without asking each time. */
  readGranted: boolean;
  /** Sends text to the session's clipboard (the panel's "Send to session"). */
  send: (text: string) => void;
  /** Reads the person's clipboard and sends it; from a click, so the browser may ask for permission. */
  pasteFromClipboard: () => Promise<string | null>;
}

/**
 * Keeps the person's clipboard and the session's in step, in the directions the app allows.
 * From the session: noVNC's `clipboard` event is written with navigator.clipboard.writeText.
 * To the session: whenever the person comes back to the desktop (window focus, focus or
 * pointer entering the stage) the clipboard is read, when the browser allows it without a
 * prompt, and sent with clipboardPasteFrom if it changed; a paste event sends its text.
 */
export function useClipboardSync({ rfb, stageRef, toSession, fromSession }: Options): ClipboardSync {
  const [fromSessionText, setFromSessionText] = useState('');
  const [writeRefused, setWriteRefused] = useState(false);
  const [readGranted, setReadGranted] = useState(false);
  /**
   * What the person's clipboard held when the page last read or wrote it: only a change
   * since then is news to send, so the session's own copy is not echoed back, and text
   * sent from the panel is not overwritten by an older copy on the next focus.
   */
  const lastPageText = useRef<string | null>(null);
  /** Copied in the session while the page could not write the clipboard: written on the next focus. */
  const pendingWrite = useRef<string | null>(null);
  const rfbRef = useRef(rfb);
  rfbRef.current = rfb;

  const send = useCallback(
    (text: string) => {
      const current = rfbRef.current;
      if (!toSession || !current) return;
      current.clipboardPasteFrom(text);
    },
    [toSession],
  );

  const writePage = useCallback(async (text: string) => {
    try {
      await navigator.clipboard.writeText(text);
      lastPageText.current = text;
      pendingWrite.current = null;
      setWriteRefused(false);
    } catch {
      pendingWrite.current = text;
      setWriteRefused(true);
    }
  }, []);

  // Text from the session.
  useEffect(() => {
    if (!rfb || !fromSession) return;
    const onClipboard = (e: CustomEvent<{ text: string }>) => {
      const text = e.detail.text;
      setFromSessionText(text);
      // navigator.clipboard is missing outside secure contexts (plain http off localhost).
      if ('clipboard' in navigator) void writePage(text);
      else setWriteRefused(true);
    };
    rfb.addEventListener('clipboard', onClipboard);
    return () => rfb.removeEventListener('clipboard', onClipboard);
  }, [rfb, fromSession, writePage]);

  // Whether reading needs no prompt; followed as the person changes it in the browser.
  useEffect(() => {
    if (!toSession || !navigator.permissions?.query) return;
    let status: PermissionStatus | null = null;
    let gone = false;
    const update = () => setReadGranted(status?.state === 'granted');
    navigator.permissions
      .query({ name: 'clipboard-read' as PermissionName })
      .then((s) => {
        if (gone) return;
        status = s;
        update();
        s.addEventListener('change', update);
      })
      .catch(() => {
        // This browser has no such permission (Firefox, Safari): the panel is the way in.
      });
    return () => {
      gone = true;
      status?.removeEventListener('change', update);
    };
  }, [toSession]);

  const syncing = useRef(false);
  useEffect(() => {
    const stage = stageRef.current;
    if (!rfb || !stage) return;
    const sync = async () => {
      if (pendingWrite.current !== null && document.hasFocus()) await writePage(pendingWrite.current);
      if (!toSession || !readGranted || syncing.current || !('clipboard' in navigator)) return;
      syncing.current = true;
      try {
        const text = await navigator.clipboard.readText();
        const changed = shouldSendToSession(text, lastPageText.current);
        lastPageText.current = text;
        if (changed) send(text);
      } catch {
        // The page is not focused, or the permission was withdrawn: nothing to send now.
      } finally {
        syncing.current = false;
      }
    };
    const onVisible = () => {
      if (document.visibilityState === 'visible') void sync();
    };
    const onEvent = () => void sync();
    // A paste the browser delivers (its Edit menu, a middle click) carries the text with it,
    // no permission needed. One into the clipboard panel's own box is left to the box.
    const onPaste = (e: ClipboardEvent) => {
      if (!toSession || (e.target instanceof Element && e.target.closest('textarea, input'))) return;
      const text = e.clipboardData?.getData('text/plain') ?? '';
      if (!text) return;
      e.preventDefault();
      lastPageText.current = text;
      send(text);
    };
    window.addEventListener('focus', onEvent);
    stage.addEventListener('paste', onPaste);
    document.addEventListener('visibilitychange', onVisible);
    stage.addEventListener('focusin', onEvent);
    stage.addEventListener('pointerenter', onEvent);
    void sync();
    return () => {
      window.removeEventListener('focus', onEvent);
      stage.removeEventListener('paste', onPaste);
      document.removeEventListener('visibilitychange', onVisible);
      stage.removeEventListener('focusin', onEvent);
      stage.removeEventListener('pointerenter', onEvent);
    };
  }, [rfb, stageRef, toSession, readGranted, send, writePage]);

  const pasteFromClipboard = useCallback(async () => {
    if (!('clipboard' in navigator)) return null;
    try {
      const text = await navigator.clipboard.readText();
      lastPageText.current = text;
      if (text) send(text);
      return text;
    } catch {
      return null;
    }
  }, [send]);

  return { fromSessionText, writeRefused, readGranted, send, pasteFromClipboard };
}
