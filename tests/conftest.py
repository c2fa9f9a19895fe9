"""Fixtures shared by several test files (opted into with ``pytestmark = pytest.mark.usefixtures(...)``)."""

from __future__ import annotations

import pytest
import torch

DOWNLOAD_ENV = ("S3PRL_OFFLINE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "S3PRL_VERIFY",
                "S3PRL_DOWNLOAD_TIMEOUT", "S3PRL_DOWNLOAD_STALL", "http_proxy", "https_proxy", "HTTP_PROXY",
                "HTTPS_PROXY", "ALL_PROXY", "all_proxy")


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models: a second intra-op thread costs more in synchronisation than it saves (10-20x slower on a
    busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def clean_download_env(tmp_path, monkeypatch):
    """No proxy, token, offline or timeout settings of the caller; a fresh cache; fast retries; no progress bar."""
    from s3prl import download

    for var in DOWNLOAD_ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("S3PRL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("S3PRL_NO_PROGRESS", "1")
    monkeypatch.setattr(download, "BACKOFF_S", 0.01)
    download.set_cache_dir(None)
    yield
    download.set_cache_dir(None)
