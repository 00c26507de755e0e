import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig } from '../../config/config.js';
import { buildHomeClaim, homeClaimName } from './home-claim.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

test('a plain user id names the claim as it is: sortie-home-<user>', () => {
  assert.equal(homeClaimName('alice'), 'sortie-home-alice');
  assert.equal(homeClaimName('b0b-smith'), 'sortie-home-b0b-smith');
});

test('any other id becomes a valid name with a hash of the exact id, so two ids never share a home', () => {
  const ids = ['Alice', 'alice@example.com', 'alice_example_com', 'ALICE@EXAMPLE.COM', '---', 'é', 'x'.repeat(200), `${'x'.repeat(199)}y`];
  const names = ids.map(homeClaimName);
  for (const [i, name] of names.entries()) {
    assert.ok(name.length <= 63, `${ids[i]} → ${name} (${name.length})`);
    assert.match(name, DNS_LABEL, ids[i]);
    assert.ok(name.startsWith('sortie-home-'), name);
  }
  assert.equal(new Set([...names, 'sortie-home-alice']).size, names.length + 1, names.join(' '));
  assert.equal(homeClaimName('alice@example.com'), homeClaimName('alice@example.com'), 'stable');
  assert.match(homeClaimName('alice@example.com'), /^sortie-home-alice-example-com-[0-9a-f]{10}$/);
  assert.throws(() => homeClaimName(''));
});

test('the claim asks for the size and class the operator set, labelled as Sortie\'s home', () => {
  const claim = buildHomeClaim('alice', { namespace: 'sessions', size: '10Gi', storageClass: undefined });
  assert.equal(claim.metadata?.name, 'sortie-home-alice');
  assert.equal(claim.metadata?.namespace, 'sessions');
  assert.deepEqual(claim.metadata?.labels, { 'app.kubernetes.io/managed-by': 'sortie', 'app.kubernetes.io/component': 'home' });
  assert.equal(claim.metadata?.annotations?.['sortie.io/user-id'], 'alice');
  assert.deepEqual(claim.spec?.resources?.requests, { storage: '10Gi' });
  assert.deepEqual(claim.spec?.accessModes, ['ReadWriteOnce']);
  assert.equal('storageClassName' in (claim.spec ?? {}), false, 'no class: the cluster default');
  assert.equal(buildHomeClaim('alice', { namespace: 'sessions', size: '1Gi', storageClass: 'fast' }).spec?.storageClassName, 'fast');
});

test('SORTIE_HOME_SIZE and SORTIE_HOME_STORAGE_CLASS: 10Gi of the default class unless set, and nonsense refused by name', () => {
  assert.deepEqual(loadConfig({}).kubernetes.home, { size: '10Gi', storageClass: undefined });
  assert.deepEqual(loadConfig({ SORTIE_HOME_SIZE: '500Mi', SORTIE_HOME_STORAGE_CLASS: 'fast-ssd' }).kubernetes.home, { size: '500Mi', storageClass: 'fast-ssd' });
  for (const size of ['big', '0', '-1Gi', '10 Gi']) {
    assert.throws(() => loadConfig({ SORTIE_HOME_SIZE: size }), /SORTIE_HOME_SIZE must be a storage size such as 10Gi/, size);
  }
  assert.throws(() => loadConfig({ SORTIE_HOME_STORAGE_CLASS: 'Fast SSD' }), /SORTIE_HOME_STORAGE_CLASS must be the name of a StorageClass/);
});
