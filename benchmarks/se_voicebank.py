"""A small real-data SE run: `enhancement_stft` on the 6 real VoiceBank-DEMAND pairs of
$S3PRL_TEST_DATA/voicebank_demand_mini (4 train, 1 dev, 1 test, by name), fbank upstream, a reduced head.

    S3PRL_TEST_DATA=../shared/data python benchmarks/se_voicebank.py [EXPDIR] [STEPS]

Prints the test PESQ / STOI / SI-SDRi of the trained head next to the unprocessed noisy input's (the same test
pair), and writes the enhanced audio under EXPDIR/test_audio. Numbers go to docs/separation.md.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from s3prl.cli import main as s3prl

root = Path(os.environ["S3PRL_TEST_DATA"]) / "voicebank_demand_mini"
exp = Path(sys.argv[1] if len(sys.argv) > 1 else "result/downstream/se_voicebank_mini")
steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
opts = (f"task.root={root},,task.hidden_size=128,,task.rnn_layers=2,,task.dropout=0.0,,data.num_workers=0,,"
        f"train.total_steps={steps},,train.eval_step={steps // 3},,train.save_step={steps // 3},,"
        f"train.log_step={steps // 6},,train.lr=1e-3,,data.batch_seconds=30")
rc = s3prl(["downstream", "train", "-u", "fbank", "-d", "enhancement_stft", "-p", str(exp), "-o", opts])
if rc:
    sys.exit(rc)
m = json.loads((exp / "results.json").read_text())["metrics"]
print(json.dumps({"enhanced": {k: m[k] for k in ("pesq", "stoi", "si_sdr")},
                  "noisy input": {"pesq": m["input_pesq"], "stoi": m["input_stoi"], "si_sdr": m["input_si_sdr"]},
                  "si_sdri": m["si_sdri"]}, indent=1))
