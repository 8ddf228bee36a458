#!/usr/bin/env bash
# `pio tokenize`: usage, encoding, --decode, --jsonl, and clear errors (exit 1,
# message on stderr, nothing on stdout) for invalid UTF-8, bad ids and bad
# tokenizer files. Needs the shared Qwen3 tokenizer (../shared/data) for all
# but the usage checks; skips (77) after those when it is absent.
set -u
PIO=${PIO:-build/pio}
DATA=${PIO_SHARED:-../shared}/data
TOK=$DATA/qwen3-tokenizer
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0; passes=0

ok()   { passes=$((passes+1)); echo "ok   $1"; }
fail() { fails=$((fails+1)); echo "FAIL $1"; [ -s "$tmp/err" ] && sed 's/^/     /' "$tmp/err" | head -5; }

# run NAME WANT_RC STDIN ARGS...: output in $tmp/out, $tmp/err
run() {
  local name=$1 want=$2 input=$3; shift 3
  printf '%b' "$input" | "$PIO" tokenize "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  if grep -qE 'Sanitizer|runtime error' "$tmp/err"; then fail "$name: sanitizer report"; return 1; fi
  if [ $rc -ne "$want" ]; then fail "$name: exit code $rc (want $want)"; return 1; fi
  return 0
}
# out_is NAME EXPECTED: stdout equals EXPECTED exactly (printf %b escapes)
out_is() { if cmp -s "$tmp/out" <(printf '%b' "$2"); then ok "$1"; else fail "$1: stdout '$(head -c 200 "$tmp/out")'"; fi; }
# err_has NAME PATTERN: stderr matches, stdout empty
err_has() {
  if ! grep -q -- "$2" "$tmp/err"; then fail "$1: stderr lacks '$2'";
  elif [ -s "$tmp/out" ]; then fail "$1: output on stdout";
  else ok "$1: $(head -c 200 "$tmp/err" | tr '\n' ' ')"; fi
}

run help 0 "" --help && { grep -q "usage: pio tokenize" "$tmp/out" && ok "--help" || fail "--help text"; }
run no-tokenizer 2 "x" && { grep -q -- "--tokenizer PATH is required" "$tmp/err" && ok "missing --tokenizer" || fail "missing --tokenizer message"; }
run bad-option 2 "x" --tokenizer x --frobnicate && ok "unknown option"
run missing-file 1 "x" --tokenizer "$tmp/nope.json" && err_has "missing tokenizer file" "$tmp/nope.json"
printf '{"model": {"vocab": {"a": 0}, "merges": ["a b"]}}' > "$tmp/bad.json"
run bad-file 1 "x" --tokenizer "$tmp/bad.json" && err_has "bad tokenizer.json" "bad.json: model.merges\[0\]: 'b' is not in the vocabulary"

if [ ! -f "$TOK/tokenizer.json" ]; then
  echo "tokenize: $passes passed, $fails failed"
  echo "SKIP: shared data ($DATA) not found: encoding checks not run"
  [ $fails -eq 0 ] && exit 77 || exit 1
fi

run hello 0 "Hello world" --tokenizer "$TOK/tokenizer.json" && out_is "encode Hello world" "[9707,1879]\n"
run dir 0 "Hello world" --tokenizer "$TOK" && out_is "model directory" "[9707,1879]\n"
run eq 0 "Hello world" --tokenizer="$TOK" && out_is "--tokenizer=PATH" "[9707,1879]\n"
run empty 0 "" --tokenizer "$TOK" && out_is "empty input" "[]\n"
run special 0 "<|im_start|>user\\nhi<|im_end|>" --tokenizer "$TOK" && out_is "special tokens" "[151644,872,198,6023,151645]\n"
run utf8 1 "Hello \\xe2\\x82 world" --tokenizer "$TOK" && err_has "invalid UTF-8" "invalid UTF-8 at byte offset 6 (byte 0xE2)"
run utf8-end 1 "abc\\xf0" --tokenizer "$TOK" && err_has "truncated UTF-8 at end" "byte offset 3"
run decode 0 "[9707,1879]" --tokenizer "$TOK" --decode && out_is "--decode" "Hello world"
run decode-special 0 "[151644,872,198,6023,151645]" --tokenizer "$TOK" --decode && out_is "--decode keeps special tokens" "<|im_start|>user\\nhi<|im_end|>"
run decode-skip 0 "[151644,872,198,6023,151645]" --tokenizer "$TOK" --decode --skip-special && out_is "--skip-special" "user\\nhi"
# 158 and 224 are the byte tokens of 0xE2 and 0x82: two thirds of "\u20ac" become one U+FFFD
run decode-split 0 "[158,224]" --tokenizer "$TOK" --decode && out_is "--decode half a character -> U+FFFD" "\\xef\\xbf\\xbd"
run decode-split2 0 "[158,224,64]" --tokenizer "$TOK" --decode && out_is "--decode broken character then a" "\\xef\\xbf\\xbda"
run decode-bad-id 1 "[9707,999999]" --tokenizer "$TOK" --decode && err_has "--decode id out of range" "token id 999999 is not in the vocabulary"
run decode-bad-json 1 "[9707," --tokenizer "$TOK" --decode && err_has "--decode bad JSON" "expects a JSON array"
run decode-not-int 1 "[9707,1.5]" --tokenizer "$TOK" --decode && err_has "--decode non-integer" "element 1 of the id array is not an integer"
run jsonl 0 '"Hello world"\n{"text": "<think>"}\n\n"a\\u00e9"\n' --tokenizer "$TOK" --jsonl && out_is "--jsonl" "[9707,1879]\n[151667]\n[64,963]\n"
run jsonl-decode 0 '[9707,1879]\n{"ids": [64,963]}\n' --tokenizer "$TOK" --jsonl --decode && out_is "--jsonl --decode" '"Hello world"\n"a\xc3\xa9"\n'
run jsonl-bad 1 '"ok"\n42\n' --tokenizer "$TOK" --jsonl && { grep -q "stdin line 2" "$tmp/err" && ok "--jsonl bad line" || fail "--jsonl bad line message"; }

# a round trip of a larger text through both directions
python3 - "$tmp/text" <<'PY' 2>/dev/null || head -c 200000 /dev/urandom | base64 > "$tmp/text"
import sys
open(sys.argv[1], "w").write("".join(f"line {i}: caf\u00e9 \u4e2d\u6587 \U0001F600 x={i*i}\n" for i in range(3000)))
PY
"$PIO" tokenize --tokenizer "$TOK" < "$tmp/text" > "$tmp/ids" 2>"$tmp/err" &&
  "$PIO" tokenize --tokenizer "$TOK" --decode < "$tmp/ids" > "$tmp/back" 2>>"$tmp/err" &&
  cmp -s "$tmp/text" "$tmp/back" && ok "round trip of $(wc -c < "$tmp/text") bytes" || fail "round trip"

echo "tokenize: $passes passed, $fails failed"
[ $fails -eq 0 ]
