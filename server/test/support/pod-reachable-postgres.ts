import { startPostgresCluster } from './postgres.js';

/**
 * A throwaway PostgreSQL on the host that pods of the local cluster can reach: the tests'
 * own server (support/postgres.ts), listening on the node's address as well as loopback and
 * letting in password sign-ins from the pod network only.
 *
 * On the host rather than in the cluster because the cluster has no registry and no
 * internet: its images are the ones scripts/local-cluster.sh builds, and none of them
 * holds a PostgreSQL server. The host's Debian package needs neither.
 */
export interface PodReachablePostgres {
  /** The database's URL as pods use it (the node's address). */
  podUrl: string;
  /** The same database from the host, over loopback. */
  hostUrl: string;
  stop: () => void;
}

/**
 * Starts the server. `nodeIp`: the address pods reach the host at (the node's InternalIP);
 * `podCidr`: the pod network, the only remote addresses allowed in.
 */
export async function startPodReachablePostgres(nodeIp: string, podCidr: string): Promise<PodReachablePostgres> {
  const cluster = await startPostgresCluster({ address: nodeIp, allowFrom: podCidr });
  const podUrl = new URL(cluster.url);
  podUrl.hostname = nodeIp;
  return { podUrl: podUrl.toString(), hostUrl: cluster.url, stop: cluster.stop };
}
