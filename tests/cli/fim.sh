#!/usr/bin/env bash
# `pio run --fim-prefix/--fim-suffix`: the fill-in-the-middle prompt is
# <|fim_prefix|>PREFIX<|fim_suffix|>SUFFIX<|fim_middle|> token for token (as
# Hugging Face `tokenizers` encodes that string, and as `pio tokenize` does),
# and a tokenizer without the FIM tokens gives a clear error.
# The real Qwen3 tokenizer (../shared/data/qwen3-tokenizer) has the tokens;
# the tiny fixtures and the demo model do not. Skips (77) without ../shared.
set -u
PIO=${PIO:-build/pio}
SHARED=${PIO_SHARED:-../shared}/data
M=tests/fixtures/qwen3/tied_gqa2_f32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
nosan() { ! grep -qE 'Sanitizer|runtime error' "$1"; }

# no FIM tokens (demo model, fixtures): a clear error, exit 1
"$PIO" run --fim-prefix 'int f(' --fim-suffix '}' -q > "$tmp/out" 2> "$tmp/err"
rc=$?
if [ $rc -eq 1 ] && grep -q 'has no <|fim_prefix|> token' "$tmp/err" && nosan "$tmp/err"; then
  ok "demo model without FIM tokens: clear error"; else bad "demo model without FIM tokens (rc $rc): $(cat "$tmp/err")"; fi
"$PIO" run -m "$M" --fim-prefix a -p b > "$tmp/out" 2> "$tmp/err"
[ $? -eq 2 ] && grep -q 'no -p, -f or --chat' "$tmp/err" && ok "FIM with -p is a usage error" || bad "FIM with -p"

if [ ! -f "$SHARED/qwen3-tokenizer/tokenizer.json" ]; then
  echo "fim: $pass passed, $fail failed"
  [ $fail -eq 0 ] || exit 1
  echo "SKIP: $SHARED/qwen3-tokenizer absent (a fresh clone outside the workspace): FIM prompt checks not run"
  exit 77
fi

# a model directory: the tiny fixture's weights with the real Qwen3 tokenizer
d="$tmp/model"; mkdir "$d"
for f in config.json generation_config.json model.safetensors; do ln -s "$PWD/$M/$f" "$d/$f"; done
ln -s "$(cd "$SHARED/qwen3-tokenizer" && pwd)/tokenizer.json" "$d/tokenizer.json"

prefix=$'def add(a, b):\n    """Sum of a and b (caf\xc3\xa9)."""\n    '
suffix=$'\n    return c\n\n\nprint(add(1, 2))\n'
"$PIO" run -m "$d" --fim-prefix "$prefix" --fim-suffix "$suffix" --dry-run > "$tmp/ids" 2> "$tmp/err"
rc=$?
want=$(python3 - "$d/tokenizer.json" "$prefix" "$suffix" <<'PY'
import sys
from tokenizers import Tokenizer
t = Tokenizer.from_file(sys.argv[1])
ids = t.encode("<|fim_prefix|>" + sys.argv[2] + "<|fim_suffix|>" + sys.argv[3] + "<|fim_middle|>",
               add_special_tokens=False).ids
print("[" + ", ".join(map(str, ids)) + "]")
PY
)
got=$(cat "$tmp/ids")
if [ $rc -eq 0 ] && [ -n "$want" ] && [ "$got" = "$want" ] && nosan "$tmp/err"; then
  ok "FIM prompt ids = HF tokenizers: $got"; else bad "FIM prompt ids (rc $rc)"; echo "got:  $got"; echo "want: $want"; cat "$tmp/err"; fi
case "$got" in
  "[151659, "*", 151661, "*", 151660]") ok "ids framed by <|fim_prefix|> 151659, <|fim_suffix|> 151661, <|fim_middle|> 151660" ;;
  *) bad "FIM framing: $got" ;;
esac

# the same prompt through `pio tokenize` of the assembled text
printf '<|fim_prefix|>%s<|fim_suffix|>%s<|fim_middle|>' "$prefix" "$suffix" > "$tmp/fim.txt"
"$PIO" tokenize --tokenizer "$d" < "$tmp/fim.txt" > "$tmp/tok" 2> "$tmp/err"
if [ "$(tr -d ' \n' < "$tmp/tok")" = "$(echo "$got" | tr -d ' ')" ]; then ok "FIM ids = pio tokenize"; else
  bad "FIM ids vs pio tokenize: $(cat "$tmp/tok")"; fi

# an empty suffix still has all three tokens
"$PIO" run -m "$d" --fim-prefix 'x = ' --dry-run > "$tmp/ids" 2> "$tmp/err"
[ "$(cat "$tmp/ids")" = "[151659, 87, 284, 220, 151661, 151660]" ] && ok "prefix only" || bad "prefix only: $(cat "$tmp/ids") $(cat "$tmp/err")"

echo "fim: $pass passed, $fail failed"
[ $fail -eq 0 ]
