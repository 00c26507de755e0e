#!/usr/bin/env bash
# Builds Sortie's container image without Docker and imports it into the local cluster.
#
#   scripts/build-sortie-image.sh [--no-import]
#
# Prints the path of the image (a docker-archive tar tagged ghcr.io/rjsadow/sortie:latest)
# on stdout. Needs root (debootstrap) and a prior `npm run build` (dist/). The image is
# the Dockerfile's equivalent, assembled from parts this machine already has:
#   layer 1  `debootstrap --variant=minbase bookworm` plus user 1000 (cached)
#   layer 2  the host's Node binary (Debian's nodejs is too old) in /usr/local/bin, and
#            /app: package.json, dist/, examples/ and production node_modules from
#            `npm ci --omit=dev` (cached per package-lock.json and Node binary, so
#            better-sqlite3's addon is compiled for exactly the Node that runs it; the
#            host's glibc is bookworm's, so the binaries run in the rootfs)
# Every input is hashed: a re-run with nothing changed reuses the cached archive and
# skips the import if containerd already has that build.
#
# Environment:
#   SORTIE_CACHE_DIR  cache (default ~/.cache/sortie, shared with scripts/local-cluster.sh)
set -Eeuo pipefail
# Never stop silently: say which command failed, where.
trap 'printf "[%s] error: \"%s\" failed with status %s at %s:%s\n" "build-sortie-image" "$BASH_COMMAND" "$?" "${BASH_SOURCE[0]}" "$LINENO" >&2' ERR

REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# HOME may be unset (systemd units, some CI runners); same fallback as local-cluster.sh.
CACHE_DIR=${SORTIE_CACHE_DIR:-${HOME:-/root}/.cache/sortie}
WORK_DIR=$CACHE_DIR/sortie-image
IMAGE=ghcr.io/rjsadow/sortie:latest
# Bump when the way the image is assembled changes, so cached parts are rebuilt.
RECIPE_VERSION=1
IMAGE_ENV='"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME=/home/sortie","NODE_ENV=production","SORTIE_PORT=8080","SORTIE_HOST=0.0.0.0","SORTIE_APPS_FILE=/app/examples/apps.json","SORTIE_DB_PATH=/var/lib/sortie/sortie.db"'

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH

log() { printf '[build-sortie-image] %s\n' "$*" >&2; }
die() {
  printf '[build-sortie-image] error: %s\n' "$*" >&2
  exit 1
}
short_hash() { sha256sum | cut -c1-16; }

IMPORT=1
case "${1:-}" in
  "") ;;
  --no-import) IMPORT=0 ;;
  *) die "usage: $0 [--no-import]" ;;
esac

[[ $(id -u) -eq 0 ]] || die "must run as root (debootstrap, chroot, mount)"
[[ -f $REPO_ROOT/dist/server/main.js && -f $REPO_ROOT/dist/web/index.html ]] ||
  die "dist/ is missing or incomplete: run 'npm run build' first"
NODE_BIN=$(readlink -f "$(command -v node)") || die "node is not on PATH"
NODE_VERSION=$("$NODE_BIN" --version)
[[ $NODE_VERSION == v20.* ]] || die "Sortie's image needs Node 20, found $NODE_VERSION at $NODE_BIN"
NODE_SUM=$(sha256sum "$NODE_BIN" | cut -d' ' -f1)

mkdir -p "$WORK_DIR" "$CACHE_DIR/images"

# Mounts left by an interrupted run must not survive it (nor be deleted through).
MOUNTS=()
cleanup() {
  local m
  for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null || true; done
}
trap cleanup EXIT

# --- layer 1: minimal Debian with user 1000 --------------------------------------------

ROOTFS_KEY=$(printf '%s\n' "recipe=$RECIPE_VERSION" "debootstrap minbase bookworm" "user=sortie:1000" | short_hash)
ROOTFS=$WORK_DIR/rootfs-$ROOTFS_KEY
BASE_LAYER=$WORK_DIR/base-$ROOTFS_KEY.layer.tar

# The bookworm mirror this machine's apt already uses (not merely the first URIs line,
# which may be the security archive that debootstrap cannot install from).
# shellcheck source=SCRIPTDIR/local-cluster/debian-mirror.sh
source "$REPO_ROOT/scripts/local-cluster/debian-mirror.sh"

