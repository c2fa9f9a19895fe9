"""s3prl.download against a local HTTP server (127.0.0.1 only): cache, lock, checksums, offline, HF."""

from __future__ import annotations

import hashlib
import logging
import multiprocessing as mp
import os
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from s3prl import download
from s3prl.download import ChecksumError, DownloadError, OfflineError, resolve_checkpoint, resolve_hf_model

BODY = bytes(range(256)) * 64  # 16 KiB


class Server:
    """Routes: path -> dict(body, status, delay, truncate, fail_first). Records every request."""

    def __init__(self):
        self.routes: dict[str, dict] = {}
        self.requests: list[tuple[str, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests.append((self.path, dict(self.headers)))
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                time.sleep(route.get("delay", 0))
                if route.get("fail_first", 0) > 0:
                    route["fail_first"] -= 1
                    self.send_error(503)
                    return
                if route.get("status", 200) != 200:
                    self.send_error(route["status"])
                    return
                body = route["body"]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: route.get("truncate", len(body))])
                self.wfile.flush()
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    def add(self, path: str, body: bytes = BODY, **opts) -> str:
        self.routes[path] = {"body": body, **opts}
        return self.url + path

    def count(self, prefix: str = "") -> int:
        return sum(p.startswith(prefix) for p, _ in self.requests)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


pytestmark = pytest.mark.usefixtures("clean_download_env")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------------------------------------
def test_download_then_cache_hit_without_request(server, tmp_path):
    url = server.add("/files/model.pt")
    path = Path(resolve_checkpoint(url))
    assert path.read_bytes() == BODY
    assert path.parent == tmp_path / "cache" / "download"
    assert re.fullmatch(r"[0-9a-f]{16}_model\.pt", path.name)
    assert path.name.startswith(sha(url.encode())[:16])
    assert sha(BODY) in (path.parent / (path.name + ".sha256")).read_text()
    assert resolve_checkpoint(url) == str(path)
    assert server.count() == 1
    assert server.requests[0][1].get("User-Agent", "").startswith("s3prl")


def test_query_string_is_not_part_of_the_name(server):
    url = server.add("/s/abc/hubert.ckpt?dl=1")
    assert Path(resolve_checkpoint(url)).name.endswith("_hubert.ckpt")


def test_set_cache_dir(server, tmp_path):
    download.set_cache_dir(tmp_path / "elsewhere")
    assert download.get_cache_dir() == tmp_path / "elsewhere"
    path = resolve_checkpoint(server.add("/a.bin"))
    assert path.startswith(str(tmp_path / "elsewhere" / "download"))


def test_expected_sha256_accepted_and_mismatch_rejected(server):
    good = server.add("/good.pt")
    assert Path(resolve_checkpoint(good, sha256=sha(BODY).upper())).read_bytes() == BODY
    bad = server.add("/bad.pt")
    with pytest.raises(ChecksumError) as err:
        resolve_checkpoint(bad, sha256="0" * 64)
    msg = str(err.value)
    assert bad in msg and "0" * 64 in msg and sha(BODY) in msg
    assert server.count("/bad.pt") == 2  # one retry
    assert not download.cache_path(bad).exists()


def test_truncated_cached_file_is_detected_and_fetched_again(server, caplog):
    url = server.add("/m.pt")
    path = Path(resolve_checkpoint(url))
    path.write_bytes(BODY[:100])
    with caplog.at_level(logging.WARNING, logger="s3prl.download"):
        assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert server.count() == 2
    assert "damaged" in caplog.text


def test_same_size_corruption_needs_hash_check(server, monkeypatch):
    url = server.add("/m.pt")
    path = Path(resolve_checkpoint(url))
    st = path.stat()
    path.write_bytes(b"x" + BODY[1:])
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # size and mtime unchanged: cheap check passes
    resolve_checkpoint(url)
    assert server.count() == 1
    monkeypatch.setenv("S3PRL_VERIFY", "1")
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert server.count() == 2


