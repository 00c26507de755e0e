# shellcheck shell=bash
# debian_mirror [SOURCES_FILE]: the Debian mirror this machine's apt already uses for
# bookworm (the first deb822 stanza of Types "deb" whose Suites include "bookworm"),
# else Debian's CDN. Sourced by local-cluster.sh.
# The suite matters: debian.sources may list the security archive first, and debootstrap
# or a deb-src entry pointed there would fail.
debian_mirror() {
	local sources=${1:-/etc/apt/sources.list.d/debian.sources} uri=""
	if [[ -r $sources ]]; then
		uri=$(awk 'BEGIN { RS = ""; FS = "\n" }
			{
				uri = ""; suites = ""; types = ""
				for (i = 1; i <= NF; i++) {
					if ($i ~ /^URIs:/) { split($i, f, /[ \t]+/); uri = f[2] }
					else if ($i ~ /^Suites:/) suites = " " $i " "
					else if ($i ~ /^Types:/) types = " " $i " "
				}
				if (uri != "" && suites ~ / bookworm / && types ~ / deb /) { print uri; exit }
			}' "$sources")
	fi
	printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
