#!/usr/bin/env bash
# GGUF end to end, against an independent writer (tools/hf_to_gguf.py, the
# `gguf` package that llama.cpp ships):
#   - fixtures converted to f32/bf16 GGUF give the logits of the safetensors
#     directory (same weights: --dtype bf16 on load for the bf16 file) within
#     1e-5 relative, and the same greedy text from `pio run --temp 0`;
#   - a q8_0 GGUF runs, its logits equal on-load q8_0 (same GGML blocks) and
#     stay close to f32;
#   - `pio quantize` writes tensors and metadata identical to the Python
#     writer's for f32/f16/bf16/q8_0/q4_0; gguf-py reads its q4_k/q6_k files
#     and dequantizes them close to the original weights;
#   - llama.cpp (llama-cpp-python, when importable) loads those files and
#     computes logits close to pio's;
#   - models made with transformers (when importable): a tiny Qwen3-MoE
#     converts with its experts stacked, identically in both writers; a
#     Qwen3 with 256-wide rows gets real Q4_K/Q6_K tensors that gguf-py
#     dequantizes close to f32 and that pio runs as on-load q4_k/q6_k;
#   - the real Qwen3 vocabulary written by gguf-py (when the shared data is
#     present) tokenizes the golden cases exactly.
# Skips (77) when python3 cannot import gguf and numpy.
set -u
PIO=${PIO:-build/pio}
SRC=${PIO_SOURCE_DIR:-.}
DATA=${PIO_SHARED:-../shared}/data
FX=$SRC/tests/fixtures/qwen3
IDS=397,353,328,220,18,291,417,410,279,258
python3 -c "import gguf, numpy" 2>/dev/null || { echo "SKIP: python3 cannot import gguf (pip install gguf)"; exit 77; }
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
sys.exit(0 if d <= float(sys.argv[3]) * scale else 1)
PY
}

for fx in tied_gqa2_f32 untied_gqa4_bf16_sharded; do
  prompt=$(python3 -c "import json;print(json.load(open('$FX/$fx/golden.json'))['prompt_text'],end='')")
  for dt in f32 bf16; do
    g=$tmp/$fx.$dt.gguf
    if ! python3 "$SRC/tools/hf_to_gguf.py" "$FX/$fx" "$g" --outtype $dt >/dev/null 2>"$tmp/err"; then
      bad "$fx $dt: hf_to_gguf.py"; continue; fi
    onload=""; [ $dt = bf16 ] && onload="--dtype bf16"
    "$PIO" logits -m "$FX/$fx" $onload --ids $IDS > "$tmp/want.json" 2>"$tmp/err" || { bad "$fx $dt: logits (directory)"; continue; }
    "$PIO" logits -m "$g" --ids $IDS > "$tmp/got.json" 2>"$tmp/err" || { bad "$fx $dt: logits (gguf)"; continue; }
    if nosan && r=$(close "$tmp/got.json" "$tmp/want.json" 1e-5); then ok "$fx $dt gguf logits = directory: $r"; else bad "$fx $dt logits: $r"; fi
    "$PIO" run -m "$FX/$fx" $onload -p "$prompt" -n 24 --temp 0 --ignore-eos -q > "$tmp/want.txt" 2>"$tmp/err"
    "$PIO" run -m "$g" -p "$prompt" -n 24 --temp 0 --ignore-eos -q > "$tmp/got.txt" 2>"$tmp/err"
    if [ -s "$tmp/want.txt" ] && cmp -s "$tmp/got.txt" "$tmp/want.txt" && nosan; then ok "$fx $dt greedy text = directory"; else
      bad "$fx $dt greedy: '$(head -c 80 "$tmp/got.txt")' vs '$(head -c 80 "$tmp/want.txt")'"; fi
  done
  # q8_0: runs; same as quantizing on load; near f32
  g=$tmp/$fx.q8_0.gguf
  python3 "$SRC/tools/hf_to_gguf.py" "$FX/$fx" "$g" --outtype q8_0 >/dev/null 2>"$tmp/err" || bad "$fx q8_0: hf_to_gguf.py"
  "$PIO" logits -m "$g" --ids $IDS > "$tmp/q.json" 2>"$tmp/err" || bad "$fx q8_0: logits"
  "$PIO" logits -m "$FX/$fx" --dtype q8_0 --ids $IDS > "$tmp/qload.json" 2>>"$tmp/err"
  "$PIO" logits -m "$FX/$fx" --ids $IDS > "$tmp/f32.json" 2>>"$tmp/err"
  if r=$(close "$tmp/q.json" "$tmp/qload.json" 1e-5); then ok "$fx q8_0 gguf = on-load q8_0: $r"; else bad "$fx q8_0 vs on-load: $r"; fi
  if r=$(close "$tmp/q.json" "$tmp/f32.json" 0.15); then ok "$fx q8_0 gguf near f32: $r"; else bad "$fx q8_0 vs f32: $r"; fi
  "$PIO" run -m "$g" -p "$prompt" -n 8 --temp 0 -q > /dev/null 2>"$tmp/err" && nosan && ok "$fx q8_0 gguf runs" || bad "$fx q8_0 run"
