"""Checkpoint resolution: local paths, URLs and HuggingFace files -> verified local files.

``resolve_checkpoint(path_or_url)`` returns a local path:

* a local file or folder (``~`` expanded) is returned as is;
* ``http(s)://`` URLs are downloaded once into the cache;
* ``hf://<org>/<repo>/<path/in/repo>[@revision]`` and ``https://huggingface.co/.../resolve/<rev>/<file>``
  are fetched from ``$HF_ENDPOINT`` (default https://huggingface.co) with ``$HF_TOKEN`` if set.

``resolve_hf_model(repo_id, files)`` fetches several files of one HuggingFace model repository into
one folder (for the ``hf_*`` entries whose checkpoint is a model id such as ``facebook/wav2vec2-base``).

The cache lives in ``$S3PRL_CACHE`` (default ``~/.cache/s3prl``; ``set_cache_dir`` overrides both),
files under ``<cache>/download/<sha256(url)[:16]>_<basename>``. Every download

* holds ``filelock.FileLock(<file>.lock)``, so concurrent processes (torchrun ranks) fetch it once;
* streams into ``.<file>.part`` in the same folder and, once complete and verified, fsyncs it and
  ``os.replace``s it into place, so no partial or wrong file ever appears under the final name;
* is complete or fails: the announced size must arrive, a chunked body must end with its terminator, and
  a body that just ends when the server closes the connection is confirmed by a second request
  (``Range`` past its end, or a second identical copy from a server without ranges);
* resumes: after a cut the next attempt (or the next run) asks for ``Range: bytes=<received>-`` with
  ``If-Range``, and starts from zero when the server answers with the whole file (200) or 416 with
  another size. The partial file is kept after a failure only when the server serves ranges;
* is stopped when it stalls: fewer than ``STALL_MIN_BYTES`` within ``$S3PRL_DOWNLOAD_STALL`` seconds;
* cleans up after dead processes: temporary files are named ``.<file>.tmp<PID>-<random>`` and those
  whose PID no longer runs are removed (under the lock) the next time the file is asked for;
* is hashed (sha256) while streaming: checked against the expected digest when one is known (one
  retry, then ``ChecksumError``), and recorded in ``<file>.sha256`` with the file's size and mtime.
  A cache hit is checked against that record (size always; the full hash when size/mtime changed or
  ``S3PRL_VERIFY=1``), so a truncated or damaged cached file is noticed and fetched again.

Environment: ``S3PRL_OFFLINE=1`` (and ``HF_HUB_OFFLINE=1`` for HuggingFace files) never touches the
network and raises ``OfflineError`` naming where to put the file; ``S3PRL_NO_PROGRESS=1`` hides the
progress bar; ``S3PRL_DOWNLOAD_TIMEOUT`` (seconds, default 60) bounds each network read and
``S3PRL_DOWNLOAD_STALL`` (seconds, default 60) is the stall window. Both must be numbers in
(0, 86400]; anything else raises ``ValueError`` when a download starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import http.client
import json
import logging
import math
import os
import re
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Sequence

from filelock import FileLock

from .tempfiles import pid_alive

__all__ = [
    "ChecksumError",
    "DownloadError",
    "HF_MODEL_FILES",
    "HTTPStatusError",
    "OfflineError",
    "cache_path",
    "get_cache_dir",
    "hf_url",
    "resolve_checkpoint",
    "resolve_hf_model",
    "set_cache_dir",
]

logger = logging.getLogger(__name__)

HF_HOST = "https://huggingface.co"
USER_AGENT = "s3prl (+https://github.com/s3prl/s3prl)"
CHUNK = 1 << 20
RETRIES = 3  # network attempts per download (connection errors, timeouts, 5xx, 429)
BACKOFF_S = 1.0  # wait before retry k: BACKOFF_S * 2**(k-1)
TIMEOUT_S = 60.0  # default of S3PRL_DOWNLOAD_TIMEOUT: seconds one network read may wait
STALL_S = 60.0  # default of S3PRL_DOWNLOAD_STALL: window within which STALL_MIN_BYTES must arrive
STALL_MIN_BYTES = 64 * 1024  # about 1 KiB/s with the default window: slower never finishes a checkpoint
MAX_SECONDS = 86400.0  # upper bound of the duration variables (a day: "never" in practice)
LEGACY_TEMP_AGE_S = 86400.0  # temporary files without a PID in their name are removed once this old
NEW_ENOUGH_S = 2.0  # refresh=True reuses a file written less than this long ago (ranks starting together)
# Files of a HuggingFace model folder: a tuple lists alternatives (first that exists); None = optional.
HF_MODEL_FILES: tuple = ("config.json", ("preprocessor_config.json", None), ("model.safetensors", "pytorch_model.bin"))

_cache_dir: Path | None = None


class DownloadError(RuntimeError):
    """A file could not be downloaded."""


class ChecksumError(DownloadError):
    """A downloaded file does not have the expected sha256 digest."""


class OfflineError(RuntimeError):
    """Offline mode is on and the file is not in the cache."""


class HTTPStatusError(DownloadError):
    """The server answered with an HTTP error status (``status``) that retrying will not fix."""

    def __init__(self, msg: str, status: int):
        super().__init__(msg)
        self.status = status


class _IncompleteError(DownloadError):
    """The connection closed before the whole body arrived."""


# --------------------------------------------------------------------------------------------
# cache location
def set_cache_dir(path: str | os.PathLike | None) -> None:
    """Use ``path`` as the cache folder (None: back to ``$S3PRL_CACHE`` / ``~/.cache/s3prl``)."""
    global _cache_dir
    _cache_dir = Path(os.path.expanduser(str(path))) if path is not None else None


def get_cache_dir() -> Path:
    """The cache folder: ``set_cache_dir`` value, else ``$S3PRL_CACHE``, else ``~/.cache/s3prl``."""
    if _cache_dir is not None:
        return _cache_dir
    return Path(os.path.expanduser(os.environ.get("S3PRL_CACHE") or "~/.cache/s3prl"))


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]", "_", urllib.parse.unquote(name)).strip("._")
    return name or "file"


def cache_path(url: str) -> Path:
    """Where the cache keeps ``url``: ``<cache>/download/<sha256(url)[:16]>_<basename without query>``."""
    url = _canonical(url)
    digest = hashlib.sha256(url.encode()).hexdigest()[:16]
    base = os.path.basename(urllib.parse.urlsplit(url).path)
    return get_cache_dir() / "download" / f"{digest}_{_safe_name(base)}"


# --------------------------------------------------------------------------------------------
# HuggingFace addresses
def _hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or HF_HOST).rstrip("/")


def hf_url(repo_id: str, filename: str, revision: str = "main") -> str:
    """The canonical ``https://huggingface.co/<repo>/resolve/<revision>/<file>`` address."""
    quoted_rev = urllib.parse.quote(revision, safe="")
    return f"{HF_HOST}/{repo_id.strip('/')}/resolve/{quoted_rev}/{filename.lstrip('/')}"


