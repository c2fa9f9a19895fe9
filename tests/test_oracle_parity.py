"""Parity with the original s3prl on full-size checkpoints (-m oracle).

Generate the checkpoints and the original's outputs first:  bash tests/oracle/make_dumps.sh
(PRESETS="tiny tiny_large base large" for the 1.3 GB large models). Prints the max abs difference per case.
"""

import os
from pathlib import Path

import pytest
import torch

from parity import compare_with_dump
from s3prl.nn import S3PRLUpstream

DUMPS = Path(os.environ.get("S3PRL_ORACLE_DUMPS", "/tmp/s3prl-oracle-dumps"))
FAMILIES = ("wav2vec2", "hubert", "wavlm", "data2vec", "distiller")
CASES = sorted(
    p.name[: -len(".dump.pt")] for p in DUMPS.glob("*.dump.pt") if p.name.split("_")[0] in FAMILIES
) if DUMPS.is_dir() else []

pytestmark = pytest.mark.oracle


@pytest.mark.skipif(not CASES, reason=f"no oracle dumps in {DUMPS}: run tests/oracle/make_dumps.sh")
@pytest.mark.parametrize("case", CASES)
def test_original_numbers(case):
    family = case.split("_")[0]
    torch.set_num_threads(2)
    dump = torch.load(DUMPS / f"{case}.dump.pt", weights_only=True)
    upstream = S3PRLUpstream(f"{family}_local", path_or_url=str(DUMPS / f"{case}.pt")).eval()
    err = compare_with_dump(upstream, dump)
    print(f"\n{case}: max|ours - original| single {err['single']:.2e}, batch {err['batch']:.2e}")
    assert err["single"] < 1e-4 and err["batch"] < 1e-4, err
    for layout in ("cfg", "args"):
        raw = DUMPS / f"{case}.raw.{layout}.pt"
        if raw.exists():
            upstream = S3PRLUpstream(f"{family}_custom", path_or_url=str(raw), extra_conf={"fairseq": True}).eval()
            err = compare_with_dump(upstream, dump)
            print(f"{case} raw fairseq ({layout}): single {err['single']:.2e}, batch {err['batch']:.2e}")
            assert err["single"] < 1e-4 and err["batch"] < 1e-4, err
