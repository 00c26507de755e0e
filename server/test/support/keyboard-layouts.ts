import type { CDPSession } from 'playwright-core';

/**
 * What Chromium on Linux (X11) reports to a page while a person types on a German or a
 * French keyboard layout, as Chrome DevTools Protocol key events, so a test replays a
 * person's typing into the page exactly as the browser would deliver it.
 *
 * Recorded from Debian's Chromium 156 on an X server set to each layout (`setxkbmap de`,
 * `setxkbmap fr`), keys pressed with XTEST, events logged on a focused canvas:
 * - A character key: a keydown whose `key` is the character, then its keypress.
 * - AltGr: keydown "AltGraph" (code AltRight, keyCode 225); the keys pressed with it report
 *   the AltGr character ("@" on KeyQ), with neither ctrlKey nor altKey set.
 * - A dead key: keydown "Dead" with the key's code, and no keyup; a Shift or AltGr pressed
 *   with it loses its keyup too. The next key's keydown carries the plain letter ("e" on
 *   KeyE) and only the keypress that follows carries the composed character ("ê"), which
 *   the browser sends only if the keydown was not cancelled. A dead key and then space
 *   gives the accent itself ("^"); twice the same dead key gives it too.
 */
export interface KeyStep {
  /** rawKeyDown: keydown only; char: keypress only; keyDown: keydown and, with text, its keypress. */
  type: 'rawKeyDown' | 'keyDown' | 'keyUp' | 'char';
  key: string;
  code: string;
  /** KeyboardEvent.keyCode as Chromium on Linux gives it for this key on this layout. */
  keyCode: number;
  /** What the key types (its keypress), if anything. */
  text?: string;
  /** Held modifiers, CDP bits: Alt 1, Ctrl 2, Meta 4, Shift 8. */
  modifiers?: number;
  /** 1 left, 2 right (modifier keys). */
  location?: number;
}

export interface TypedLine {
  layout: string;
  /** What the person means to type, and what must arrive. */
  expected: string;
  steps: KeyStep[];
}

const SHIFT = 8;

/** A character key pressed and released. */
function char(text: string, code: string, keyCode: number, modifiers = 0): KeyStep[] {
  return [
    { type: 'keyDown', key: text, code, keyCode, text, modifiers },
    { type: 'keyUp', key: text, code, keyCode, modifiers },
  ];
}

const shiftDown: KeyStep = { type: 'rawKeyDown', key: 'Shift', code: 'ShiftLeft', keyCode: 16, modifiers: SHIFT, location: 1 };
const shiftUp: KeyStep = { type: 'keyUp', key: 'Shift', code: 'ShiftLeft', keyCode: 16, location: 1 };
const altGrDown: KeyStep = { type: 'rawKeyDown', key: 'AltGraph', code: 'AltRight', keyCode: 225, location: 2 };
const altGrUp: KeyStep = { type: 'keyUp', key: 'AltGraph', code: 'AltRight', keyCode: 225, location: 2 };

/** A dead key's keydown: nothing else, not even its keyup, reaches the page. */
function dead(code: string, keyCode: number, modifiers = 0): KeyStep {
  return { type: 'rawKeyDown', key: 'Dead', code, keyCode, modifiers };
}

/** The key after a dead key: its keydown names the plain key, its keypress brings the composed text. */
function composed(plainKey: string, code: string, keyCode: number, text: string): KeyStep[] {
  return [
    { type: 'rawKeyDown', key: plainKey, code, keyCode },
    { type: 'char', key: plainKey, code, keyCode, text },
    { type: 'keyUp', key: plainKey, code, keyCode },
  ];
}

export const ENTER: KeyStep[] = [
  { type: 'keyDown', key: 'Enter', code: 'Enter', keyCode: 13, text: '\r' },
  { type: 'keyUp', key: 'Enter', code: 'Enter', keyCode: 13 },
];