def _parse_hf(ref: str) -> str:
    """``hf://org/repo/path/in/repo[@revision]`` -> canonical HuggingFace URL."""
    body = ref[len("hf://"):]
    revision = "main"
    if "@" in body:
        body, revision = body.rsplit("@", 1)
    parts = [p for p in body.split("/") if p]
    if len(parts) < 3 or not revision:
        raise ValueError(
            f"{ref!r} is not a HuggingFace file reference: use hf://<org>/<repo>/<path/in/repo>[@revision]"
        )
    return hf_url("/".join(parts[:2]), "/".join(parts[2:]), revision)


def _canonical(url: str) -> str:
    return _parse_hf(url) if url.startswith("hf://") else url


def _is_hf(url: str) -> bool:
    host = urllib.parse.urlsplit(url).netloc.lower()
    return host in ("huggingface.co", "www.huggingface.co", "hf.co")


def _fetch_address(url: str) -> tuple[str, dict]:
    """The address actually contacted (HF_ENDPOINT applied) and its extra headers (HF_TOKEN)."""
    if not _is_hf(url):
        return url, {}
    parts = urllib.parse.urlsplit(url)
    fetch = _hf_endpoint() + parts.path + (f"?{parts.query}" if parts.query else "")
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return fetch, ({"Authorization": f"Bearer {token}"} if token else {})


