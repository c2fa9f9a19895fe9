#!/usr/bin/env bash
# Parity fixtures of the audio-domain families (ast, ssast, mae_ast, passt) for the DEFAULT test suite.
#
# Checkpoints are written and loaded by the ORIGINAL s3prl 0.4.18 classes (tests/oracle/ast_family_oracle.py,
# run in the oracle venv; needs `pip install --no-deps timm==0.4.5` there), then only their JSON specs are
# committed: the tests rebuild the same bytes (sha256 checked) with tests/oracle/seeded_ckpt.py. Dumps hold the
# original S3PRLUpstream's hidden states at batch size 1 on clips shared through ast_family_wavs.pt.
#
#   bash tests/oracle/make_ast_family_fixtures.sh            # tiny fixtures -> tests/fixtures/oracle (~15 min)
#   BASE=1 S3PRL_ORACLE_DUMPS=/tmp/dumps bash tests/oracle/make_ast_family_fixtures.sh
#       # also full-size (768-d, 12-layer) checkpoints and dumps for `pytest -m oracle` (~1.5 GB, ~30 min);
#       # BASE=only makes just those
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ORACLE="${S3PRL_ORACLE_DIR:-$HERE/../../../shared/tools/s3prl-oracle}"
OUT="$HERE/../fixtures/oracle"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"
cd "$TMP"  # the oracle must import the installed s3prl, not this checkout
PY="$(bash "$ORACLE/setup.sh" | tail -1)"
"$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('timm') != '0.4.5')" 2>/dev/null \
  || PIP_CONSTRAINT="$(dirname "$(dirname "$PY")")/s3prl-oracle-constraints.txt" \
       "$(dirname "$PY")/pip" install --no-deps timm==0.4.5
ORC="$HERE/ast_family_oracle.py"
WAVS="$OUT/ast_family_wavs.pt"

make() {  # FAMILY NAME [options]: checkpoint in $TMP, spec in $OUT
  local fam=$1 name=$2; shift 2
  "$PY" "$ORC" make "$fam" "$TMP/$name.pt" "$@" | tail -1
  cp "$TMP/$name.pt.spec.json" "$OUT/$name.spec.json"
}
dump() {  # NAME ENTRY OUT_NAME WAV_INDEX [options]
  local name=$1 entry=$2 out=$3 idx=$4; shift 4
  "$PY" "$ORC" dump --spec "$TMP/$name.pt.spec.json" --ckpt "$TMP/$name.pt" --name "$entry" --out "$OUT/$out.dump.pt" \
    --wavs-file "$WAVS" --wav-index "$idx" --random-wavs 1 --seed 0 --min-sec 0.6 --max-sec 1.2 \
    --lengths 400,16000,27000,2900 "$@" | tail -1
}

if [ "${BASE:-0}" != only ]; then
# clips: 0 = 0.6-1.2 s synthetic, 1 = 400 samples, 2 = 1 s, 3 = 1.69 s, 4 = 2900 samples
make ast ast_tiny --depth 2 --mlp-ratio 0.25  # 768-d (the loader hard-codes it), 2 blocks
dump ast_tiny ast ast_cls 0,1 --ast-trained-head
dump ast_tiny ast ast_cls_w1_s05 0,2 --ast-trained-head --extra-conf '{"window_secs": 1.0, "stride_secs": 0.5}'
dump ast_tiny ast ast_hs_w1 0,1,2,3 --feature-stride 16 \
  --extra-conf '{"window_secs": 1.0, "stride_secs": 1.0, "feature_selection": "hidden_states"}'
dump ast_tiny ast ast_hs_w105 0 --feature-stride 16 \
  --extra-conf '{"window_secs": 10.5, "stride_secs": 10.5, "feature_selection": "hidden_states"}'

