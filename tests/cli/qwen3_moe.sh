#!/usr/bin/env bash
# The qwen3_moe plugin end to end (tests/fixtures/qwen3_moe, made by
# tools/make_tiny_qwen3_moe.py):
#   - GGUF: each fixture converted by the independent writer
#     (tools/hf_to_gguf.py, gguf-py; experts stacked into ffn_*_exps, the
#     fused gate_up_proj split) gives the logits of the safetensors directory
#     within 1e-5 relative and the same greedy text; `pio info` shows the
#     experts; `pio quantize` of the per-expert fixture equals gguf-py's file;
#   - quantized experts: on a model made here with 32-wide expert rows, a
#     q8_0 / q4_0 GGUF (3-D quantized expert stacks) equals quantizing on load
#     (--dtype) the per-expert and the transformers-fused directories;
#   - configs this plugin does not run fail with a message naming the field.
# Skips (77) when python3 cannot import gguf and numpy; the on-the-fly model
# part needs torch and transformers.
set -u
PIO=${PIO:-build/pio}
SRC=${PIO_SOURCE_DIR:-.}
FX=$SRC/tests/fixtures/qwen3_moe
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

for fx in e8_top2_step2_f32_fused e16_top4_mlponly_bf16; do
  d=$FX/$fx
  ids=$(python3 -c "import json;print(','.join(map(str,json.load(open('$d/golden.json'))['prompt_ids'])))")
  prompt=$(python3 -c "import json;print(json.load(open('$d/golden.json'))['prompt_text'],end='')")
  python3 -c "import json;print(json.dumps({'logits':json.load(open('$d/golden.json'))['logits']}))" > "$tmp/golden.json"
  # an f32 KV cache for parity with transformers (the default f16 one is ~1e-3 off)
  "$PIO" logits -m "$d" --kv-type f32 --ids "$ids" > "$tmp/dir.json" 2>"$tmp/err" || { bad "$fx: logits (directory)"; continue; }
  for dt in f32 bf16; do
    [ $dt = bf16 ] && [ $fx = e8_top2_step2_f32_fused ] && continue   # f32 weights: bf16 would round them
    g=$tmp/$fx.$dt.gguf
    python3 "$SRC/tools/hf_to_gguf.py" "$d" "$g" --outtype $dt >/dev/null 2>"$tmp/err" || { bad "$fx $dt: hf_to_gguf.py"; continue; }
    "$PIO" logits -m "$g" --kv-type f32 --ids "$ids" > "$tmp/gguf.json" 2>"$tmp/err" || { bad "$fx $dt: logits (gguf)"; continue; }
    if nosan && r=$(close "$tmp/gguf.json" "$tmp/dir.json" 1e-5); then ok "$fx $dt gguf logits = directory: $r"; else bad "$fx $dt gguf logits: $r"; fi
    if r=$(close "$tmp/gguf.json" "$tmp/golden.json" 1e-4); then ok "$fx $dt gguf logits = transformers: $r"; else bad "$fx $dt gguf vs transformers: $r"; fi
    "$PIO" run -m "$d" -p "$prompt" -n 20 --temp 0 --ignore-eos -q > "$tmp/want.txt" 2>"$tmp/err"
    "$PIO" run -m "$g" -p "$prompt" -n 20 --temp 0 --ignore-eos -q > "$tmp/got.txt" 2>"$tmp/err"
    if [ -s "$tmp/want.txt" ] && cmp -s "$tmp/got.txt" "$tmp/want.txt" && nosan; then ok "$fx $dt gguf greedy text = directory"; else
      bad "$fx $dt greedy: '$(head -c 60 "$tmp/got.txt")' vs '$(head -c 60 "$tmp/want.txt")'"; fi
  done
  "$PIO" info -m "$tmp/$fx.f32.gguf" > "$tmp/info.txt" 2>"$tmp/err"
  e=$(python3 -c "import json;c=json.load(open('$d/config.json'));print(c.get('num_experts') or c['num_local_experts'], c['num_experts_per_tok'])")
  set -- $e
  if grep -q "^experts: *$1 routed, $2 per token" "$tmp/info.txt" && grep -q "plugin: *qwen3_moe" "$tmp/info.txt"; then
    ok "$fx gguf: pio info: $(grep '^experts' "$tmp/info.txt")"; else bad "$fx: pio info: $(grep -E '^(plugin|experts)' "$tmp/info.txt" | tr '\n' ' ')"; fi
