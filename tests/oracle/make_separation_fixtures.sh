#!/usr/bin/env bash
# Fixtures of tests/test_separation.py and tests/test_sep_metrics.py (regenerate: bash
# tests/oracle/make_separation_fixtures.sh, ~1 min after the first install): the ORIGINAL enhancement_stft(2) /
# separation_stft(2) experts and asteroid's get_metrics, see make_separation_fixtures.py.
# The metric libraries go to a separate folder ($S3PRL_METRIC_ORACLE_SITE), never into the oracle venv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ORACLE="$(cd "${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}" && pwd)"
SITE="${S3PRL_METRIC_ORACLE_SITE:-/tmp/metric_oracle_site}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"
if [ ! -d "$SITE/pb_bss_eval" ]; then
  "$PY" -m pip install --quiet --target "$SITE" pb_bss_eval pesq pystoi pandas einops cached_property mir_eval
  "$PY" -m pip install --quiet --target "$SITE" --no-deps asteroid==0.7.0
fi
cd "$ROOT"
S3PRL_METRIC_ORACLE_SITE="$SITE" S3PRL_ORACLE_TOOLS="$ORACLE" S3PRL_ORACLE_THREADS=1 \
  "$PY" "$HERE/make_separation_fixtures.py" tests/fixtures/separation_oracle.pt tests/fixtures/separation_v2_oracle.pt
