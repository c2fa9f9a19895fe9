"""The runner on real recordings from ``$S3PRL_TEST_DATA`` (../shared/data); skipped when it is absent.

The default run checks the Speech Commands loader and runner on the mini corpus in its original layout; the
``slow`` test trains FSDD digit classification with ``fbank`` to the accuracy the README states.
"""

import json
import os
from pathlib import Path

import pytest

from s3prl.cli import main

DATA = Path(os.environ.get("S3PRL_TEST_DATA", "/nonexistent"))
needs = lambda folder: pytest.mark.skipif(not (DATA / folder).is_dir(),  # noqa: E731
                                          reason=f"needs $S3PRL_TEST_DATA/{folder}")


@needs("speech_commands_v0.01_mini")
def test_speech_commands_mini_runs(tmp_path):
    exp = tmp_path / "ks"
    opts = (f"task.root={DATA / 'speech_commands_v0.01_mini'},,data.cache_dir={tmp_path / 'cache'},,"
            "data.num_workers=0,,train.total_steps=3,,train.eval_step=3,,train.lr=1e-3")
    assert main(["downstream", "train", "-u", "fbank_no_cmvn", "-d", "speech_commands", "-p", str(exp),
                 "-o", opts]) == 0
    result = json.loads((exp / "results.json").read_text())
    lines = (exp / "test_predict.txt").read_text().splitlines()
    assert len(lines) > 10 and result["metrics"]["accuracy"] >= 0.0


@pytest.mark.slow
@needs("fsdd")
def test_fsdd_digits_with_fbank_beats_90_percent(tmp_path):
    exp = tmp_path / "fsdd"
    assert main(["downstream", "train", "-u", "fbank", "-d", "fsdd_digits", "-p", str(exp), "-o",
                 f"task.root={DATA / 'fsdd'},,data.cache_dir={tmp_path / 'cache'}"]) == 0
    assert json.loads((exp / "results.json").read_text())["metrics"]["accuracy"] >= 0.9