# --------------------------------------------------------------------------------------------
# public entry points
def resolve_checkpoint(path_or_url: str | os.PathLike, sha256: str | None = None, refresh: bool = False) -> str:
    """Return a local path for a checkpoint given as a local path, a URL or an ``hf://`` reference.

    Args:
        path_or_url: local file or folder (``~`` expanded; returned as is), ``http(s)://`` URL,
            ``hf://<org>/<repo>/<path>[@revision]`` or ``https://huggingface.co/<repo>/resolve/<rev>/<file>``.
        sha256: expected hex digest of a downloaded file (None: not checked, only recorded).
        refresh: download again even if cached (unless written less than 2 s ago by another process).

    Raises:
        FileNotFoundError: a local path that does not exist.
        OfflineError: ``S3PRL_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1`` for HuggingFace) and not cached.
        DownloadError / ChecksumError: the download failed or gave the wrong file.
    """
    source = os.fspath(path_or_url).strip()
    if source.startswith("file://"):
        source = urllib.parse.unquote(urllib.parse.urlsplit(source).path)
    if source.startswith(("http://", "https://", "hf://")):
        url = _canonical(source)
        return str(_ensure(url, cache_path(url), sha256, refresh))
    local = Path(os.path.expanduser(source))
    if not local.exists():
        raise FileNotFoundError(
            f"checkpoint not found: {source!r}" + (f" (expanded to {str(local)!r})" if str(local) != source else "")
            + ". Pass an existing file or folder, or an http(s):// or hf://<org>/<repo>/<file> address."
        )
    return str(local)


def resolve_hf_model(
    repo_id: str | os.PathLike,
    files: Sequence[str | Sequence[str | None]] | None = None,
    revision: str = "main",
    refresh: bool = False,
) -> str:
    """Download files of a HuggingFace model repository into one cache folder and return the folder.

    Args:
        repo_id: ``org/name`` (optionally ``org/name@revision``), or an existing local folder (returned as is).
        files: file names in the repository (default ``HF_MODEL_FILES``). An item may be a tuple of
            alternatives: the first one that exists is fetched; a trailing None makes the item optional.
        revision: branch, tag or commit.
        refresh: download the files again.
    """
    source = os.fspath(repo_id).strip()
    local = Path(os.path.expanduser(source))
    if local.is_dir():
        return str(local)
    if local.exists():
        raise ValueError(f"{source!r} is a file, but the hf_* entries load a HuggingFace model FOLDER (config.json and "
                         "the weights) or a model id such as 'facebook/wav2vec2-base'; a single checkpoint file "
                         "loads with wav2vec2_custom / hubert_custom")
    if source.startswith((".", "/", "~")) or source.count("/") > 1 or os.sep in source.replace("/", ""):
        raise FileNotFoundError(f"no such folder: {source!r} (the hf_* entries take a HuggingFace model folder or "
                                "a model id such as 'facebook/wav2vec2-base')")
    if source.startswith(("http://", "https://", "hf://")):
        raise ValueError(f"resolve_hf_model expects a model id like 'facebook/wav2vec2-base', got {source!r}")
    if "@" in source:
        source, revision = source.rsplit("@", 1)
    if not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", source) or ".." in source:
        raise FileNotFoundError(
            f"{source!r} is neither a local folder nor a HuggingFace model id such as 'facebook/wav2vec2-base'"
        )
    folder_name = f"{source.replace('/', '--')}--{_safe_name(revision)}"
    folder = get_cache_dir() / "download" / "hf" / folder_name
    for item in files if files is not None else HF_MODEL_FILES:
        _fetch_alternatives(source, [item] if isinstance(item, str) else list(item), revision, folder, refresh)
    return str(folder)


def _fetch_alternatives(repo: str, names: list, revision: str, folder: Path, refresh: bool) -> None:
    """Fetch the first of ``names`` that exists in the repository (a trailing None: may be absent)."""
    optional = bool(names) and names[-1] is None
    names = [n for n in names if n is not None]
    for name in names:
        if ".." in Path(name).parts or name.startswith("/"):
            raise ValueError(f"invalid file name in a model repository: {name!r}")
    cached = [n for n in names if (folder / n).is_file()]
    if cached and not refresh:
        names = cached[:1] + [n for n in names if n != cached[0]]
    absent = folder / f".{'+'.join(_safe_name(n) for n in names)}.absent"  # remembers a 404 of optional files
    if optional and not cached and absent.exists() and not refresh:
        return
    missing = []
    for name in names:
        try:
            _ensure(hf_url(repo, name, revision), folder / name, None, refresh)
            return
        except OfflineError:
            if optional and not cached:
                return
            raise
        except HTTPStatusError as e:
            if e.status != 404:
                raise
            missing.append(name)
    if optional:
        folder.mkdir(parents=True, exist_ok=True)
        absent.touch()
        return
    raise DownloadError(
        f"HuggingFace repository {repo!r} (revision {revision!r}) has none of {', '.join(missing)}; "
        f"check the model id at {HF_HOST}/{repo}"
    )