def test_touched_file_is_rehashed_not_refetched(server):
    url = server.add("/m.pt")
    path = Path(resolve_checkpoint(url))
    os.utime(path, (time.time() - 100, time.time() - 100))
    resolve_checkpoint(url)
    assert server.count() == 1


def test_cached_file_with_other_expected_digest_is_replaced(server):
    url = server.add("/m.pt")
    resolve_checkpoint(url)
    server.routes["/m.pt"]["body"] = b"new release"
    assert Path(resolve_checkpoint(url, sha256=sha(b"new release"))).read_bytes() == b"new release"
    assert server.count() == 2


def test_refresh_reuses_a_fresh_file_and_refetches_an_old_one(server):
    url = server.add("/m.pt")
    path = Path(resolve_checkpoint(url))
    resolve_checkpoint(url, refresh=True)  # written < 2 s ago: shared by ranks that start together
    assert server.count() == 1
    old = time.time() - 60
    os.utime(path, (old, old))
    server.routes["/m.pt"]["body"] = b"v2"
    assert Path(resolve_checkpoint(url, refresh=True)).read_bytes() == b"v2"
    assert server.count() == 2


def test_offline_error_names_url_cache_path_and_local_alternative(server, monkeypatch):
    url = server.add("/m.pt")
    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    with pytest.raises(OfflineError) as err:
        resolve_checkpoint(url)
    msg = str(err.value)
    assert isinstance(err.value, RuntimeError)
    assert url in msg and str(download.cache_path(url)) in msg and "path_or_url=" in msg
    assert server.count() == 0


def test_offline_uses_the_cache(server, monkeypatch):
    url = server.add("/m.pt")
    path = resolve_checkpoint(url)
    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    assert resolve_checkpoint(url, refresh=True) == path
    assert server.count() == 1


def test_file_put_by_hand_into_the_cache_is_used_offline(server, monkeypatch):
    url = server.add("/m.pt")
    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    dest = download.cache_path(url)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"by hand")
    assert Path(resolve_checkpoint(url, sha256=sha(b"by hand"))).read_bytes() == b"by hand"
    with pytest.raises(OfflineError, match="unusable"):
        resolve_checkpoint(url, sha256="1" * 64)
    assert dest.exists()  # never deleted offline
    assert server.count() == 0


