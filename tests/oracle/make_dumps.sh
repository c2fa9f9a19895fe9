#!/usr/bin/env bash
# Checkpoints written by the ORIGINAL s3prl classes and the original's hidden states on them, for
# tests/test_oracle_parity.py (pytest -m oracle). Needs ../shared/tools/s3prl-oracle (its setup.sh makes the venv).
#   bash tests/oracle/make_dumps.sh [OUT_DIR]   (default: $S3PRL_ORACLE_DUMPS or /tmp/s3prl-oracle-dumps)
# PRESETS="tiny tiny_large base large" selects the sizes (default: tiny tiny_large base; large files are ~1.3 GB).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # from /: a checkout on the path would shadow the original s3prl
OUT="${1:-${S3PRL_ORACLE_DUMPS:-/tmp/s3prl-oracle-dumps}}"
PRESETS="${PRESETS:-tiny tiny_large base}"
mkdir -p "$OUT"
one() {  # family preset
  local ck="$OUT/$1_$2.pt" dump="$OUT/$1_$2.dump.pt"
  [ -f "$dump" ] && return 0
  "$PY" "$ORACLE/make_ckpt.py" "$1" "$ck" --preset "$2" --seed 0 > "$OUT/$1_$2.make.log"
  "$PY" "$ORACLE/dump.py" --name "$1_local" --ckpt "$ck" --out "$dump" \
      --random-wavs 3 --seed 0 --min-sec 0.5 --max-sec 3 --lengths 400,799,1000,16000 > "$OUT/$1_$2.dump.log"
}
for preset in $PRESETS; do
  case $preset in
    tiny|base) fams="wav2vec2 hubert wavlm data2vec distiller" ;;
    tiny_large|large) fams="wav2vec2 hubert wavlm" ;;
  esac
  for fam in $fams; do echo "== $fam $preset"; one "$fam" "$preset"; done
done
# raw fairseq layouts of the same weights (no fairseq needed)
for preset in $PRESETS; do
  for fam in wav2vec2 hubert data2vec; do
    [ -f "$OUT/${fam}_$preset.pt" ] && "$PY" "$HERE/make_fairseq_raw.py" "$OUT/${fam}_$preset.pt" "$OUT/${fam}_$preset.raw"
  done
done
bash "$HERE/make_baseline_dumps.sh" "$OUT"
echo "oracle checkpoints and dumps in $OUT"
