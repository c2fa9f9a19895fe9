#!/usr/bin/env bash
# Parity fixtures of wav2vec (v1), vq-wav2vec (Gumbel, k-means), DiscreteBERT and modified CPC for the DEFAULT
# test suite (tests/test_wav2vec1_cpc.py): tiny checkpoints written by the ORIGINAL s3prl classes and the
# original S3PRLUpstream's hidden states on four short clips (two random 0.3-0.6 s, 400 and 16000 samples),
# slimmed to what the tests read (tests/oracle/slim_dump.py).
# Regenerate with:  bash tests/oracle/make_wav2vec1_cpc_fixtures.sh   (needs ../shared/tools/s3prl-oracle; ~2 min)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # from / : the check must not import our s3prl
OUT="$HERE/../fixtures/oracle/wav2vec1_cpc"
WAVS=(--random-wavs 2 --seed 0 --min-sec 0.3 --max-sec 0.6 --lengths 400,16000)
mkdir -p "$OUT"

# wav2vec / vq-wav2vec: s3prl-converted files, dumped through wav2vec_local / vq_wav2vec_custom
for spec in wav2vec:wav2vec_local vq_gumbel:vq_wav2vec_custom vq_kmeans:vq_wav2vec_custom; do
  v=${spec%%:*}; entry=${spec##*:}
  "$PY" "$HERE/make_wav2vec_ckpt.py" "$v" "$OUT/${v}_tiny.pt"
  "$PY" "$ORACLE/dump.py" --name "$entry" --ckpt "$OUT/${v}_tiny.pt" --out "$OUT/${v}_tiny.dump.pt" "${WAVS[@]}" > /dev/null
  "$PY" "$HERE/slim_dump.py" "$OUT/${v}_tiny.dump.pt" --keep-legacy-extra
done

# DiscreteBERT over the tiny k-means model (the original entry downloads both files: dump_roberta.py routes them)
for v in released preln; do
  suffix=$([ "$v" = released ] && echo "" || echo "_$v")
  "$PY" "$HERE/make_roberta_ckpt.py" "$v" "$OUT/roberta_tiny$suffix.pt" --kmeans "$OUT/vq_kmeans_tiny.pt"
  "$PY" "$HERE/dump_roberta.py" --roberta "$OUT/roberta_tiny$suffix.pt" --kmeans "$OUT/vq_kmeans_tiny.pt" -- \
      --out "$OUT/roberta_tiny$suffix.dump.pt" "${WAVS[@]}" --no-legacy > /dev/null
  "$PY" "$HERE/slim_dump.py" "$OUT/roberta_tiny$suffix.dump.pt"
done

# modified CPC: Libri-light format, dumped through cpc_local
for v in released variant; do
  suffix=$([ "$v" = released ] && echo "" || echo "_$v")
  "$PY" "$HERE/make_cpc_ckpt.py" "$v" "$OUT/cpc_tiny$suffix.pt"
  "$PY" "$ORACLE/dump.py" --name cpc_local --ckpt "$OUT/cpc_tiny$suffix.pt" --out "$OUT/cpc_tiny$suffix.dump.pt" \
      "${WAVS[@]}" --no-legacy > /dev/null
  "$PY" "$HERE/slim_dump.py" "$OUT/cpc_tiny$suffix.dump.pt"
done
du -sh "$OUT"
