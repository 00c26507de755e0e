import { spawn } from 'node:child_process';
import { KubeConfig, Watch } from '@kubernetes/client-node';

/**
 * A stand-in for kube-proxy, for one Service of the local cluster (which has no kube-proxy:
 * docs/local-kubernetes.md). It does what kube-proxy's iptables mode does: it watches the
 * Service's Endpoints and keeps a NAT chain that sends each new connection to the
 * Service's ClusterIP:port to one ready endpoint, picked at random. A pod being deleted
 * leaves the Endpoints (the endpoints controller drops terminating pods) and so stops
 * getting new connections; connections already open stay with it, as they do in a cluster.
 * The host's own connections (a browser on the host) go through the OUTPUT hook.
 */
export interface ServiceProxy {
  /** http://<clusterIP>:<port>: the Service's own address, as a client in the cluster uses it. */
  url: string;
  /** The ready endpoints the rules send new connections to now, as ip:port. */
  endpoints: () => string[];
  close: () => Promise<void>;
}

interface ServiceProxyOptions {
  kubeconfig: string;
  namespace: string;
  service: string;
  clusterIp: string;
  port: number;
  /** Our own chain's name (scripts/local-cluster.sh `down` removes SORTIE-* chains too). */
  chain: string;
}

function iptables(args: string[], input?: string, command = 'iptables'): Promise<{ status: number; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ status: code ?? 1, stderr }));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/** Removes the chains and their jumps, whatever an interrupted run left. */
export async function removeServiceProxy(chain: string): Promise<void> {
  const jumps: Array<[string, string]> = [['PREROUTING', chain], ['OUTPUT', chain], ['POSTROUTING', `${chain}-POST`]];
  for (const [hook, target] of jumps) {
    // -D removes one jump per call; repeat until none is left.
    while ((await iptables(['-t', 'nat', '-D', hook, '-j', target])).status === 0) continue;
  }
  for (const name of [chain, `${chain}-POST`]) {
    await iptables(['-t', 'nat', '-F', name]);
    await iptables(['-t', 'nat', '-X', name]);
  }
}

/** Ready addresses of an Endpoints object, as ip:port for the port named `http` (or the only one). */
function readyEndpoints(endpoints: any): string[] {
  const out: string[] = [];
  for (const subset of endpoints?.subsets ?? []) {
    const ports = (subset.ports ?? []) as Array<{ name?: string; port: number }>;
    const port = (ports.find((p) => p.name === 'http') ?? ports[0])?.port;
    if (!port) continue;
    for (const address of subset.addresses ?? []) out.push(`${address.ip}:${port}`);
  }
  return out.sort();
}

export async function startServiceProxy(options: ServiceProxyOptions): Promise<ServiceProxy> {
  const { chain, clusterIp, port } = options;
  await removeServiceProxy(chain);
  const setup: string[][] = [
    ['-N', chain],
    ['-N', `${chain}-POST`],
    // Replies from an endpoint to a client on the same bridge (another pod) must come back
    // through the host to be un-NATed: masquerade what was sent to the ClusterIP.
    ['-A', `${chain}-POST`, '-m', 'conntrack', '--ctstate', 'DNAT', '--ctorigdst', clusterIp, '-j', 'MASQUERADE'],
    ['-I', 'PREROUTING', '-j', chain],
    ['-I', 'OUTPUT', '-j', chain],
    ['-I', 'POSTROUTING', '-j', `${chain}-POST`],
  ];
  for (const args of setup) {
    const res = await iptables(['-t', 'nat', ...args]);
    if (res.status !== 0) throw new Error(`iptables -t nat ${args.join(' ')}: ${res.stderr}`);
  }

  let current: string[] = [];
  // Rule updates run one at a time, in the order the watch saw the changes.
  let applying = Promise.resolve();
  const apply = (endpoints: string[]) => {
    applying = applying.then(async () => {
      // One atomic replacement of the chain (iptables-restore flushes a chain it declares),
      // so no connection meets a half-written chain. Endpoint i of n takes 1/(n-i) of what
      // the rules before it left: each gets 1/n, as kube-proxy writes it.
      const lines = ['*nat', `:${chain} - [0:0]`];
      endpoints.forEach((endpoint, i) => {
        const pick = i < endpoints.length - 1 ? ['-m', 'statistic', '--mode', 'random', '--probability', (1 / (endpoints.length - i)).toFixed(5)] : [];
        lines.push(['-A', chain, '-d', `${clusterIp}/32`, '-p', 'tcp', '--dport', String(port), ...pick, '-j', 'DNAT', '--to-destination', endpoint].join(' '));
      });
      lines.push('COMMIT', '');
      const res = await iptables(['--noflush'], lines.join('\n'), 'iptables-restore');
      if (res.status !== 0) throw new Error(`iptables-restore: ${res.stderr}`);
      current = endpoints;
    });
    applying.catch(() => undefined);
    return applying;
  };

  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromFile(options.kubeconfig);
  let closed = false;
  let watch: AbortController | undefined;
  let first: (() => void) | undefined;
  const firstSeen = new Promise<void>((resolve) => (first = resolve));
  const startWatch = async (): Promise<void> => {
    watch = await new Watch(kubeConfig).watch(
      `/api/v1/namespaces/${options.namespace}/endpoints`,
      { fieldSelector: `metadata.name=${options.service}` },
      (phase, object) => {
        void apply(phase === 'DELETED' ? [] : readyEndpoints(object)).then(() => first?.());
      },
      () => {
        // Watches end (the API server's timeout, a dropped connection): start again.
        if (!closed) setTimeout(() => void startWatch().catch(() => undefined), 200);
      },
    );
  };
  await startWatch();
  // An Endpoints object that does not exist yet sends no event: the rules stay empty.
  await Promise.race([firstSeen, new Promise((resolve) => setTimeout(resolve, 2000))]);

  return {
    url: `http://${clusterIp}:${port}`,
    endpoints: () => [...current],
    close: async () => {
      closed = true;
      watch?.abort();
      await applying.catch(() => undefined);
      await removeServiceProxy(chain);
    },
  };
}
