#!/usr/bin/env bash
# `pio perplexity` on the demo model agrees with transformers (relative
# difference of the PPL <= 1e-3, f32 compute) on the held-out split, using the
# reference numbers in models/demo/reference_ppl.json (tools/hf_perplexity.py).
# Under sanitizers (PIO_SANITIZED=1) only the first 30,000 bytes are scored.
# --kl-base against itself gives KL 0 and top-1 agreement 1; against a saved
# run with the weights as stored, q8_0 weights give a small positive KL.
set -u
PIO=${PIO:-build/pio}
M=models/demo
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
[ -f "$M/model.safetensors" ] || { echo "skip: $M is missing"; exit 77; }

if [ "${PIO_SANITIZED:-0}" = 1 ]; then
  head -c 30000 "$M/heldout.txt" > "$tmp/text"; key=heldout_first_30000_bytes
else
  cp "$M/heldout.txt" "$tmp/text"; key=heldout
fi

# field FILE KEY: a number from a one-line JSON object
field() { python3 -c "import json,sys;print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"; }

"$PIO" perplexity -m "$M" -f "$tmp/text" --ctx 256 --json > "$tmp/pio.json" 2> "$tmp/err"
if [ $? -ne 0 ]; then bad "perplexity runs"; cat "$tmp/err"; else
  python3 - "$tmp/pio.json" "$M/reference_ppl.json" "$key" <<'PY' && ok "PPL = transformers within 1e-3 ($key)" || bad "PPL vs transformers"
import json, sys
got = json.load(open(sys.argv[1]))
want = json.load(open(sys.argv[2]))[sys.argv[3]]["f32"]
rel = abs(got["ppl"] - want["ppl"]) / want["ppl"]
print(f"pio ppl {got['ppl']:.6f}  transformers {want['ppl']:.6f}  rel diff {rel:.2e}  "
      f"tokens {got['n_tokens']} / {want['n_tokens']}")
sys.exit(0 if rel <= 1e-3 and got["n_tokens"] == want["n_tokens"] else 1)
PY
fi

# The KL checks run on the first 30,000 bytes (about 9k tokens); 3,000 under sanitizers.
kl_bytes=30000; [ "${PIO_SANITIZED:-0}" = 1 ] && kl_bytes=3000
head -c $kl_bytes "$M/heldout.txt" > "$tmp/text"
"$PIO" perplexity -m "$M" -f "$tmp/text" --ctx 256 --json --save-logits "$tmp/base.bin" \
  > /dev/null 2> "$tmp/err" || { bad "--save-logits"; cat "$tmp/err"; }
# KL against itself (a model directory run side by side): exactly 0, top-1 = 1
"$PIO" perplexity -m "$M" -f "$tmp/text" --ctx 256 --json --kl-base "$M" > "$tmp/self.json" 2> "$tmp/err"
if [ $? -eq 0 ] && [ "$(field "$tmp/self.json" kl_mean)" = 0 ] && [ "$(field "$tmp/self.json" top1_agreement)" = 1 ]; then
  ok "KL vs itself = 0"; else bad "KL vs itself: $(cat "$tmp/self.json" "$tmp/err")"; fi

# KL of q8_0 weights against the saved f32-compute run: small but not zero
"$PIO" perplexity -m "$M" -f "$tmp/text" --ctx 256 --json --dtype q8_0 --kl-base "$tmp/base.bin" \
  > "$tmp/q8.json" 2> "$tmp/err"
if [ $? -eq 0 ] && python3 -c "
import json,sys; r=json.load(open(sys.argv[1]))
print('q8_0: kl', r['kl_mean'], 'top1', r['top1_agreement'])
sys.exit(0 if 0 < r['kl_mean'] < 1e-3 and r['top1_agreement'] > 0.97 else 1)" "$tmp/q8.json"; then
  ok "q8_0 KL vs saved logits"; else bad "q8_0 KL: $(cat "$tmp/q8.json" "$tmp/err")"; fi

# a --kl-base file from another text is refused with a clear error
head -c 1000 "$tmp/text" > "$tmp/short"
"$PIO" perplexity -m "$M" -f "$tmp/short" --ctx 256 --kl-base "$tmp/base.bin" > /dev/null 2> "$tmp/err"
if [ $? -ne 0 ] && grep -q "base.bin" "$tmp/err"; then ok "mismatched --kl-base refused"; else
  bad "mismatched --kl-base: $(cat "$tmp/err")"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
