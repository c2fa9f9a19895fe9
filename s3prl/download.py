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
* streams into a temporary file in the same folder, fsyncs it and ``os.replace``s it into place, so an
  interrupted download never leaves a partial file under the final name;
* is hashed (sha256) while streaming: checked against the expected digest when one is known (one
  retry, then ``ChecksumError``), and recorded in ``<file>.sha256`` with the file's size and mtime.
  A cache hit is checked against that record (size always; the full hash when size/mtime changed or
  ``S3PRL_VERIFY=1``), so a truncated or damaged cached file is noticed and fetched again.

Environment: ``S3PRL_OFFLINE=1`` (and ``HF_HUB_OFFLINE=1`` for HuggingFace files) never touches the
network and raises ``OfflineError`` naming where to put the file; ``S3PRL_NO_PROGRESS=1`` hides the
progress bar; ``S3PRL_DOWNLOAD_TIMEOUT`` (seconds, default 60) bounds each network read.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
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
from typing import Iterable, Sequence

from filelock import FileLock

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
    for attempt in (1, 2):
        digest = _download(url, dest)
        if expected is None or digest == expected:
            _write_sidecar(dest, digest)
            return
        dest.unlink(missing_ok=True)
        if attempt == 1:
            logger.warning("sha256 mismatch for %s (got %s, expected %s); retrying once", url, digest, expected)
    raise ChecksumError(
        f"downloaded file from {url} has sha256 {digest}, expected {expected} (tried twice). The file at "
        "that address changed or the transfer is being altered; report it, or pass a local file you trust."
    )


# --------------------------------------------------------------------------------------------
# network
@contextlib.contextmanager
def _atomic_file(dest: Path):
    """A temporary file next to ``dest``, fsynced and renamed onto ``dest`` only if the block succeeds."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
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


def _timeout() -> float:
    try:
        return float(os.environ.get("S3PRL_DOWNLOAD_TIMEOUT", "60"))
    except ValueError:
        return 60.0


def _download(url: str, dest: Path) -> str:
    """Fetch ``url`` into ``dest`` atomically, retrying transient failures; returns the sha256."""
    fetch, headers = _fetch_address(url)
    last: Exception | None = None
    for attempt in range(1, RETRIES + 1):
        try:
            return _stream(fetch, headers, dest, url)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise HTTPStatusError(_auth_message(url, fetch, e.code), e.code) from None
            if e.code == 404:
                raise HTTPStatusError(
                    f"HTTP 404 Not Found for {url}" + (f" (fetched from {fetch})" if fetch != url else "")
                    + ": the file does not exist at this address. Check the name/URL, or pass a local file.",
                    404,
                ) from None
            if e.code != 429 and e.code < 500:
                raise HTTPStatusError(f"HTTP {e.code} {e.reason} for {url}", e.code) from None
            last = e
        except (urllib.error.URLError, http.client.HTTPException, socket.timeout, ConnectionError,
                _IncompleteError) as e:
            last = e
        if attempt < RETRIES:
            wait = BACKOFF_S * 2 ** (attempt - 1)
            logger.warning("download of %s failed (%s); retry %d/%d in %.1f s", url, last, attempt, RETRIES - 1, wait)
            time.sleep(wait)
    raise DownloadError(
        f"could not download {url} after {RETRIES} attempts: {_describe(last)}.\n"
        f"If this machine has no internet access, get the file elsewhere and put it at\n    {dest}\n"
        "or pass a local file, e.g. S3PRLUpstream(name, path_or_url=\"/path/to/file\"); "
        "set S3PRL_OFFLINE=1 to never try the network."
    ) from None


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


def _progress(total: int | None, name: str):
    from tqdm import tqdm

    disable = _truthy("S3PRL_NO_PROGRESS") or not getattr(sys.stderr, "isatty", lambda: False)()
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name, file=sys.stderr,
                disable=disable, leave=False)


def _stream(fetch: str, headers: dict, dest: Path, url: str) -> str:
    req = urllib.request.Request(fetch, headers={"User-Agent": USER_AGENT})
    for k, v in headers.items():
        req.add_unredirected_header(k, v)
    logger.info("downloading %s to %s", url, dest)
    h = hashlib.sha256()
    opener = urllib.request.build_opener(_Redirects)  # built per download: proxy settings come from the env
    with opener.open(req, timeout=_timeout()) as resp:
        length = resp.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        received = 0
        name = os.path.basename(urllib.parse.urlsplit(url).path) or dest.name
        with _atomic_file(dest) as f, _progress(total, name) as bar:
            for block in _chunks(resp):
                f.write(block)
                h.update(block)
                received += len(block)
                bar.update(len(block))
            if total is not None and received != total:
                raise _IncompleteError(f"connection closed after {received} of {total} bytes")
    return h.hexdigest()


def _chunks(resp) -> Iterable[bytes]:
    while True:
        try:
            block = resp.read(CHUNK)
        except http.client.IncompleteRead as e:
            raise _IncompleteError(f"connection closed early ({len(e.partial)} bytes in the last block)") from None
        if not block:
            return
        yield block
