#!/usr/bin/env bash
# Parity fixtures of the Mockingjay family (tera, mockingjay, audio_albert, spec_augment), written by the ORIGINAL
# s3prl classes, for tests/test_mockingjay.py.
#   bash tests/oracle/make_mockingjay_fixtures.sh [--variants]  tiny fixtures -> tests/fixtures/oracle (~2 min)
#   bash tests/oracle/make_mockingjay_fixtures.sh --dumps    base presets + mockingjay large -> $S3PRL_ORACLE_DUMPS
#                                                            (default /tmp/s3prl-oracle-dumps; ~3 min, 0.6 GB)
# Fixture names: NAME.ckpt (checkpoint) and NAME.oracle.pt (the original S3PRLUpstream's outputs at batch size 1;
# its padded-batch pass is dropped, and a fixture fed the same waveforms as an earlier one names that file in
# 'wavs_from' instead of holding a copy, to keep the files small). tera_tiny_legacy.ckpt holds tera_tiny's weights in the
# legacy layout (config under 'Config'), so tera_tiny.oracle.pt is its reference too (checked below).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="$(cd "${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}" && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
cd "$TMP"  # never run the oracle's python inside the checkout: `import s3prl` would find our package
PY="$(bash "$ORACLE/setup.sh" | tail -1)"

slim() {  # dump out [wavs_from]: keep the batch-size-1 pass; with wavs_from, the waveforms stay in that file only
  "$PY" - "$@" <<'EOF'
import os, sys, torch
d = torch.load(sys.argv[1], weights_only=True)
assert not d["meta"]["errors"], d["meta"]["errors"]
out = {k: d[k] for k in ("wavs", "single", "single_lengths", "meta")}
if len(sys.argv) > 3:  # same inputs as an earlier fixture: store a reference instead of a copy
    shared = torch.load(sys.argv[3], weights_only=True)["wavs"]
    assert len(shared) == len(out["wavs"]) and all(torch.equal(a, b) for a, b in zip(shared, out["wavs"]))
    del out["wavs"]
    out["wavs_from"] = os.path.basename(sys.argv[3])
torch.save(out, sys.argv[2])
EOF
}

dump() {  # entry ckpt out [wavs_from] -- [dump.py input options...]
  local entry=$1 ck=$2 out=$3 from=(); shift 3
  while [ "$1" != "--" ]; do from+=("$1"); shift; done; shift
  "$PY" "$ORACLE/dump.py" --name "$entry" --ckpt "$ck" --out "$TMP/d.pt" --no-legacy "$@" > /dev/null
  slim "$TMP/d.pt" "$out" "${from[@]}"
}

if [ "${1:-}" = "--dumps" ]; then
  OUT="${2:-${S3PRL_ORACLE_DUMPS:-/tmp/s3prl-oracle-dumps}}"
  mkdir -p "$OUT"
  for spec in tera:base mockingjay:base audio_albert:base mockingjay:large; do
    fam=${spec%%:*}; preset=${spec##*:}
    [ -f "$OUT/${fam}_$preset.oracle.pt" ] && continue
    echo "== $fam $preset"
    "$PY" "$ORACLE/make_ckpt.py" "$fam" "$OUT/${fam}_$preset.ckpt" --preset "$preset" --seed 0 > /dev/null
    dump "${fam}_local" "$OUT/${fam}_$preset.ckpt" "$OUT/${fam}_$preset.oracle.pt" -- \
        --random-wavs 3 --seed 0 --min-sec 0.5 --max-sec 3 --lengths 400,799,1000,16000
  done
  echo "oracle checkpoints and dumps in $OUT"
  exit 0
fi

OUT="$HERE/../fixtures/oracle"
mkdir -p "$OUT"
if [ "${1:-}" != "--variants" ]; then  # --variants: only the make_mockingjay_ckpt.py checkpoints below
STD=(--random-wavs 2 --seed 0 --min-sec 0.6 --max-sec 1.2 --lengths 400,16000)
for fam in tera mockingjay audio_albert; do
  "$PY" "$ORACLE/make_ckpt.py" "$fam" "$OUT/${fam}_tiny.ckpt" --preset tiny --seed 0 > /dev/null
  from=(); [ "$fam" = tera ] || from=("$OUT/tera_tiny.oracle.pt")
  dump "${fam}_local" "$OUT/${fam}_tiny.ckpt" "$OUT/${fam}_tiny.oracle.pt" "${from[@]}" -- "${STD[@]}"
done
"$PY" "$ORACLE/make_ckpt.py" tera "$OUT/tera_tiny_legacy.ckpt" --preset tiny --seed 0 --layout legacy > /dev/null
dump tera_local "$OUT/tera_tiny_legacy.ckpt" "$TMP/legacy.oracle.pt" -- "${STD[@]}"
"$PY" - "$OUT/tera_tiny.oracle.pt" "$TMP/legacy.oracle.pt" <<'EOF2'
import sys, torch
a, b = (torch.load(p, weights_only=True) for p in sys.argv[1:])
assert all(torch.equal(x, y) for u, v in zip(a["single"], b["single"]) for x, y in zip(u, v)), "layouts differ"
EOF2
fi

# digital silence (all frames masked by the original's rule) and a clip with an exact-zero gap
"$PY" - "$TMP" <<'EOF'
import sys, numpy as np, soundfile as sf
rng = np.random.default_rng(0)
t = np.arange(20800) / 16000
speech = (0.3 * np.sin(2 * np.pi * 180 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t)) + 0.02 * rng.standard_normal(t.size))
speech[4000:8000] = 0.0
sf.write(f"{sys.argv[1]}/gap.wav", speech.astype(np.float32), 16000, subtype="FLOAT")
sf.write(f"{sys.argv[1]}/silence.wav", np.zeros(4000, np.float32), 16000, subtype="FLOAT")
EOF
VAR=(--wav "$TMP/silence.wav" "$TMP/gap.wav" --seed 1 --lengths 400)
for v in preln_fbank mfcc_delta linear_gamma kaldi_mfcc spec_augment; do
  "$PY" "$HERE/make_mockingjay_ckpt.py" "$v" "$OUT/mockingjay_variant_$v.ckpt" > /dev/null
  from=(); [ "$v" = preln_fbank ] || from=("$OUT/mockingjay_variant_preln_fbank.oracle.pt")
  dump tera_local "$OUT/mockingjay_variant_$v.ckpt" "$OUT/mockingjay_variant_$v.oracle.pt" "${from[@]}" -- "${VAR[@]}"
done
du -ch "$OUT"/{tera,mockingjay,audio_albert}_* | tail -1