# --------------------------------------------------------------------------------------------
# cache + lock + verification
def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _offline(url: str) -> bool:
    return _truthy("S3PRL_OFFLINE") or (_is_hf(url) and _truthy("HF_HUB_OFFLINE"))


def _offline_error(url: str, dest: Path, reason: str) -> OfflineError:
    env = "S3PRL_OFFLINE=1" if _truthy("S3PRL_OFFLINE") else "HF_HUB_OFFLINE=1"
    return OfflineError(
        f"{env} is set (no network) and {reason}: {url}\n"
        f"Put the file at:\n    {dest}\n"
        f"(e.g. on a machine with internet: curl -L -o {dest.name} '{url}', then copy it there), "
        "or pass a local file instead, e.g.\n"
        "    S3PRLUpstream(name, path_or_url=\"/path/to/file\")"
    )


def _ensure(url: str, dest: Path, sha256: str | None, refresh: bool) -> Path:
    """``dest`` holding ``url``'s verified content, downloading it when needed (under the file lock)."""
    sha256 = sha256.lower() if sha256 else None
    lock = FileLock(str(dest) + ".lock")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except PermissionError:  # a read-only shared cache: use what is there, checked but not re-recorded
        if dest.is_file() and _check_cached(dest, sha256, record=False) is None:
            return dest
        raise
    try:
        _ensure_locked(url, dest, sha256, refresh)
    finally:
        lock.release()
    return dest


def _ensure_locked(url: str, dest: Path, sha256: str | None, refresh: bool) -> None:
    _remove_orphans(dest)
    if dest.exists():
        fresh = time.time() - dest.stat().st_mtime < NEW_ENOUGH_S
        if refresh and not fresh and not _offline(url):
            logger.info("refresh=True: downloading %s again", url)
        else:
            problem = _check_cached(dest, sha256)
            if problem is None:
                return
            if _offline(url):
                raise _offline_error(url, dest, f"the cached copy is unusable ({problem})")
            logger.warning("cached file %s %s; downloading it again from %s", dest, problem, url)
    elif _offline(url):
        raise _offline_error(url, dest, "the file is not in the cache")
    _download_verified(url, dest, sha256)