def test_hf_hub_offline_only_affects_huggingface(server, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    server.add("/org/repo/resolve/main/w.pt")
    with pytest.raises(OfflineError, match="HF_HUB_OFFLINE"):
        resolve_checkpoint("hf://org/repo/w.pt")
    assert Path(resolve_checkpoint(server.add("/plain.pt"))).read_bytes() == BODY


def test_404_and_401_messages(server, monkeypatch):
    missing = server.url + "/nope.pt"
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint(missing)
    assert "404" in str(err.value) and missing in str(err.value)
    assert server.count() == 1  # not retried
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    server.add("/org/private/resolve/main/w.pt", status=401)
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint("https://huggingface.co/org/private/resolve/main/w.pt")
    assert "401" in str(err.value) and "HF_TOKEN" in str(err.value)
    assert "huggingface.co/org/private/resolve/main/w.pt" in str(err.value)


def test_server_errors_are_retried(server):
    url = server.add("/flaky.pt", fail_first=1)
    assert Path(resolve_checkpoint(url)).read_bytes() == BODY
    assert server.count() == 2


def test_unreachable_host_suggests_offline_use(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint(f"http://127.0.0.1:{port}/m.pt")
    msg = str(err.value)
    assert "path_or_url" in msg and "S3PRL_OFFLINE" in msg


def test_dropped_connection_leaves_no_file(server):
    url = server.add("/big.pt", truncate=1000)
    with pytest.raises(DownloadError) as err:
        resolve_checkpoint(url)
    assert url in str(err.value) and "1000" in str(err.value)
    dest = download.cache_path(url)
    assert not dest.exists()
    assert not [p for p in dest.parent.iterdir() if ".part" in p.name or ".tmp" in p.name]  # nor its record
    assert server.count() == download.RETRIES


def _resolve_in_child(url, queue):
    queue.put(resolve_checkpoint(url))


def test_two_processes_download_once(server):
    url = server.add("/shared.pt", delay=0.5)
    ctx = mp.get_context("spawn")  # not fork: this process runs the server thread
    queue = ctx.Queue()
    procs = [ctx.Process(target=_resolve_in_child, args=(url, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=20) for _ in procs]
    for p in procs:
        p.join(timeout=20)
        assert p.exitcode == 0
    assert results[0] == results[1] and Path(results[0]).read_bytes() == BODY
    assert server.count() == 1


def test_huggingface_forms_use_hf_endpoint_and_token(server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url + "/")
    monkeypatch.setenv("HF_TOKEN", "secret-token")
    server.add("/org/repo/resolve/v1/sub/w.pt", body=b"v1")
    server.add("/org/repo/resolve/main/w.pt", body=b"main")
    assert Path(resolve_checkpoint("hf://org/repo/sub/w.pt@v1")).read_bytes() == b"v1"
    plain = resolve_checkpoint("hf://org/repo/w.pt")
    assert Path(plain).read_bytes() == b"main"
    assert resolve_checkpoint("https://huggingface.co/org/repo/resolve/main/w.pt") == plain  # same cache file
    assert [p for p, _ in server.requests] == ["/org/repo/resolve/v1/sub/w.pt", "/org/repo/resolve/main/w.pt"]
    assert all(h.get("Authorization") == "Bearer secret-token" for _, h in server.requests)
    with pytest.raises(ValueError, match="hf://"):
        resolve_checkpoint("hf://org/only-repo")


def test_token_is_not_sent_to_other_hosts(server):
    url = server.add("/plain.pt")
    os.environ["HF_TOKEN"] = "secret-token"
    try:
        resolve_checkpoint(url)
    finally:
        del os.environ["HF_TOKEN"]
    assert "Authorization" not in server.requests[0][1]


def test_resolve_hf_model_folder(server, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    server.add("/facebook/wav2vec2-base/resolve/main/config.json", body=b"{}")
    server.add("/facebook/wav2vec2-base/resolve/main/pytorch_model.bin", body=b"weights")
    folder = Path(resolve_hf_model("facebook/wav2vec2-base"))
    assert (folder / "config.json").read_bytes() == b"{}"
    assert (folder / "pytorch_model.bin").read_bytes() == b"weights"
    assert not (folder / "model.safetensors").exists()
    n = server.count()
    assert resolve_hf_model("facebook/wav2vec2-base") == str(folder)
    assert server.count() == n  # cached files, remembered absent optional file: no request
    monkeypatch.setenv("S3PRL_OFFLINE", "1")
    assert resolve_hf_model("facebook/wav2vec2-base") == str(folder)
    assert resolve_hf_model(str(tmp_path)) == str(tmp_path)  # a local folder is returned as is
    with pytest.raises(OfflineError):
        resolve_hf_model("facebook/other", files=["config.json"])


def test_resolve_hf_model_missing_required_file(server, monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", server.url)
    with pytest.raises(DownloadError, match="none of config.json"):
        resolve_hf_model("org/empty", files=["config.json"], revision="v2")
    assert server.requests[0][0] == "/org/empty/resolve/v2/config.json"


def test_local_paths(tmp_path, monkeypatch):
    f = tmp_path / "ckpt.pt"
    f.write_bytes(b"x")
    assert resolve_checkpoint(str(f)) == str(f)
    assert resolve_checkpoint(tmp_path) == str(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_checkpoint("~/ckpt.pt") == str(f)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        resolve_checkpoint(str(tmp_path / "missing.pt"))



def test_read_only_cache_is_used(server, monkeypatch):
    url = server.add("/m.pt")
    path = resolve_checkpoint(url)

    def no_lock(self, *args, **kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(download.FileLock, "acquire", no_lock)  # e.g. a shared cache prepared by an admin
    assert resolve_checkpoint(url) == path
    assert server.count() == 1
    with pytest.raises(PermissionError):
        resolve_checkpoint(server.add("/not-cached.pt"))