done

# pio quantize vs the Python writer: identical files but for general.sampling.*
m=$FX/untied_gqa4_bf16_sharded
for dt in f32 f16 bf16 q8_0 q4_0; do
  python3 "$SRC/tools/hf_to_gguf.py" "$m" "$tmp/py.$dt.gguf" --outtype $dt >/dev/null 2>"$tmp/err"
  "$PIO" quantize -q -m "$m" -o "$tmp/c.$dt.gguf" --dtype $dt 2>"$tmp/err" || { bad "pio quantize $dt"; continue; }
  if r=$(python3 - "$tmp/py.$dt.gguf" "$tmp/c.$dt.gguf" 2>&1 <<'PY'
import sys, gguf
a, b = gguf.GGUFReader(sys.argv[1]), gguf.GGUFReader(sys.argv[2])
ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
assert set(ta) == set(tb), f"tensor names differ: {sorted(set(ta) ^ set(tb))}"
for n in ta:
    x, y = ta[n], tb[n]
    assert x.tensor_type == y.tensor_type and list(x.shape) == list(y.shape), f"{n}: {x.tensor_type.name}{list(x.shape)} vs {y.tensor_type.name}{list(y.shape)}"
    assert x.data.tobytes() == y.data.tobytes(), f"{n}: bytes differ"
keys = {k for k in a.fields if not k.startswith("GGUF.")} | {k for k in b.fields if not k.startswith(("GGUF.", "general.sampling."))}
for k in sorted(keys):
    assert k in a.fields and k in b.fields, f"key {k} only in one file"
    assert a.fields[k].contents() == b.fields[k].contents(), f"key {k}: {str(a.fields[k].contents())[:60]} vs {str(b.fields[k].contents())[:60]}"
print(f"{len(ta)} tensors, {len(keys)} keys identical")
PY
  ); then ok "pio quantize $dt = gguf-py: $r"; else bad "pio quantize $dt vs gguf-py: $r"; fi
done
for dt in q4_k q6_k; do
  "$PIO" quantize -q -m "$m" -o "$tmp/c.$dt.gguf" --dtype $dt --override 'blk.0.*=q8_0' 2>"$tmp/err" || { bad "pio quantize $dt"; continue; }
  if r=$(python3 - "$tmp/py.f32.gguf" "$tmp/c.$dt.gguf" 2>&1 <<'PY'
import sys, gguf
import numpy as np
ref = {t.name: t for t in gguf.GGUFReader(sys.argv[1]).tensors}
n_k = 0
for t in gguf.GGUFReader(sys.argv[2]).tensors:
    want = np.asarray(ref[t.name].data, dtype=np.float32).reshape(-1)
    got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)
    err = float(np.abs(got - want).max() / (np.abs(want).max() + 1e-12))
    assert err < 0.2, f"{t.name} ({t.tensor_type.name}): relative error {err:.3g}"
    if t.name.startswith("blk.0.") and len(t.shape) > 1:
        assert t.tensor_type.name == "Q8_0", f"{t.name}: override not applied ({t.tensor_type.name})"
    n_k += t.tensor_type.name in ("Q4_K", "Q6_K")