def _sidecar(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def _read_sidecar(dest: Path) -> tuple[str, int, int] | None:
    try:
        lines = _sidecar(dest).read_text().splitlines()
        meta = dict(kv.split("=", 1) for kv in lines[0].lstrip("# ").split()[1:])
        return lines[1].split()[0].lower(), int(meta["size"]), int(meta["mtime_ns"])
    except (OSError, IndexError, KeyError, ValueError):
        return None


def _write_sidecar(dest: Path, digest: str) -> None:
    """``<file>.sha256``: a comment with size and mtime, then a ``sha256sum -c`` compatible line."""
    st = dest.stat()
    text = f"# s3prl size={st.st_size} mtime_ns={st.st_mtime_ns}\n{digest}  {dest.name}\n"
    with _atomic_file(_sidecar(dest)) as f:
        f.write(text.encode())


def _hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _check_cached(dest: Path, expected: str | None, record: bool = True) -> str | None:
    """None if the cached file is intact (and as expected), else what is wrong with it."""
    st = dest.stat()
    saved = _read_sidecar(dest)
    if saved is None:  # put there by hand, or by an older version: hash once and record it
        digest = _hash_file(dest) if expected or record else None
        if expected and digest != expected:
            return f"has sha256 {digest}, expected {expected}"
        if record:
            _write_sidecar(dest, digest)
        return None
    digest, size, mtime_ns = saved
    if expected and digest != expected:
        return f"is a different version (sha256 {digest}, expected {expected})"
    if st.st_size != size:
        return f"is damaged: {st.st_size} bytes instead of {size}"
    if st.st_mtime_ns != mtime_ns or _truthy("S3PRL_VERIFY"):
        actual = _hash_file(dest)
        if actual != digest:
            return f"is damaged: sha256 {actual} instead of {digest}"
        if record:
            _write_sidecar(dest, digest)
    return None


def _download_verified(url: str, dest: Path, expected: str | None) -> None:
    """Download, check the digest, and only then move the file under its final name."""
    for attempt in (1, 2):
        part = _download(url, dest)
        digest, size = part.digest(), part.size()
        if expected is None or digest == expected:
            part.commit(dest)
            _write_sidecar(dest, digest)
            return
        part.discard()  # wrong bytes must not be resumed from
        if attempt == 1:
            logger.warning("sha256 mismatch for %s (got %s, expected %s); retrying once", url, digest, expected)
    raise ChecksumError(
        f"downloaded file from {url} has sha256 {digest} ({size} bytes), expected {expected} (tried twice). "
        "The file at that address changed or the transfer is being altered; report it, or pass a local file "
        "you trust."
    )


# --------------------------------------------------------------------------------------------
# temporary files
@contextlib.contextmanager
def _atomic_file(dest: Path):
    """A temporary file next to ``dest``, fsynced and renamed onto ``dest`` only if the block succeeds.

    Its name carries our PID (``.<name>.tmp<PID>-<random>``) so that ``_remove_orphans`` can tell
    whether its writer still runs."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.tmp{os.getpid()}-")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _remove_orphans(dest: Path) -> None:
    """Delete temporary files of ``dest`` whose writer died (killed, out of memory, power cut).

    Runs under ``dest``'s lock. A ``.<name>.tmp<PID>-<random>`` file (of ``dest`` or its sidecar) goes
    when no process has that PID. The random ``.<name>.<random>.part`` names of earlier versions carry
    no PID: they go once a day old. The resumable ``.<name>.part`` stays (see ``_Part``).
    """
    names = "|".join(re.escape(n) for n in (dest.name, _sidecar(dest).name))
    pattern = re.compile(rf"\.(?:{names})\.(?:tmp(\d+)-[A-Za-z0-9_]+|[a-z0-9_]{{8}}\.part)")
    try:
        entries = list(os.scandir(dest.parent))
    except OSError:
        return
    for entry in entries:
        m = pattern.fullmatch(entry.name)
        if m is None:
            continue
        with contextlib.suppress(OSError):
            if m[1] is not None and pid_alive(int(m[1])):
                continue
            if m[1] is None and time.time() - entry.stat().st_mtime < LEGACY_TEMP_AGE_S:
                continue
            os.unlink(entry.path)
            logger.info("removed %s, left behind by an interrupted download", entry.path)


class _Part:
    """The resumable partial download of ``dest``; only touched under ``dest``'s lock.

    ``.<name>.part`` holds the bytes received so far, ``.<name>.part.json`` what the server said about
    them: the address, a validator for ``If-Range``, the total size, whether it serves ranges, and the
    writer's PID. A part without a matching record is dropped; so is a part of another process without a
    validator, since nothing would then tell a changed file of the same size. A running sha256 spares
    reading the file again at the end.
    """

    def __init__(self, dest: Path, url: str):
        self.path = dest.with_name(f".{dest.name}.part")
        self.record = dest.with_name(f".{dest.name}.part.json")
        self.url = url
        self._hash, self._hashed = hashlib.sha256(), 0
        self.info = self._load()

    def _load(self) -> dict:
        try:
            info = json.loads(self.record.read_text())
        except (OSError, ValueError):
            info = None
        if isinstance(info, dict) and info.get("url") == self.url and self.path.is_file() and self._vouched(info):
            return info
        self.discard()
        return {}

    @staticmethod
    def _vouched(info: dict) -> bool:
        return bool(info.get("validator")) or info.get("pid") == os.getpid()

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def restart(self, info: dict) -> None:
        """Empty the part for a body that starts at byte 0 and record ``info`` about it."""
        self.path.write_bytes(b"")  # before the record: a crash in between leaves no old bytes under a new record
        self.info = {"url": self.url, "pid": os.getpid(), **info}
        self.record.write_text(json.dumps(self.info))
        self._hash, self._hashed = hashlib.sha256(), 0

    def note_ranges(self) -> None:
        if not self.info.get("ranges"):
            self.info["ranges"] = True
            self.record.write_text(json.dumps(self.info))

    @contextlib.contextmanager
    def appending(self):
        """Yields ``write(block)``, which appends to the file and to the running sha256."""
        self._catch_up()
        with open(self.path, "ab") as f:

            def write(block: bytes) -> None:
                f.write(block)
                f.flush()  # what was received is on file even if the process is killed next
                self._hash.update(block)
                self._hashed += len(block)

            yield write

    def digest(self) -> str:
        self._catch_up()
        return self._hash.hexdigest()

    def _catch_up(self) -> None:
        # The running hash misses bytes written by an earlier run, and is wrong after a failed write.
        if self._hashed == self.size():
            return
        self._hash, self._hashed = hashlib.sha256(), 0
        with open(self.path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                self._hash.update(block)
                self._hashed += len(block)

    def commit(self, dest: Path) -> None:
        """Move the complete part onto ``dest`` atomically (after it reached the disk)."""
        with open(self.path, "rb+") as f:
            os.fsync(f.fileno())
        os.utime(self.path)  # its age counts from now: refresh=True spares files written just now
        os.replace(self.path, dest)
        self.record.unlink(missing_ok=True)
        self.info = {}

    def discard(self) -> None:
        for path in (self.path, self.record):
            path.unlink(missing_ok=True)
        self.info = {}
        self._hash, self._hashed = hashlib.sha256(), 0

    def resumable(self) -> bool:
        return bool(self.info.get("ranges")) and self._vouched(self.info) and self.size() > 0


# --------------------------------------------------------------------------------------------
# network
class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects; keep the HF token only while the host stays the same."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        auth = req.unredirected_hdrs.get("Authorization")
        if new is not None and auth and urllib.parse.urlsplit(newurl).netloc == urllib.parse.urlsplit(
            req.full_url
        ).netloc:
            new.add_unredirected_header("Authorization", auth)
        return new


def _env_seconds(name: str, default: float) -> float:
    """A duration from the environment: unset or empty gives ``default``, else it must lie in (0, MAX_SECONDS]."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not 0 < value <= MAX_SECONDS:  # also false for nan
        raise ValueError(
            f"{name}={raw!r} is not a valid duration: use a number of seconds greater than 0 and at most "
            f"{MAX_SECONDS:g} (e.g. {name}={default:g}), or unset it for the default of {default:g} s"
        )
    return value


@dataclasses.dataclass
class _Source:
    """Where and how one URL is fetched."""

    url: str  # the canonical address: cache key and messages
    fetch: str  # the address contacted (HF_ENDPOINT applied)
    auth: dict  # headers not forwarded to other hosts on redirects
    timeout: float  # seconds per network read (S3PRL_DOWNLOAD_TIMEOUT)
    stall: float  # seconds within which STALL_MIN_BYTES must arrive (S3PRL_DOWNLOAD_STALL)

    @classmethod
    def of(cls, url: str) -> "_Source":
        fetch, auth = _fetch_address(url)
        timeout = _env_seconds("S3PRL_DOWNLOAD_TIMEOUT", TIMEOUT_S)
        return cls(url, fetch, auth, timeout, _env_seconds("S3PRL_DOWNLOAD_STALL", STALL_S))

    def open(self, offset: int, validator: str | None):
        """GET the body from byte ``offset`` on; ``If-Range`` makes a changed file come whole (200)."""
        req = urllib.request.Request(self.fetch, headers={"User-Agent": USER_AGENT})
        if offset:  # normal headers: they follow redirects (HuggingFace -> its CDN)
            req.add_header("Range", f"bytes={offset}-")
            if validator:
                req.add_header("If-Range", validator)
        for k, v in self.auth.items():
            req.add_unredirected_header(k, v)
        opener = urllib.request.build_opener(_Redirects)  # built per request: proxy settings come from the env
        return opener.open(req, timeout=self.timeout)


def _download(url: str, dest: Path) -> _Part:
    """Fill ``dest``'s part file with ``url``'s whole body, resuming it and retrying transient failures."""
    src = _Source.of(url)  # checks the limits before any network use
    part = _Part(dest, url)
    last: Exception | None = None
    unconfirmed = None  # sha256 of a body whose end could not be told from a cut
    failures = 0
    for _ in range(2 * RETRIES):  # failed and confirming requests together stay bounded
        try:
            if _fetch_once(src, part):
                return part
            digest = part.digest()
            if digest == unconfirmed:
                return part  # the same body twice from a server that neither sizes nor resumes it
            unconfirmed, last = digest, _IncompleteError(
                f"the server sent {part.size()} bytes without announcing a size and cannot resume, and its "
                "answers differed; pass sha256= to check the file, or download it yourself"
            )
            continue  # ask again: a range request tells the end from a cut, a whole answer is compared
        except urllib.error.HTTPError as e:
            _raise_if_permanent(e, src)
            last = e
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError,
                _IncompleteError) as e:
            last = e
        failures += 1
        if failures == RETRIES:
            break
        wait = BACKOFF_S * 2 ** (failures - 1)
        logger.warning("download of %s failed (%s); retry %d/%d in %.1f s", url, last, failures, RETRIES - 1, wait)
        time.sleep(wait)
    attempts, kept = max(failures, 1), part.resumable()
    if not kept:
        part.discard()  # the server cannot continue it: do not leave it behind
    raise DownloadError(
        f"could not download {url} after {attempts} attempt{'s' if attempts > 1 else ''}: {_describe(last)}.\n"
        + (f"The {part.size()} bytes received are kept and the next try continues from there.\n" if kept else "")
        + f"If this machine has no internet access, get the file elsewhere and put it at\n    {dest}\n"
        "or pass a local file, e.g. S3PRLUpstream(name, path_or_url=\"/path/to/file\"); "
        "set S3PRL_OFFLINE=1 to never try the network."
    ) from None


