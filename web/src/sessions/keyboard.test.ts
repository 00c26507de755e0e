import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeadKeyComposer, keysymForCharacter, type KeyEventLike } from './keyboard';

/** A key event as the browser hands it over, recording whether it was kept from noVNC or cancelled. */
function key(type: string, keyName: string, code: string, options: { char?: string; held?: string[] } = {}) {
  const seen = { stopped: false, cancelled: false };
  const event: KeyEventLike = {
    type,
    key: keyName,
    code,
    charCode: options.char ? options.char.codePointAt(0)! : 0,
    target: null,
    getModifierState: (name) => (options.held ?? []).includes(name),
    stopPropagation: () => void (seen.stopped = true),
    preventDefault: () => void (seen.cancelled = true),
  };
  return { event, seen };
}

function composer() {
  const typed: number[] = [];
  const released: string[] = [];
  const c = new DeadKeyComposer({ sendKeysym: (k) => typed.push(k), releaseKey: (_key, code) => released.push(code) });
  const press = (type: string, keyName: string, code: string, options?: { char?: string; held?: string[] }) => {
    const k = key(type, keyName, code, options);
    c.handle(k.event);
    return k.seen;
  };
  return { press, typed, released };
}

test('keysyms: Latin-1 characters are their own keysym, others are Unicode keysyms, control characters none', () => {
  assert.equal(keysymForCharacter('e'), 0x65);
  assert.equal(keysymForCharacter('ê'), 0xea);
  assert.equal(keysymForCharacter('^'), 0x5e);
  assert.equal(keysymForCharacter('€'), 0x010020ac);
  assert.equal(keysymForCharacter('ŝ'), 0x0100015d);
  assert.equal(keysymForCharacter('😀'), 0x0101f600);
  assert.equal(keysymForCharacter('\r'), null);
  assert.equal(keysymForCharacter('ab'), null);
});

test('Chromium on Linux: the dead key and the plain letter are kept from noVNC; the keypress types the composed character', () => {
  const { press, typed } = composer();
  assert.deepEqual(press('keydown', 'Dead', 'BracketLeft'), { stopped: true, cancelled: false });
  assert.deepEqual(press('keydown', 'e', 'KeyE'), { stopped: true, cancelled: false }, 'left uncancelled so its keypress comes');
  press('keypress', 'ê', 'KeyE', { char: 'ê' });
  assert.deepEqual(press('keyup', 'e', 'KeyE'), { stopped: true, cancelled: false });
  assert.deepEqual(typed, [0xea]);
  // The next key is noVNC's again.
  assert.deepEqual(press('keydown', 'x', 'KeyX'), { stopped: false, cancelled: false });
  assert.deepEqual(typed, [0xea]);
});

test('a dead key then space, or twice, types the accent; then an unrelated letter types both', () => {
  const { press, typed } = composer();
  press('keydown', 'Dead', 'BracketLeft');
  press('keydown', ' ', 'Space');
  press('keypress', ' ', 'Space', { char: '^' });
  press('keyup', ' ', 'Space');
  press('keydown', 'Dead', 'BracketLeft');
  press('keydown', 'Dead', 'BracketLeft');
  press('keypress', 'Dead', 'BracketLeft', { char: '^' });
  press('keyup', 'Dead', 'BracketLeft');
  press('keydown', 'Dead', 'BracketLeft');
  press('keydown', 'x', 'KeyX');
  press('keypress', 'x', 'KeyX', { char: '^' });
  press('keypress', 'x', 'KeyX', { char: 'x' });
  press('keyup', 'x', 'KeyX');
  assert.deepEqual(typed, [0x5e, 0x5e, 0x5e, 0x78]);
});

test('browsers that name the composed character in the keydown and send no keypress: it is typed at its keyup, or at the next keydown', () => {
  const { press, typed } = composer();
  press('keydown', 'Dead', 'Quote');
  press('keydown', 'é', 'KeyE');
  press('keyup', 'é', 'KeyE');
  assert.deepEqual(typed, [0xe9]);
  press('keydown', 'Dead', 'Quote');
  press('keydown', 'á', 'KeyA');
  assert.deepEqual(press('keydown', 'b', 'KeyB'), { stopped: false, cancelled: false });
  assert.deepEqual(typed, [0xe9, 0xe1]);
});

test('Shift between the dead key and the letter keeps it pending; a key that is no character drops the accent and goes to noVNC', () => {
  const { press, typed } = composer();
  press('keydown', 'Dead', 'BracketLeft');
  assert.deepEqual(press('keydown', 'Shift', 'ShiftLeft', { held: ['Shift'] }), { stopped: false, cancelled: false });
  press('keydown', 'E', 'KeyE', { held: ['Shift'] });
  press('keypress', 'Ê', 'KeyE', { char: 'Ê', held: ['Shift'] });
  press('keyup', 'E', 'KeyE', { held: ['Shift'] });
  press('keyup', 'Shift', 'ShiftLeft');
  assert.deepEqual(typed, [0xca]);
  press('keydown', 'Dead', 'BracketLeft');
  assert.deepEqual(press('keydown', 'Backspace', 'Backspace'), { stopped: false, cancelled: false });
  assert.deepEqual(press('keydown', 'e', 'KeyE'), { stopped: false, cancelled: false }, 'the accent was dropped');
  assert.deepEqual(typed, [0xca]);
});

test('the keyups of Shift and AltGr that the browser swallowed with a dead key are released once the next key shows them up', () => {
  const { press, typed, released } = composer();
  press('keydown', 'Shift', 'ShiftLeft', { held: ['Shift'] });
  press('keydown', 'Dead', 'BracketLeft', { held: ['Shift'] });
  press('keydown', 'u', 'KeyU');
  assert.deepEqual(released, ['ShiftLeft']);
  press('keypress', 'ü', 'KeyU', { char: 'ü' });
  press('keyup', 'u', 'KeyU');
  press('keydown', 'AltGraph', 'AltRight');
  press('keydown', 'Dead', 'Backslash', { held: ['AltGraph'] });
  press('keydown', 'a', 'KeyQ', { held: ['AltGraph'] });
  assert.deepEqual(released, ['ShiftLeft'], 'AltGr still held: it stays down');
  press('keypress', 'à', 'KeyQ', { char: 'à', held: ['AltGraph'] });
  assert.deepEqual(typed, [0xfc, 0xe0]);
});

test('without a dead key nothing is touched: noVNC gets every event', () => {
  const { press, typed } = composer();
  for (const [type, name, code] of [
    ['keydown', 'AltGraph', 'AltRight'],
    ['keydown', '@', 'KeyQ'],
    ['keypress', '@', 'KeyQ'],
    ['keyup', '@', 'KeyQ'],
    ['keyup', 'AltGraph', 'AltRight'],
  ] as const) {
    assert.deepEqual(press(type, name, code, { char: type === 'keypress' ? '@' : undefined }), { stopped: false, cancelled: false });
  }
  assert.deepEqual(typed, []);
});
