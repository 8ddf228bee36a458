#!/usr/bin/env bash
# qwen3_moe_x8_layouts.sh - Q4_0, Q8_0, Q4_K and Q6_K MoE experts repacked
# lazily (src/layers/moe.c, pio_moe_repack): each expert becomes its X8
# layout (Q4_0_X8, ...) in place the first time it is routed to, when the
# active kernels want that layout (AVX2). For each of q4_0, q8_0, q4_k and
# q6_k (the K-quants' 128-column down matrices fall back to Q8_0, as in
# llama.cpp), on a random
# Qwen3-MoE made here (benchmarks/make_moe_rss_model.py, numpy only; 8
# experts of 128 x 256, top-2, so every expert matrix has rows % 8 == 0):
#   - a quantized GGUF (`pio quantize`: 3-D expert stacks in the read-only
#     file mapping, rewritten in place after mprotect) and the directory
#     quantized on load (--dtype: per-expert tensors in owned memory)
#     give, at the active level (and the AVX2 one), the logits of the scalar level
#     (PIO_CPU=scalar: plain format, nothing repacked) within 2e-2 of the
#     largest logit (TOL, as in x8_layouts.sh: float rounding, and the odd
#     int8 rounding of an activation it tips), and the same greedy text;
#     with --preload every expert is repacked at load instead (a new
#     buffer for the GGUF's stacks, in place for the owned ones): same check;
#   - benchmarks/moe_rss_bench on the GGUF: with AVX2 kernels (PIO_CPU=avx2
#     on an AVX-512 machine), pages of the
#     file mapping became private copies (the repacked experts) and the
#     mapping's resident bytes stay within the file's (private pages replace
#     file pages, they do not add to them); at the scalar level none did.
# Skips (77) without numpy.
set -u
PIO=${PIO:-build/pio}
SRC=${PIO_SOURCE_DIR:-.}
BUILD=${PIO_BUILD_DIR:-$(dirname "$PIO")}
IDS=397,353,328,220,18,291,417,410,279,258
python3 -c "import numpy" 2>/dev/null || { echo "SKIP: python3 cannot import numpy"; exit 77; }
[ -x "$PIO" ] || { echo "SKIP: no pio binary at $PIO"; exit 77; }
TOL=2e-2
# Only the AVX2 level repacks: on an AVX-512 machine the logits are checked
# at PIO_CPU=avx2 too, and moe_rss_bench runs there.
LEVELS=active; REPACK_LEVEL=
if grep -qw avx512f /proc/cpuinfo 2>/dev/null && grep -qw avx2 /proc/cpuinfo; then
  LEVELS="active avx2"; REPACK_LEVEL=avx2
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; [ -s "$tmp/err" ] && sed 's/^/     /' "$tmp/err" | head -5; }
nosan() { ! grep -qE 'Sanitizer|runtime error' "$tmp/err"; }

# close A.json B.json REL: max |a-b| <= REL * max |b|
close() {
  python3 - "$@" <<'PY'
import json, sys
import numpy as np
a = np.array(json.load(open(sys.argv[1]))["logits"]); b = np.array(json.load(open(sys.argv[2]))["logits"])
d = float(np.abs(a - b).max()) if a.shape == b.shape else float("inf")
scale = float(np.abs(b).max())
print(f"max |diff| {d:.3g} (scale {scale:.3g})")
sys.exit(0 if np.isfinite(d) and d <= float(sys.argv[3]) * scale else 1)
PY
}

m=$tmp/moe
python3 "$SRC/benchmarks/make_moe_rss_model.py" "$m" --experts 8 --top-k 2 --layers 2 --hidden 256 --moe-ff 128 \
  --seed 3 >/dev/null 2>"$tmp/err" || { bad "make_moe_rss_model.py"; echo "qwen3_moe_x8_layouts: $pass passed, $fail failed"; exit 1; }
