#!/usr/bin/env bash
# Parity fixtures for PASE+ (tests/test_pase.py), made by the ORIGINAL PASE code run through s3prl 0.4.18's
# `pase_plus` entry (../shared/tools/pase-oracle; its setup.sh needs the s3prl/pase and s3prl/pytorch-qrnn mirrors).
#
#   bash tests/oracle/make_pase_fixtures.sh            # tiny preset -> tests/fixtures/oracle/pase_tiny*  (~1 min)
#   S3PRL_ORACLE_DUMPS=/tmp/pase-oracle bash tests/oracle/make_pase_fixtures.sh plus   # full size, for -m oracle
#   S3PRL_ORACLE_DUMPS=/tmp/pase-oracle bash tests/oracle/make_pase_fixtures.sh variants  # other WaveFe configs
#
# Files (tiny): pase_tiny.ckpt (random weights in FE_e199.ckpt's format) + pase_tiny.cfg (its PASE+.cfg-style
# config, found by the loader as the checkpoint's side file); pase_tiny.states.pt: the original S3PRLUpstream
# at batch size 1 (`single`) and the raw expert per utterance (`legacy_single`, where 470 samples fail) on
# synthetic clips; pase_tiny_librispeech.states.pt: `single` on two LibriSpeech recordings, WITHOUT the audio
# (the test reads it from $S3PRL_TEST_DATA and checks its sha256). The original's padded-batch passes are
# dropped: they depend on the padding, which ours deliberately does not reproduce.
# Names avoid the `*.dump.pt` pattern that test_oracle_fixtures.py collects.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${PASE_ORACLE_DIR:-$HERE/../../../shared/tools/pase-oracle}"
DATA="${S3PRL_TEST_DATA:-$HERE/../../../shared/data}/librispeech_test_other_mini"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # run from / : the checkout's s3prl must not shadow the original
PRESET="${1:-tiny}"
if [ "$PRESET" = variants ]; then
  # Small WaveFe configurations that exercise the options PASE+ leaves at their defaults (no SincNet, constant /
  # replicate padding, dilation, even kernels, a SincNet stride, sr, 2 QRNN layers, no QRNN, tanh_out, no
  # norm_out). Checkpoints written by the oracle's own make_ckpt functions on the ORIGINAL wf_builder.
  OUT="${S3PRL_ORACLE_DUMPS:?set S3PRL_ORACLE_DUMPS}"; mkdir -p "$OUT"
  (cd / && "$PY" - "$ORACLE" "$OUT" <<'PY'
import collections, json, os, sys
sys.path.insert(0, sys.argv[1])
import make_ckpt  # the oracle's checkpoint writer: original wf_builder + perturbation + BN calibration
import torch
out = sys.argv[2]
VARIANTS = {
    "a": {"sincnet": False, "kwidths": [11, 20, 11, 11, 11, 11, 11, 11], "fmaps": [8, 16, 16, 16, 24, 24, 32, 32],
          "emb_dim": 16, "rnn_dim": 24, "pad_mode": "constant", "denseskips": True, "norm_out": False,
          "tanh_out": True, "rnn_pool": True, "rnn_layers": 2, "activation": "prelu"},
    "b": {"kwidths": [251, 20, 11, 10, 11, 7, 11, 11], "dilations": [1, 1, 1, 1, 1, 3, 1, 1],
          "fmaps": [16, 16, 24, 24, 24, 24, 32, 32], "emb_dim": 24, "pad_mode": "replicate", "denseskips": True,
          "norm_out": True, "rnn_pool": False, "rnn_type": "lstm"},
    "c": {"kwidths": [250, 10, 5, 5, 5, 5, 5, 5], "strides": [2, 5, 2, 1, 2, 1, 2, 2],
          "fmaps": [16, 16, 32, 32, 32, 32, 64, 64], "sr": 8000, "emb_dim": 32, "rnn_dim": 64, "denseskips": True,
          "norm_out": True, "rnn_pool": True, "rnn_layers": 1},
}
for name, cfg in VARIANTS.items():
    make_ckpt.PRESETS[name] = collections.OrderedDict(cfg)
    model, cfg, init = make_ckpt.build(name, 0)
    ckpt, cfg_path = f"{out}/pase_variant_{name}.ckpt", f"{out}/pase_variant_{name}.cfg"
    with open(cfg_path, "w") as f:
        f.write(make_ckpt.config_text(cfg))
    sd = model.state_dict()
    torch.save(sd, ckpt)
    report = make_ckpt.verify(ckpt, cfg_path, sd, init)
    assert report["ok"], (name, report["problems"])
PY
  )
  for v in a b c; do
    (cd / && "$PY" "$ORACLE/dump.py" --ckpt "$OUT/pase_variant_$v.ckpt" --config "$OUT/pase_variant_$v.cfg" \
        --out "$OUT/pase_variant_$v.states.pt" --random-wavs 3 --seed 0 --min-sec 0.3 --max-sec 2 \
        --lengths 400,1600 --no-legacy > /dev/null)
  done
  du -ch "$OUT"/pase_variant_* | tail -1
  exit 0