done

# pio quantize writes what gguf-py writes (per-expert layout; dense layers
# under Qwen3's names; expert_weights_norm false for norm_topk_prob false)
m=$FX/e16_top4_mlponly_bf16
python3 "$SRC/tools/hf_to_gguf.py" "$m" "$tmp/py.gguf" --outtype q8_0 >/dev/null 2>"$tmp/err"
if "$PIO" quantize -q -m "$m" -o "$tmp/c.gguf" --dtype q8_0 2>"$tmp/err" && r=$(python3 - "$tmp/py.gguf" "$tmp/c.gguf" 2>&1 <<'PY'
import sys, gguf
a, b = gguf.GGUFReader(sys.argv[1]), gguf.GGUFReader(sys.argv[2])
ta, tb = {t.name: t for t in a.tensors}, {t.name: t for t in b.tensors}
assert set(ta) == set(tb), sorted(set(ta) ^ set(tb))
for n in ta:
    assert ta[n].data.tobytes() == tb[n].data.tobytes() and list(ta[n].shape) == list(tb[n].shape), n
assert "blk.2.ffn_gate.weight" in ta and "blk.2.ffn_gate_inp.weight" not in ta, "layer 2 should be dense"
for k in ("qwen3moe.expert_count", "qwen3moe.expert_used_count", "qwen3moe.expert_feed_forward_length",
          "qwen3moe.expert_weights_norm"):
    assert a.fields[k].contents() == b.fields[k].contents(), k
assert b.fields["qwen3moe.expert_weights_norm"].contents() is False
print(f"{len(ta)} tensors identical")
PY
); then ok "pio quantize q8_0 = gguf-py: $r"; else bad "pio quantize q8_0 vs gguf-py: ${r:-}"; fi

# Quantized experts: 32-wide expert rows, so every expert matrix (fused 3-D
# stacks included) takes Q8_0/Q4_0 blocks; GGUF and on-load give the same blocks.
if python3 -c "import torch, transformers, safetensors" 2>/dev/null; then
  if python3 - "$tmp/pe" "$tmp/fu" "$FX/e8_top2_step2_f32_fused" > /dev/null 2>"$tmp/err" <<'PY'
import os, shutil, sys, torch
from safetensors.torch import save_file
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM
torch.manual_seed(0)
cfg = Qwen3MoeConfig(vocab_size=448, hidden_size=64, intermediate_size=96, moe_intermediate_size=32,
                     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, num_experts=8,
                     num_experts_per_tok=2, max_position_embeddings=128, tie_word_embeddings=False,
                     norm_topk_prob=True, bos_token_id=420, eos_token_id=422)
cfg.architectures = ["Qwen3MoeForCausalLM"]
m = Qwen3MoeForCausalLM(cfg)
with torch.no_grad():
    for p in m.parameters():
        p.normal_(0, 0.2) if p.dim() > 1 else p.fill_(1.0)
m.save_pretrained(sys.argv[1])                       # per-expert tensors
os.makedirs(sys.argv[2])                             # transformers' fused tensors
save_file({k: v.contiguous() for k, v in m.state_dict().items()}, f"{sys.argv[2]}/model.safetensors",
          metadata={"format": "pt"})
