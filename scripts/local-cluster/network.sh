# shellcheck shell=bash
# Host networking. Pods sit on a bridge (cni0, $POD_CIDR) whose addresses the host reaches
# directly, which is all Sortie's session proxy needs. There is no kube-proxy, so Services
# get no ClusterIP routing; the one ClusterIP that matters, the API server's (in-cluster
# clients read KUBERNETES_SERVICE_HOST), is translated by one DNAT rule of our own.
# Everything added here carries a KUBE-, CNI- or SORTIE- prefix so `down` can remove it.
# Sourced by scripts/local-cluster.sh, which holds the settings and small helpers (log, die,
# kube, ctr_k8s) used here.

# The address of the default-route interface (the kubelet refuses a loopback node IP).
detect_node_ip() {
	local dev ip
	dev=$(ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
	if [[ -n $dev ]]; then
		ip=$(ip -4 -o addr show dev "$dev" scope global | awk '{ split($4, a, "/"); print a[1]; exit }')
	fi
	if [[ -z ${ip:-} ]]; then
		ip=$(ip -4 -o addr show scope global | awk '$2 != "cni0" { split($4, a, "/"); print a[1]; exit }')
	fi
	[[ -n $ip ]] || die "cannot find a non-loopback IPv4 address for the node"
	printf '%s\n' "$ip"
}

node_ip() { cat "$CLUSTER_DIR/node-ip"; }

# The CNI configuration containerd reads: bridge + host-local IPAM, and portmap for hostPort.
write_cni_config() {
	mkdir -p "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/cni/ipam"
	cat >"$CLUSTER_DIR/cni/net.d/10-sortie.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK_NAME",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$CLUSTER_DIR/cni/ipam",
        "ranges": [[{ "subnet": "$POD_CIDR" }]],
        "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOF
}

# Pods may route to the world (the bridge plugin masquerades), and in-cluster clients
# (KUBERNETES_SERVICE_HOST=10.96.0.1) reach the API server although there is no kube-proxy.
setup_host_network() {
	sysctl -qw net.ipv4.ip_forward=1
	local ip
	ip=$(node_ip)
	iptables -t nat -N SORTIE-LOCAL 2>/dev/null || iptables -t nat -F SORTIE-LOCAL
	iptables -t nat -A SORTIE-LOCAL -d "$API_SERVICE_IP/32" -p tcp --dport 443 \
		-j DNAT --to-destination "$ip:$API_PORT"
	local chain
	for chain in PREROUTING OUTPUT; do
		iptables -t nat -C "$chain" -j SORTIE-LOCAL 2>/dev/null || iptables -t nat -I "$chain" -j SORTIE-LOCAL
	done
}

# Removes every iptables rule and chain that the kubelet (KUBE-*), the CNI plugins (CNI-*)
# or this script (SORTIE-*) added. Nothing else on these machines uses those prefixes.
remove_iptables_chains() {
	local table rule chain
	for table in nat filter mangle; do
		iptables -t "$table" -S >/dev/null 2>&1 || continue
		while IFS= read -r rule; do
			# Rules in built-in chains that jump to one of ours, or carry our CNI comment.
			eval "iptables -t $table ${rule/#-A /-D }" 2>/dev/null || true
		done < <(iptables -t "$table" -S | grep -E '^-A (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) ' |
			grep -E -- '-j (KUBE-|CNI-|SORTIE-)|name: \\"'"$CNI_NETWORK_NAME"'\\"' || true)
		while read -r chain; do iptables -t "$table" -F "$chain" 2>/dev/null || true; done \
			< <(iptables -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|SORTIE-)/ { print $2 }')
		while read -r chain; do iptables -t "$table" -X "$chain" 2>/dev/null || true; done \
			< <(iptables -t "$table" -S | awk '$1 == "-N" && $2 ~ /^(KUBE-|CNI-|SORTIE-)/ { print $2 }')
	done
}

# Network namespaces, the bridge and the iptables rules of pods whose sandboxes were not
# torn down by the kubelet (containerd or the kubelet died first).
remove_pod_network_leftovers() {
	local ns
	for ns in /run/netns/cni-*; do
		[[ -e $ns ]] || continue
		umount "$ns" 2>/dev/null || true
		rm -f "$ns"
	done
	ip link delete cni0 2>/dev/null || true
	remove_iptables_chains
}
