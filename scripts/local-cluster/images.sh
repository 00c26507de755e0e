# shellcheck shell=bash
# Images without a registry or a Docker engine. The repository's Dockerfiles are the only
# recipes: buildah builds them here and the results are imported into containerd's k8s.io
# namespace as docker-archive tars.
#   - debian:bookworm-slim: made locally from `debootstrap --variant=minbase bookworm`,
#     trimmed the way Debian's slim images are; the Dockerfiles' FROM finds it in
#     buildah's store (never pulled).
#   - node:20-bookworm-slim: that base plus this machine's Node 20 (node, npm, the headers)
#     in /usr/local, and user node (1000), as in the official image.
#   - sortie-vnc-sidecar, sortie-demo-apps, sortie: `buildah bud` of docker/vnc-sidecar/,
#     docker/demo-apps/ and the repository's Dockerfile.
#   - pause (the pod sandbox), compiled from the Kubernetes source tree.
# Each image carries a second tag, NAME:sortie-build-KEY, KEY being a hash of everything
# that went into it (recipe version, base image key, Dockerfile and build context), in
# buildah's store and in containerd: a run with nothing changed builds and imports nothing.
# Cache: $CACHE_DIR/rootfs/bookworm-minbase-KEY (the debootstrapped base),
# $CACHE_DIR/buildah (buildah's store, with its layer cache), and
# $CACHE_DIR/images/NAME-KEY.tar (the archives containerd imports).
# docs/local-kubernetes.md has the details. Sourced by scripts/local-cluster.sh, which holds
# the settings and small helpers (log, die, ctr_k8s, short_hash) used here.

# Bump when the way images are assembled changes, so cached builds are redone.
IMAGE_RECIPE_VERSION=2
BUILDAH_STORE=$CACHE_DIR/buildah
# buildah's run state (locks, mounts); /run so a reboot clears it, as it expects. One per
# store: two stores must not share it.
BUILDAH_RUNROOT=/run/sortie-buildah/$(printf '%s' "$BUILDAH_STORE" | short_hash)
DEBIAN_BASE_IMAGE=docker.io/library/debian:bookworm-slim
NODE_BASE_IMAGE=docker.io/library/node:20-bookworm-slim

# Overlay: the kernel's own overlayfs, as containerd uses; vfs would copy the whole
# filesystem for every layer.
bh() { buildah --root "$BUILDAH_STORE/storage" --runroot "$BUILDAH_RUNROOT" --storage-driver overlay "$@"; }
bh_has_image() { bh inspect --type image --format '{{.FromImageID}}' "$1" >/dev/null 2>&1; }

# An extra tag carrying the build key lets a run tell, in one lookup, whether a store
# holds the current build.
build_ref() { printf '%s:sortie-build-%s\n' "${1%:*}" "$2"; }

# --- the images the Dockerfiles build: NAME -> reference, Dockerfile, context, base ------

image_ref() {
	case $1 in
	sortie) printf '%s\n' "$SORTIE_IMAGE" ;;
	vnc-sidecar) printf '%s\n' "$SIDECAR_IMAGE" ;;
	demo-apps) printf '%s\n' "$DEMO_IMAGE" ;;
	*) die "unknown image '$1' (sortie, vnc-sidecar or demo-apps)" ;;
	esac
}
image_context() {
	case $1 in
	sortie) printf '%s\n' "$REPO_ROOT" ;;
	*) printf '%s/docker/%s\n' "$REPO_ROOT" "$1" ;;
	esac
}
image_base_key() {
	case $1 in
	sortie) node_base_key ;;
	*) debian_base_key ;;
	esac
}

