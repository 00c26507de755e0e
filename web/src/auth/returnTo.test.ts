import assert from 'node:assert/strict';
import { test } from 'node:test';
import { forgetReturn, peekReturn, rememberReturn, takeReturn } from './returnTo';

// Without sessionStorage (as here, and in a browser that blocks it) the in-memory copy serves.

test('after signing in, the person returns to the page they were on, once', () => {
  rememberReturn('#/sessions/abc');
  assert.equal(peekReturn(), '#/sessions/abc');
  assert.equal(takeReturn(), '#/sessions/abc');
  assert.equal(takeReturn(), null);
});

test('only a page of this app is remembered: no other site, and not the sign-in page itself', () => {
  forgetReturn();
  for (const hash of ['https://evil.example/', '//evil.example', '#evil', '', '#/signin', '#/signin?error=x', '#/signin/']) {
    rememberReturn(hash);
    assert.equal(peekReturn(), null, hash);
  }
  rememberReturn('#/admin/users');
  rememberReturn('https://evil.example/');
  assert.equal(takeReturn(), '#/admin/users');
});
