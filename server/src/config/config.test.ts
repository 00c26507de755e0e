import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ConfigError } from '../errors.js';
import { loadConfig } from './config.js';

test('a persistent home takes any Kubernetes storage size of at least 1 Mi', () => {
  for (const size of ['10Gi', '500Mi', '1.5Gi', '20G', '1e9', '1Mi']) {
    assert.equal(loadConfig({ SORTIE_HOME_SIZE: size }).kubernetes.home.size, size);
  }
  assert.equal(loadConfig({}).kubernetes.home.size, '10Gi');
});

test('a home size that is no storage size stops Sortie with the setting named and an example', () => {
  for (const size of ['10 GB', 'ten', '-1Gi', '0', '500m', '1Ki', '']) {
    assert.throws(
      () => loadConfig({ SORTIE_HOME_SIZE: size }),
      (err: unknown) => err instanceof ConfigError && /SORTIE_HOME_SIZE: SORTIE_HOME_SIZE must be a storage size such as 10Gi/.test(err.message),
      size,
    );
  }
});
