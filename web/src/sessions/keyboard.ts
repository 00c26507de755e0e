/**
 * Dead keys for the VNC viewer. noVNC sends one keysym per keydown, read from
 * KeyboardEvent.key, and a dead key's keydown says only "Dead" (not which accent), so noVNC
 * sends nothing for it and then the plain letter: on a French layout ^ then e arrives as "e".
 * Chromium on Linux also names the plain letter in the next keydown ("e") and brings the
 * composed character ("ê") only in the keypress after it, which the browser sends only if
 * that keydown was not cancelled (and noVNC cancels every keydown). Other browsers put the
 * composed character in the keydown itself.
 *
 * So the key after a dead key is kept from noVNC and left uncancelled; what its keypress
 * brings (or, without a keypress, what its keydown named) is sent as keysyms. The remote
 * side gets finished characters: it needs no dead keys in its own keymap.
 *
 * While a dead key is pending Chromium also swallows the keyups of Shift and AltGr pressed
 * with it; noVNC would keep them down on the remote side, so they are released there as
 * soon as the next key shows them up.
 */

/** The subset of a KeyboardEvent this reads, so tests can hand in plain objects. */
export interface KeyEventLike {
  readonly type: string;
  readonly key: string;
  readonly code: string;
  readonly charCode: number;
  readonly target: EventTarget | null;
  getModifierState(key: string): boolean;
  stopPropagation(): void;
  preventDefault(): void;
}

export interface DeadKeyOutput {
  /** Types one character on the remote side: a press and release of its keysym. */
  sendKeysym(keysym: number): void;
  /** Tells noVNC a modifier key is up (a keyup the browser swallowed), on the element noVNC listens on. */
  releaseKey(key: string, code: string, target: EventTarget | null): void;
}

/**
 * Sent once (press and release) when the viewer connects. Xvnc types a character missing
 * from its keymap (ß, € on its US keymap) by adding it to a free key of the core keyboard;
 * but the first key event from its VNC keyboard makes that device the core keyboard's
 * source, which replaces the core keymap with the device's own and drops the addition, so
 * a session's very first key is lost if it is such a character. A Shift press first makes
 * that switch happen while it costs nothing: Shift alone types nothing.
 */
export const CONNECT_KEYSYM = 0xffe1; // Shift_L

/** Keys the browser reports through getModifierState under their own name. */
const MODIFIERS = new Set(['Shift', 'Control', 'Alt', 'AltGraph', 'Meta']);

/**
 * The X11 keysym that types `text` (one character): Latin-1 characters are their own
 * keysyms, any other Unicode character is 0x01000000 plus its code point.
 */
export function keysymForCharacter(text: string): number | null {
  const chars = [...text];
  if (chars.length !== 1) return null;
  const codePoint = chars[0]!.codePointAt(0)!;
  if ((codePoint >= 0x20 && codePoint <= 0x7e) || (codePoint >= 0xa0 && codePoint <= 0xff)) return codePoint;
  if (codePoint < 0x100) return null;
  return 0x01000000 + codePoint;
}

/** One character a key types, as opposed to a named key ("Enter", "ArrowLeft", "Dead"). */
function isCharacter(key: string): boolean {
  return [...key].length === 1;
}

/**
 * Handles keydown, keypress and keyup before noVNC sees them (a capture listener on an
 * element around noVNC's canvas): `handle` stops the events noVNC must not act on.
 */
export class DeadKeyComposer {
  /** A dead key was pressed; the next character key completes it. */
  private dead = false;
  /** The key after a dead key, until its keyup or the next keydown. */
  private pending: { code: string; fallback: string | null; typed: boolean } | null = null;
  /** Modifier keys down, by code, with the name getModifierState knows them by. */
  private readonly modifiers = new Map<string, string>();

  constructor(private readonly output: DeadKeyOutput) {}

  handle(event: KeyEventLike): void {
    if (event.type === 'keydown') this.keydown(event);
    else if (event.type === 'keypress') this.keypress(event);
    else if (event.type === 'keyup') this.keyup(event);
  }

  private keydown(event: KeyEventLike): void {
    if (MODIFIERS.has(event.key)) {
      // A modifier between the dead key and the letter (Shift for a capital) keeps the dead key pending.
      this.modifiers.set(event.code, event.key);
      return;
    }
    this.settle();
    if (!this.dead) {
      if (event.key === 'Dead') {
        this.dead = true;
        event.stopPropagation();
      }
      return;
    }
    this.dead = false;
    // Escape, Backspace, arrows…: the accent is dropped and the key goes through as it is.
    if (event.key !== 'Dead' && !isCharacter(event.key)) return;
    for (const [code, key] of this.modifiers) {
      if (!event.getModifierState(key)) {
        this.modifiers.delete(code);
        this.output.releaseKey(key, code, event.target);
      }
    }
    this.pending = { code: event.code, fallback: event.key === 'Dead' ? null : event.key, typed: false };
    // Neither sent by noVNC nor cancelled: the keypress that follows carries the composed text.
    event.stopPropagation();
  }

  private keypress(event: KeyEventLike): void {
    if (!this.pending) return;
    const text = event.charCode ? String.fromCodePoint(event.charCode) : event.key;
    const keysym = keysymForCharacter(text);
    if (keysym !== null) {
      this.output.sendKeysym(keysym);
      this.pending.typed = true;
    }
    event.preventDefault();
  }

  private keyup(event: KeyEventLike): void {
    this.modifiers.delete(event.code);
    if (this.pending?.code === event.code) {
      this.settle();
      event.stopPropagation();
    }
  }

  /** The pending key is done: without a keypress, it types what its keydown named. */
  private settle(): void {
    const pending = this.pending;
    this.pending = null;
    if (!pending || pending.typed || pending.fallback === null) return;
    const keysym = keysymForCharacter(pending.fallback);
    if (keysym !== null) this.output.sendKeysym(keysym);
  }
}
