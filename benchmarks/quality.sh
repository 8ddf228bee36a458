#!/usr/bin/env bash
# quality.sh - what each weight format costs in quality: perplexity of a
# model on a held-out text with its matrices converted on load (--dtype), and
# the mean KL divergence and top-1 agreement of its next-token distributions
# against the f32 run (pio perplexity --save-logits / --kl-base).
#
# usage: benchmarks/quality.sh [MODEL [TEXT [FORMATS]]]
#        defaults: models/demo, models/demo/heldout.txt, bf16,q8_0,q6_k,q4_k,q4_0
#        PIO=path/to/pio (default build/pio), CTX=256, OUT=report.md
#        (default benchmarks/results/<date>-<commit>-quality.md)
# K-quants need rows of whole 256-value blocks: a matrix whose rows are not
# (the demo's 576-wide down_proj) gets Q4_0 (for q4_k) or Q8_0 (for q6_k)
# instead; the table's last column lists the dtypes really used (1-D norms
# stay as stored).
set -euo pipefail
model=${1:-models/demo}
text=${2:-models/demo/heldout.txt}
formats=${3:-bf16,q8_0,q6_k,q4_k,q4_0}
pio=${PIO:-build/pio}
ctx=${CTX:-256}
commit=$(git rev-parse --short=10 HEAD 2>/dev/null || echo unknown)
out=${OUT:-benchmarks/results/$(date +%F)-$commit-quality.md}
[ -x "$pio" ] || { echo "quality: no pio binary at $pio" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {   # run NAME ARGS...: perplexity JSON into $tmp/NAME.json, dtypes into $tmp/NAME.dtypes
  local name=$1; shift
  "$pio" perplexity -m "$model" -f "$text" --ctx "$ctx" --json "$@" > "$tmp/$name.json"
  local info=("$@")
  [ "${info[2]:-}" ] && info=("${info[@]:0:2}")    # just --dtype F for pio info
  "$pio" info -m "$model" "${info[@]}" | sed -n 's/^dtypes: *//p' > "$tmp/$name.dtypes"
}

echo "quality: f32 reference" >&2
run f32 --dtype f32 --save-logits "$tmp/f32.logits"
for f in ${formats//,/ }; do
  echo "quality: $f" >&2
  run "$f" --dtype "$f" --kl-base "$tmp/f32.logits"
done

python3 - "$tmp" "$formats" "$model" "$text" "$ctx" "$commit" "$pio" > "$out" <<'PY'
import json, platform, sys, datetime
tmp, formats, model, text, ctx, commit, pio = sys.argv[1:8]
def load(n):
    r = json.load(open(f"{tmp}/{n}.json"))
    r["dtypes"] = open(f"{tmp}/{n}.dtypes").read().strip()
    return r
base = load("f32")
print(f"# Weight formats: quality against f32 ({model})\n")
print(f"- date: {datetime.datetime.now():%Y-%m-%d %H:%M}; commit: `{commit}`; machine: {platform.machine()}")
print(f"- text: `{text}`, {base['n_tokens']} scored tokens, windows of {ctx} tokens")
print(f"- command: `benchmarks/quality.sh {model} {text} {formats}` "
      f"(`{pio} perplexity --dtype FORMAT --kl-base` the f32 run's `--save-logits`)\n")
print("| format | PPL | PPL change vs f32 | mean KL | max KL | top-1 agreement | weights as loaded |")
print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
print(f"| f32 | {base['ppl']:.4f} | | | | | {base['dtypes']} |")
for f in formats.split(","):
    r = load(f)
    d = 100.0 * (r["ppl"] / base["ppl"] - 1.0)
    print(f"| {f} | {r['ppl']:.4f} | {d:+.4f}% | {r['kl_mean']:.3e} | {r['kl_max']:.3e} | "
          f"{100.0 * r['top1_agreement']:.3f}% | {r['dtypes']} |")
PY
cat "$out"
echo "quality: wrote $out" >&2
