#!/usr/bin/env bash
# Fixture of tests/test_legacy_probes.py (regenerate: bash tests/oracle/make_legacy_probe_fixtures.sh): the ORIGINAL
# mosei and voxceleb2_ge2e experts (make_legacy_probe_fixtures.py). Their imports need pandas, sox (pysox) and six:
# they go to a separate folder ($S3PRL_LEGACY_ORACLE_SITE), never into the oracle venv.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
ORACLE="$(cd "${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}" && pwd)"
SITE="${S3PRL_LEGACY_ORACLE_SITE:-/tmp/legacy_probes_site}"
PY="$(cd / && bash "$ORACLE/setup.sh" | tail -1)"
if [ ! -d "$SITE/pandas" ] || [ ! -d "$SITE/sox" ] || [ ! -f "$SITE/six.py" ]; then
  "$PY" -m pip install --quiet --target "$SITE" pandas sox six
fi
cd "$ROOT"
OMP_NUM_THREADS=1 "$PY" "$HERE/make_legacy_probe_fixtures.py" "$SITE" tests/fixtures/legacy_probes_oracle.pt
