#!/usr/bin/env bash
# Released-size (base preset) checkpoints of wav2vec (v1), vq-wav2vec, DiscreteBERT and modified CPC written by the
# ORIGINAL s3prl classes, and the original's hidden states on them, for tests/test_wav2vec1_cpc.py -m oracle.
#   bash tests/oracle/make_wav2vec1_cpc_dumps.sh [OUT_DIR]   (default: $S3PRL_ORACLE_DUMPS/wav2vec1_cpc; ~1 GB, ~10 min)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # from / : the check must not import our s3prl
OUT="${1:-${S3PRL_ORACLE_DUMPS:-/tmp/s3prl-oracle-dumps}/wav2vec1_cpc}"
# 90000 samples = 562 DiscreteBERT tokens: more than its 512 positions, so the original chunks
WAVS=(--random-wavs 3 --seed 0 --min-sec 0.5 --max-sec 3 --lengths 400,799,16000,90000)
mkdir -p "$OUT"
for spec in wav2vec:wav2vec_local vq_gumbel:vq_wav2vec_custom vq_kmeans:vq_wav2vec_custom; do
  v=${spec%%:*}; entry=${spec##*:}
  [ -f "$OUT/${v}_base.dump.pt" ] && continue
  "$PY" "$HERE/make_wav2vec_ckpt.py" "$v" "$OUT/${v}_base.pt" --preset base
  "$PY" "$ORACLE/dump.py" --name "$entry" --ckpt "$OUT/${v}_base.pt" --out "$OUT/${v}_base.dump.pt" "${WAVS[@]}" \
      --no-legacy > "$OUT/${v}_base.dump.log"
done
if [ ! -f "$OUT/roberta_base.dump.pt" ]; then
  "$PY" "$HERE/make_roberta_ckpt.py" released "$OUT/roberta_base.pt" --kmeans "$OUT/vq_kmeans_base.pt" --preset base
  "$PY" "$HERE/dump_roberta.py" --roberta "$OUT/roberta_base.pt" --kmeans "$OUT/vq_kmeans_base.pt" -- \
      --out "$OUT/roberta_base.dump.pt" "${WAVS[@]}" --no-legacy > "$OUT/roberta_base.dump.log"
fi
if [ ! -f "$OUT/cpc_base.dump.pt" ]; then
  "$PY" "$HERE/make_cpc_ckpt.py" released "$OUT/cpc_base.pt" --preset base
  "$PY" "$ORACLE/dump.py" --name cpc_local --ckpt "$OUT/cpc_base.pt" --out "$OUT/cpc_base.dump.pt" "${WAVS[@]}" \
      --no-legacy > "$OUT/cpc_base.dump.log"
fi
echo "oracle checkpoints and dumps in $OUT"
