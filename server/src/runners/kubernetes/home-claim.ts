import { createHash } from 'node:crypto';
import type { V1PersistentVolumeClaim } from '@kubernetes/client-node';
import { DEFAULT_HOME_SIZE } from '../../contract/apps.js';
import { ANNOTATION_USER_ID, LABEL_COMPONENT, LABEL_MANAGED_BY } from './labels.js';

/** What the operator chose for persistent homes (SORTIE_HOME_SIZE, SORTIE_HOME_STORAGE_CLASS). */
export interface HomeSettings {
  namespace: string;
  size: string;
  /** Undefined: the cluster's default StorageClass. */
  storageClass: string | undefined;
}

/** SORTIE_HOME_SIZE's default; the class defaults to the cluster's. */
export const DEFAULT_HOME = { size: DEFAULT_HOME_SIZE, storageClass: undefined } as const;
const PREFIX = 'sortie-home-';
/** A claim's name is a DNS-1123 subdomain, but it also names a volume label (63). */
const MAX_NAME = 63;

/**
 * `sortie-home-<user>`. A user id that is already a valid name part is used as it is, so an
 * operator recognises the claim; any other (capitals, "@", "_", very long) is lowered and
 * cleaned, and a hash of the exact id is added so two ids never share a home.
 */
export function homeClaimName(userId: string): string {
  if (userId === '') throw new Error('a home needs a user id');
  const plain = userId.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  if (plain === userId && PREFIX.length + plain.length <= MAX_NAME) return PREFIX + plain;
  const hash = createHash('sha256').update(userId).digest('hex').slice(0, 10);
  const room = MAX_NAME - PREFIX.length - hash.length - 1;
  const stem = plain.slice(0, room).replace(/-+$/, '');
  return `${PREFIX}${stem ? `${stem}-` : ''}${hash}`;
}

/** The claim holding one user's home; made on first use and never deleted by a session ending. */
export function buildHomeClaim(userId: string, settings: HomeSettings): V1PersistentVolumeClaim {
  return {
    apiVersion: 'v1',
    kind: 'PersistentVolumeClaim',
    metadata: {
      name: homeClaimName(userId),
      namespace: settings.namespace,
      labels: { [LABEL_MANAGED_BY]: 'sortie', [LABEL_COMPONENT]: 'home' },
      annotations: { [ANNOTATION_USER_ID]: userId },
    },
    spec: {
      // One node at a time is what every storage class offers; a user's sessions with a
      // persistent home then share that node (see README, "A home that stays").
      accessModes: ['ReadWriteOnce'],
      resources: { requests: { storage: settings.size } },
      ...(settings.storageClass ? { storageClassName: settings.storageClass } : {}),
    },
  };
}
