#!/usr/bin/env bash
# Installs what Sortie needs on a fresh Debian machine that has Node.js and npm:
# the desktop pieces the local runner starts (TigerVNC's Xvnc, websockify, demo apps),
# Chromium for the browser tests, the npm dependencies, and a build. Each step is
# skipped when it is already done, so running it again takes seconds.
set -Eeuo pipefail
# Never stop silently: say which command failed, where.
trap 'printf "[%s] error: \"%s\" failed with status %s at %s:%s\n" "setup" "$BASH_COMMAND" "$?" "${BASH_SOURCE[0]}" "$LINENO" >&2' ERR
cd "$(dirname "$0")/.."

# tigervnc-tools (vncpasswd, vncconfig), x11-utils (xdpyinfo), x11-xserver-utils (xsetroot) and
# xclip are for the tests, which paint a session's desktop and read it and its clipboard from the
# X side. postgresql is for the tests' second pass, on a real PostgreSQL (a throwaway cluster the
# tests start themselves from its initdb and pg_ctl).
apt_packages=(tigervnc-standalone-server tigervnc-tools websockify xterm x11-apps x11-utils x11-xserver-utils xclip xauth bubblewrap util-linux procps iproute2 fonts-dejavu-core shellcheck postgresql)
if [[ "${SORTIE_SETUP_BROWSER:-1}" == 1 ]]; then apt_packages+=(chromium); fi

missing=()
for pkg in "${apt_packages[@]}"; do
  # No `| grep -q`: under pipefail, grep quitting early can fail the pipeline for an installed package.
  [[ $(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null) == 'install ok installed' ]] || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) == 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # Through env: sudo drops DEBIAN_FRONTEND, and a debconf prompt would hang the install.
  "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm ci only when the lockfile changed since the last install.
stamp=node_modules/.sortie-lock-hash
hash=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || $(cat "$stamp") != "$hash" ]]; then
  echo "setup: npm ci"
  # A download that stalls is dropped after a minute and tried again (npm waits five by
  # default, and a stalled registry connection has cost a run ten).
  npm ci --no-audit --no-fund --loglevel=error --fetch-timeout=60000 --fetch-retries=5
  echo "$hash" >"$stamp"
fi

echo "setup: building"
# tsc prints its errors on stdout: kept, and shown only when the build fails.
if ! build_output=$(npm run --silent build 2>&1); then
  printf '%s\n' "$build_output" >&2
  echo "setup: 'npm run build' failed (its output is above)" >&2
  exit 1
fi
