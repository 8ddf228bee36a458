#!/usr/bin/env bash
# Bad model directories: each must give a clear error on stderr that names
# the file / tensor / field at fault, exit 1, and never crash (no signal,
# no sanitizer report).
set -u
PIO=${PIO:-build/pio}
SRC=tests/fixtures/qwen3/tied_gqa2_f32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0

# expect NAME PATTERN... -- COMMAND...: exit 1 and stderr matching every pattern
expect() {
  local name=$1; shift
  local pats=()
  while [ "$1" != "--" ]; do pats+=("$1"); shift; done
  shift
  "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  local ok=1
  [ $rc -eq 1 ] || { echo "FAIL $name: exit code $rc (want 1)"; ok=0; }
  for p in "${pats[@]}"; do
    grep -q -- "$p" "$tmp/err" || { echo "FAIL $name: stderr lacks '$p'"; ok=0; }
  done
  grep -qE 'Sanitizer|runtime error' "$tmp/err" && { echo "FAIL $name: sanitizer report"; ok=0; }
  [ -s "$tmp/out" ] && { echo "FAIL $name: partial output on stdout"; ok=0; }
  if [ $ok = 1 ]; then passes=$((passes+1)); echo "ok   $name: $(head -c 300 "$tmp/err" | tr '\n' ' ')"; else
    fails=$((fails+1)); sed 's/^/     /' "$tmp/err" | head -5; fi
}

mk() { rm -rf "$tmp/m"; cp -r "$SRC" "$tmp/m"; }
setcfg() { python3 - "$tmp/m/config.json" "$@" <<'PY'
import json, sys
p = sys.argv[1]; c = json.load(open(p))
for kv in sys.argv[2:]:
    k, v = kv.split("=", 1)
    if v == "DELETE": c.pop(k, None)
    else: c[k] = json.loads(v)
json.dump(c, open(p, "w"), indent=2)
PY
}

mk; setcfg 'architectures=["FooForCausalLM"]'
expect unknown-architecture "FooForCausalLM" "config.json" -- "$PIO" run -m "$tmp/m" -p hi -n 2

mk; printf '{"architectures": ["Qwen3ForCausalLM"], "hidden_size": 64,' > "$tmp/m/config.json"
expect bad-json "config.json" -- "$PIO" run -m "$tmp/m" -p hi -n 2

mk; setcfg hidden_size=DELETE
expect missing-field "hidden_size" "config.json" -- "$PIO" info -m "$tmp/m"

mk; setcfg 'hidden_size="sixty-four"'
expect wrong-type-field "hidden_size" -- "$PIO" info -m "$tmp/m"

mk; setcfg intermediate_size=128
expect wrong-shape "mlp.gate_proj.weight" "128" "96" -- "$PIO" run -m "$tmp/m" -p hi -n 2

mk; setcfg num_hidden_layers=3
expect missing-tensor "model.layers.2." "not found" -- "$PIO" run -m "$tmp/m" -p hi -n 2

mk; head -c 200000 "$SRC/model.safetensors" > "$tmp/m/model.safetensors"
expect truncated-weights "model.safetensors" -- "$PIO" run -m "$tmp/m" -p hi -n 2

mk; printf '\xff\xff\xff\xff\x00\x00\x00\x00{}' > "$tmp/m/model.safetensors"
expect header-past-end "model.safetensors" -- "$PIO" run -m "$tmp/m" -p hi -n 2

mk; printf '{"model": ' > "$tmp/m/tokenizer.json"
expect bad-tokenizer-json "tokenizer.json" -- "$PIO" run -m "$tmp/m" -p hi -n 2

expect missing-dir "config.json" -- "$PIO" run -m "$tmp/does-not-exist" -p hi -n 2

mk
expect prompt-too-long "context" -- "$PIO" run -m "$tmp/m" --ctx 8 -p "The robot read 3 books in the library today and more" -n 2

mk
expect logits-bad-id "outside the vocabulary" -- "$PIO" logits -m "$tmp/m" --ids 1,2,99999

echo "bad_model: $passes passed, $fails failed"
[ $fails -eq 0 ]
