#!/bin/sh
# runc wrapper used by the local cluster's containerd (runtimes.runc.options.BinaryName).
#
# Why it exists: some VMs (ours included) do not grant CAP_SYS_RESOURCE, even to root.
# Without it a process may raise its oom_score_adj but never lower it. The kubelet asks
# for negative values (-998 for the pod sandbox, -997 for Guaranteed pods), so
# `runc create` fails with "can't get final child's PID from pipe: EOF" and runc's debug
# log shows "failed to update /proc/self/oom_score_adj: Permission denied".
#
# For `runc create --bundle DIR` we therefore rewrite a negative process.oomScoreAdj in
# DIR/config.json to 0, and only when CAP_SYS_RESOURCE (bit 24) is really missing.
# Every other invocation goes to the real runc untouched.
set -eu

real_runc=${SORTIE_REAL_RUNC:-/usr/sbin/runc}

lacks_cap_sys_resource() {
	capeff=$(awk '/^CapEff:/ { print $2 }' /proc/self/status)
	[ $(((0x$capeff >> 24) & 1)) -eq 0 ]
}

is_create=0
bundle=
previous=
for arg in "$@"; do
	case $previous in
	--bundle | -b) bundle=$arg ;;
	esac
	case $arg in
	create) is_create=1 ;;
	--bundle=*) bundle=${arg#--bundle=} ;;
	esac
	previous=$arg
done

if [ "$is_create" = 1 ] && [ -n "$bundle" ] && [ -f "$bundle/config.json" ] && lacks_cap_sys_resource; then
	# containerd writes config.json as compact JSON, so the key/value pair has no spaces.
	if grep -q '"oomScoreAdj":-' "$bundle/config.json"; then
		sed -i -E 's/"oomScoreAdj":-[0-9]+/"oomScoreAdj":0/' "$bundle/config.json"
	fi
fi

exec "$real_runc" "$@"
