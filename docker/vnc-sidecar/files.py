#!/usr/bin/env python3
"""Sortie's way into a session's home on Kubernetes: list, read and write files over HTTP.

Only Sortie talks to this: every request must carry the session's secret (VNC_PASSWORD) as
"Authorization: Bearer <secret>". Paths are "/"-separated plain names below the home (the
volume the app mounts as $HOME, at FILES_ROOT here). The app owns the home and may swap any
name in it for a symlink at any moment, so no path string is ever resolved: the home is
opened once and each component is opened below the folder opened before it (dir_fd) with
O_NOFOLLOW. Same rules and answers as Sortie's local runner (server/src/runners/local/
home-files.ts):

  GET /list?path=DIR               200 {"entries": [{name, type, size, mtime_ms}]}
  GET /content?path=FILE           200, the file's bytes (Content-Length, X-Modified-Ms)
  PUT /content?path=FILE&max=N     200 {"size"}; body raw (Content-Length or chunked)

Errors are JSON {"error", "message"}: 400 bad_request (a symlink, not a folder, a special
file), 404 not_found, 413 payload_too_large (over max, or the disk is full), 401 without the
secret. An upload goes to a temporary file beside the target, renamed over it once complete.

Environment: VNC_PASSWORD (required), FILES_ROOT (default /session-home), FILES_PORT
(default 6081).
"""

import errno
import hmac
import json
import os
import secrets
import socket
import stat
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

ROOT = os.environ.get("FILES_ROOT", "/session-home")
PORT = int(os.environ.get("FILES_PORT", "6081"))
SECRET = os.environ.get("VNC_PASSWORD", "").encode()

MAX_LIST_ENTRIES = 10_000
NEW_FILE_MODE = 0o644
TEMP_PREFIX = ".sortie-upload-"
CHUNK = 64 * 1024
# O_NONBLOCK: opening a FIFO the app planted must not hang the request.
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW


class Refusal(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def bad(message):
    return Refusal(400, message)


def symlink_refusal(shown):
    return bad(f'"{shown}" is or passes through a symbolic link; Sortie does not follow links '
               "in a session's home, which could lead out of it")


def too_large(max_bytes):
    mib = max_bytes / (1024 * 1024)
    shown = int(mib) if mib == int(mib) else f"{mib:.2f}"
    return Refusal(413, f"The file is larger than the upload limit of {shown} MiB (SORTIE_MAX_UPLOAD_MB)")


def fs_error(err, shown):
    code = err.errno
    if code == errno.ENOENT:
        return Refusal(404, f"\"{shown}\" does not exist in the session's home")
    if code == errno.ENOTDIR:
        return bad(f'A part of "{shown}" is not a folder')
    if code == errno.ELOOP:
        return symlink_refusal(shown)
    if code in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
        return bad(f'"{shown}" is a folder; upload to a file name inside it')
    if code == errno.ENAMETOOLONG:
        return bad(f'"{shown}" is too long a name')
    if code in (errno.EACCES, errno.EPERM):
        return bad(f'"{shown}" cannot be reached: permission denied')
    if code in (errno.ENOSPC, errno.EDQUOT):
        return Refusal(413, f"The session's home has no room left for \"{shown}\" (the disk is full)")
    return err


def entry_type(mode):
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISREG(mode):
        return "file"
    return "other"


def parse_path(raw):
    segments = [s for s in raw.split("/") if s != ""]
    for s in segments:
        if s in (".", "..") or "\0" in s:
            raise bad(f'"{s}" is not a plain file or folder name')
    return segments


def open_below(dir_fd, name, flags, shown):
    """Opens name inside dir_fd without following a symlink; errors say what is in the way."""
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as err:
        if err.errno in (errno.ENOTDIR, errno.ELOOP):
            # Only to word the refusal: the open above already refused whatever is there.
            try:
                st = os.lstat(name, dir_fd=dir_fd)
            except OSError:
                st = None
            if st and stat.S_ISLNK(st.st_mode):
                raise symlink_refusal(shown) from None
            if st and not stat.S_ISDIR(st.st_mode):
                raise bad(f'"{shown}" is not a folder') from None
        raise fs_error(err, shown) from None


def open_folder(segments):
    """The home, then each component below the one before, refusing symlinks and non-folders."""
    try:
        fd = os.open(ROOT, DIR_FLAGS)
    except OSError as err:
        raise Refusal(404, f"The session's home is not there ({errno.errorcode.get(err.errno, 'error')})") from None
    try:
        for i, segment in enumerate(segments):
            following = open_below(fd, segment, DIR_FLAGS, "/".join(segments[: i + 1]))
            os.close(fd)
            fd = following
        # The second line: the folder held open must still lie inside the home.
        where = os.readlink(f"/proc/self/fd/{fd}")
        root = os.path.realpath(ROOT)
        if where != root and not where.startswith(root.rstrip("/") + "/"):
            if where.endswith(" (deleted)"):
                raise Refusal(404, f'"{"/".join(segments)}" was removed')
            raise bad(f"\"{'/'.join(segments)}\" leads out of the session's home")
        return fd
    except BaseException:
        os.close(fd)
        raise


def open_parent(segments, what):
    if not segments:
        raise bad(f"The path names the home folder itself; give the path of a file to {what}")
    return open_folder(segments[:-1]), segments[-1], "/".join(segments)


def list_folder(segments):
    fd = open_folder(segments)
    try:
        entries = []
        with os.scandir(fd) as reading:
            for dirent in reading:
                if len(entries) >= MAX_LIST_ENTRIES:
                    break
                try:
                    # A symlink is listed as itself, never as what it points to.
                    st = os.lstat(dirent.name, dir_fd=fd)
                except OSError:
                    continue  # removed since the folder was read
                entries.append({"name": dirent.name, "type": entry_type(st.st_mode),
                                "size": st.st_size, "mtime_ms": st.st_mtime_ns // 1_000_000})
        return entries
    finally:
        os.close(fd)


def mode_to_replace(folder, name, shown):
    """The mode the new file gets: that of the file it replaces (without set-id bits), else 0644."""
    try:
        st = os.lstat(name, dir_fd=folder)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return NEW_FILE_MODE
        raise fs_error(err, shown) from None
    if stat.S_ISLNK(st.st_mode):
        raise symlink_refusal(shown)
    if stat.S_ISDIR(st.st_mode):
        raise bad(f'"{shown}" is a folder; upload to a file name inside it')
    if not stat.S_ISREG(st.st_mode):
        raise bad(f'"{shown}" is not a regular file ({entry_type(st.st_mode)}), so it cannot be replaced')
    return st.st_mode & 0o777


class CutOff(Exception):
    """The request body ended before it was complete."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # A connection silent this long (in either direction) is dropped.
    timeout = 300

    def version_string(self):
        return "sortie-files"

    def log_message(self, fmt, *args):
        sys.stderr.write("sortie-files: %s %s\n" % (self.address_string(), fmt % args))

    # 100 Continue is sent by do_PUT once the upload is admitted, so a refused upload is
    # answered before the client sends any of its body.
    def handle_expect_100(self):
        return True

    body_started = False

    def do_GET(self):
        self.serve(self.get)

    def do_PUT(self):
        self.serve(self.put)

    def serve(self, action):
        self.body_started = False
        try:
            if not hmac.compare_digest(self.headers.get("Authorization", "").encode(), b"Bearer " + SECRET):
                raise Refusal(401, "This endpoint answers only Sortie (the session's secret is missing or wrong)")
            url = urlsplit(self.path)
            try:
                query = parse_qs(url.query, keep_blank_values=True, errors="strict")
            except UnicodeDecodeError:
                raise bad("The path is not valid UTF-8") from None
            action(url.path, query, parse_path(query.get("path", [""])[-1]))
        except Refusal as refusal:
            self.answer(refusal.status, {"error": {400: "bad_request", 401: "unauthorized", 404: "not_found",
                                                   413: "payload_too_large"}[refusal.status], "message": str(refusal)})
        except (CutOff, ConnectionError, TimeoutError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - answered, not hidden
            self.log_message("failed: %r", err)
            self.answer(500, {"error": "internal", "message": f"The file endpoint failed: {err}"})

    def answer(self, status, body, extra=()):
        data = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for header in extra:
                self.send_header(*header)
            if status >= 400:
                # Whatever of a request body is left unread is not read: the connection ends.
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            self.wfile.write(data)
            if status >= 400 and self.body_started:
                self.linger()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def linger(self):
        """After refusing an upload midway: let the answer reach the client before closing.

        Closing with unread body bytes would reset the connection, and the reset can overtake
        the answer. The client stops sending once it has the answer; this waits for that,
        briefly and for a bounded amount.
        """
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_WR)
        self.connection.settimeout(2)
        for _ in range(1024):
            if not self.rfile.read1(CHUNK):
                return

    def get(self, route, query, segments):
        if route == "/list":
            return self.answer(200, {"entries": list_folder(segments)})
        if route != "/content":
            raise Refusal(404, f"No such endpoint: {route}")
        folder, name, shown = open_parent(segments, "download")
        try:
            fd = open_below(folder, name, READ_FLAGS, shown)
        finally:
            os.close(folder)
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise bad(f'"{shown}" is a folder; list it with GET /api/sessions/{{id}}/files?path={shown}')
            if not stat.S_ISREG(st.st_mode):
                raise bad(f'"{shown}" is not a regular file ({entry_type(st.st_mode)}), so it cannot be downloaded')
            os.set_blocking(fd, True)
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(st.st_size))
            self.send_header("X-Modified-Ms", str(st.st_mtime_ns // 1_000_000))
            self.end_headers()
            # Exactly the size announced, even if the app keeps writing to the file. Once the
            # headers are out, any failure can only cut the body short: the client sees that.
            left = st.st_size
            try:
                while left > 0:
                    chunk = os.read(fd, min(CHUNK, left))
                    if not chunk:  # truncated by the app meanwhile
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
            except OSError as err:
                self.log_message("download of %s cut: %r", shown, err)
            if left > 0:
                self.close_connection = True
        finally:
            os.close(fd)

    def put(self, route, query, segments):
        if route != "/content":
            raise Refusal(404, f"No such endpoint: {route}")
        try:
            max_bytes = int(query.get("max", [""])[-1])
        except ValueError:
            raise bad("max (the upload limit in bytes) is required") from None
        length = self.headers.get("Content-Length")
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        if not chunked and length is None:
            raise Refusal(400, "Send the body with Content-Length or chunked")
        if length is not None and not chunked and int(length) > max_bytes:
            raise too_large(max_bytes)
        folder, name, shown = open_parent(segments, "upload")
        try:
            mode = mode_to_replace(folder, name, shown)
            temp = f"{TEMP_PREFIX}{secrets.token_hex(8)}.part"
            try:
                # O_EXCL | O_NOFOLLOW: a name the app planted meanwhile fails, never gets followed.
                fd = os.open(temp, TEMP_FLAGS, 0o600, dir_fd=folder)
            except OSError as err:
                raise fs_error(err, shown) from None
            try:
                try:
                    if self.headers.get("Expect", "").lower() == "100-continue":
                        self.send_response_only(100)
                        self.end_headers()
                    self.body_started = True
                    size = self.copy_body(fd, chunked, None if chunked else int(length), max_bytes, shown)
                    os.fchmod(fd, mode)
                    os.fdatasync(fd)
                finally:
                    os.close(fd)
                # rename replaces the name itself: whatever the app put there is not followed.
                try:
                    os.rename(temp, name, src_dir_fd=folder, dst_dir_fd=folder)
                except OSError as err:
                    raise fs_error(err, shown) from None
            except BaseException:
                try:
                    os.unlink(temp, dir_fd=folder)
                except OSError:
                    pass
                raise
        finally:
            os.close(folder)
        self.answer(200, {"size": size})

    def copy_body(self, fd, chunked, length, max_bytes, shown):
        """Writes the body to fd as it arrives, at most max_bytes; returns its size."""
        size = 0
        for chunk in (self.chunks() if chunked else self.fixed(length)):
            size += len(chunk)
            if size > max_bytes:
                raise too_large(max_bytes)
            view = memoryview(chunk)
            while view:
                try:
                    view = view[os.write(fd, view):]
                except OSError as err:
                    raise fs_error(err, shown) from None
        return size

    def fixed(self, length):
        while length > 0:
            chunk = self.rfile.read1(min(CHUNK, length))
            if not chunk:
                raise CutOff()
            length -= len(chunk)
            yield chunk

    def chunks(self):
        """The body of a chunked request, piece by piece (RFC 9112 7.1); trailers skipped."""
        while True:
            line = self.rfile.readline(1024)
            if not line.endswith(b"\n"):
                raise CutOff()
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise bad("Malformed chunked body") from None
            if size == 0:
                break
            yield from self.fixed(size)
            if self.rfile.readline(3).strip() != b"":
                raise bad("Malformed chunked body")
        for _ in range(100):
            trailer = self.rfile.readline(8192)
            if not trailer.endswith(b"\n"):
                raise CutOff()
            if trailer in (b"\r\n", b"\n"):
                return
        raise bad("Too many trailers")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    if not SECRET:
        sys.exit("sortie-files: VNC_PASSWORD is not set; the file endpoint needs the session's secret")
    sys.stderr.write(f"sortie-files: serving {ROOT} on 0.0.0.0:{PORT}\n")
    Server(("0.0.0.0", PORT), Handler).serve_forever()