build_rootfs() {
  command -v debootstrap >/dev/null || {
    log "apt-get install debootstrap"
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
  }
  local tmp=$ROOTFS.tmp
  rm -rf --one-file-system "$tmp"
  log "debootstrap --variant=minbase bookworm (once; a few minutes)"
  # A download from the mirror can fail on a bad moment (seen once in CI as status 2
  # mid-retrieval); a second and third try cost little next to a failed run.
  local attempt
  for attempt in 1 2 3; do
    debootstrap --variant=minbase bookworm "$tmp" "$(debian_mirror /etc/apt/sources.list.d/debian.sources)" >&2 && break
    ((attempt < 3)) || die "debootstrap failed three times; see the output above"
    log "debootstrap failed (try $attempt of 3); trying again in 10 s"
    rm -rf --one-file-system "$tmp"
    sleep 10
  done
  # No chroot needed for the user: append to the account files directly.
  echo 'sortie:x:1000:1000:Sortie:/home/sortie:/usr/sbin/nologin' >>"$tmp/etc/passwd"
  echo 'sortie:x:1000:' >>"$tmp/etc/group"
  echo 'sortie:!:19000::::::' >>"$tmp/etc/shadow"
  install -d -m 0755 -o 1000 -g 1000 "$tmp/home/sortie"
  # Nothing in the image installs packages: drop apt's caches and docs.
  rm -rf "$tmp"/var/cache/apt/* "$tmp"/var/lib/apt/lists/* "$tmp"/usr/share/doc/* \
    "$tmp"/usr/share/man/* "$tmp"/usr/share/info/* "$tmp"/var/log/*
  : >"$tmp/etc/resolv.conf" # the container runtime provides its own
  rm -rf --one-file-system "$ROOTFS"
  mv "$tmp" "$ROOTFS"
}

if [[ ! -f $BASE_LAYER ]]; then
  [[ -d $ROOTFS ]] || build_rootfs
  log "packing the base layer"
  rm -f "$WORK_DIR"/base-*.layer.tar
  # proc/sys/dev/run/tmp contents belong to the runtime, not the image.
  tar -C "$ROOTFS" --numeric-owner --anchored --exclude='./proc/*' --exclude='./sys/*' \
    --exclude='./dev/*' --exclude='./run/*' --exclude='./tmp/*' -cf "$BASE_LAYER.tmp" .
  mv "$BASE_LAYER.tmp" "$BASE_LAYER"
fi

# --- production node_modules, compiled for this Node ------------------------------------

MODULES_KEY=$({
  printf '%s\n' "recipe=$RECIPE_VERSION" "node=$NODE_SUM"
  cat "$REPO_ROOT/package-lock.json"
} | short_hash)
MODULES_DIR=$WORK_DIR/modules-$MODULES_KEY

if [[ ! -e $MODULES_DIR/.complete ]]; then
  log "npm ci --omit=dev (compiles better-sqlite3 for $NODE_VERSION; a few minutes)"
  rm -rf "$WORK_DIR"/modules-*
  mkdir -p "$MODULES_DIR"
  cp "$REPO_ROOT/package.json" "$REPO_ROOT/package-lock.json" "$MODULES_DIR/"
  (cd "$MODULES_DIR" && npm ci --omit=dev --no-audit --no-fund >&2) || die "npm ci --omit=dev failed"
  # Keep only the compiled addon of better-sqlite3: its sources and objects are ~25 MB.
  sqlite=$MODULES_DIR/node_modules/better-sqlite3
  [[ -f $sqlite/build/Release/better_sqlite3.node ]] || die "better-sqlite3 did not compile"
  find "$sqlite/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
  find "$sqlite/build/Release" -mindepth 1 -maxdepth 1 ! -name better_sqlite3.node -exec rm -rf {} +
  rm -rf "$sqlite/deps" "$sqlite/src"
  touch "$MODULES_DIR/.complete"
fi

# --- the image ------------------------------------------------------------------------

APP_SUM=$(cd "$REPO_ROOT" && find dist examples package.json -type f -print0 | sort -z | xargs -0 sha256sum | short_hash)
IMAGE_KEY=$(printf '%s\n' "recipe=$RECIPE_VERSION" "rootfs=$ROOTFS_KEY" "modules=$MODULES_KEY" "node=$NODE_SUM" "app=$APP_SUM" "env=$IMAGE_ENV" | short_hash)
ARCHIVE=$CACHE_DIR/images/sortie-$IMAGE_KEY.tar
# An extra tag naming the build lets a re-run see whether containerd has this very image.
BUILD_REF=${IMAGE%:*}:sortie-build-$IMAGE_KEY

# smoke_test APP_STAGE: the app layer over the base must run Node and load the addon
# (catches a glibc or ABI mismatch before the image reaches a pod).
smoke_test() {
  local stage=$1 mnt
  mnt=$(mktemp -d "$WORK_DIR/smoke.XXXXXX")
  mount -t overlay overlay -o "lowerdir=$stage:$ROOTFS" "$mnt" || { rmdir "$mnt"; return 1; }
  MOUNTS+=("$mnt")
  local ok=0
  chroot --userspec=1000:1000 "$mnt" /usr/bin/env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/home/sortie /bin/sh -c \
    'cd /app && node -e "const D = require(\"better-sqlite3\"); new D(\":memory:\").prepare(\"select 1\").get()"' >&2 || ok=1
  umount "$mnt"
  rmdir "$mnt"
  return $ok
}

build_archive() {
  local stage=$WORK_DIR/stage.$$
  rm -rf "$stage" "$WORK_DIR"/stage.*
  mkdir -p "$stage/app" "$stage/usr/local/bin"
  install -m 0755 "$NODE_BIN" "$stage/usr/local/bin/node"
  cp -a "$REPO_ROOT/package.json" "$REPO_ROOT/dist" "$REPO_ROOT/examples" "$stage/app/"
  cp -a "$MODULES_DIR/node_modules" "$stage/app/"
  # The database directory is the only place Sortie writes (a volume in the manifests).
  install -d -m 0755 "$stage/var/lib/sortie"

  [[ -d $ROOTFS ]] || build_rootfs
  log "smoke test: node + better-sqlite3 in the image's filesystem"
  smoke_test "$stage" || die "Node or better-sqlite3 does not run in the image's rootfs"

  log "packing the app layer"
  local app_layer=$stage.layer.tar
  # Everything read-only for the app's user (root-owned), except its database directory.
  chown -R 0:0 "$stage"
  chown 1000:1000 "$stage/var/lib/sortie"
  (cd "$stage" && tar --numeric-owner -cf "$app_layer" usr app var)

  local config image_config config_sum base_sum app_sum out_stage
  config="{\"Env\":[$IMAGE_ENV],\"Cmd\":[\"node\",\"dist/server/main.js\"],\"User\":\"1000\",\"WorkingDir\":\"/app\",\"ExposedPorts\":{\"8080/tcp\":{}},\"Labels\":{\"org.opencontainers.image.source\":\"https://github.com/rjsadow/sortie\"}}"
  base_sum=$(sha256sum "$BASE_LAYER" | cut -d' ' -f1)
  app_sum=$(sha256sum "$app_layer" | cut -d' ' -f1)
  image_config=$(printf '{"architecture":"%s","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]}}' \
    "$(dpkg --print-architecture)" "$config" "$base_sum" "$app_sum")
  config_sum=$(printf '%s' "$image_config" | sha256sum | cut -d' ' -f1)

  # docker-archive layout: manifest.json, <config sha256>.json, one dir per layer.
  out_stage=$stage.out
  mkdir -p "$out_stage/base" "$out_stage/app"
  ln "$BASE_LAYER" "$out_stage/base/layer.tar" 2>/dev/null || cp "$BASE_LAYER" "$out_stage/base/layer.tar"
  mv "$app_layer" "$out_stage/app/layer.tar"
  printf '%s' "$image_config" >"$out_stage/$config_sum.json"
  printf '[{"Config":"%s.json","RepoTags":["%s","%s"],"Layers":["base/layer.tar","app/layer.tar"]}]' \
    "$config_sum" "$IMAGE" "$BUILD_REF" >"$out_stage/manifest.json"
  rm -f "$CACHE_DIR"/images/sortie-*.tar
  (cd "$out_stage" && tar -cf "$ARCHIVE.tmp" manifest.json "$config_sum.json" base app)
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  rm -rf "$stage" "$out_stage"
}

if [[ -f $ARCHIVE ]]; then
  log "up to date: $ARCHIVE"
else
  build_archive
  log "built $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1))"
fi

if ((IMPORT)); then
  # `ctr images ls` columns: REF TYPE DIGEST ...; import only if :latest is not this build.
  refs=$(bash "$REPO_ROOT/scripts/local-cluster.sh" ctr images ls 2>/dev/null) ||
    die "the local cluster's containerd does not answer: run 'scripts/local-cluster.sh up' first"
  digest_of() { awk -v r="$1" '$1 == r { print $3 }' <<<"$refs"; }
  if [[ -n $(digest_of "$BUILD_REF") && $(digest_of "$BUILD_REF") == $(digest_of "$IMAGE") ]]; then
    log "containerd already has this build as $IMAGE"
  else
    bash "$REPO_ROOT/scripts/local-cluster.sh" import-image "$ARCHIVE" >&2
  fi
fi

printf '%s\n' "$ARCHIVE"