def _raise_if_permanent(e: urllib.error.HTTPError, src: _Source) -> None:
    """Raise ``HTTPStatusError`` for answers that retrying will not change (all but 429 and 5xx)."""
    via = f" (fetched from {src.fetch})" if src.fetch != src.url else ""
    if e.code in (401, 403):
        raise HTTPStatusError(_auth_message(src.url, src.fetch, e.code), e.code) from None
    if e.code == 404:
        raise HTTPStatusError(
            f"HTTP 404 Not Found for {src.url}{via}: the file does not exist at this address. "
            "Check the name/URL, or pass a local file.",
            404,
        ) from None
    if e.code != 429 and e.code < 500:
        raise HTTPStatusError(f"HTTP {e.code} {e.reason} for {src.url}", e.code) from None


def _describe(e: Exception | None) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return f"network error ({e.reason})"
    if isinstance(e, DownloadError):
        return str(e)
    return f"{type(e).__name__}: {e}" if e is not None else "unknown error"


def _auth_message(url: str, fetch: str, code: int) -> str:
    hint = (
        "set HF_TOKEN to a HuggingFace access token that can read this repository"
        if _is_hf(url)
        else "the server refuses anonymous access; download the file yourself and pass the local path"
    )
    status = "401 Unauthorized" if code == 401 else "403 Forbidden"
    return f"HTTP {status} for {url}" + (f" (fetched from {fetch})" if fetch != url else "") + f": {hint}"


