#!/usr/bin/env bash
# `pio run` and `pio chat` on a tiny checkpoint: greedy output is the
# transformers greedy continuation (decoded), sampling with a seed is
# reproducible, stop strings cut the output, and chat's second turn reuses
# the KV cache of the first.
set -u
PIO=${PIO:-build/pio}
M=tests/fixtures/qwen3/tied_gqa2_f32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
nosan() { ! grep -qE 'Sanitizer|runtime error' "$1"; }

# greedy: the text of transformers' greedy ids (decoded by our own tokenizer)
prompt=$(python3 -c "import json;print(json.load(open('$M/golden.json'))['prompt_text'],end='')")
ids=$(python3 -c "import json;print(json.dumps(json.load(open('$M/golden.json'))['greedy_ids']))")
echo "$ids" | "$PIO" tokenize --tokenizer "$M" --decode > "$tmp/want" 2>"$tmp/err0"
echo >> "$tmp/want"   # pio run ends its output with a newline
"$PIO" run -m "$M" -p "$prompt" -n 20 --temp 0 --ignore-eos -q > "$tmp/got" 2>"$tmp/err"
if [ $? -eq 0 ] && nosan "$tmp/err" && cmp -s "$tmp/got" "$tmp/want"; then ok "run greedy = transformers"; else
  bad "run greedy"; echo "got:  $(od -c "$tmp/got" | head -3)"; echo "want: $(od -c "$tmp/want" | head -3)"; cat "$tmp/err" "$tmp/err0"; fi

# sampling with a seed is reproducible; another seed differs
"$PIO" run -m "$M" -p "$prompt" -n 30 --temp 1.0 --top-k 0 --top-p 1 --seed 7 --ignore-eos -q > "$tmp/s1" 2>"$tmp/err"
"$PIO" run -m "$M" -p "$prompt" -n 30 --temp 1.0 --top-k 0 --top-p 1 --seed 7 --ignore-eos -q > "$tmp/s2" 2>>"$tmp/err"
"$PIO" run -m "$M" -p "$prompt" -n 30 --temp 1.0 --top-k 0 --top-p 1 --seed 8 --ignore-eos -q > "$tmp/s3" 2>>"$tmp/err"
if cmp -s "$tmp/s1" "$tmp/s2" && ! cmp -s "$tmp/s1" "$tmp/s3" && nosan "$tmp/err"; then ok "seeded sampling"; else bad "seeded sampling"; fi

# a stop string: output ends before it
stop=$(python3 -c "
import re, sys
t = open(sys.argv[1], 'rb').read()[2:]
m = re.search(rb'[a-z]{2}', t)
print(m.group().decode() if m else 'zz', end='')" "$tmp/want")
"$PIO" run -m "$M" -p "$prompt" -n 20 --temp 0 --ignore-eos --stop "$stop" -q > "$tmp/got" 2>"$tmp/err"
if [ $? -eq 0 ] && ! grep -qF -- "$stop" "$tmp/got"; then ok "stop string"; else bad "stop string: $(cat "$tmp/got")"; fi

# chat: two turns; the second reuses the first turn's cache
printf 'hello robot\nread a book\n' | "$PIO" chat -m "$M" -n 8 --temp 0 -v > "$tmp/chat" 2>"$tmp/err"
rc=$?
reused=$(grep -o '([0-9]* reused' "$tmp/err" | tail -1 | tr -dc 0-9)
if [ $rc -eq 0 ] && [ "$(grep -c 'reused from cache' "$tmp/err")" = 2 ] && [ "${reused:-0}" -gt 10 ] && nosan "$tmp/err"; then
  ok "chat two turns, second reused $reused tokens"; else bad "chat"; cat "$tmp/err"; fi

# --help for every subcommand
for c in run chat info plugins logits tokenize perplexity; do
  "$PIO" "$c" --help > "$tmp/h" 2>&1 && grep -q "usage: pio $c" "$tmp/h" && ok "$c --help" || bad "$c --help"
done

echo "run_chat: $pass passed, $fail failed"
[ $fail -eq 0 ]
