#!/usr/bin/env bash
# Parity fixtures for APC, VQ-APC, NPC, DeCoAR, DeCoAR (layers) and DeCoAR 2.0: tiny checkpoints written by the
# ORIGINAL s3prl classes and the original S3PRLUpstream's hidden states on four clips (two random 0.6-1.2 s,
# 400 and 16000 samples). Names avoid the `*.dump.pt` pattern of test_oracle_fixtures.py: checkpoints are
# `<family>_tiny.ckpt` (APC series) / `<family>_tiny.pt` (DeCoAR), dumps `<entry>_tiny.states.pt`.
# Regenerate with:  bash tests/oracle/make_apc_npc_decoar_fixtures.sh   (needs ../shared/tools/s3prl-oracle; ~1 min)
#
# Heavier checks for `pytest -m oracle` (base sizes, kept out of the repository):
#   S3PRL_ORACLE_DUMPS=/tmp/oracle bash tests/oracle/make_apc_npc_decoar_fixtures.sh base
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"  # not from the checkout: its s3prl would shadow the original
PRESET="${1:-tiny}"
if [ "$PRESET" = tiny ]; then OUT="$HERE/../fixtures/oracle"; else OUT="${S3PRL_ORACLE_DUMPS:?set S3PRL_ORACLE_DUMPS}"; fi
mkdir -p "$OUT"
WAVS=(--random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,16000 --no-legacy)
[ "$PRESET" = tiny ] || WAVS=(--random-wavs 3 --seed 0 --min-sec 0.5 --max-sec 3 --lengths 400,16000 --no-legacy)

for fam in apc vq_apc npc; do
  entry=apc_local; [ "$fam" = npc ] && entry=npc_local  # s3prl has no vq_apc_local: VQ-APC loads via apc_local
  "$PY" "$ORACLE/make_ckpt.py" "$fam" "$OUT/${fam}_$PRESET.ckpt" --preset "$PRESET" --seed 0 > /dev/null
  "$PY" "$ORACLE/dump.py" --name "$entry" --ckpt "$OUT/${fam}_$PRESET.ckpt" --out "$OUT/${fam}_$PRESET.states.pt" \
      "${WAVS[@]}" > /dev/null
done
for fam in decoar decoar2; do
  "$PY" "$HERE/make_decoar_ckpt.py" ckpt "$fam" "$OUT/${fam}_$PRESET.pt" --preset "$PRESET" --seed 0 > /dev/null
done
for entry in decoar decoar_layers decoar2; do
  ckpt="$OUT/${entry%_layers}_$PRESET.pt"  # decoar and decoar_layers read the same file, as the released entries
  "$PY" "$HERE/make_decoar_ckpt.py" dump "$entry" --preset "$PRESET" -- --ckpt "$ckpt" \
      --out "$OUT/${entry}_$PRESET.states.pt" "${WAVS[@]}" > /dev/null
done
if [ "$PRESET" = tiny ]; then  # the padded-batch pass is not read by tests/parity.py: drop it to halve the files
  (cd / && "$PY" - "$OUT"/{apc,vq_apc,npc,decoar,decoar_layers,decoar2}_tiny.states.pt <<'PY'
import sys, torch
for path in sys.argv[1:]:
    dump = torch.load(path, weights_only=True)
    dump["batch"] = None
    torch.save(dump, path)
PY
  )
fi
du -ch "$OUT"/{apc,vq_apc,npc,decoar,decoar_layers,decoar2}_"$PRESET".* | tail -1