export const GERMAN: TypedLine = {
  layout: 'de',
  expected: 'ßüÄ@€{[]}\\|~é^',
  steps: [
    ...char('ß', 'Minus', 219),
    ...char('ü', 'BracketLeft', 186),
    shiftDown,
    ...char('Ä', 'Quote', 222, SHIFT),
    shiftUp,
    altGrDown,
    ...char('@', 'KeyQ', 81),
    ...char('€', 'KeyE', 69),
    ...char('{', 'Digit7', 55),
    ...char('[', 'Digit8', 56),
    ...char(']', 'Digit9', 57),
    ...char('}', 'Digit0', 48),
    ...char('\\', 'Minus', 219),
    ...char('|', 'IntlBackslash', 220),
    ...char('~', 'BracketRight', 187),
    altGrUp,
    // ´ is a dead key on the German layout: é is ´ then e.
    dead('Equal', 187),
    ...composed('e', 'KeyE', 69, 'é'),
    // ^ is a dead key too; with space it gives itself.
    dead('Backquote', 192),
    ...composed(' ', 'Space', 32, '^'),
  ],
};

export const FRENCH: TypedLine = {
  layout: 'fr',
  expected: 'êüà^^@éèçàù',
  steps: [
    // ^ then e.
    dead('BracketLeft', 219),
    ...composed('e', 'KeyE', 69, 'ê'),
    // Shift+^ is ¨; Shift's keyup is lost with the dead key's.
    shiftDown,
    dead('BracketLeft', 219, SHIFT),
    ...composed('u', 'KeyU', 85, 'ü'),
    // AltGr+* is a dead `; AltGr's keyup is lost too. a is on KeyQ.
    altGrDown,
    dead('Backslash', 220),
    ...composed('a', 'KeyQ', 65, 'à'),
    // ^ then space, and ^ twice, give ^.
    dead('BracketLeft', 219),
    ...composed(' ', 'Space', 32, '^'),
    dead('BracketLeft', 219),
    ...composed('Dead', 'BracketLeft', 219, '^'),
    altGrDown,
    ...char('@', 'Digit0', 48),
    altGrUp,
    ...char('é', 'Digit2', 50),
    ...char('è', 'Digit7', 55),
    ...char('ç', 'Digit9', 57),
    ...char('à', 'Digit0', 48),
    ...char('ù', 'Quote', 192),
  ],
};

/**
 * Polish (programmer's: AltGr for the ogonek and acute letters) and Czech (accented letters
 * on the number row) together: 29 characters, none of them on the desktop's US keymap, so
 * the X server must find a free key for each. TigerVNC 1.12's default keymap has 19 free.
 */
export const POLISH_AND_CZECH: TypedLine = {
  layout: 'pl+cz',
  expected: 'ąćęłńóśźżĄĆĘŁŃÓŚŹŻěščřžýáíéůú',
  steps: [
    altGrDown,
    ...[...'ąćęłńóśźż'].flatMap((letter) => char(letter, `Key${letterKey(letter)}`, letterKey(letter).charCodeAt(0))),
    shiftDown,
    ...[...'ĄĆĘŁŃÓŚŹŻ'].flatMap((letter) => char(letter, `Key${letterKey(letter)}`, letterKey(letter).charCodeAt(0), SHIFT)),
    shiftUp,
    altGrUp,
    ...[...'ěščřžýáíé'].flatMap((letter, i) => char(letter, `Digit${(i + 2) % 10}`, 48 + ((i + 2) % 10))),
    ...char('ů', 'Semicolon', 186),
    ...char('ú', 'BracketLeft', 219),
  ],
};

/** The Latin letter key that types a Polish letter with AltGr (ź is on X, as on the programmer's layout). */
function letterKey(letter: string): string {
  const base = letter.toUpperCase().normalize('NFD')[0]!;
  return { Ł: 'L', Ź: 'X' }[letter.toUpperCase()] ?? base;
}

/** Types the steps into the page through DevTools, one event at a time, as the browser would deliver them. */
export async function replay(cdp: CDPSession, steps: readonly KeyStep[]): Promise<void> {
  for (const step of steps) {
    await cdp.send('Input.dispatchKeyEvent', {
      type: step.type,
      key: step.key,
      code: step.code,
      windowsVirtualKeyCode: step.keyCode,
      nativeVirtualKeyCode: step.keyCode,
      modifiers: step.modifiers ?? 0,
      location: step.location ?? 0,
      ...(step.text === undefined ? {} : { text: step.text, unmodifiedText: step.text }),
    });
  }
}
