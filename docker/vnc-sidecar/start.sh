#!/bin/bash
# Sortie VNC sidecar: a virtual X display for the app container next to it, served to the
# browser as VNC over WebSocket.
#
#   Xvnc $DISPLAY (X server and VNC server in one, VNC on 127.0.0.1:5900)  ->  websockify on 0.0.0.0:6080
#
# TigerVNC's Xvnc lets a viewer resize the desktop to its window (RFB SetDesktopSize) and
# carries the clipboard both ways, as far as VNC_CLIPBOARD allows.
#
# and, when VNC_PASSWORD is set, the file endpoint (files.py) on 0.0.0.0:6081: the session's
# home, mounted at /session-home, for Sortie's file API, behind the same secret.
#
# The X socket lives in /tmp/.X11-unix, an emptyDir shared with the app container. Runs as
# UID 1000 with every capability dropped. This script stays in the foreground as the
# container's main process: it exits non-zero as soon as any of its children dies (so the
# kubelet restarts or fails the pod instead of serving a dead display), and on SIGTERM it
# stops its children and exits 0.
#
# Environment:
#   DISPLAY            X display to create (default :99)
#   SCREEN_RESOLUTION  the desktop until a viewer asks for another, WIDTHxHEIGHTxDEPTH (default 1280x800x24)
#   VNC_PASSWORD       if set, VNC clients must give this password; otherwise none
#   VNC_CLIPBOARD      both, to_session, from_session or none (default both): which ways text
#                      may move between the viewers' clipboard and the session's
#   VNC_PORT           Xvnc's VNC port on localhost (default 5900)
#   WEBSOCKET_PORT     websockify's port on all interfaces (default 6080)
#   FILES_PORT         the file endpoint's port on all interfaces (default 6081)
set -u

export DISPLAY=${DISPLAY:-:99}
SCREEN_RESOLUTION=${SCREEN_RESOLUTION:-1280x800x24}
VNC_PORT=${VNC_PORT:-5900}
VNC_CLIPBOARD=${VNC_CLIPBOARD:-both}
WEBSOCKET_PORT=${WEBSOCKET_PORT:-6080}
export FILES_PORT=${FILES_PORT:-6081}

display_number=${DISPLAY#*:}
display_number=${display_number%%.*}
x_socket=/tmp/.X11-unix/X$display_number

xvnc_pid="" websockify_pid="" files_pid=""

log() { echo "sortie-vnc-start: $*" >&2; }

stop_children() {
	local pid
	for pid in $websockify_pid $xvnc_pid $files_pid; do
		kill -TERM "$pid" 2>/dev/null
	done
	wait
}

fail() {
	log "$*"
	stop_children
	exit 1
}

# shellcheck disable=SC2317  # invoked by the trap below
on_termination() {
	log "termination requested; stopping"
	trap - TERM INT
	stop_children
	exit 0
}
trap on_termination TERM INT

is_running() { kill -0 "$1" 2>/dev/null; }

# shellcheck disable=SC2317  # invoked through wait_for
# True once something listens on 127.0.0.1:PORT (read from /proc: no extra tools needed).
is_listening() {
	local hex_port
	hex_port=$(printf '%04X' "$1")
	grep -qE "^ *[0-9]+: [0-9A-F]+:$hex_port [0-9A-F]+:0000 0A " /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# wait_for SECONDS PID DESCRIPTION CHECK...: poll CHECK while PID lives.
wait_for() {
	local tries=$(($1 * 10)) pid=$2 what=$3
	shift 3
	until "$@"; do
		is_running "$pid" || fail "$what: the process exited"
		tries=$((tries - 1))
		((tries > 0)) || fail "$what: timed out"
		sleep 0.1
	done
}

mkdir -p /tmp/.X11-unix 2>/dev/null
# A socket left over from a previous run of this container would block the new server.
rm -f "$x_socket" 2>/dev/null

# First, so it holds its port before the app container (same network namespace) starts.
if [[ -n ${VNC_PASSWORD:-} ]]; then
	log "starting the file endpoint on 0.0.0.0:$FILES_PORT"
	python3 -X utf8 /usr/local/lib/sortie/files.py &
	files_pid=$!
	wait_for 30 "$files_pid" "file endpoint port $FILES_PORT" is_listening "$FILES_PORT"
else
	log "no VNC_PASSWORD: the file endpoint stays off"
fi

case $VNC_CLIPBOARD in
	both) to_session=1 from_session=1 ;;
	to_session) to_session=1 from_session=0 ;;
	from_session) to_session=0 from_session=1 ;;
	none) to_session=0 from_session=0 ;;
	*) fail "VNC_CLIPBOARD must be both, to_session, from_session or none, got \"$VNC_CLIPBOARD\"" ;;