# context_hash DIR: names, modes and contents of what `buildah bud DIR` sends as context.
# Top-level .dockerignore entries are honoured (ours has only those); find's -path also
# lets a pattern such as *.log match deeper, which at worst leaves a file out of the key.
context_hash() {
	local dir=$1 pattern prune=()
	if [[ -f $dir/.dockerignore ]]; then
		while read -r pattern; do
			pattern=${pattern#/}
			pattern=${pattern%/}
			[[ -z $pattern || $pattern == \#* || $pattern == !* ]] && continue
			prune+=(-path "./$pattern" -prune -o)
		done <"$dir/.dockerignore"
	fi
	(
		cd "$dir" || exit 1
		find . -mindepth 1 "${prune[@]}" \( -type f -o -type l \) -printf '%m %p\n' | sort
		find . -mindepth 1 "${prune[@]}" -type f -print0 | sort -z | xargs -0r sha256sum
	) | short_hash
}

image_key() {
	printf '%s\n' "recipe=$IMAGE_RECIPE_VERSION" "base=$(image_base_key "$1")" "context=$(context_hash "$(image_context "$1")")" |
		short_hash
}
image_archive() { printf '%s/images/%s-%s.tar\n' "$CACHE_DIR" "$1" "$2"; }

# --- debian:bookworm-slim ---------------------------------------------------------------

debian_base_key() {
	printf '%s\n' "recipe=$IMAGE_RECIPE_VERSION" "debootstrap --variant=minbase bookworm" "slim=1" | short_hash
}
rootfs_dir() { printf '%s\n' "$CACHE_DIR/rootfs/bookworm-minbase-$(debian_base_key)"; }

# The dpkg and apt settings of Debian's slim images: no documentation, manuals or
# translations, no package caches left in layers.
write_slim_settings() {
	local root=$1
	mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
	cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
	cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
	printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
	printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
	# What the settings above would have kept out, had they been there during debootstrap.
	find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
	find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
	find "$root/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
	rm -rf "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/lintian/* \
		"$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/log/*.log "$root"/var/log/apt/*
}

# debootstrap --variant=minbase bookworm, trimmed. Runs as its own process (subcommand
# build-images, in the background) so `up` can overlap it with the Kubernetes build: one
# is network/disk bound, the other CPU bound.
build_rootfs() {
	local dir tmp mirror attempt
	dir=$(rootfs_dir)
	[[ -e $dir/.complete ]] && return 0
	ensure_image_build_tools
	tmp=$dir.tmp
	mirror=$(debian_mirror "$APT_SOURCES_DIR/debian.sources")
	rm -rf --one-file-system "$tmp"
	mkdir -p "$(dirname "$dir")"
	# A download from the mirror can fail on a bad moment (seen once in CI as status 2
	# mid-retrieval); a second and third try cost little next to a failed run.
	for attempt in 1 2 3; do
		log "debootstrap --variant=minbase bookworm from $mirror"
		debootstrap --variant=minbase bookworm "$tmp" "$mirror" >&2 && break
		((attempt < 3)) || die "debootstrap failed three times; see the output above"
		log "debootstrap failed (try $attempt of 3); trying again in 10 s"
		rm -rf --one-file-system "$tmp"
		sleep 10
	done
	write_slim_settings "$tmp"
	: >"$tmp/etc/resolv.conf" # the container runtime provides its own
	touch "$tmp/.complete"
	# Older bases (other keys) are no longer used by anything.
	find "$CACHE_DIR/rootfs" -mindepth 1 -maxdepth 1 -not -name "$(basename "$dir")*" -exec rm -rf --one-file-system {} +
	mv "$tmp" "$dir"
	log "rootfs cached in $dir"
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
# The docker-archive layout that `ctr images import` and `buildah pull` understand:
# manifest.json, the image config named by its sha256, and the layer tars (diff_ids =
# their sha256, and one history entry each).
write_docker_archive() {
	local out=$1 config=$2 tags=$3
	shift 3
	local stage diff_ids="" layers="" history="" i=0 layer sum
	stage=$(mktemp -d "$CACHE_DIR/images/stage.XXXXXX")
	for layer in "$@"; do
		i=$((i + 1))
		mkdir "$stage/layer$i"
		ln "$layer" "$stage/layer$i/layer.tar" 2>/dev/null || cp "$layer" "$stage/layer$i/layer.tar"
		sum=$(sha256sum "$layer" | cut -d' ' -f1)
		diff_ids+="${diff_ids:+,}\"sha256:$sum\""
		layers+="${layers:+,}\"layer$i/layer.tar\""
		# One history entry per layer: buildah counts them when it builds on the image.
		history+="${history:+,}{\"created_by\":\"sortie local-cluster images.sh\"}"
	done
	local image_config config_sum repo_tags
	image_config=$(printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":[%s]},"history":[%s]}' \
		"$(dpkg --print-architecture)" "$config" "$diff_ids" "$history")
	config_sum=$(printf '%s' "$image_config" | sha256sum | cut -d' ' -f1)
	printf '%s' "$image_config" >"$stage/$config_sum.json"
	repo_tags=\"${tags//,/\",\"}\"
	printf '[{"Config":"%s.json","RepoTags":[%s],"Layers":[%s]}]' "$config_sum" "$repo_tags" "$layers" \
		>"$stage/manifest.json"
	(cd "$stage" && tar -cf "$out.tmp" manifest.json "$config_sum.json" layer*)
	mv "$out.tmp" "$out"
	rm -rf "$stage"
}

# debian:bookworm-slim in buildah's store: the rootfs as one layer, bash as its command.
ensure_debian_base() {
	local ref
	ref=$(build_ref "$DEBIAN_BASE_IMAGE" "$(debian_base_key)")
	if ! bh_has_image "$ref"; then
		build_rootfs
		local layer archive
		mkdir -p "$CACHE_DIR/images"
		layer=$(mktemp "$CACHE_DIR/images/debian-layer.XXXXXX")
		archive=$(mktemp "$CACHE_DIR/images/debian-archive.XXXXXX")
		make_layer_tar "$(rootfs_dir)" "$layer"
		write_docker_archive "$archive" \
			'{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"Cmd":["bash"]}' "$ref" "$layer"
		log "adding $DEBIAN_BASE_IMAGE to buildah's store"
		bh pull --quiet "docker-archive:$archive" >/dev/null
		rm -f "$layer" "$archive"
	fi
	bh tag "$ref" "$DEBIAN_BASE_IMAGE"
}

# --- node:20-bookworm-slim --------------------------------------------------------------

# The host's Node: the binary, npm and the headers (node-gyp builds native addons against
# them instead of downloading them). Debian's own nodejs is too old; this is Node 20 from
# wherever the machine got it, with bookworm's glibc like the image.
NODE_BIN="" NODE_PREFIX=""
find_host_node() {
	[[ -n $NODE_BIN ]] && return 0
	NODE_BIN=$(readlink -f "$(command -v node)") || die "node is not on PATH"
	local version
	version=$("$NODE_BIN" --version)
	[[ $version == v20.* ]] || die "$NODE_BASE_IMAGE needs Node 20, found $version at $NODE_BIN"
	NODE_PREFIX=$(dirname "$(dirname "$NODE_BIN")")
	[[ -f $NODE_PREFIX/lib/node_modules/npm/bin/npm-cli.js ]] || die "npm is not in $NODE_PREFIX/lib/node_modules/npm"
	[[ -f $NODE_PREFIX/include/node/node.h ]] || die "Node's headers are not in $NODE_PREFIX/include/node"
}

node_base_key() {
	find_host_node
	{
		printf '%s\n' "recipe=$IMAGE_RECIPE_VERSION" "base=$(debian_base_key)"
		sha256sum "$NODE_BIN"
		cat "$NODE_PREFIX/lib/node_modules/npm/package.json"
	} | short_hash
}

ensure_node_base() {
	local ref
	find_host_node # here too: node_base_key runs in a subshell
	ref=$(build_ref "$NODE_BASE_IMAGE" "$(node_base_key)")
	ensure_debian_base
	if ! bh_has_image "$ref"; then
		local stage
		rm -rf "$CACHE_DIR"/images/node-base.* # left by an interrupted run
		stage=$(mktemp -d "$CACHE_DIR/images/node-base.XXXXXX")
		mkdir -p "$stage/usr/local/bin" "$stage/usr/local/lib/node_modules" "$stage/usr/local/include"
		install -m 0755 "$NODE_BIN" "$stage/usr/local/bin/node"
		cp -a "$NODE_PREFIX/lib/node_modules/npm" "$stage/usr/local/lib/node_modules/"
		cp -a "$NODE_PREFIX/include/node" "$stage/usr/local/include/"
		ln -s ../lib/node_modules/npm/bin/npm-cli.js "$stage/usr/local/bin/npm"
		ln -s ../lib/node_modules/npm/bin/npx-cli.js "$stage/usr/local/bin/npx"
		cat >"$stage/Dockerfile" <<EOF
FROM $DEBIAN_BASE_IMAGE
COPY usr /usr
RUN groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node
ENV NODE_VERSION=$("$NODE_BIN" --version | cut -c2-)
CMD ["node"]
EOF
		log "building $NODE_BASE_IMAGE: $DEBIAN_BASE_IMAGE + Node $("$NODE_BIN" --version) from $NODE_PREFIX"
		bud "$stage/Dockerfile" "$stage" "$ref"
		rm -rf "$stage"
	fi
	bh tag "$ref" "$NODE_BASE_IMAGE"
}

# --- building and importing -------------------------------------------------------------

# npm inside a build gets what the host's npm needs to work here: its registry, its CA
# file (a TLS-inspecting proxy's CA, say), the local Node headers instead of a download
# from nodejs.org, and its package cache (warm after the host's own `npm ci`, so the
# image's `npm ci` downloads little). Bind-mounted for the RUN steps only, as npm's global
# configuration (/usr/local/etc/npmrc); nothing of it lands in a layer.
NPM_BUILD_DIR="" NPM_HOST_CACHE=""
npm_build_settings() {
	NPM_BUILD_DIR=$BUILDAH_STORE/npm
	local cafile registry
	mkdir -p "$NPM_BUILD_DIR"
	registry=$(npm config get registry 2>/dev/null || true)
	cafile=$(npm config get cafile 2>/dev/null || true)
	NPM_HOST_CACHE=$(npm config get cache 2>/dev/null || true)
	[[ -n $NPM_HOST_CACHE && $NPM_HOST_CACHE != null ]] || NPM_HOST_CACHE=$BUILDAH_STORE/npm-cache
	mkdir -p "$NPM_HOST_CACHE"
	{
		printf 'registry=%s\n' "${registry:-https://registry.npmjs.org/}"
		printf 'nodedir=/usr/local\ncache=/run/sortie-npm-cache\nprefer-offline=true\n'
		printf 'fund=false\naudit=false\nupdate-notifier=false\n'
		if [[ -n $cafile && $cafile != null && -r $cafile ]]; then
			cp "$cafile" "$NPM_BUILD_DIR/ca.crt"
			printf 'cafile=/run/sortie-npm/ca.crt\n'
		fi
	} >"$NPM_BUILD_DIR/npmrc"
}

# bud DOCKERFILE CONTEXT REF: buildah bud with what this machine allows. No registry: the
# FROM images must be in the store (--pull=never). The host's network (RUN steps reach the
# Debian mirror and the npm registry), chroot isolation (no runc, cgroups or network
# namespace set-up needed), docker format (keeps HEALTHCHECK), --layers (a changed source
# file does not redo `npm ci`).
bud() {
	local dockerfile=$1 context=$2 ref=$3
	npm_build_settings
	bh bud --pull=never --layers --format docker --network host --isolation chroot \
		--volume "$NPM_BUILD_DIR/npmrc:/usr/local/etc/npmrc:ro" --volume "$NPM_BUILD_DIR:/run/sortie-npm:ro" \
		--volume "$NPM_HOST_CACHE:/run/sortie-npm-cache" \
		--file "$dockerfile" --tag "$ref" "$context" >&2
}

# build_image_archive NAME [KEY]: builds the image from its Dockerfile unless buildah's
# store has this build, and writes it as a docker-archive tagged with its build reference.
# KEY, when the caller has it, keeps one run on one key while files change underneath.
# stdout: the archive's path.
build_image_archive() {
	local name=$1 key=${2:-} ref build archive
	ref=$(image_ref "$name")
	[[ -n $key ]] || key=$(image_key "$name")
	build=$(build_ref "$ref" "$key")
	archive=$(image_archive "$name" "$key")
	if [[ ! -e $archive ]]; then
		if ! bh_has_image "$build"; then
			local dockerfile started=$SECONDS
			dockerfile=$(image_context "$name")/Dockerfile
			if [[ $name == sortie ]]; then ensure_node_base; else ensure_debian_base; fi
			log "buildah bud ${dockerfile#"$REPO_ROOT"/} -> $ref"
			bud "$dockerfile" "$(image_context "$name")" "$build"
			log "built $ref in $((SECONDS - started))s"
		fi
		mkdir -p "$CACHE_DIR/images"
		rm -f "$CACHE_DIR/images/$name"-*.tar
		bh push --quiet "$build" "docker-archive:$archive.$$.tmp:$build" >&2
		mv "$archive.$$.tmp" "$archive"
	fi
	printf '%s\n' "$archive"
}

IMPORTED_REFS=""
refresh_imported_refs() { IMPORTED_REFS=$(ctr_k8s images ls -q 2>/dev/null || true); }
is_imported() { grep -qxF "$1" <<<"$IMPORTED_REFS"; }

import_archive() {
	log "importing $(basename "$1") into containerd (k8s.io)"
	ctr_k8s images import "$1" >&2
}

# import_image NAME [KEY]: builds (see build_image_archive) and imports what containerd
# lacks, then points the plain reference (:latest) at the current build.
import_image() {
	local name=$1 key=${2:-} ref build
	ref=$(image_ref "$name")
	[[ -n $key ]] || key=$(image_key "$name")
	build=$(build_ref "$ref" "$key")
	refresh_imported_refs
	is_imported "$build" || import_archive "$(build_image_archive "$name" "$key")"
	ctr_k8s images tag --force "$build" "$ref" >/dev/null
	# Earlier builds of this image are no longer referenced by anything.
	local old
	while read -r old; do
		[[ -z $old || $old == "$build" ]] || ctr_k8s images rm "$old" >/dev/null
	done < <(grep -F "${ref%:*}:sortie-build-" <<<"$IMPORTED_REFS" || true)
}

# The images `up` needs for session pods (Sortie's own is built on demand: `build-image`).
CLUSTER_IMAGES=(vnc-sidecar demo-apps)

# True if an image `up` imports is neither in containerd nor in the archive cache.
images_needed() {
	refresh_imported_refs
	local name ref key
	for name in "${CLUSTER_IMAGES[@]}"; do
		ref=$(image_ref "$name")
		key=$(image_key "$name")
		is_imported "$(build_ref "$ref" "$key")" || [[ -e $(image_archive "$name" "$key") ]] || return 0
	done
	return 1
}

# Builds the archives of CLUSTER_IMAGES (the subcommand build-images, which `up` runs in
# the background while it compiles Kubernetes).
build_cluster_images() {
	local name
	for name in "${CLUSTER_IMAGES[@]}"; do build_image_archive "$name" >/dev/null; done
}

IMAGE_BUILDER_PID=""
start_image_build_in_background() {
	local build_log=$CACHE_DIR/build/images.log
	mkdir -p "$CACHE_DIR/build"
	log "building ${CLUSTER_IMAGES[*]} from their Dockerfiles in the background (log: $build_log)"
	# Installed here, first: two apt-get runs at once would fight over the dpkg lock.
	ensure_image_build_tools
	setsid bash "$SCRIPT_PATH" build-images >"$build_log" 2>&1 9>&- </dev/null &
	IMAGE_BUILDER_PID=$!
}

stop_image_builder() {
	[[ -n $IMAGE_BUILDER_PID ]] || return 0
	kill -TERM -- "-$IMAGE_BUILDER_PID" 2>/dev/null || true
}

wait_for_image_builder() {
	[[ -n $IMAGE_BUILDER_PID ]] || return 0
	wait "$IMAGE_BUILDER_PID" || die "building the images failed; see $CACHE_DIR/build/images.log"
	IMAGE_BUILDER_PID=""
}

pause_key() { printf '%s\n' "recipe=$IMAGE_RECIPE_VERSION" "kubernetes=$KUBE_VERSION" | short_hash; }

build_pause_archive() {
	local out=$1 stage
	stage=$(mktemp -d "$CACHE_DIR/images/pause.XXXXXX")
	install -m 0755 "$KUBE_BIN_DIR/pause" "$stage/pause"
	tar -C "$stage" --numeric-owner --owner=0 --group=0 -cf "$stage.layer.tar" pause
	write_docker_archive "$out" '{"Entrypoint":["/pause"],"User":"65535:65535"}' \
		"$PAUSE_IMAGE,$(build_ref "$PAUSE_IMAGE" "$(pause_key)")" "$stage.layer.tar"
	rm -rf "$stage" "$stage.layer.tar"
}

# Builds what is missing and imports what containerd lacks: pause and CLUSTER_IMAGES.
ensure_images() {
	mkdir -p "$CACHE_DIR/images"
	wait_for_image_builder
	refresh_imported_refs
	local pause_tar name
	pause_tar=$(image_archive pause "$(pause_key)")
	if ! is_imported "$(build_ref "$PAUSE_IMAGE" "$(pause_key)")"; then
		[[ -e $pause_tar ]] || { rm -f "$CACHE_DIR"/images/pause-*.tar && build_pause_archive "$pause_tar"; }
		import_archive "$pause_tar"
	fi
	ensure_image_build_tools
	for name in "${CLUSTER_IMAGES[@]}"; do import_image "$name"; done
}
