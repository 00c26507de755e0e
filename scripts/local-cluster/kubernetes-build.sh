# shellcheck shell=bash
# The Kubernetes binaries (apiserver, controller manager, scheduler, kubelet, and the pause
# program), built from Debian's `kubernetes` source package (1.20.2, with Debian's security
# patches) and cached in $CACHE_DIR/kubernetes/VERSION/bin, keyed by the source version.
# Sourced by scripts/local-cluster.sh, which holds the settings and small helpers (log, die,
# kube, ctr_k8s) used here.

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
