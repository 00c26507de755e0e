# shellcheck shell=bash
# The daemons: containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
# the kubelet. Each runs detached with its pid in $PID_DIR and its log in $LOG_DIR; there is
# no systemd unit, so `down` and a crashed daemon leave nothing registered with the host.
# Also here: their configuration files, their health checks, and the removal of whatever
# containers and processes the pods left behind.
# Sourced by scripts/local-cluster.sh, which holds the settings and small helpers (log, die,
# kube, ctr_k8s) used here.

# containerd with its own socket and state, its image store in the cache, and runc behind
# scripts/local-cluster/runc-wrapper.sh (see that file, and docs/local-kubernetes.md).
write_containerd_config() {
	mkdir -p "$CLUSTER_DIR/bin" "$CLUSTER_DIR/containerd"
	install -m 0755 "$HELPER_DIR/runc-wrapper.sh" "$CLUSTER_DIR/bin/runc-wrapper"

	cat >"$CLUSTER_DIR/containerd/config.toml" <<EOF
version = 2
root = "$CONTAINERD_ROOT"
state = "$CONTAINERD_STATE"

[grpc]
  address = "$CONTAINERD_SOCK"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        # See scripts/local-cluster/runc-wrapper.sh: works around a missing CAP_SYS_RESOURCE.
        BinaryName = "$CLUSTER_DIR/bin/runc-wrapper"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN_DIR"
    conf_dir = "$CLUSTER_DIR/cni/net.d"
EOF
}

write_kubelet_config() {
	cat >"$CLUSTER_DIR/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: $PKI_DIR/ca.crt
authorization:
  mode: Webhook
cgroupDriver: cgroupfs
clusterDomain: cluster.local
failSwapOn: false
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
# Imported images cannot be pulled again: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
# The 1.20 kubelet reports Ready only at its next status sync (default every 10s); a
# shorter period makes "up" wait less. Unchanged status is not re-posted, so it costs little.
nodeStatusUpdateFrequency: 2s
resolvConf: /etc/resolv.conf
EOF
}

