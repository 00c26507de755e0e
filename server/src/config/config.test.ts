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

test('SORTIE_DATABASE_URL selects PostgreSQL; unset or empty keeps the SQLite file', () => {
  const url = 'postgres://sortie:s3cret@db.example.com:5432/sortie?sslmode=require';
  assert.equal(loadConfig({ SORTIE_DATABASE_URL: url }).databaseUrl, url);
  assert.equal(loadConfig({ SORTIE_DATABASE_URL: 'postgresql://db/sortie' }).databaseUrl, 'postgresql://db/sortie');
  assert.equal(loadConfig({}).databaseUrl, undefined);
  assert.equal(loadConfig({ SORTIE_DATABASE_URL: '' }).databaseUrl, undefined);
});

test('a SORTIE_DATABASE_URL that is no PostgreSQL URL stops Sortie with an example, never echoing the value (it holds a password)', () => {
  for (const value of ['mysql://u:s3cret@db/sortie', 'postgres://u:s3cret@db.example.com', 'postgres://u:s3cret@/sortie', 'db.example.com/sortie', 'sqlite:data/s3cret.db']) {
    assert.throws(
      () => loadConfig({ SORTIE_DATABASE_URL: value }),
      (err: unknown) =>
        err instanceof ConfigError &&
        /SORTIE_DATABASE_URL: SORTIE_DATABASE_URL must be a PostgreSQL URL with a host and a database, such as postgres:\/\//.test(err.message) &&
        !err.message.includes('s3cret'),
      value,
    );
  }
});
