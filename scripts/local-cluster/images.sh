# shellcheck shell=bash
# Images without a registry. Pods on the local cluster run three images that are built
# here and imported into containerd's k8s.io namespace as docker-archive tars:
#   - pause (the pod sandbox), compiled from the Kubernetes source tree;
#   - the VNC sidecar and the demo apps, which share one base layer: a debootstrapped
#     bookworm with the X11/VNC packages and user 1000 (the sidecar adds its start script).
# Cache: $CACHE_DIR/rootfs/bookworm-x11-KEY (the unpacked rootfs) and
# $CACHE_DIR/images/NAME-KEY.tar (the archives), KEY being a hash of what went into them.
# docs/local-kubernetes.md describes the archive layout.
# Sourced by scripts/local-cluster.sh, which holds the settings and small helpers (log, die,
# kube, ctr_k8s) used here.

IMAGE_PACKAGES=(xvfb x11vnc websockify xterm x11-apps procps)
# Bump when the way images are assembled changes, so cached archives are rebuilt.
IMAGE_RECIPE_VERSION=1

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