print(f"gguf-py reads and dequantizes it ({n_k} K-quant tensors; rows of 96/160 fall back to Q8_0)")
PY
  ); then ok "pio quantize $dt: $r"; else bad "pio quantize $dt: $r"; fi
  "$PIO" logits -m "$tmp/c.$dt.gguf" --ids $IDS > /dev/null 2>"$tmp/err" && nosan && ok "$dt gguf runs" || bad "$dt gguf run"
done
# bad input: clear errors
"$PIO" quantize -m "$m" -o "$tmp/x.gguf" --dtype q5_k > /dev/null 2>"$tmp/err"
[ $? -eq 2 ] && grep -q "q5_k" "$tmp/err" && ok "quantize: unknown --dtype" || bad "quantize --dtype q5_k"
"$PIO" quantize -m "$m" -o "$tmp/x.gguf" --override 'x=q9' > /dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "q9" "$tmp/err" && [ ! -e "$tmp/x.gguf" ] && ok "quantize: bad override" || bad "quantize --override x=q9"
printf 'GGUF\3\0\0\0garbage' > "$tmp/bad.gguf"
"$PIO" run -m "$tmp/bad.gguf" -p hi > /dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "bad.gguf" "$tmp/err" && nosan && ok "run on a broken .gguf: $(head -c 120 "$tmp/err")" || bad "broken gguf"
printf 'not a model' > "$tmp/model.bin"
"$PIO" run -m "$tmp/model.bin" -p hi > /dev/null 2>"$tmp/err"
[ $? -eq 1 ] && grep -q "not a model directory or a GGUF file" "$tmp/err" && ok "run on a non-GGUF file" || bad "non-gguf file"

# llama.cpp itself (llama-cpp-python, when importable here or in the
# benchmark's venv) loads `pio quantize` files and computes logits close to
# pio's on the same file; its tokenizer splits the prompt the same way.
LLAMA_PY=""
if python3 -c "import llama_cpp" 2>/dev/null; then LLAMA_PY=python3
elif [ -x "$SRC/benchmarks/work/venv/bin/python" ] && "$SRC/benchmarks/work/venv/bin/python" -c "import llama_cpp" 2>/dev/null; then
  LLAMA_PY=$SRC/benchmarks/work/venv/bin/python; fi
if [ -n "$LLAMA_PY" ]; then
  for dt in f32 bf16 q8_0 q4_0; do
    [ -f "$tmp/c.$dt.gguf" ] || continue
    if ! "$LLAMA_PY" - "$tmp/c.$dt.gguf" "$IDS" "$tmp/llama.json" > "$tmp/llama.txt" 2>"$tmp/err" <<'PY'
import json, sys
from llama_cpp import Llama
m = Llama(model_path=sys.argv[1], n_ctx=64, logits_all=True, verbose=False, n_threads=1)
ids = [int(x) for x in sys.argv[2].split(",")]
m.eval(ids)
json.dump({"logits": [[float(x) for x in m.scores[i][:m.n_vocab()]] for i in range(len(ids))]}, open(sys.argv[3], "w"))
print(json.dumps(m.tokenize("The robot read 3 books in the library today.".encode(), add_bos=False, special=True)))
PY
    then bad "llama.cpp could not load pio quantize's $dt file"; continue; fi
    "$PIO" logits -m "$tmp/c.$dt.gguf" --ids $IDS > "$tmp/pio.json" 2>"$tmp/err"
    tol=0.06; [ $dt = f32 ] && tol=0.01
    if r=$(close "$tmp/llama.json" "$tmp/pio.json" $tol); then ok "llama.cpp runs pio quantize's $dt file: logits vs pio $r"; else
      bad "llama.cpp vs pio on the $dt file: $r"; fi
  done
  want=$(python3 -c "import json;print(json.dumps(json.load(open('$FX/untied_gqa4_bf16_sharded/golden.json'))['prompt_ids']))")
  [ "$(tr -d ' ' < "$tmp/llama.txt")" = "$(echo "$want" | tr -d ' ')" ] && ok "llama.cpp tokenizes the prompt as transformers" \
    || bad "llama.cpp tokenization: $(cat "$tmp/llama.txt") vs $want"