daemon_pid() {
	local pid
	pid=$(cat "$PID_DIR/$1.pid" 2>/dev/null) || return 1
	[[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
	# Guard against a recycled pid: the process must still be that daemon.
	local cmdline
	cmdline=$({ tr '\0' ' ' <"/proc/$pid/cmdline"; } 2>/dev/null) || return 1
	[[ $cmdline == *"$1"* ]] || return 1
	printf '%s\n' "$pid"
}
daemon_running() { daemon_pid "$1" >/dev/null; }

# start_daemon NAME COMMAND...: detached (own session, so it outlives the caller's
# terminal and process group), logging to $LOG_DIR/NAME.log.
#
# The daemon writes its own pid file, just before it execs. `$!` is not its pid: setsid
# forks whenever it starts as a process-group leader, as every background job of a shell
# with job control (set -m) does, and the pid recorded was then that of a setsid already
# gone, so wait_for_daemon declared a daemon dead that was coming up fine. `setsid -f`
# forks every time, so the daemon is never this script's child either.
start_daemon() {
	local name=$1
	shift
	if daemon_running "$name"; then
		return 0
	fi
	mkdir -p "$LOG_DIR" "$PID_DIR"
	log "starting $name (log: $LOG_DIR/$name.log)"
	local pid_file=$PID_DIR/$name.pid
	rm -f "$pid_file"
	# shellcheck disable=SC2016 # $$, $0 and $@ are the wrapper's own, expanded there
	setsid -f bash -c 'echo "$$" >"$0.tmp" && mv "$0.tmp" "$0" && exec "$@"' "$pid_file" "$@" \
		>>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&-
	local deadline=$((SECONDS + 10))
	until [[ -s $pid_file ]] || ((SECONDS >= deadline)); do sleep 0.05; done
}

stop_daemon() {
	local name=$1 timeout=${2:-15} pid
	pid=$(daemon_pid "$name") || {
		rm -f "$PID_DIR/$name.pid"
		return 0
	}
	log "stopping $name"
	kill -TERM "$pid" 2>/dev/null || true
	local deadline=$((SECONDS + timeout))
	while [[ -e /proc/$pid ]] && ((SECONDS < deadline)); do sleep 0.2; done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$PID_DIR/$name.pid"
}

daemon_exited() {
	local name=$1
	daemon_running "$name" && return 1
	log "$name exited; last lines of $LOG_DIR/$name.log:"
	tail -n 20 "$LOG_DIR/$name.log" >&2 || true
	return 0
}

# wait_for_daemon NAME SECONDS DESCRIPTION CHECK...: fail fast if the daemon dies.
wait_for_daemon() {
	local name=$1 timeout=$2 what=$3
	shift 3
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		daemon_exited "$name" && die "$name did not start"
		((SECONDS < deadline)) || die "timed out waiting for $what (see $LOG_DIR/$name.log)"
		sleep 0.5
	done
	log "$what: ok"
}


containerd_answers() { ctr --address "$CONTAINERD_SOCK" version >/dev/null 2>&1; }
etcd_answers() { [[ $(curl -fsS --max-time 2 "http://127.0.0.1:$ETCD_CLIENT_PORT/health" 2>/dev/null) == *'"health":"true"'* ]]; }
# /readyz is open to anonymous users (system:public-info-viewer).
api_answers() {
	[[ -e $PKI_DIR/ca.crt ]] &&
		[[ $(curl -sS --max-time 3 --cacert "$PKI_DIR/ca.crt" "https://127.0.0.1:$API_PORT/readyz" 2>/dev/null) == ok ]]
}
# The node's Ready condition: True, False, Unknown, or nothing while it is not registered.
node_ready_condition() {
	kube get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null
}
node_ready() { [[ -e $ADMIN_KUBECONFIG ]] && [[ $(node_ready_condition) == True ]]; }
# The ServiceAccount admission plugin (1.20) rejects pods until the token Secret exists.
default_service_account_ready() {
	[[ -n $(kube -n default get serviceaccount default -o 'jsonpath={.secrets[0].name}' 2>/dev/null) ]]
}

start_containerd() {
	mkdir -p "$CONTAINERD_ROOT" "$CONTAINERD_STATE"
	start_daemon containerd containerd --config "$CLUSTER_DIR/containerd/config.toml"
	wait_for_daemon containerd 30 "containerd" containerd_answers
}

start_etcd() {
	start_daemon etcd etcd --name sortie-local --data-dir "$CLUSTER_DIR/etcd" \
		--listen-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--advertise-client-urls "http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
		--initial-cluster "sortie-local=http://127.0.0.1:$ETCD_PEER_PORT"
	wait_for_daemon etcd 30 "etcd" etcd_answers
}

start_apiserver() {
	start_daemon kube-apiserver "$KUBE_BIN_DIR/kube-apiserver" \
		--advertise-address="$(node_ip)" \
		--bind-address=0.0.0.0 \
		--secure-port="$API_PORT" \
		--insecure-port=0 \
		--etcd-servers="http://127.0.0.1:$ETCD_CLIENT_PORT" \
		--service-cluster-ip-range="$SERVICE_CIDR" \
		--allow-privileged=true \
		--token-auth-file="$CLUSTER_DIR/tokens.csv" \
		--client-ca-file="$PKI_DIR/ca.crt" \
		--tls-cert-file="$PKI_DIR/apiserver.crt" \
		--tls-private-key-file="$PKI_DIR/apiserver.key" \
		--kubelet-client-certificate="$PKI_DIR/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$PKI_DIR/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP,Hostname \
		--authorization-mode=Node,RBAC \
		--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,ResourceQuota,NodeRestriction \
		--service-account-key-file="$PKI_DIR/sa.pub" \
		--service-account-signing-key-file="$PKI_DIR/sa.key" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--profiling=false
	wait_for_daemon kube-apiserver 90 "kube-apiserver /readyz" api_answers
}

start_controller_manager() {
	local kubeconfig=$CLUSTER_DIR/kube-controller-manager.kubeconfig
	start_daemon kube-controller-manager "$KUBE_BIN_DIR/kube-controller-manager" \
		--kubeconfig="$kubeconfig" \
		--authentication-kubeconfig="$kubeconfig" \
		--authorization-kubeconfig="$kubeconfig" \
		--bind-address=127.0.0.1 \
		--port=0 \
		--leader-elect=false \
		--use-service-account-credentials=true \
		--service-account-private-key-file="$PKI_DIR/sa.key" \
		--root-ca-file="$PKI_DIR/ca.crt" \
		--cluster-name=sortie-local \
		--profiling=false
}

start_scheduler() {
	local kubeconfig=$CLUSTER_DIR/kube-scheduler.kubeconfig
	start_daemon kube-scheduler "$KUBE_BIN_DIR/kube-scheduler" \
		--kubeconfig="$kubeconfig" \
		--authentication-kubeconfig="$kubeconfig" \
		--authorization-kubeconfig="$kubeconfig" \
		--bind-address=127.0.0.1 \
		--port=0 \
		--leader-elect=false \
		--profiling=false
}

start_kubelet() {
	mkdir -p "$CLUSTER_DIR/kubelet"
	start_daemon kubelet "$KUBE_BIN_DIR/kubelet" \
		--config="$CLUSTER_DIR/kubelet-config.yaml" \
		--kubeconfig="$CLUSTER_DIR/kubelet.kubeconfig" \
		--container-runtime=remote \
		--container-runtime-endpoint="unix://$CONTAINERD_SOCK" \
		--image-service-endpoint="unix://$CONTAINERD_SOCK" \
		--runtime-request-timeout=5m \
		--hostname-override="$NODE_NAME" \
		--node-ip="$(node_ip)" \
		--root-dir="$CLUSTER_DIR/kubelet" \
		--cert-dir="$CLUSTER_DIR/kubelet/pki" \
		--pod-infra-container-image="$PAUSE_IMAGE" \
		--eviction-hard=
}

all_daemons_running() {
	local name
	for name in containerd "${KUBE_DAEMONS[@]}"; do daemon_running "$name" || return 1; done
}
any_daemon_running() {
	local name
	for name in containerd "${KUBE_DAEMONS[@]}"; do daemon_running "$name" && return 0; done
	return 1
}

# Delete all pods through the API while the kubelet still runs, so it tears down their
# sandboxes properly (CNI DEL releases IPs and iptables rules). Best effort, bounded.
drain_pods() {
	api_answers && daemon_running kubelet || return 0
	# Without the controller manager, deleted pods are not re-created by their owners.
	stop_daemon kube-controller-manager 3
	log "deleting all pods"
	kube delete pods --all --all-namespaces --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
	local deadline=$((SECONDS + 30))
	while ((SECONDS < deadline)); do
		[[ -z $(ctr_k8s tasks ls -q 2>/dev/null) ]] && return 0
		sleep 0.5
	done
	log "pods still running after 30s; killing them"
}

# Kills and removes every container in containerd's k8s.io namespace.
remove_all_containers() {
	local id
	containerd_answers || return 0
	for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
		ctr_k8s tasks kill --signal SIGKILL "$id" >/dev/null 2>&1 || true
	done
	sleep 0.5
	for id in $(ctr_k8s tasks ls -q 2>/dev/null); do
		ctr_k8s tasks delete --force "$id" >/dev/null 2>&1 || true
	done
	for id in $(ctr_k8s containers ls -q 2>/dev/null); do
		ctr_k8s containers delete "$id" >/dev/null 2>&1 || true
	done
}

# Anything still alive in the kubelet's pod cgroups (e.g. when containerd was gone already).
kill_pod_processes() {
	local procs pid
	for procs in /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs \
		/sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs; do
		[[ -r $procs ]] || continue
		while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$procs"
	done
}

# Shims of our containerd outlive it; they are found by the socket path on their command line.
kill_leftover_shims() {
	local dir cmdline
	for dir in /proc/[0-9]*; do
		cmdline=$({ tr '\0' ' ' <"$dir/cmdline"; } 2>/dev/null) || continue
		if [[ $cmdline == *containerd-shim*"$CONTAINERD_SOCK"* ]]; then
			kill -KILL "${dir#/proc/}" 2>/dev/null || true
		fi
	done
}