for q in q4_0 q8_0 q4_k q6_k; do
  g=$tmp/moe.$q.gguf
  "$PIO" quantize -q -m "$m" -o "$g" --dtype $q 2>"$tmp/err" || bad "pio quantize $q"

  for src in gguf onload gguf-preload onload-preload; do
    case $src in
      gguf) a="-m $g" ;;
      onload) a="-m $m --dtype $q" ;;
      gguf-preload) a="-m $g --preload" ;;
      onload-preload) a="-m $m --dtype $q --preload" ;;
    esac
    PIO_CPU=scalar "$PIO" logits $a --ids $IDS > "$tmp/ref.json" 2>"$tmp/err" || { bad "$src $q: scalar logits"; continue; }
    PIO_CPU=scalar "$PIO" run $a -p "hello world" -n 12 --temp 0 --ignore-eos -q > "$tmp/ref.txt" 2>"$tmp/err"
    for lvl in $LEVELS; do
      env=(); [ $lvl = active ] || env=(PIO_CPU=$lvl)
      env "${env[@]}" "$PIO" logits $a --ids $IDS > "$tmp/act.json" 2>"$tmp/err" && nosan || { bad "$src $q $lvl: logits"; continue; }
      if r=$(close "$tmp/act.json" "$tmp/ref.json" $TOL); then ok "$src $q experts: $lvl level = scalar level: $r"
      else bad "$src $q experts $lvl vs scalar: $r"; fi
      # greedy decode after a prefill: steps read experts repacked by earlier
      # steps (decode path, all k repacked) and repack the ones new to them
      env "${env[@]}" "$PIO" run $a -p "hello world" -n 12 --temp 0 --ignore-eos -q > "$tmp/act.txt" 2>"$tmp/err"
      if [ -s "$tmp/ref.txt" ] && cmp -s "$tmp/act.txt" "$tmp/ref.txt"; then ok "$src $q: $lvl greedy text = scalar level"
      else bad "$src $q $lvl greedy: '$(head -c 60 "$tmp/act.txt")' vs '$(head -c 60 "$tmp/ref.txt")'"; fi
    done
  done

  # private pages of the file mapping: the repacked experts
  bench=$BUILD/benchmarks/moe_rss_bench
  if [ -x "$bench" ]; then
    for lvl in active scalar; do
      if [ $lvl = scalar ]; then export PIO_CPU=scalar; else export PIO_CPU=$REPACK_LEVEL; fi
      PIO_PLUGIN_PATH=$BUILD/plugins "$bench" "$g" 16 --prompt 4 > "$tmp/rss.$q.$lvl.txt" 2>"$tmp/err" || bad "moe_rss_bench ($lvl)"
      unset PIO_CPU
    done
    r=$(python3 - "$tmp/rss.$q.active.txt" "$tmp/rss.$q.scalar.txt" <<'PY'
import re, sys
def parse(p):
    txt = open(p).read()
    kern = re.search(r"kernels (\S+)", txt).group(1)
    last = [l for l in txt.splitlines() if l.startswith("after 16 decoded")][0]
    res = float(re.search(r"model file resident +([\d.]+) MB", last).group(1))
    pct = float(re.search(r"\( *([\d.]+)% of", last).group(1))
    priv = float(re.search(r"private ([\d.]+) MB", last).group(1))
    return kern, res, pct, priv
ka, ra, pa, va = parse(sys.argv[1]); ks, rs, ps, vs = parse(sys.argv[2])
print(f"{ka}: resident {ra} MB ({pa}% of the file), private {va} MB; scalar: private {vs} MB")
ok = vs == 0 and va <= ra + 0.01 and pa <= 102
if ka == "avx2":
    ok = ok and va > 0.1
sys.exit(0 if ok else 1)
PY
    ) && ok "moe_rss_bench $q: $r" || bad "moe_rss_bench $q: $r"
  else
    echo "note: no $bench; the resident-set check is skipped"
  fi
done

echo "qwen3_moe_x8_layouts: $pass passed, $fail failed"
[ $fail -eq 0 ]