else
  echo "note: llama-cpp-python not importable; the llama.cpp cross-check is skipped"
fi

# Models made here with transformers (random weights): a tiny Qwen3-MoE,
# whose experts both writers must stack the same way, and a dense Qwen3 with
# 256-wide rows, so that Q4_K/Q6_K blocks are used rather than the fallback.
if python3 -c "import torch, transformers" 2>/dev/null; then
  moe=$tmp/moe; wide=$tmp/wide
  if python3 - "$moe" "$wide" "$FX/tied_gqa2_f32" > /dev/null 2>"$tmp/err" <<'PY'
import shutil, sys, torch
from transformers import Qwen3Config, Qwen3ForCausalLM, Qwen3MoeConfig, Qwen3MoeForCausalLM
torch.manual_seed(0)
moe = Qwen3MoeConfig(vocab_size=448, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=4,
                     num_experts_per_tok=2, max_position_embeddings=128, tie_word_embeddings=False,
                     norm_topk_prob=True, bos_token_id=420, eos_token_id=422)
Qwen3MoeForCausalLM(moe).save_pretrained(sys.argv[1])
wide = Qwen3Config(vocab_size=448, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=64, max_position_embeddings=128,
                   tie_word_embeddings=True, bos_token_id=420, eos_token_id=422)
Qwen3ForCausalLM(wide).save_pretrained(sys.argv[2])
for d in sys.argv[1:3]:
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{sys.argv[3]}/{f}", d)
PY
  then
    python3 "$SRC/tools/hf_to_gguf.py" "$moe" "$tmp/moe.py.gguf" --outtype q8_0 >/dev/null 2>"$tmp/err"
    "$PIO" quantize -q -m "$moe" -o "$tmp/moe.c.gguf" --dtype q8_0 2>"$tmp/err"
    if r=$(python3 - "$tmp/moe.py.gguf" "$tmp/moe.c.gguf" 2>&1 <<'PY'
import sys, gguf
a, b = gguf.GGUFReader(sys.argv[1]), gguf.GGUFReader(sys.argv[2])
ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
assert set(ta) == set(tb), sorted(set(ta) ^ set(tb))
for n in ta:
    assert ta[n].data.tobytes() == tb[n].data.tobytes() and list(ta[n].shape) == list(tb[n].shape), n
e = tb["blk.1.ffn_down_exps.weight"]
assert [int(x) for x in e.shape] == [32, 64, 4], list(e.shape)
for k in ("qwen3moe.expert_count", "qwen3moe.expert_used_count", "qwen3moe.expert_feed_forward_length"):
    assert a.fields[k].contents() == b.fields[k].contents(), k
print(f"{len(ta)} tensors identical, ffn_down_exps ne={[int(x) for x in e.shape]}")
PY
    ); then ok "qwen3moe: $r"; else bad "qwen3moe: $r"; fi
    "$PIO" info -m "$tmp/moe.c.gguf" > "$tmp/info.txt" 2>"$tmp/err"
    grep -q "Qwen3MoeForCausalLM" "$tmp/info.txt" && grep -q "plugin: *qwen3_moe" "$tmp/info.txt" && nosan \
      && ok "qwen3moe gguf: loaded by the qwen3_moe plugin ($(grep '^experts' "$tmp/info.txt" | tr -s ' '))" || bad "qwen3moe info"

    python3 "$SRC/tools/hf_to_gguf.py" "$wide" "$tmp/wide.f32.gguf" --outtype f32 >/dev/null 2>"$tmp/err"
    for dt in q4_k q6_k; do
      "$PIO" quantize -q -m "$wide" -o "$tmp/wide.$dt.gguf" --dtype $dt 2>"$tmp/err" || { bad "wide $dt quantize"; continue; }
      if r=$(python3 - "$tmp/wide.f32.gguf" "$tmp/wide.$dt.gguf" $dt 2>&1 <<'PY'
import sys, gguf
import numpy as np
ref = {t.name: t for t in gguf.GGUFReader(sys.argv[1]).tensors}
n_k, worst = 0, 0.0
for t in gguf.GGUFReader(sys.argv[2]).tensors:
    want = np.asarray(ref[t.name].data, dtype=np.float32).reshape(-1)
    got = gguf.quants.dequantize(t.data, t.tensor_type).reshape(-1)
    err = float(np.sqrt(np.mean((got - want) ** 2)) / (np.sqrt(np.mean(want ** 2)) + 1e-12))
    if len(t.shape) > 1:
        assert t.tensor_type.name == sys.argv[3].upper(), f"{t.name}: {t.tensor_type.name}"
        n_k += 1
        worst = max(worst, err)
assert worst < (0.12 if sys.argv[3] == "q4_k" else 0.03), f"rms error {worst:.3g}"
print(f"{n_k} {sys.argv[3].upper()} tensors, gguf-py dequantizes them within {worst:.3g} rms")
PY
      ); then ok "wide $dt: $r"; else bad "wide $dt: $r"; fi
      "$PIO" logits -m "$tmp/wide.$dt.gguf" --ids $IDS > "$tmp/got.json" 2>"$tmp/err" || bad "wide $dt logits"
      "$PIO" logits -m "$wide" --dtype $dt --ids $IDS > "$tmp/want.json" 2>>"$tmp/err"
      if nosan && r=$(close "$tmp/got.json" "$tmp/want.json" 1e-5); then ok "wide $dt gguf = on-load $dt: $r"; else bad "wide $dt vs on-load: $r"; fi
    done
  else
    bad "models made with transformers"
  fi
