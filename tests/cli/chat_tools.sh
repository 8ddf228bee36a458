#!/usr/bin/env bash
# `pio chat` options for tools and reasoning: --tools, --tool-format,
# --think/--no-think, --system, the /tool command, and that the streaming
# output parser passes a plain reply through unchanged (the first chat turn
# prints what `pio run --chat` prints for the same prompt).
# Printing of reasoning and tool calls is covered by tests/test_output_parse.c:
# the tiny fixture models do not emit <think> or <tool_call>.
set -u
PIO=${PIO:-build/pio}
M=tests/fixtures/qwen3/tied_gqa2_f32
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
ok() { pass=$((pass+1)); echo "ok   $1"; }
bad() { fail=$((fail+1)); echo "FAIL $1"; }
nosan() { ! grep -qE 'Sanitizer|runtime error' "$1"; }

cat > "$tmp/tools.json" <<'J'
[{"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
  "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
  "required": ["city"]}}}]
J
echo '{"name": "not an array"}' > "$tmp/bad.json"

# usage errors: exit 2 with a message naming the problem
"$PIO" chat -m "$M" --tools "$tmp/missing.json" < /dev/null > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "cannot read --tools file" "$tmp/err" && ok "missing --tools file" || bad "missing --tools file: $(cat "$tmp/err")"
"$PIO" chat -m "$M" --tools "$tmp/bad.json" < /dev/null > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "not a JSON array" "$tmp/err" && ok "--tools not an array" || bad "--tools not an array: $(cat "$tmp/err")"
"$PIO" chat -m "$M" --tool-format nope < /dev/null > /dev/null 2> "$tmp/err"
[ $? -eq 2 ] && grep -q "unknown --tool-format" "$tmp/err" && ok "bad --tool-format" || bad "bad --tool-format: $(cat "$tmp/err")"

# the format comes from the architecture (Qwen3ForCausalLM: JSON), or the option
"$PIO" chat -m "$M" -v < /dev/null > /dev/null 2> "$tmp/err"
grep -q "tool-call format: qwen3_json" "$tmp/err" && ok "format from the architecture" || bad "format: $(cat "$tmp/err")"
"$PIO" chat -m "$M" -v --tool-format qwen3_coder < /dev/null > /dev/null 2> "$tmp/err"
grep -q "tool-call format: qwen3_xml" "$tmp/err" && ok "--tool-format qwen3_coder" || bad "--tool-format: $(cat "$tmp/err")"

# a plain reply streams through the parser unchanged
"$PIO" run -m "$M" --chat -s "Be brief." -p "hello robot" -n 12 --temp 0 --ignore-eos -q > "$tmp/run" 2> "$tmp/err"
printf 'hello robot\n' | "$PIO" chat -m "$M" -s "Be brief." -n 12 --temp 0 --ignore-eos > "$tmp/chat" 2>> "$tmp/err"
if [ $? -eq 0 ] && [ -s "$tmp/run" ] && cmp -s "$tmp/run" "$tmp/chat" && nosan "$tmp/err"; then ok "chat reply = run --chat reply"; else
  bad "chat vs run --chat"; od -c "$tmp/run" | head -3; od -c "$tmp/chat" | head -3; cat "$tmp/err"; fi

# tools, thinking switch and /tool: three model turns, each reusing the cache
printf 'weather in Paris?\n/tool {"temp_c": 21}\n/reset\nhi\n' |
  "$PIO" chat -m "$M" --tools "$tmp/tools.json" --no-think -s "You are terse." -n 6 --temp 0 -v > "$tmp/chat" 2> "$tmp/err"
rc=$?
n=$(grep -c 'reused from cache' "$tmp/err")
if [ $rc -eq 0 ] && [ "$n" = 3 ] && nosan "$tmp/err"; then ok "--tools --no-think, /tool, /reset: $n replies"; else
  bad "tools chat (rc $rc, $n replies)"; cat "$tmp/err"; fi
printf 'hi\n' | "$PIO" chat -m "$M" --think -n 3 --temp 0 > /dev/null 2> "$tmp/err"
[ $? -eq 0 ] && nosan "$tmp/err" && ok "--think" || bad "--think: $(cat "$tmp/err")"

# with the models' own templates (../shared/data/chat_templates, linked into a
# fixture model directory; skipped when absent): the format is detected from
# the template, and --tools reaches the rendered prompt (the tool list makes
# it too long for the fixture's 128-position context: the turn is dropped)
T=${PIO_SHARED:-../shared}/data/chat_templates
if [ -d "$T" ]; then
  for pair in Qwen3-Coder-30B-A3B-Instruct:qwen3_xml GLM-4.7-Flash:glm47 Qwen3-4B-Instruct-2507:qwen3_json; do
    name=${pair%%:*}; fmt=${pair##*:}
    d="$tmp/$name"; mkdir "$d"
    for f in config.json generation_config.json model.safetensors tokenizer.json tokenizer_config.json; do
      ln -s "$PWD/$M/$f" "$d/$f"; done
    ln -s "$(cd "$T" && pwd)/$name.jinja" "$d/chat_template.jinja"
    printf 'hi\nmore\n' | "$PIO" chat -m "$d" -n 2 --temp 0 --ignore-eos -v > "$tmp/out" 2> "$tmp/err"
    rc=$?
    # GLM's generation prompt ends with <think>: the reply is shown as reasoning
    if [ $fmt = glm47 ]; then
      [ "$(head -c 12 "$tmp/out")" = "[reasoning] " ] && ok "GLM reply starts inside <think>: printed as reasoning" ||
        bad "GLM reasoning display: $(head -c 80 "$tmp/out" | od -c | head -3)"
    fi
    printf 'hi\n' | "$PIO" chat -m "$d" --tools "$tmp/tools.json" -n 2 --temp 0 -v > /dev/null 2> "$tmp/err2"
    rc2=$?
    if [ $rc -eq 0 ] && grep -q "tool-call format: $fmt" "$tmp/err" && grep -q 'reused from cache' "$tmp/err" &&
       [ $rc2 -eq 0 ] && grep -q 'prompt has [0-9]* tokens but the context is 128' "$tmp/err2" &&
       nosan "$tmp/err" && nosan "$tmp/err2"; then
      ok "$name template: format $fmt, --tools rendered"; else
      bad "$name template (rc $rc, $rc2)"; cat "$tmp/err" "$tmp/err2"; fi
  done
else
  echo "skip chat templates: $T absent"
fi

"$PIO" chat --help > "$tmp/h" 2>&1
for o in --system --think --no-think --tools --tool-format /tool; do
  grep -q -- "$o" "$tmp/h" || bad "chat --help lacks $o"
done
"$PIO" run --help > "$tmp/h" 2>&1
for o in --fim-prefix --fim-suffix --dry-run; do
  grep -q -- "$o" "$tmp/h" || bad "run --help lacks $o"
done
ok "--help lists the options"

echo "chat_tools: $pass passed, $fail failed"
[ $fail -eq 0 ]
