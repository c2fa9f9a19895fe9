#!/usr/bin/env bash
# Fixtures of tests/test_pretrain.py (regenerate: bash tests/oracle/make_pretrain_fixtures.sh, ~1 min):
#  * <method>_objective.pt: the ORIGINAL objective's loss and gradients on a given batch and seed
#    (make_pretrain_fixtures.py: APC, VQ-APC, NPC (+ disable_cross_layer); make_pretrain_mam_fixtures.py: Mockingjay
#    (+ pre-LN), TERA, Audio ALBERT,
#    and mam_masking.pt: the original's masking decisions for many seeds);
#  * <method>_pretrained.ckpt: a checkpoint written by OUR `s3prl pretrain` (tiny model, 6 steps on synthetic
#    audio), and <method>_pretrained.states.pt: the ORIGINAL S3PRLUpstream('<entry>_local') hidden states of
#    that file (oracle dump.py), which proves the original loads what we write.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ORACLE="$(cd "${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}" && pwd)"
OUT="$ROOT/tests/fixtures/pretrain"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"
OURS="$ROOT/.venv/bin/python"
mkdir -p "$OUT"
if [ -z "${METHODS:-}" ]; then  # METHODS="a b": only the checkpoints and dumps of these methods
  (cd / && "$PY" "$HERE/make_pretrain_fixtures.py" "$OUT")
  (cd / && "$PY" "$HERE/make_pretrain_mam_fixtures.py" "$OUT")
fi

"$OURS" - "$TMP/wavs" <<'PY'
import sys, os, numpy as np, soundfile as sf
os.makedirs(sys.argv[1])
rng = np.random.default_rng(0)
for i, n in enumerate([6000, 7200, 8000, 9600]):
    t = np.arange(n) / 16000
    wav = 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t) + 0.05 * rng.standard_normal(n)
    sf.write(f"{sys.argv[1]}/u{i}.wav", wav.astype("float32"), 16000)
PY
for name in ${METHODS:-apc vq_apc npc mockingjay tera audio_albert spec_augment mockingjay_preln npc_no_cross_layer}; do
  method="${name%_preln}"  # mockingjay_preln: Mockingjay with a pre-LN transformer
  method="${method%_no_cross_layer}"  # npc_no_cross_layer: NPC with disable_cross_layer
  entry="${method}_local"; [ "${method#*apc}" != "$method" ] && entry=apc_local  # VQ-APC loads via apc_local
  [ "$method" = spec_augment ] && entry=tera_local  # 0.4.18's hub lacks spec_augment_local; same expert class
  "$OURS" - "$method" "$name" > "$TMP/$name.yaml" <<'PY'
import sys, yaml
from s3prl.pretrain import config
model, _ = config.presets(sys.argv[1])
if sys.argv[2].endswith("_preln"):
    model["transformer"]["pre_layer_norm"] = True
if sys.argv[2].endswith("_no_cross_layer"):
    model["model"]["paras"]["disable_cross_layer"] = True
if "paras" in model.get("model", {}):  # APC series
    model["model"]["paras"]["hidden_size"] = 32
    if "kernel_size" in model["model"]["paras"]:  # NPC: a smaller receptive field keeps the file small
        model["model"]["paras"].update(kernel_size=9, mask_size=3, n_blocks=2)
    if "vq" in model["model"]["paras"]:
        model["model"]["paras"]["vq"] = {"codebook_size": [16, 8], "code_dim": [20, 12], "gumbel_temperature": 0.5}
    model["task"]["sequence_length"] = 40
else:
    model["transformer"].update(hidden_size=32, num_attention_heads=2, intermediate_size=64)
    model["task"].update(position_encoding_size=32, sequence_length=40)
    if "mask_T" in model["task"]:  # SpecAugment: time masks only apply below p x the length
        model["task"]["mask_T"] = 10
print(yaml.safe_dump(model, sort_keys=False))
PY
  (cd "$TMP" && OMP_NUM_THREADS=1 "$OURS" -m s3prl.cli pretrain -u "$method" -n "$name" -g "$name.yaml" --quiet \
      -o "config.pretrain_expert.datarc.audio_dir=wavs,,config.pretrain_expert.datarc.train_batch_size=2,,config.runner.n_epochs=-1,,config.runner.total_steps=6,,config.runner.gradient_accumulate_steps=1,,config.optimizer.lr=0.01,,config.runner.max_keep=1" > /dev/null)
  cp "$TMP/result/pretrain/$name/states-6.ckpt" "$OUT/${name}_pretrained.ckpt"
  (cd / && "$PY" "$ORACLE/dump.py" --name "$entry" --ckpt "$OUT/${name}_pretrained.ckpt" \
      --out "$TMP/$name.states.pt" --random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,16000 --no-legacy > /dev/null)
  (cd / && "$PY" - "$TMP/$name.states.pt" "$OUT/${name}_pretrained.states.pt" <<'PY'
import os, sys, torch
d = torch.load(sys.argv[1], weights_only=True)
assert not d["meta"]["errors"], d["meta"]["errors"]
out = {k: d[k] for k in ("wavs", "single", "single_lengths", "meta")}
shared = os.path.join(os.path.dirname(sys.argv[2]), "apc_pretrained.states.pt")
if os.path.basename(sys.argv[2]) != "apc_pretrained.states.pt":  # same waveforms (seed 0): kept once
    assert all(torch.equal(a, b) for a, b in zip(torch.load(shared, weights_only=True)["wavs"], out["wavs"]))
    out["wavs"], out["wavs_from"] = None, "apc_pretrained.states.pt"
torch.save(out, sys.argv[2])
PY
)
done
ls -la "$OUT"
