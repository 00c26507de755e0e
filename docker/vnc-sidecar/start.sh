#!/bin/bash
# Sortie VNC sidecar: a virtual X display for the app container next to it, served to the
# browser as VNC over WebSocket.
#
#   Xvfb $DISPLAY  ->  x11vnc on 127.0.0.1:5900  ->  websockify on 0.0.0.0:6080
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
#   SCREEN_RESOLUTION  Xvfb screen, WIDTHxHEIGHTxDEPTH (default 1280x800x24)
#   VNC_PASSWORD       if set, VNC clients must give this password; otherwise none
#   VNC_PORT           x11vnc's port on localhost (default 5900)
#   WEBSOCKET_PORT     websockify's port on all interfaces (default 6080)
#   FILES_PORT         the file endpoint's port on all interfaces (default 6081)
set -u

export DISPLAY=${DISPLAY:-:99}
SCREEN_RESOLUTION=${SCREEN_RESOLUTION:-1280x800x24}
VNC_PORT=${VNC_PORT:-5900}
WEBSOCKET_PORT=${WEBSOCKET_PORT:-6080}
export FILES_PORT=${FILES_PORT:-6081}

display_number=${DISPLAY#*:}
display_number=${display_number%%.*}
x_socket=/tmp/.X11-unix/X$display_number

xvfb_pid="" x11vnc_pid="" websockify_pid="" files_pid=""

log() { echo "sortie-vnc-start: $*" >&2; }

stop_children() {
	local pid
	for pid in $websockify_pid $x11vnc_pid $xvfb_pid $files_pid; do
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

log "starting Xvfb $DISPLAY ($SCREEN_RESOLUTION)"
Xvfb "$DISPLAY" -screen 0 "$SCREEN_RESOLUTION" -nolisten tcp &
xvfb_pid=$!
wait_for 30 "$xvfb_pid" "Xvfb socket $x_socket" test -S "$x_socket"

vnc_auth=(-nopw)
if [[ -n ${VNC_PASSWORD:-} ]]; then
	# Handed over in a private file that x11vnc deletes after reading ("rm:"), so the
	# password never shows up on a command line.
	password_file=$(umask 077 && mktemp "${TMPDIR:-/tmp}/vncpass.XXXXXX") || fail "cannot create a password file"
	printf '%s\n' "$VNC_PASSWORD" >"$password_file"
	vnc_auth=(-passwdfile "rm:$password_file")
fi

log "starting x11vnc on 127.0.0.1:$VNC_PORT"
x11vnc -display "$DISPLAY" -rfbport "$VNC_PORT" -localhost -forever -shared "${vnc_auth[@]}" &
x11vnc_pid=$!
wait_for 30 "$x11vnc_pid" "x11vnc port $VNC_PORT" is_listening "$VNC_PORT"

# Only now listen on the WebSocket port: a readiness probe on it means the whole chain works.
# 127.0.0.1 rather than "localhost": x11vnc -localhost listens on IPv4 only.
log "starting websockify 0.0.0.0:$WEBSOCKET_PORT -> 127.0.0.1:$VNC_PORT"
websockify "0.0.0.0:$WEBSOCKET_PORT" "127.0.0.1:$VNC_PORT" &
websockify_pid=$!

# Whichever child exits first ends the sidecar.
wait -n "$xvfb_pid" "$x11vnc_pid" "$websockify_pid" $files_pid
status=$?
for entry in "Xvfb:$xvfb_pid" "x11vnc:$x11vnc_pid" "websockify:$websockify_pid" ${files_pid:+"files.py:$files_pid"}; do
	is_running "${entry#*:}" || log "${entry%%:*} exited"
done
fail "shutting down after a child exited (status $status)"
