import assert from 'node:assert/strict';
import { test } from 'node:test';
import { formatCommand, parseCommand } from './command';

test('a command line splits into argv the way a shell would quote it, with nothing expanded', () => {
  assert.deepEqual(parseCommand('  xterm   -title "My Term" \'$HOME\' a\\ b  '), { ok: true, argv: ['xterm', '-title', 'My Term', '$HOME', 'a b'] });
  assert.deepEqual(parseCommand('echo "say \\"hi\\" \\n"'), { ok: true, argv: ['echo', 'say "hi" \\n'] });
  assert.deepEqual(parseCommand('a "" b'), { ok: true, argv: ['a', '', 'b'] });
  assert.deepEqual(parseCommand(''), { ok: true, argv: [] });
});

test('a command that cannot be split says why', () => {
  assert.deepEqual(parseCommand("xterm 'open"), { ok: false, error: 'The command has an unclosed single quote.' });
  assert.deepEqual(parseCommand('xterm "open'), { ok: false, error: 'The command has an unclosed double quote.' });
  assert.deepEqual(parseCommand('xterm \\'), { ok: false, error: 'The command ends with a lone backslash.' });
});

test('formatting then parsing gives back the same argv', () => {
  for (const argv of [['xterm'], ['sh', '-c', "echo 'it''s' && ls"], ['a b', '', 'x"y', 'plain/path=1,2:3']]) {
    assert.deepEqual(parseCommand(formatCommand(argv)), { ok: true, argv });
  }
  assert.equal(formatCommand(undefined), '');
  assert.equal(formatCommand(['xterm', '-geometry', '80x24']), 'xterm -geometry 80x24');
});