shutil.copy(f"{sys.argv[1]}/config.json", sys.argv[2])
for d in sys.argv[1:3]:
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(f"{sys.argv[3]}/{f}", d)
PY
  then
    IDS=397,353,328,220,18,291,417,410,279,258
    "$PIO" logits -m "$tmp/pe" --ids $IDS > "$tmp/f32.pe.json" 2>"$tmp/err"
    "$PIO" logits -m "$tmp/fu" --ids $IDS > "$tmp/f32.fu.json" 2>"$tmp/err"
    if r=$(close "$tmp/f32.fu.json" "$tmp/f32.pe.json" 1e-6); then ok "fused layout = per-expert layout (f32): $r"; else bad "fused vs per-expert: $r"; fi
    for dt in q8_0 q4_0; do
      python3 "$SRC/tools/hf_to_gguf.py" "$tmp/pe" "$tmp/w.$dt.gguf" --outtype $dt >/dev/null 2>"$tmp/err" || bad "hf_to_gguf $dt"
      "$PIO" info -m "$tmp/fu" --dtype $dt > "$tmp/info.txt" 2>"$tmp/err"
      if grep -q "dtypes: *F32 x 9, ${dt^^} x 16" "$tmp/info.txt"; then ok "fused --dtype $dt: every matrix converted ($(grep dtypes "$tmp/info.txt" | tr -s ' '))"
      else bad "fused --dtype $dt: $(grep dtypes "$tmp/info.txt")"; fi
      "$PIO" logits -m "$tmp/w.$dt.gguf" --ids $IDS > "$tmp/g.json" 2>"$tmp/err" || bad "$dt gguf logits"
      for src in pe fu; do
        "$PIO" logits -m "$tmp/$src" --dtype $dt --ids $IDS > "$tmp/l.json" 2>"$tmp/err" || bad "$src --dtype $dt logits"
        if nosan && r=$(close "$tmp/g.json" "$tmp/l.json" 1e-5); then ok "$dt gguf (3-D quantized experts) = on-load $dt of the $src layout: $r"
        else bad "$dt gguf vs on-load ($src): $r"; fi
      done
      # near f32 at most positions: a token whose top-k choice flips under
      # quantization noise (random router, close probabilities) may differ more
      tol=0.1; [ $dt = q4_0 ] && tol=0.4    # random 0.2-std weights: q4_0 is coarse here
      if r=$(python3 - "$tmp/g.json" "$tmp/f32.pe.json" $tol <<'PY'
import json, sys
import numpy as np
a = np.array(json.load(open(sys.argv[1]))["logits"]); b = np.array(json.load(open(sys.argv[2]))["logits"])
d = np.abs(a - b).max(axis=1) / np.abs(b).max()
print(f"per-position max|diff|/scale: median {np.median(d):.3g}, max {d.max():.3g}")
sys.exit(0 if np.median(d) <= float(sys.argv[3]) else 1)
PY
      ); then ok "$dt near f32: $r"; else bad "$dt vs f32: $r"; fi
    done
  else
    bad "tiny Qwen3-MoE made with transformers"
  fi
else
  echo "note: torch/transformers not importable; the quantized-expert checks are skipped"
fi

# Configs this plugin refuses, with the field named.
refuse() {   # name, python edit of the config dict c, expected text
  rm -rf "$tmp/bad"; mkdir "$tmp/bad"
  for f in "$FX/e16_top4_mlponly_bf16"/*; do ln -s "$(cd "$(dirname "$f")" && pwd)/$(basename "$f")" "$tmp/bad/"; done
  rm "$tmp/bad/config.json"
  python3 -c "import json,sys;c=json.load(open('$FX/e16_top4_mlponly_bf16/config.json'));$2;json.dump(c,open('$tmp/bad/config.json','w'))"
  "$PIO" run -m "$tmp/bad" -p hi -n 1 > /dev/null 2>"$tmp/err"
  rc=$?
  if [ $rc -eq 1 ] && grep -q "$3" "$tmp/err" && nosan; then ok "refused $1: $(head -c 150 "$tmp/err")"; else bad "$1 (rc $rc)"; fi
}
refuse "a shared expert" "c['shared_expert_intermediate_size']=64" "shared_expert_intermediate_size"
refuse "top-k > experts" "c['num_experts_per_tok']=17" "num_experts_per_tok"
refuse "no moe_intermediate_size" "c.pop('moe_intermediate_size')" "moe_intermediate_size"
refuse "mlp_only_layers not a list" "c['mlp_only_layers']='2'" "mlp_only_layers"
refuse "decoder_sparse_step < 0" "c['decoder_sparse_step']=-1" "decoder_sparse_step"
refuse "a router of the wrong shape" "c['num_experts']=17" "model.layers.0.mlp.gate.weight"

echo "qwen3_moe: $pass passed, $fail failed"
[ $fail -eq 0 ]
