import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CLOSE_CODE_MESSAGES, FINAL_CLOSE_CODES, RECONNECT_NOW_CLOSE_CODES } from '../contract/close-codes.js';
import { CloseCode } from './close-codes.js';

const WEB_STREAM_END = path.resolve(import.meta.dirname, '..', '..', '..', 'web', 'src', 'sessions', 'streamEnd.ts');

test('the web viewer has a message for every close code the relay sends, and for no other', () => {
  const entries = Object.entries(CLOSE_CODE_MESSAGES).map(([code, message]) => [Number(code), message] as const);
  assert.deepEqual(entries.map(([code]) => code).sort(), Object.values(CloseCode).sort());
  for (const [code, message] of entries) assert.match(message, /^[A-Z].{15,}\.$/, `${code} has a sentence a person can read`);
  // The viewer words a close from this table, not from a copy of its own.
  assert.match(readFileSync(WEB_STREAM_END, 'utf8'), /CLOSE_CODE_MESSAGES\[/);
});

test('close codes are in the private range and distinct', () => {
  const codes = Object.values(CloseCode);
  assert.equal(new Set(codes).size, codes.length);
  for (const code of codes) assert.ok(code >= 4000 && code <= 4999, `${code}`);
});

test('codes that name a lasting refusal are the ones a viewer does not retry by itself', () => {
  const codes: number[] = Object.values(CloseCode);
  for (const code of FINAL_CLOSE_CODES) assert.ok(codes.includes(code), `${code} is a close code`);
  assert.deepEqual([...FINAL_CLOSE_CODES].sort(), [4401, 4403, 4404, 4410, 4411, 4413, 4415, 4429]);
});

test('a Sortie shutting down asks for an immediate reconnect, which no lasting refusal does', () => {
  assert.deepEqual([...RECONNECT_NOW_CLOSE_CODES].sort(), [CloseCode.ReconnectNow, CloseCode.Draining].sort());
  for (const code of RECONNECT_NOW_CLOSE_CODES) assert.ok(!FINAL_CLOSE_CODES.has(code), `${code}`);
});