else
  echo "note: torch/transformers not importable; the Qwen3-MoE and 256-wide checks are skipped"
fi

# the real Qwen3 vocabulary, written by gguf-py
if [ -f "$DATA/qwen3-tokenizer/tokenizer.json" ]; then
  python3 "$SRC/tools/hf_to_gguf.py" --vocab-only "$DATA/qwen3-tokenizer" "$tmp/vocab.gguf" --vocab-size 151936 >/dev/null 2>"$tmp/err" \
    || bad "vocab-only gguf"
  for gold in tokenizer_qwen3 tokenizer_qwen2_llamacpp; do
    python3 -c "
import json, sys
for l in open(sys.argv[1], encoding='utf-8'): print(json.dumps(json.loads(l)['text']))" "$DATA/golden/$gold.jsonl" > "$tmp/texts.jsonl"
    "$PIO" tokenize --tokenizer "$tmp/vocab.gguf" --jsonl < "$tmp/texts.jsonl" > "$tmp/ids.jsonl" 2>"$tmp/err"
    if r=$(python3 - "$DATA/golden/$gold.jsonl" "$tmp/ids.jsonl" <<'PY'
import json, sys
want = [json.loads(l)["ids"] for l in open(sys.argv[1], encoding="utf-8")]
got = [json.loads(l) for l in open(sys.argv[2])]
bad = [i for i, (w, g) in enumerate(zip(want, got)) if w != g]
print(f"{len(want) - len(bad)}/{len(want)} cases")
sys.exit(1 if bad or len(got) != len(want) else 0)
PY
    ); then ok "gguf-py vocabulary: $gold $r"; else bad "gguf-py vocabulary: $gold $r"; fi
  done
else
  echo "note: shared data ($DATA) not found; the Qwen3 vocabulary check is skipped"
fi

echo "gguf: $pass passed, $fail failed"
[ $fail -eq 0 ]
