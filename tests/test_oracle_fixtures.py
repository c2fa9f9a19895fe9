"""Parity with the original s3prl on small checkpoints it wrote (tests/fixtures/oracle, made by
tests/oracle/make_fixtures.sh): every hidden state within 1e-4, same count, shapes and lengths."""

from pathlib import Path

import pytest
import torch

from parity import compare_with_dump
from s3prl.nn import S3PRLUpstream

FIXTURES = Path(__file__).parent / "fixtures" / "oracle"
ENTRY = {"wav2vec2": "wav2vec2_local", "hubert": "hubert_local", "wavlm": "wavlm_local",
         "data2vec": "data2vec_local", "distiller": "distiller_local"}
CASES = sorted(  # the wav2vec 2.0 family's fixtures (other families test theirs in their own files)
    p.name[: -len(".dump.pt")] for p in FIXTURES.glob("*_tiny*.dump.pt") if p.name.split("_tiny")[0] in ENTRY
)


@pytest.mark.parametrize("case", CASES)
def test_same_hidden_states_as_the_original(case):
    family = case.split("_tiny")[0]
    dump = torch.load(FIXTURES / f"{case}.dump.pt", weights_only=True)
    upstream = S3PRLUpstream(ENTRY[family], path_or_url=str(FIXTURES / f"{case}.pt")).eval()
    err = compare_with_dump(upstream, dump)
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


@pytest.mark.parametrize("family", ["wav2vec2", "hubert", "data2vec"])
@pytest.mark.parametrize("layout", ["cfg", "args"])
def test_raw_fairseq_checkpoint_gives_the_original_numbers(family, layout):
    """The same weights re-wrapped as a raw fairseq file (omegaconf `cfg` or argparse `args`), no fairseq."""
    raw = FIXTURES / f"{family}_tiny.raw.{layout}.pt"
    if not raw.exists():
        pytest.skip(f"{raw} missing: run tests/oracle/make_fixtures.sh")
    dump = torch.load(FIXTURES / f"{family}_tiny.dump.pt", weights_only=True)
    upstream = S3PRLUpstream(f"{family}_custom", path_or_url=str(raw), extra_conf={"fairseq": True}).eval()
    err = compare_with_dump(upstream, dump)
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err


def test_named_entry_accepts_a_local_file():
    """The original ignored path_or_url for named entries (issue #548); ours loads the given file."""
    ckpt = FIXTURES / "hubert_tiny.pt"
    upstream = S3PRLUpstream("hubert_base", path_or_url=str(ckpt))
    assert upstream.hidden_sizes == [32] * 3
