#!/usr/bin/env bash
# Parity fixtures for BYOL-A, BYOL-S and VGGish (tests/test_byol_vggish.py), made with the ORIGINAL s3prl code.
#
# The checkpoints are too big to commit (2.4 MB - 290 MB), so for each model this writes
#   <model>.spec.json   how to rebuild the seeded checkpoint (tests rebuild it and check its checksum)
#   <model>.dump.pt     the original S3PRLUpstream's hidden states on that checkpoint (dump.py)
# With BYOL_A_512_PTH=/path/to/AudioNTT2020-BYOLA-64x96d512.pth (the released weights, sha256 6cc64226...)
# it also writes byol_a_512_released.dump.pt, the original's outputs with the real weights.
#
# Regenerate with:  bash tests/oracle/make_byol_vggish_fixtures.sh   (needs ../shared/tools/s3prl-oracle; ~5 min)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # not from the checkout: its s3prl would shadow the original
VENV="$(dirname "$(dirname "$PY")")"
# the ORIGINAL byol_s CvT imports einops and the original VGGish front-end imports resampy (oracle venv only)
PIP_CONSTRAINT="$VENV/s3prl-oracle-constraints.txt" PIP_REQUIRE_VIRTUALENV=1 "$PY" -m pip install -q einops resampy
OUT="$HERE/../fixtures/oracle/byol_vggish"  # own folder: test_oracle_fixtures.py globs ../*.dump.pt
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
M="$HERE/make_byol_vggish_ckpt.py"
mkdir -p "$OUT"

fixture() {  # fixture MODEL ENTRY DUMP_NAME [dump.py options...]
  local model=$1 entry=$2 name=$3; shift 3
  local pca=()
  [ "$model" = vggish ] && pca=(--pca "$TMP/$model.pca.pth")
  [ -f "$TMP/$model.pth" ] || "$PY" "$M" "$model" "$TMP/$model.pth" --spec "$OUT/$model.spec.json" "${pca[@]}" > /dev/null
  "$PY" "$M" dump "$TMP/$model.pth" "${pca[@]}" -- --name "$entry" --ckpt "$TMP/$model.pth" \
      --out "$OUT/$name.dump.pt" --seed 0 --no-legacy "$@" > /dev/null
}

# --lengths makes the same speech-like synthetic signals as --random-wavs, with exact sample counts
fixture byol_a_512 byol_a_512 byol_a_512 --lengths 400,16001,32500
fixture byol_a_512 byol_a_512 byol_a_512_w05_s025 --lengths 400,9000 \
    --extra-conf '{"window_secs": 0.5, "stride_secs": 0.25}'
fixture byol_a_2048 byol_a_2048 byol_a_2048 --lengths 16001
fixture byol_s_default byol_s_default byol_s_default --lengths 400,1000,4100
fixture byol_s_default byol_s_default byol_s_default_w05_h01 --lengths 1000,3300 \
    --extra-conf '{"window_secs": 0.5, "hop_secs": 0.1}'
fixture byol_s_cvt byol_s_cvt byol_s_cvt --lengths 1000,2500
fixture byol_s_resnetish34 byol_s_resnetish34 byol_s_resnetish34 --lengths 1000
fixture vggish vggish vggish --lengths 15600,31000

if [ -n "${BYOL_A_512_PTH:-}" ]; then
  "$PY" "$M" dump "$BYOL_A_512_PTH" -- --name byol_a_512 --ckpt "$BYOL_A_512_PTH" \
      --out "$OUT/byol_a_512_released.dump.pt" --seed 1 --lengths 400,16000,16001,40000 --no-legacy > /dev/null
fi
du -sh "$OUT"
