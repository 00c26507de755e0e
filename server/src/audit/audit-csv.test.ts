import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auditCsvLine, csvCell } from './audit-csv.js';

test('cells that a spreadsheet would run as a formula get a leading apostrophe', () => {
  assert.equal(csvCell('=HYPERLINK("http://evil.example","x")'), `"'=HYPERLINK(""http://evil.example"",""x"")"`);
  assert.equal(csvCell('+1+1'), "'+1+1");
  assert.equal(csvCell('-2+3'), "'-2+3");
  assert.equal(csvCell('@SUM(A1)'), "'@SUM(A1)");
  assert.equal(csvCell('\t=1'), "'\t=1");
  assert.equal(csvCell('alice'), 'alice');
  assert.equal(csvCell('a=b'), 'a=b');
});

test('commas, quotes and line breaks are quoted; null is an empty cell', () => {
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('say "hi"'), '"say ""hi"""');
  assert.equal(csvCell('two\nlines'), '"two\nlines"');
  assert.equal(csvCell(null), '');
});

test('an event is one CRLF line with its details as JSON', () => {
  const line = auditCsvLine({
    id: 'x',
    at: '2026-01-02T03:04:05.000Z',
    actor_type: 'unknown',
    actor_id: null,
    actor_name: '=cmd',
    action: 'auth.sign_in_failed',
    target_type: null,
    target_id: null,
    target_name: null,
    address: '203.0.113.7',
    details: { reason: 'unknown_user' },
  });
  assert.equal(line, `2026-01-02T03:04:05.000Z,unknown,,'=cmd,auth.sign_in_failed,,,,203.0.113.7,"{""reason"":""unknown_user""}"\r\n`);
});