fi
if [ "$PRESET" = tiny ]; then OUT="$HERE/../fixtures/oracle"; else OUT="${S3PRL_ORACLE_DUMPS:?set S3PRL_ORACLE_DUMPS}"; fi
mkdir -p "$OUT"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
REAL=(3005/3005-163389-0007.flac 3331/3331-159605-0004.flac)  # the two shortest recordings of the mini set
[ "$PRESET" = tiny ] || REAL+=(2414/2414-128291-0009.flac 1688/1688-142285-0000.flac 3080/3080-5032-0009.flac)
REAL_PATHS=()
for f in "${REAL[@]}"; do REAL_PATHS+=("$DATA/$f"); done

CKPT="$OUT/pase_$PRESET.ckpt"
(cd / && "$PY" "$ORACLE/make_ckpt.py" "$CKPT" --preset "$PRESET" --seed 0 > /dev/null)  # + pase_$PRESET.cfg
(cd / && "$PY" "$ORACLE/dump.py" --ckpt "$CKPT" --config "$OUT/pase_$PRESET.cfg" --out "$OUT/pase_$PRESET.states.pt" \
    --random-wavs 2 --seed 0 --min-sec 0.3 --max-sec 0.6 --lengths 400,470,471,799,1600 > /dev/null)
(cd / && "$PY" "$ORACLE/dump.py" --ckpt "$CKPT" --config "$OUT/pase_$PRESET.cfg" \
    --out "$OUT/pase_${PRESET}_librispeech.states.pt" --wav "${REAL_PATHS[@]}" --no-legacy > /dev/null)

if [ "$PRESET" = tiny ]; then  # keep what tests/test_pase.py reads
  (cd / && "$PY" - "$OUT/pase_tiny.states.pt" "$OUT/pase_tiny_librispeech.states.pt" "$DATA" <<'PY'
import hashlib, os, sys, torch
synthetic, real, data = sys.argv[1:]
d = torch.load(synthetic, weights_only=True)
torch.save({k: d[k] for k in ("wavs", "single", "single_lengths", "legacy_single", "meta")}, synthetic)
d = torch.load(real, weights_only=True)
meta = dict(d["meta"])
files = [os.path.relpath(s["path"], os.path.dirname(data)) for s in meta["wav_sources"]]
meta["wav_sources"] = [{"file": f} for f in files]  # relative to $S3PRL_TEST_DATA
slim = {"files": files, "wav_sha256": [hashlib.sha256(w.numpy().tobytes()).hexdigest() for w in d["wavs"]],
        "single": d["single"], "single_lengths": d["single_lengths"], "meta": meta}
torch.save(slim, real)
PY
  )
fi
du -ch "$OUT"/pase_"$PRESET"* | tail -1
