import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { CloseCode } from './close-codes.js';

const VIEWER = path.resolve(import.meta.dirname, '..', '..', '..', 'web', 'src', 'components', 'Viewer.tsx');

test('the web viewer has a message for every close code the relay sends, and for no other', () => {
  const source = readFileSync(VIEWER, 'utf8');
  const table = /const STREAM_CLOSE_MESSAGES[^{]*\{([\s\S]*?)\n\};/.exec(source)?.[1];
  assert.ok(table, 'Viewer.tsx keeps its close-code messages in STREAM_CLOSE_MESSAGES');
  const entries = [...table.matchAll(/^\s*(\d{4}):\s*'([^']+)'/gm)].map((m) => [Number(m[1]), m[2]!] as const);
  assert.deepEqual(entries.map(([code]) => code).sort(), Object.values(CloseCode).sort());
  for (const [code, message] of entries) assert.match(message, /^[A-Z].{15,}\.$/, `${code} has a sentence a person can read`);
});

test('close codes are in the private range and distinct', () => {
  const codes = Object.values(CloseCode);
  assert.equal(new Set(codes).size, codes.length);
  for (const code of codes) assert.ok(code >= 4000 && code <= 4999, `${code}`);
});