esac
# Xvnc's own settings hold the catalog's choice; -AllowOverride= stops the app changing them
# at run time (vncconfig -set), and -noclipboard keeps the X side out of the way.
clipboard=(-AcceptCutText="$to_session" -SetPrimary="$to_session" -SendCutText="$from_session" -SendPrimary="$from_session" -AllowOverride= -noclipboard)

vnc_auth=(-SecurityTypes None)
if [[ -n ${VNC_PASSWORD:-} ]]; then
	# Xvnc reads its password file at every login, so the file must stay readable; it is
	# opened as descriptor 3 and deleted at once, so it is on no disk and no command line.
	password_file=$(umask 077 && mktemp "${TMPDIR:-/tmp}/vncpass.XXXXXX") || fail "cannot create a password file"
	printf '%s\n' "$VNC_PASSWORD" | tigervncpasswd -f >"$password_file" || fail "cannot write the VNC password file"
	exec 3<"$password_file"
	rm -f "$password_file"
	vnc_auth=(-SecurityTypes VncAuth -PasswordFile /proc/self/fd/3)
fi

width_height=${SCREEN_RESOLUTION%x*}
depth=${SCREEN_RESOLUTION##*x}
log "starting Xvnc $DISPLAY ($SCREEN_RESOLUTION, clipboard $VNC_CLIPBOARD) with VNC on 127.0.0.1:$VNC_PORT"
# -UseBlacklist=0: every client is websockify on 127.0.0.1; a blacklist after wrong passwords
# would lock Sortie itself out. -AlwaysShared: several viewers watch one desktop.
# A viewer may ask for any desktop size; 640 MiB of address space (Xvnc needs about 230 at
# 1280x800, 330 at 3840x2160) makes Xvnc refuse a huge one instead of growing until the
# container's memory limit kills the session.
(
	ulimit -v 655360 || exit 1
	exec Xvnc "$DISPLAY" -geometry "$width_height" -depth "$depth" -nolisten tcp \
		-rfbport "$VNC_PORT" -interface 127.0.0.1 -UseIPv6=0 "${vnc_auth[@]}" \
		-UseBlacklist=0 -AlwaysShared -AcceptSetDesktopSize=1 "${clipboard[@]}"
) &
xvnc_pid=$!
exec 3<&-
wait_for 30 "$xvnc_pid" "Xvnc socket $x_socket" test -S "$x_socket"
wait_for 30 "$xvnc_pid" "Xvnc port $VNC_PORT" is_listening "$VNC_PORT"

# Before any viewer connects: Xvnc puts each character a viewer types that the keymap lacks
# (ß, é, ą, ...) on a free key for good, and the map it starts with leaves 19 free, so a
# day of French or Czech runs out and later new characters are dropped. The bare pc+us
# symbols leave 131. The desktop still works without, so a failure is only told.
setxkbmap -display "$DISPLAY" -symbols pc+us || log "could not widen the keymap; characters beyond a US keyboard may run short"

# Only now listen on the WebSocket port: a readiness probe on it means the whole chain works.
# 127.0.0.1 rather than "localhost": Xvnc listens on IPv4 loopback only.
log "starting websockify 0.0.0.0:$WEBSOCKET_PORT -> 127.0.0.1:$VNC_PORT"
websockify "0.0.0.0:$WEBSOCKET_PORT" "127.0.0.1:$VNC_PORT" &
websockify_pid=$!

# Whichever child exits first ends the sidecar.
wait -n "$xvnc_pid" "$websockify_pid" $files_pid
status=$?
for entry in "Xvnc:$xvnc_pid" "websockify:$websockify_pid" ${files_pid:+"files.py:$files_pid"}; do
	is_running "${entry#*:}" || log "${entry%%:*} exited"
done
fail "shutting down after a child exited (status $status)"
