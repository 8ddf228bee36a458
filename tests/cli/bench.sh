#!/usr/bin/env bash
# bench.sh - smoke test of `pio bench` on a tiny fixture model:
# the table, the JSON object, --depth, --roofline, and the usage errors.
# ctest runs it with env PIO=<pio binary>; by hand:
#   PIO=build/pio bash tests/cli/bench.sh
set -u
PIO=${PIO:-build/pio}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
M=$ROOT/tests/fixtures/qwen3/tied_gqa2_f32
fail=0
check() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fail=1; fi; }

[ -x "$PIO" ] || { echo "no pio binary at $PIO"; exit 77; }
[ -f "$M/config.json" ] || { echo "no fixture model at $M"; exit 77; }

out=$("$PIO" bench -m "$M" -p 8 -n 4 -r 2 -t 1 2>/dev/null); rc=$?
check "table: exit 0" '[ $rc -eq 0 ]'
check "table: pp8 row" 'grep -q "| *pp8 |" <<<"$out"'
check "table: tg4 row" 'grep -q "| *tg4 |" <<<"$out"'
check "table: peak RSS" 'grep -q "peak RSS" <<<"$out"'

js=$("$PIO" bench -m "$M" -p 8 -n 4 -r 3 -t 2 --depth 5 --json 2>/dev/null); rc=$?
check "json: exit 0" '[ $rc -eq 0 ]'
check "json: fields" 'python3 -c "
import json, sys
d = json.loads(sys.argv[1])
assert d[\"engine\"] == \"pio\" and d[\"n_depth\"] == 5 and d[\"reps\"] == 3, d
assert d[\"n_ctx\"] == 5 + 8 + 4, d[\"n_ctx\"]
for k in (\"pp\", \"tg\"):
    t = d[k]
    assert len(t[\"seconds\"]) == 3 and t[\"tokens_per_s\"] > 0
    assert t[\"tokens_per_s_min\"] <= t[\"tokens_per_s\"] <= t[\"tokens_per_s_max\"]
assert d[\"tg\"][\"weight_gb_per_s\"] > 0 and d[\"peak_rss_bytes\"] > 0 and d[\"weight_bytes\"] > 0
" "$js"'

js=$("$PIO" bench -m "$M" -p 0 -n 3 -r 1 --json 2>/dev/null)
check "json: -p 0 skips pp" 'python3 -c "import json,sys; d=json.loads(sys.argv[1]); assert \"pp\" not in d and \"tg\" in d" "$js"'

js=$("$PIO" bench -m "$M" -p 0 -n 5 -r 1 -t 2 --roofline --json 2>/dev/null); rc=$?
check "roofline: exit 0" '[ $rc -eq 0 ]'
check "roofline: fields" 'python3 -c "
import json, sys
r = json.loads(sys.argv[1])[\"roofline\"]
assert r[\"tokens\"] == 5 and r[\"membw_bytes\"] == 512 << 20, r
assert 0 < r[\"share_q1\"] <= r[\"share\"] <= r[\"share_q3\"], r
assert 0 < r[\"membw_min_gb_per_s\"] <= r[\"membw_gb_per_s\"] <= r[\"membw_max_gb_per_s\"], r
assert r[\"read_gb_per_s\"] > 0, r
" "$js"'
out=$("$PIO" bench -m "$M" -p 0 -n 2 -r 1 -t 1 --roofline 2>/dev/null)
check "roofline: table line" 'grep -q "^roofline: .* of the DRAM read bandwidth around each of 2 tokens" <<<"$out"'
"$PIO" bench -m "$M" -p 4 -n 0 --roofline >/dev/null 2>&1; rc=$?
check "usage: --roofline without tokens -> 2" '[ $rc -eq 2 ]'

"$PIO" bench -m "$M" -p 0 -n 0 >/dev/null 2>&1; rc=$?
check "usage: nothing to measure -> 2" '[ $rc -eq 2 ]'
"$PIO" bench -m "$M" --bogus >/dev/null 2>&1; rc=$?
check "usage: unknown option -> 2" '[ $rc -eq 2 ]'
"$PIO" bench -m "$M" -c 4 -p 8 -n 2 >/dev/null 2>&1; rc=$?
check "usage: context too small -> 2" '[ $rc -eq 2 ]'
"$PIO" bench -m "$M" -r 0 >/dev/null 2>&1; rc=$?
check "usage: -r 0 -> 2" '[ $rc -eq 2 ]'
"$PIO" bench -m /nonexistent -p 1 -n 1 >/dev/null 2>&1; rc=$?
check "missing model -> 1" '[ $rc -eq 1 ]'
"$PIO" bench --help | grep -q "usage: pio bench"; rc=$?
check "--help" '[ $rc -eq 0 ]'
exit $fail
