import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TooManyRequestsError } from '../errors.js';
import { addressKey, SignInLimits } from './sign-in-limits.js';

test('an IPv6 client is counted by its /64, an IPv4-mapped one as IPv4', () => {
  assert.equal(addressKey('2001:db8:1:2:aaaa::1'), addressKey('2001:db8:1:2:ffff:ffff:ffff:ffff'));
  assert.notEqual(addressKey('2001:db8:1:2::1'), addressKey('2001:db8:1:3::1'));
  assert.equal(addressKey('::ffff:192.0.2.7'), '192.0.2.7');
  assert.notEqual(addressKey('192.0.2.7'), addressKey('192.0.2.8'));
});

test('hopping between addresses of one /64 does not escape the address limit', async () => {
  const limits = new SignInLimits({ maxFailuresPerAccount: 100, maxFailuresPerAddress: 3, lockoutMinutes: 1 });
  for (let i = 0; i < 3; i++) await limits.attempt(limits.unknownNameKey(`name-${i}`), `2001:db8::${i + 1}`);
  await assert.rejects(limits.attempt(limits.unknownNameKey('name-9'), '2001:db8::ffff'), (err) => err instanceof TooManyRequestsError && /network address/.test(err.message));
});
