#!/usr/bin/env bash
# Fixtures of tests/test_pretrain_distiller.py (regenerate: S3PRL_REPO=<clone of github.com/s3prl/s3prl, or its
# .git folder> bash tests/oracle/make_pretrain_distiller_fixtures.sh, ~1 min):
#  * distiller_objective.pt: the ORIGINAL DistillerForPretrain (pretrain/distiller/pretrain_expert.py, which the
#    0.4.18 package lacks: read from S3PRL_REPO into a temporary folder, never committed) on the tiny HuBERT
#    teacher tests/fixtures/oracle/hubert_tiny.pt: initial student, loss terms, gradients, one optimizer step;
#  * distiller_pretrained.ckpt: a checkpoint written by OUR `s3prl pretrain -u distiller` (6 steps on synthetic
#    audio; the optimizer state is left out to keep the file small: distiller_local reads Distiller and
#    Config only), and distiller_pretrained.states.pt: the ORIGINAL S3PRLUpstream('distiller_local') hidden
#    states of that file (oracle dump.py).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ORACLE="$(cd "${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}" && pwd)"
OUT="$ROOT/tests/fixtures/pretrain"
TEACHER="$ROOT/tests/fixtures/oracle/hubert_tiny.pt"
: "${S3PRL_REPO:?set S3PRL_REPO to a clone of https://github.com/s3prl/s3prl (or its git directory)}"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"
OURS="$ROOT/.venv/bin/python"
mkdir -p "$OUT" "$TMP/expert"
git --git-dir "$( [ -d "$S3PRL_REPO/.git" ] && echo "$S3PRL_REPO/.git" || echo "$S3PRL_REPO")" \
  show HEAD:s3prl/pretrain/distiller/pretrain_expert.py > "$TMP/expert/pretrain_expert.py"
(cd / && OMP_NUM_THREADS=1 "$PY" "$HERE/make_pretrain_distiller_fixtures.py" "$OUT" "$TMP/expert" "$TEACHER")

"$OURS" - "$TMP" "$TEACHER" <<'PY'
import os, sys, numpy as np, soundfile as sf, yaml
from s3prl.pretrain import config
tmp, teacher = sys.argv[1:3]
os.makedirs(f"{tmp}/wavs")
rng = np.random.default_rng(0)
for i, n in enumerate([6000, 7200, 8000, 9600]):
    t = np.arange(n) / 16000
    wav = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(n)
    sf.write(f"{tmp}/wavs/u{i}.wav", wav.astype("float32"), 16000)
model, _ = config.presets("distiller")
model["distiller"].update(
    extractor_conv_feature_layers="[(48, 10, 5)] + [(48, 3, 2)] * 4 + [(48, 2, 2)] * 2", encoder_embed_dim=32,
    encoder_ffn_embed_dim=64, encoder_attention_heads=4, conv_pos=16, conv_pos_groups=4, final_dim=32, n_tasks=2,
    pred_layer_id=[1, 2])
model["teacher"].update(model="hubert_local", path=teacher, n_layers=2)
model["task"]["sequence_length"] = 6400
open(f"{tmp}/model.yaml", "w").write(yaml.safe_dump(model, sort_keys=False))
PY
(cd "$TMP" && OMP_NUM_THREADS=1 "$OURS" -m s3prl.cli pretrain -u distiller -n distiller -g model.yaml --quiet \
    -o "config.pretrain_expert.datarc.audio_dir=wavs,,config.pretrain_expert.datarc.train_batch_size=2,,config.runner.total_steps=6,,config.optimizer.lr=0.01,,config.runner.max_keep=1,,config.runner.fp16=false" > /dev/null)
"$OURS" - "$TMP/result/pretrain/distiller/states-6.ckpt" "$OUT/distiller_pretrained.ckpt" <<'PY'
import sys, torch
ckpt = torch.load(sys.argv[1], weights_only=True)
for key in ("Optimizer", "Scheduler", "GradScaler", "Rng"):
    ckpt.pop(key)
torch.save(ckpt, sys.argv[2])
PY
(cd / && "$PY" "$ORACLE/dump.py" --name distiller_local --ckpt "$OUT/distiller_pretrained.ckpt" \
    --out "$TMP/distiller.states.pt" --random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,16000 --no-legacy > /dev/null)
(cd / && "$PY" - "$TMP/distiller.states.pt" "$OUT/distiller_pretrained.states.pt" <<'PY'
import os, sys, torch
d = torch.load(sys.argv[1], weights_only=True)
assert not d["meta"]["errors"], d["meta"]["errors"]
out = {k: d[k] for k in ("wavs", "single", "single_lengths", "meta")}
shared = os.path.join(os.path.dirname(sys.argv[2]), "apc_pretrained.states.pt")
assert all(torch.equal(a, b) for a, b in zip(torch.load(shared, weights_only=True)["wavs"], out["wavs"]))
out["wavs"], out["wavs_from"] = None, "apc_pretrained.states.pt"  # same waveforms (seed 0): kept once
torch.save(out, sys.argv[2])
PY
)
ls -la "$OUT"/distiller_*