def _fetch_once(src: _Source, part: _Part) -> bool:
    """One request that continues ``part``, or restarts it when the server sends the whole file.

    True when the part now provably holds the whole body: the announced size arrived, or a chunked body
    ended with its terminator. False when the body ended with the connection and no size was announced,
    where a cut looks exactly like the end.
    """
    try:
        return _request_into(src, part)
    except _Restart as e:  # a stale part is no network failure: start again at once
        logger.info("%s; downloading %s from the start", e, src.url)
        part.discard()
        return _request_into(src, part)  # from byte 0: no range, so no second restart


def _request_into(src: _Source, part: _Part) -> bool:
    offset = part.size()
    try:
        resp = src.open(offset, part.info.get("validator"))
    except urllib.error.HTTPError as e:
        if e.code != 416 or not offset:
            raise
        e.close()
        return _range_refused(part, offset, e.headers)
    with resp:
        if resp.status == 206:
            if not offset:  # a range nobody asked for: fine if it starts at 0 (checked below)
                part.restart(_body_info(resp.headers))
            total = _resumed_total(part, offset, resp.headers)
        else:  # the whole body, whether or not a range was asked for
            if offset:
                logger.info("%s does not resume; downloading it from the start", src.url)
            info = _body_info(resp.headers)
            part.restart(info)
            total = info["total"]
        _copy_body(resp, part, src, total)
        size = part.size()
        if total is not None and size != total:
            raise _IncompleteError(f"connection closed after {size} of {total} bytes")
        return total is not None or bool(getattr(resp, "chunked", False))