make ssast_f ssast_frame_tiny --dim 128 --depth 2 --p-tdim 200
make ssast_p ssast_patch_tiny --dim 128 --depth 2 --p-tdim 200
dump ssast_frame_tiny ssast_frame_base ssast_frame_w1 0,1,3 --feature-stride 4
dump ssast_frame_tiny ssast_frame_base ssast_frame_w25 3 --feature-stride 4 --extra-conf '{"window_secs": 2.5}'
dump ssast_patch_tiny ssast_patch_base ssast_patch_w1 0,1,3 --feature-stride 4
dump ssast_patch_tiny ssast_patch_base ssast_patch_w2 3 --feature-stride 4 --extra-conf '{"window_secs": 2.0}'

make mae_ast_frame mae_ast_frame_tiny --dim 128 --depth 2
make mae_ast_patch mae_ast_patch_tiny --dim 128 --depth 2
dump mae_ast_frame_tiny mae_ast_local mae_ast_frame 0,1,2,3,4 --ckpt-arg --feature-stride 4
dump mae_ast_patch_tiny mae_ast_local mae_ast_patch 0,1,2,3,4 --ckpt-arg --feature-stride 4

make passt_base passt_base_tiny --dim 128 --depth 2
make passt_hop100base passt_hop100_tiny --dim 128 --depth 2
make passt_hop160base passt_hop160_tiny --dim 128 --depth 2
make passt_base20sec passt_20sec_tiny --dim 128 --depth 2
dump passt_base_tiny passt_base passt_base 0,2,3,4 --feature-stride 4
dump passt_base_tiny passt_base2level passt_base2level 0,3 --feature-stride 4
dump passt_base_tiny passt_base2levelmel passt_base2levelmel 0,3 --feature-stride 4
dump passt_hop100_tiny passt_hop100base2lvlmel passt_hop100base2lvlmel 0,3 --feature-stride 4
dump passt_hop160_tiny passt_hop160base2lvl passt_hop160base2lvl 0,3 --feature-stride 4
dump passt_20sec_tiny passt_base20sec passt_base20sec 3 --feature-stride 4

# The original `ast` entry's `cls` output comes from a randomly initialised head: two seeds disagree.
for seed in 0 1; do
  S3PRL_ORACLE_SEED=$seed "$PY" "$ORC" dump --spec "$TMP/ast_tiny.pt.spec.json" --ckpt "$TMP/ast_tiny.pt" --name ast \
    --out "$TMP/ast_random_head_$seed.dump.pt" --wavs-file "$WAVS" --wav-index 0 > /dev/null
done
"$PY" -c "import torch; a, b = (torch.load('$TMP/ast_random_head_%d.dump.pt' % s)['single'][0][0] for s in (0, 1)); \
print('original ast cls, seeds 0 vs 1: max abs diff', float((a - b).abs().max()))"
fi

if [ "${BASE:-0}" != 0 ]; then  # full-size models for `pytest -m oracle` (not committed)
  BOUT="${S3PRL_ORACLE_DUMPS:?set S3PRL_ORACLE_DUMPS}/ast_family"
  mkdir -p "$BOUT"
  base() {  # FAMILY NAME ENTRY WAV_INDEX [dump options]
    local fam=$1 name=$2 entry=$3 idx=$4; shift 4
    local extra=(--dim 768 --depth 12)
    [ "$fam" = ast ] && extra=(--depth 12 --mlp-ratio 4)
    [ -f "$BOUT/$name.pt" ] || "$PY" "$ORC" make "$fam" "$BOUT/$name.pt" "${extra[@]}" --p-tdim 1024 | tail -1
    "$PY" "$ORC" dump --spec "$BOUT/$name.pt.spec.json" --ckpt "$BOUT/$name.pt" --name "$entry" \
      --out "$BOUT/$name.$entry.dump.pt" --wavs-file "$WAVS" --wav-index "$idx" "$@" | tail -1
  }
  base ast ast_base ast 0 --ast-trained-head
  base ssast_f ssast_frame_base ssast_frame_base 0,3
  base ssast_p ssast_patch_base ssast_patch_base 0,3
  base mae_ast_frame mae_ast_frame_base mae_ast_local 0,3 --ckpt-arg
  base passt_base passt_base passt_base 0,3
fi
du -ch "$OUT"/ast_* "$OUT"/ssast_* "$OUT"/mae_ast_* "$OUT"/passt_* | tail -1
