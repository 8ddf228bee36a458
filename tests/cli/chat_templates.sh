#!/usr/bin/env bash
# `pio template` reproduces every golden rendering of the shipped chat
# templates byte for byte (../shared/data/golden/chat_templates.jsonl); a
# case recorded as {"error": ...} must fail (non-zero exit, nothing on stdout,
# a message with line:column on stderr). Also: --help, and a model
# directory's own template through `pio template -t DIR`.
set -u
PIO=${PIO:-build/pio}
DATA=${PIO_SHARED:-../shared}/data
if [ ! -f "$DATA/golden/chat_templates.jsonl" ] || [ ! -d "$DATA/chat_templates" ]; then
  echo "SKIP: $DATA/golden/chat_templates.jsonl not found (set PIO_SHARED)"
  exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); }
bad() { fail=$((fail+1)); echo "FAIL $1"; }

# split the golden file into context / expected files, one set per case
python3 - "$DATA/golden/chat_templates.jsonl" "$tmp" <<'PY'
import json, sys
src, out = sys.argv[1], sys.argv[2]
with open(out + "/list", "w") as lst:
    for i, line in enumerate(open(src, encoding="utf-8")):
        d = json.loads(line)
        json.dump(d["context"], open(f"{out}/{i}.ctx.json", "w", encoding="utf-8"), ensure_ascii=False)
        kind = "error" if "error" in d else "rendered"
        if kind == "rendered":
            open(f"{out}/{i}.want", "wb").write(d["rendered"].encode("utf-8"))
        lst.write(f"{i}\t{d['template']}\t{d['case']}\t{kind}\n")
PY
n=0
while IFS=$'\t' read -r i tpl case kind; do
  n=$((n+1))
  "$PIO" template --template "$DATA/chat_templates/$tpl.jinja" --context "$tmp/$i.ctx.json" \
    > "$tmp/$i.got" 2> "$tmp/$i.err"
  rc=$?
  if grep -qE 'Sanitizer|runtime error' "$tmp/$i.err"; then bad "$tpl/$case: sanitizer report"; cat "$tmp/$i.err"; continue; fi
  if [ "$kind" = error ]; then
    if [ $rc -ne 0 ] && [ ! -s "$tmp/$i.got" ] && grep -qE "$tpl\.jinja:[0-9]+:[0-9]+: " "$tmp/$i.err"; then ok; else
      bad "$tpl/$case: must fail with line:column (rc $rc): $(cat "$tmp/$i.err")"; fi
  elif [ $rc -eq 0 ] && cmp -s "$tmp/$i.got" "$tmp/$i.want"; then ok; else
    bad "$tpl/$case (rc $rc): $(cat "$tmp/$i.err")"; cmp "$tmp/$i.got" "$tmp/$i.want" | head -2
  fi
done < "$tmp/list"
echo "golden chat templates: $pass of $n match"

# --help; a missing --template is a usage error
"$PIO" template --help > "$tmp/h" 2>&1 && grep -q "usage: pio template" "$tmp/h" && ok || bad "template --help"
"$PIO" template > /dev/null 2>&1; [ $? -eq 2 ] && ok || bad "template without --template must exit 2"

# a model directory: its tokenizer_config.json template, eos_token from the config
mkdir "$tmp/model"
cp models/demo/tokenizer_config.json "$tmp/model/"
printf '{"messages":[{"role":"user","content":"hi"}],"add_generation_prompt":true}' > "$tmp/ctx.json"
printf '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n' > "$tmp/want"
"$PIO" template -t "$tmp/model" -c "$tmp/ctx.json" > "$tmp/got" 2>&1 && cmp -s "$tmp/got" "$tmp/want" && ok ||
  bad "model directory template: $(cat "$tmp/got")"

echo "chat_templates: $pass passed, $fail failed"
[ $fail -eq 0 ]
