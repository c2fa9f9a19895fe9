"""s3prl.download under faults, against a loopback HTTP/1.1 server (127.0.0.1 only).

Bodies cut without a length, chunked bodies without their end, servers that trickle, resumption with
``Range`` (honoured, ignored, refused), temporary files of dead processes, bad duration variables.
Every server loop is bounded in time, so nothing here can hang.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import re
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s3prl import download
from s3prl.download import DownloadError, resolve_checkpoint

BODY = bytes(range(256)) * 64  # 16 KiB
MAX_TRICKLE_S = 2.5  # a trickling answer gives up after this long


class FaultServer:
    """Routes: path -> options. Records each request's headers and the body bytes each route sent.

    Options: ``body``; ``length`` (send Content-Length, default True); ``chunked``; ``ranges`` (honour
    ``Range``/``If-Range``: 206 and 416); ``advertise`` (send ``Accept-Ranges: bytes``, default = ranges);
    ``etag``; ``cuts`` (list: the n-th request's body stops after that many bytes, None = whole);
    ``trickle`` (how many first requests get their body 16 bytes every 50 ms).
    """

    def __init__(self):
        self.routes: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []
        self.sent: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # chunked bodies, and bodies delimited by closing the connection

            def log_message(self, *args):
                pass

            def do_GET(self):
                route = server.routes.get(self.path)
                nth = sum(p == self.path for p, _ in server.requests)
                server.requests.append((self.path, dict(self.headers)))
                self.close_connection = True
                if route is None:
                    self.send_error(404)
                    return
                body, start, status = route["body"], 0, 200
                if route.get("ranges") and self._range_applies(route):
                    start = int(re.fullmatch(r"bytes=(\d+)-", self.headers["Range"])[1])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    status = 206
                cuts = route.get("cuts", [])
                cut = cuts[nth] if nth < len(cuts) else None
                data = body[start:][:cut]
                self._headers(route, status, start, len(body) - start)
                self._send(self.path, route, data, slow=nth < route.get("trickle", 0), whole=cut is None)

            def _range_applies(self, route):
                if "Range" not in self.headers:
                    return False
                if_range = self.headers.get("If-Range")
                return if_range is None or if_range == route.get("etag")

            def _headers(self, route, status, start, size):
                total = len(route["body"])
                self.send_response(status)
                if route.get("advertise", route.get("ranges")):
                    self.send_header("Accept-Ranges", "bytes")
                if route.get("etag"):
                    self.send_header("ETag", route["etag"])
                if status == 206:
                    self.send_header("Content-Range", f"bytes {start}-{total - 1}/{total}")
                if route.get("chunked"):
                    self.send_header("Transfer-Encoding", "chunked")
                elif route.get("length", True):
                    self.send_header("Content-Length", str(size))
                self.send_header("Connection", "close")
                self.end_headers()

            def _send(self, path, route, data, slow, whole):
                try:
                    if route.get("chunked"):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if data else b"")
                        if whole:
                            self.wfile.write(b"0\r\n\r\n")
                    elif slow:
                        deadline = time.monotonic() + MAX_TRICKLE_S
                        for i in range(0, len(data), 16):
                            if time.monotonic() > deadline:
                                break
                            self.wfile.write(data[i:i + 16])
                            server.sent[path] = server.sent.get(path, 0) + len(data[i:i + 16])
                            time.sleep(0.05)
                        return
                    else:
                        self.wfile.write(data)
                    server.sent[path] = server.sent.get(path, 0) + len(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes = BODY, **opts) -> str:
        self.routes[path] = {"body": body, **opts}
        return self.url + path

    def headers(self, path: str) -> list[dict]:
        return [h for p, h in self.requests if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FaultServer()
    yield s
    s.close()


pytestmark = pytest.mark.usefixtures("clean_download_env")


def leftovers(url: str) -> list[str]:
    """Files next to the cached file other than the file, its sidecar and its lock."""
    dest = download.cache_path(url)
    keep = {dest.name, dest.name + ".sha256", dest.name + ".lock"}
    return sorted(p.name for p in dest.parent.iterdir() if p.name not in keep)


# ------------------------------------------------------------------------------------------------
# 1. completeness when the size is not announced
def test_body_without_length_cut_early_is_not_stored_as_complete(server):
    # No Content-Length, no ranges: the body ends when the server closes the connection, and the first
    # answer is cut. Only a second identical copy shows that a body is whole.
    url = server.add("/nolen.pt", length=False, cuts=[8000])
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert len(server.requests) == 3  # cut copy, whole copy (differs), whole copy (same): accepted
    assert leftovers(url) == []


def test_body_without_length_is_confirmed_with_a_range_request(server):
    cut = server.add("/cut.pt", length=False, ranges=True, cuts=[8000])
    assert Path(resolve_checkpoint(cut)).read_bytes() == BODY
    assert [h.get("Range") for h in server.headers("/cut.pt")] == [None, "bytes=8000-"]  # 206: the rest
    whole = server.add("/whole.pt", length=False, ranges=True)
    assert Path(resolve_checkpoint(whole)).read_bytes() == BODY
    assert [h.get("Range") for h in server.headers("/whole.pt")] == [None, f"bytes={len(BODY)}-"]  # 416: done
    assert server.sent["/cut.pt"] == server.sent["/whole.pt"] == len(BODY)


def test_chunked_body_without_its_end_is_incomplete_and_resumed(server):
    url = server.add("/chunked.pt", chunked=True, ranges=True, cuts=[5000])
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert [h.get("Range") for h in server.headers("/chunked.pt")] == [None, "bytes=5000-"]
    whole = server.add("/chunked-whole.pt", chunked=True)
    assert Path(resolve_checkpoint(whole)).read_bytes() == BODY
    assert len(server.headers("/chunked-whole.pt")) == 1  # a terminated chunked body needs no confirmation


# ------------------------------------------------------------------------------------------------
# 2. stalls
def test_trickling_server_is_stopped_with_a_clear_error(server, monkeypatch):
    monkeypatch.setenv("S3PRL_DOWNLOAD_STALL", "0.3")
    monkeypatch.setattr(download, "RETRIES", 2)
    url = server.add("/slow.pt", trickle=10)
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint(url)
    assert time.monotonic() - t0 < 2.0  # two windows of 0.3 s, not the server's patience
    msg = str(err.value)
    assert url in msg and "stalled" in msg and "S3PRL_DOWNLOAD_STALL" in msg
    assert re.search(r"\d+ bytes received", msg)
    assert not download.cache_path(url).exists()


# ------------------------------------------------------------------------------------------------
# 3. resumption
def test_cut_download_resumes_with_range(server):
    url = server.add("/r.pt", ranges=True, etag='"v1"', cuts=[5000])
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    first, second = server.headers("/r.pt")
    assert "Range" not in first
    assert second["Range"] == "bytes=5000-" and second["If-Range"] == '"v1"'
    assert server.sent["/r.pt"] == len(BODY)  # no byte sent twice
    assert leftovers(url) == []


def test_partial_download_is_kept_across_runs_and_resumed(server, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)
    url = server.add("/runs.pt", ranges=True, cuts=[5000])
    with pytest.raises(DownloadError, match="5000 bytes received are kept"):
        resolve_checkpoint(url)
    assert not download.cache_path(url).exists()  # never a partial file under the final name
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY  # the next run
    assert server.headers("/runs.pt")[1]["Range"] == "bytes=5000-"
    assert server.sent["/runs.pt"] == len(BODY)
    assert leftovers(url) == []


def test_server_ignoring_range_restarts_from_zero(server):
    url = server.add("/ignore.pt", advertise=True, cuts=[5000])  # says it serves ranges, answers 200
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert server.headers("/ignore.pt")[1]["Range"] == "bytes=5000-"
    assert len(server.requests) == 2
    assert leftovers(url) == []


def test_changed_file_is_fetched_whole_not_mixed(server, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)
    url = server.add("/v.pt", ranges=True, etag='"v1"', cuts=[5000])
    with pytest.raises(DownloadError):
        resolve_checkpoint(url)
    new = bytes(reversed(BODY))
    server.routes["/v.pt"].update(body=new, etag='"v2"')  # a new release while we were away
    assert Path(resolve_checkpoint(url)).read_bytes() == new  # If-Range "v1" no longer holds: 200
    assert server.headers("/v.pt")[1]["If-Range"] == '"v1"'


def test_416_with_another_size_restarts(server, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 1)
    url = server.add("/shrunk.pt", ranges=True, cuts=[5000])
    with pytest.raises(DownloadError):
        resolve_checkpoint(url)
    server.routes["/shrunk.pt"]["body"] = b"smaller" * 100  # 700 bytes, no validator to tell
    assert Path(resolve_checkpoint(url)).read_bytes() == b"smaller" * 100
    assert [h.get("Range") for h in server.headers("/shrunk.pt")] == [None, "bytes=5000-", None]


def test_complete_part_left_by_a_crash_is_finished_without_downloading_again(server, monkeypatch):
    url = server.add("/crash.pt", ranges=True)
    real_replace = os.replace

    def crash_once(src, dst):
        monkeypatch.setattr(download.os, "replace", real_replace)
        raise KeyboardInterrupt  # stopped between the last byte and the rename into place

    monkeypatch.setattr(download.os, "replace", crash_once)
    with pytest.raises(KeyboardInterrupt):
        resolve_checkpoint(url)
    assert not download.cache_path(url).exists()
    sha = hashlib.sha256(BODY).hexdigest()
    assert Path(resolve_checkpoint(url, sha256=sha)).read_bytes() == BODY
    assert server.headers("/crash.pt")[1]["Range"] == f"bytes={len(BODY)}-"  # answered 416: nothing more
    assert server.sent["/crash.pt"] == len(BODY)
    assert leftovers(url) == []


# ------------------------------------------------------------------------------------------------
# 4. temporary files of dead processes
def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait(timeout=10)
    return child.pid


def test_temporary_files_of_dead_processes_are_removed(server):
    url = server.add("/o.pt")
    dest = download.cache_path(url)
    dest.parent.mkdir(parents=True)
    dead, alive = dead_pid(), os.getppid()
    day_old = time.time() - 2 * 86400

    def plant():
        names = {
            "dead": f".{dest.name}.tmp{dead}-abc123_x",
            "dead_sidecar": f".{dest.name}.sha256.tmp{dead}-q9w8e7r6",
            "alive": f".{dest.name}.tmp{alive}-abc123_x",
            "legacy_old": f".{dest.name}.k3j4h5g6.part",
            "legacy_new": f".{dest.name}.q1w2e3r4.part",
            "other": f".other.pt.tmp{dead}-abc123_x",
        }
        for name in names.values():
            (dest.parent / name).write_bytes(b"partial")
        os.utime(dest.parent / names["legacy_old"], (day_old, day_old))
        return names

    names = plant()
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY  # a download
    present = {p.name for p in dest.parent.iterdir()}
    assert {k for k, n in names.items() if n in present} == {"alive", "legacy_new", "other"}
    for name in present - {dest.name, dest.name + ".sha256", dest.name + ".lock"}:
        (dest.parent / name).unlink()
    names = plant()
    resolve_checkpoint(url)  # a cache hit cleans as well
    present = {p.name for p in dest.parent.iterdir()}
    assert {k for k, n in names.items() if n in present} == {"alive", "legacy_new", "other"}
    assert len(server.requests) == 1


def _resolve_in_child(url):
    resolve_checkpoint(url)


@pytest.mark.parametrize("etag", [None, '"v1"'])
def test_download_killed_midway_leaves_nothing_behind(server, etag):
    # The child's request trickles; later ones are quick. With a validator the part of the dead process
    # is resumed; without one it cannot be trusted (the file may have changed) and is dropped.
    url = server.add("/killed.pt", trickle=1, ranges=True, etag=etag)
    child = mp.get_context("spawn").Process(target=_resolve_in_child, args=(url,))
    child.start()
    deadline = time.monotonic() + 8
    while server.sent.get("/killed.pt", 0) < 100 and time.monotonic() < deadline:
        time.sleep(0.02)
    child.kill()  # SIGKILL: no cleanup of its own
    child.join(timeout=5)
    # the server's thread may still push a few bytes into the dead socket's buffer: wait until its count settles
    received, settle = server.sent.get("/killed.pt", 0), time.monotonic() + 5
    while time.monotonic() < settle:
        time.sleep(0.25)
        if server.sent.get("/killed.pt", 0) == received:
            break
        received = server.sent.get("/killed.pt", 0)
    assert received >= 100, "the child never started its download"
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert leftovers(url) == []
    resumed = server.headers("/killed.pt")[1].get("Range")
    if etag:  # from what the child had written: at most what the server sent it
        offset = int(re.fullmatch(r"bytes=(\d+)-", resumed)[1])
        assert 0 < offset <= received
        assert server.sent["/killed.pt"] == received + len(BODY) - offset  # the rest only
    else:
        assert resumed is None


# ------------------------------------------------------------------------------------------------
# 5. duration variables
@pytest.mark.parametrize("var", ["S3PRL_DOWNLOAD_TIMEOUT", "S3PRL_DOWNLOAD_STALL"])
@pytest.mark.parametrize("value", ["abc", "0", "-5", "nan", "inf", "1e400", "90000"])
def test_bad_duration_variables_are_refused_before_any_request(server, monkeypatch, var, value):
    monkeypatch.setenv(var, value)
    with pytest.raises(ValueError) as err:
        resolve_checkpoint(server.add("/m.pt"))
    msg = str(err.value)
    assert var in msg and repr(value) in msg and "greater than 0" in msg and "86400" in msg
    assert server.requests == []


@pytest.mark.parametrize("var", ["S3PRL_DOWNLOAD_TIMEOUT", "S3PRL_DOWNLOAD_STALL"])
def test_valid_duration_variables_are_used(server, monkeypatch, var):
    monkeypatch.setenv(var, " 0.25 ")
    assert download._env_seconds(var, 60.0) == 0.25
    monkeypatch.setenv(var, "")  # empty: the default
    assert download._env_seconds(var, 60.0) == 60.0
