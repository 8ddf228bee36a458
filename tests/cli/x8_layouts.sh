#!/usr/bin/env bash
# x8_layouts.sh - Q4_0 and Q8_0 weights repacked at load (8-row interleaved
# Q4_0_X8 / Q8_0_X8, src/formats/repack.c) end to end: the logits of a
# q4_0 / q8_0 GGUF (repacked from the file mapping into new memory) and of a
# directory quantized on load (repacked in place) at the active kernel level
# equal those of the scalar level (PIO_CPU=scalar: plain format, not
# repacked) within 2e-2 of the largest logit (see TOL); the tied fixture's embedding table is
# also its lm_head, so both the row lookup and the matmul run on the
# repacked matrix. `pio info` still counts the matrices as Q4_0 / Q8_0.
# Only the AVX2 level repacks: on an AVX-512 machine the AVX2 level
# (PIO_CPU=avx2) is checked as well as the active one.
# Skips (77) without numpy.
set -u
PIO=${PIO:-build/pio}
SRC=${PIO_SOURCE_DIR:-.}
FX=$SRC/tests/fixtures/qwen3
IDS=397,353,328,220,18,291,417,410,279,258
python3 -c "import numpy" 2>/dev/null || { echo "SKIP: python3 cannot import numpy"; exit 77; }
[ -x "$PIO" ] || { echo "SKIP: no pio binary at $PIO"; exit 77; }

# TOL: a wrong layout gives logits unrelated to the scalar level's; float
# rounding alone stays near 1e-6 of the largest logit, except where it
# tips an activation's int8 rounding (a level's sums run in another order):
# one such flip moved Zen 4's logits by 1e-3 of the largest. The kernels
# themselves are diffed tightly in test_kernels_simd.
TOL=2e-2
LEVELS=active
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx2 /proc/cpuinfo; then LEVELS="active avx2"; fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; [ -s "$tmp/err" ] && sed 's/^/     /' "$tmp/err" | head -5; }

# close A.json B.json REL: max |a-b| <= REL * max |b|
close() {
  python3 - "$@" <<'PY'
import json, sys
import numpy as np
a = np.array(json.load(open(sys.argv[1]))["logits"]); b = np.array(json.load(open(sys.argv[2]))["logits"])
d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
scale = float(np.abs(b).max())
print(f"max |diff| {d:.3g} (scale {scale:.3g})")
sys.exit(0 if d <= float(sys.argv[3]) * scale else 1)
PY
}

for q in q4_0 q8_0; do
  Q=${q^^}
  for fx in tied_gqa2_f32 untied_gqa4_bf16_sharded; do
    g=$tmp/$fx.$q.gguf
    "$PIO" quantize -q -m "$FX/$fx" -o "$g" --dtype $q 2>"$tmp/err" || { bad "$fx: pio quantize $q"; continue; }
    "$PIO" info -m "$g" > "$tmp/info.txt" 2>"$tmp/err"
    if grep -qE "dtypes: *F32 x [0-9]+, $Q x [0-9]+$" "$tmp/info.txt"; then ok "$fx: info counts $Q ($(grep dtypes "$tmp/info.txt" | tr -s ' '))"
    else bad "$fx: info dtypes: $(grep dtypes "$tmp/info.txt")"; fi
    for src in gguf onload; do
      if [ $src = gguf ]; then m=$g; extra=""; else m=$FX/$fx; extra="--dtype $q"; fi
      PIO_CPU=scalar "$PIO" logits -m "$m" $extra --ids $IDS > "$tmp/ref.json" 2>"$tmp/err" || { bad "$fx $src: scalar logits"; continue; }
      for lvl in $LEVELS; do
        env=(); [ $lvl = active ] || env=(PIO_CPU=$lvl)
        env "${env[@]}" "$PIO" logits -m "$m" $extra --ids $IDS > "$tmp/act.json" 2>"$tmp/err" || { bad "$fx $src $lvl: logits"; continue; }
        if r=$(close "$tmp/act.json" "$tmp/ref.json" $TOL); then ok "$fx $src $q: $lvl level = scalar level: $r"
        else bad "$fx $src $q $lvl vs scalar: $r"; fi
      done
    done
  done
done

echo "x8_layouts: $pass passed, $fail failed"
[ $fail -eq 0 ]
