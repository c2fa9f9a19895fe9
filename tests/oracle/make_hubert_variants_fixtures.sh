#!/usr/bin/env bash
# Parity fixtures for tests/test_hubert_variants.py and tests/test_misc_upstreams.py: tiny checkpoints written
# with the ORIGINAL s3prl classes (LightHuBERT, MR-HuBERT, timit_phone ConvBank, MOS head; torchaudio's HuBERT
# in ESPnet's layout) and the original S3PRLUpstream's hidden states (or the original MOS scores).
# Regenerate with:  bash tests/oracle/make_hubert_variants_fixtures.sh   (needs ../shared/tools/s3prl-oracle; ~4 min)
# Optional real-size LightHuBERT check (380 MB, not committed):  BASE_DIR=/tmp/s3prl-oracle-dumps bash ... --base
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
OUT="$(cd "$HERE/../fixtures/oracle" && pwd)/hubert_variants"
cd "$(mktemp -d)"  # never run the oracle from the checkout: its s3prl/ would shadow the original package
PY="$(bash "$ORACLE/setup.sh" | tail -1)"
mkdir -p "$OUT"
WAVS=(--random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400 --no-legacy)
q() { "$@" > /dev/null 2>&1 || { "$@"; exit 1; }; }
slim() {  # keep what tests/parity.py reads: wavs, single, single_lengths, meta
  "$PY" -c "import sys, torch; d = torch.load(sys.argv[1], weights_only=True)
for k in ('batch', 'legacy_hidden_states', 'legacy_extra'): d.pop(k, None)
torch.save(d, sys.argv[1])" "$1"
}

if [[ "${1:-}" == "--base" ]]; then
  B="${BASE_DIR:-/tmp/s3prl-oracle-dumps}"; mkdir -p "$B"
  q "$PY" "$HERE/make_lighthubert_ckpt.py" ckpt "$B/lighthubert_base_pruner.pt" --preset base --name hubert_pruner
  q "$PY" "$HERE/make_lighthubert_ckpt.py" dump --preset base -- --name lighthubert_local \
      --ckpt "$B/lighthubert_base_pruner.pt" --out "$B/lighthubert_base_pruner.dump.pt" "${WAVS[@]}"
  exit 0
fi

# LightHuBERT: one tiny supernet (fp16, like the released files), two subnets: pruned (sliced) and full width
q "$PY" "$HERE/make_lighthubert_ckpt.py" ckpt "$OUT/lighthubert_tiny.pt" --preset tiny --name hubert_pruner --fp16
for sub in pruned max; do
  q "$PY" "$HERE/make_lighthubert_ckpt.py" dump --preset tiny --subnet $sub -- --name lighthubert_local \
      --ckpt "$OUT/lighthubert_tiny.pt" --out "$OUT/lighthubert_tiny_$sub.dump.pt" "${WAVS[@]}" --random-wavs 1
  slim "$OUT/lighthubert_tiny_$sub.dump.pt"
done

# MR-HuBERT: the released two-resolution layout, and three resolutions with plain samplers, pre-LN, uneven stacks
for preset in two_res three_res_plain; do
  q "$PY" "$HERE/make_multires_hubert_ckpt.py" "$OUT/multires_hubert_$preset.pt" --preset $preset
  q "$PY" "$ORACLE/dump.py" --name multires_hubert_local --ckpt "$OUT/multires_hubert_$preset.pt" \
      --out "$OUT/multires_hubert_$preset.dump.pt" "${WAVS[@]}"
  slim "$OUT/multires_hubert_$preset.dump.pt"
done

# ESPnet HuBERT (torchaudio model, ESPnet layout; the ESPnet loader is stubbed, see make_espnet_hubert_ckpt.py)
for preset in base large; do
  q "$PY" "$HERE/make_espnet_hubert_ckpt.py" ckpt "$OUT/espnet_hubert_$preset" --preset $preset
  q "$PY" "$HERE/make_espnet_hubert_ckpt.py" dump -- --name espnet_hubert_local \
      --ckpt "$OUT/espnet_hubert_$preset/model.pth" --out "$OUT/espnet_hubert_$preset.dump.pt" "${WAVS[@]}"
  slim "$OUT/espnet_hubert_$preset.dump.pt"
done

# the example template (random init under a fixed seed; one frame per sample, so short clips)
q "$PY" "$HERE/make_example_dump.py" --seed 0 -- --name customized_upstream --ckpt "$HERE/make_example_dump.py" \
    --out "$OUT/example.dump.pt" --random-wavs 1 --seed 0 --min-sec 0.06 --max-sec 0.08 --lengths 400,799 --no-legacy
slim "$OUT/example.dump.pt"

# stft_mag with the two yaml files of the original (written here, same values)
for log in False True; do
  name=$([[ $log == True ]] && echo log_stft_mag || echo stft_mag)
  printf 'feat_type: spectrogram\nspectrogram:\n  n_fft: 512\n  hop_length: 320\n  win_length: 512\n  window: "hann"\n  center: True\n  log: %s\n' \
      "$log" > "$OUT/$name.yaml"
  q "$PY" "$ORACLE/dump.py" --name stft_mag --ckpt "$OUT/$name.yaml" --extra-conf "{\"model_config\": \"$OUT/$name.yaml\"}" \
      --out "$OUT/$name.dump.pt" --random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,799 --no-legacy
  slim "$OUT/$name.dump.pt"
done

# timit_posteriorgram (ConvBank on the fbank baseline; Args is a pickled Namespace, as in the real file)
q "$PY" "$HERE/make_timit_phone_ckpt.py" ckpt "$OUT/timit_phone_tiny.ckpt"
S3PRL_ORACLE_ALLOW_PICKLE=1 q "$PY" "$HERE/make_timit_phone_ckpt.py" dump -- --name timit_posteriorgram_local \
    --ckpt "$OUT/timit_phone_tiny.ckpt" --out "$OUT/timit_phone_tiny.dump.pt" "${WAVS[@]}"
slim "$OUT/timit_phone_tiny.dump.pt"

# MOS prediction on tiny wav2vec2 / TERA / APC front-ends (their architecture comes from these files)
q "$PY" "$ORACLE/make_ckpt.py" wav2vec2 "$OUT/front_wav2vec2_tiny.pt" --preset tiny --seed 3
q "$PY" "$ORACLE/make_ckpt.py" tera "$OUT/front_tera_tiny.ckpt" --preset tiny --seed 3
q "$PY" "$ORACLE/make_ckpt.py" apc "$OUT/front_apc_tiny.ckpt" --preset tiny --seed 3
for kind in wav2vec2 tera apc; do
  front=$(ls "$OUT"/front_${kind}_tiny.*)
  q "$PY" "$HERE/make_mos_ckpt.py" "$front" "$OUT/mos_${kind}_tiny.ckpt" "$OUT/mos_${kind}_tiny.scores.pt" --kind $kind
done
du -sh "$OUT"