class _Restart(_IncompleteError):
    """The partial download cannot be continued (the file on the server changed)."""


def _body_info(headers) -> dict:
    """What a whole (200) response says about its body: size, validator for If-Range, range support."""
    length = (headers.get("Content-Length") or "").strip()
    etag = headers.get("ETag")
    validator = etag if etag and not etag.startswith("W/") else headers.get("Last-Modified")  # If-Range: strong only
    ranges = (headers.get("Accept-Ranges") or "").strip().lower() == "bytes"
    return {"total": int(length) if length.isdigit() else None, "validator": validator, "ranges": ranges}


def _resumed_total(part: _Part, offset: int, headers) -> int | None:
    """The total size a 206 announces, once its ``Content-Range`` is checked to continue the part."""
    value = (headers.get("Content-Range") or "").strip()
    m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", value)
    total = int(m[3]) if m and m[3] != "*" else None
    known = part.info.get("total")
    if m is None or int(m[1]) != offset or (total is not None and known is not None and total != known):
        raise _Restart(f"the server resumed with Content-Range {value!r} for a partial download of {offset} bytes")
    part.note_ranges()
    return total


def _range_refused(part: _Part, offset: int, headers) -> bool:
    """A 416 answer to ``Range: bytes=<offset>-``: nothing lies beyond ``offset``.

    The part is whole when the server's size (``Content-Range: bytes */<size>``) equals it; a different
    size means the file changed.
    """
    m = re.fullmatch(r"bytes \*/(\d+)", (headers.get("Content-Range") or "").strip())
    total = int(m[1]) if m else part.info.get("total")
    if total is None or total == offset:
        return True
    raise _Restart(f"the file on the server has {total} bytes, the partial download {offset}")


class _Stalled(_IncompleteError):
    """Too few bytes arrived within the stall window."""


class _StallWatch:
    """Stops a transfer that delivers fewer than STALL_MIN_BYTES within ``src.stall`` seconds.

    The per-read timeout alone lets a server that trickles a byte now and then hold a download forever.
    """

    def __init__(self, src: _Source, received: int):
        self.src, self.received = src, received
        self._since, self._mark = time.monotonic(), received

    def add(self, n: int) -> None:
        self.received += n
        now = time.monotonic()
        if now - self._since < self.src.stall:
            return
        got = self.received - self._mark
        if got < STALL_MIN_BYTES:
            raise _Stalled(
                f"the download of {self.src.url} stalled: {got} bytes arrived in the last {now - self._since:.1f} s "
                f"({self.received} bytes received in all), fewer than the {STALL_MIN_BYTES} required within "
                f"S3PRL_DOWNLOAD_STALL={self.src.stall:g} s. If the connection is just slow, set "
                "S3PRL_DOWNLOAD_STALL to more seconds"
            )
        self._since, self._mark = now, self.received


def _progress(total: int | None, initial: int, name: str):
    from tqdm import tqdm

    disable = _truthy("S3PRL_NO_PROGRESS") or not getattr(sys.stderr, "isatty", lambda: False)()
    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, desc=name,
                file=sys.stderr, disable=disable, leave=False)


def _copy_body(resp, part: _Part, src: _Source, total: int | None) -> None:
    """Append the response body to ``part``, watching for stalls."""
    watch = _StallWatch(src, part.size())
    name = os.path.basename(urllib.parse.urlsplit(src.url).path) or part.path.name
    logger.info("downloading %s to %s (from byte %d)", src.url, part.path, watch.received)
    with part.appending() as write, _progress(total, watch.received, name) as bar:
        while True:
            try:
                block = resp.read1(CHUNK)  # what one socket read gives: the stall rule is checked often
            except http.client.IncompleteRead:
                raise _IncompleteError(
                    f"the connection closed in the middle of a chunked body after {watch.received} bytes"
                ) from None
            if not block:
                return
            write(block)
            bar.update(len(block))
            watch.add(len(block))
