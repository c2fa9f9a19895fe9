#!/usr/bin/env bash
# Fixtures of tests/test_probes.py and tests/test_bleu.py (regenerate: bash tests/oracle/make_probe_fixtures.sh):
# the ORIGINAL speaker_linear_{utter,frame}_libri experts and dataset (make_probe_fixtures.py) and the original
# speech_translation BLEU code (make_bleu_fixtures.py). pandas, sacrebleu and sentencepiece go to a separate folder
# ($S3PRL_PROBE_ORACLE_SITE), never into the oracle venv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ORACLE="$(cd "${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}" && pwd)"
SITE="${S3PRL_PROBE_ORACLE_SITE:-$HOME/.cache/s3prl-oracle/side-st}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"
if [ ! -d "$SITE/pandas" ] || [ ! -d "$SITE/sacrebleu" ]; then
  "$PY" -m pip install --quiet --target "$SITE" pandas sacrebleu==2.6.0 sentencepiece
fi
cd "$ROOT"
OMP_NUM_THREADS=1 "$PY" "$HERE/make_probe_fixtures.py" "$SITE" tests/fixtures/probes_oracle.pt
OMP_NUM_THREADS=1 "$PY" "$HERE/make_bleu_fixtures.py" "$SITE" tests/fixtures/bleu_oracle.json
