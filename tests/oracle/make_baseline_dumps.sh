#!/usr/bin/env bash
# Reference dumps of the original s3prl baselines for tests/test_baseline.py (-m oracle).
# Needs the oracle venv (../shared/tools/s3prl-oracle/setup.sh). Usage:
#   bash tests/oracle/make_baseline_dumps.sh [OUT_DIR]     (default: $S3PRL_ORACLE_DUMPS or /tmp/s3prl-oracle-dumps)
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
PY="${S3PRL_ORACLE_PYTHON:-${S3PRL_ORACLE_VENV:-$HOME/.cache/s3prl-oracle/venv}/bin/python}"
OUT="${1:-${S3PRL_ORACLE_DUMPS:-/tmp/s3prl-oracle-dumps}}"
mkdir -p "$OUT"
for name in fbank fbank_no_cmvn mfcc mel linear spectrogram; do
  # random speech-like clips plus exact short lengths (one frame, a few frames, odd sizes)
  "$PY" "$ORACLE/dump.py" --baseline "$name" --out "$OUT/baseline_$name.dump.pt" \
      --random-wavs 3 --seed 0 --min-sec 0.5 --max-sec 3 --lengths 400,559,1000,16001
done
# real recordings (8 kHz FSDD resampled by the oracle, a LibriSpeech flac, digital silence), when available
DATA="${S3PRL_TEST_DATA:-}"
if [ -n "$DATA" ] && [ -d "$DATA/fsdd" ]; then
  for name in fbank mfcc mel; do
    "$PY" "$ORACLE/dump.py" --baseline "$name" --out "$OUT/baseline_${name}_audio.dump.pt" \
        --wav "$DATA/fsdd/recordings/0_jackson_0.wav" \
              "$DATA/librispeech_test_other_mini/1688/1688-142285-0000.flac" \
              "$DATA/ami_mini/empty.wav"
  done
fi
echo "dumps written to $OUT"
