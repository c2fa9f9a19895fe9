#!/usr/bin/env bash
# Small parity fixtures for the DEFAULT test suite: tiny checkpoints written by the ORIGINAL s3prl classes,
# the original S3PRLUpstream's hidden states on two short clips, and raw-fairseq re-wraps of the same weights.
# Regenerate with:  bash tests/oracle/make_fixtures.sh   (needs ../shared/tools/s3prl-oracle; ~2 min)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # from /: a checkout on the path would shadow the original s3prl
OUT="$HERE/../fixtures/oracle"
mkdir -p "$OUT"
for spec in wav2vec2:tiny hubert:tiny wavlm:tiny data2vec:tiny distiller:tiny \
            wav2vec2:tiny_large hubert:tiny_large wavlm:tiny_large; do
  fam=${spec%%:*}; preset=${spec##*:}
  "$PY" "$ORACLE/make_ckpt.py" "$fam" "$OUT/${fam}_$preset.pt" --preset "$preset" --seed 0 > /dev/null
  "$PY" "$ORACLE/dump.py" --name "${fam}_local" --ckpt "$OUT/${fam}_$preset.pt" --out "$OUT/${fam}_$preset.dump.pt" \
      --random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,16000 --no-legacy > /dev/null
done
for pos in rel_pos rope; do  # wav2vec2-conformer (make_ckpt.py has no conformer preset)
  "$PY" "$HERE/make_conformer_ckpt.py" "$pos" "$OUT/wav2vec2_tiny_conformer_$pos.pt"
  "$PY" "$ORACLE/dump.py" --name wav2vec2_local --ckpt "$OUT/wav2vec2_tiny_conformer_$pos.pt" \
      --out "$OUT/wav2vec2_tiny_conformer_$pos.dump.pt" \
      --random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,16000 --no-legacy > /dev/null
done
for fam in wav2vec2 hubert data2vec; do
  "$PY" "$HERE/make_fairseq_raw.py" "$OUT/${fam}_tiny.pt" "$OUT/${fam}_tiny.raw"
done
du -sh "$OUT"
