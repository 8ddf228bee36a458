#!/usr/bin/env bash
# make_kquant_ggufs.sh - K-quant GGUFs of the random-weight Qwen3-4B for
# run_vs_llamacpp.py (--formats q4_k,q6_k,q4_k_m), written by `pio quantize`
# from the safetensors directory that make_qwen3_4b.py made. The gguf
# package's numpy quantizer has no K-quants, and both engines then read the
# very same file.
#
#   WORK/NAME-q4_k.gguf    every 2-D weight Q4_K ("pure")
#   WORK/NAME-q6_k.gguf    every 2-D weight Q6_K ("pure")
#   WORK/NAME-q4_k_m.gguf  llama-quantize's Q4_K_M mix: Q4_K, with Q6_K for
#                          token_embd (the tied output) and for attn_v and
#                          ffn_down of the layers llama.cpp gives more bits
#                          (use_more_bits: the first and last eighth, and every
#                          third layer between)
#
# usage: benchmarks/make_kquant_ggufs.sh [WORK [NAME [FORMATS]]]
#        (defaults benchmarks/work, qwen3-4b, q4_k,q6_k,q4_k_m; PIO=path/to/pio)
# An existing file is kept. ~45 s per file on 2 cores.
set -euo pipefail
work=${1:-benchmarks/work}
name=${2:-qwen3-4b}
formats=${3:-q4_k,q6_k,q4_k_m}
pio=${PIO:-build/pio}
src=$work/$name
[ -x "$pio" ] || { echo "make_kquant_ggufs: no pio binary at $pio (build it, or set PIO)" >&2; exit 1; }
[ -f "$src/config.json" ] || { echo "make_kquant_ggufs: no model at $src (run make_qwen3_4b.py)" >&2; exit 1; }
n_layers=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['num_hidden_layers'])" "$src/config.json")

for fmt in ${formats//,/ }; do
  out=$work/$name-$fmt.gguf
  if [ -f "$out" ]; then echo "make_kquant_ggufs: $out exists"; continue; fi
  case $fmt in
    q4_k|q6_k) args=(--dtype "$fmt") ;;
    q4_k_m)
      args=(--dtype q4_k --override token_embd.weight=q6_k)
      for ((i = 0; i < n_layers; i++)); do
        if ((i < n_layers / 8 || i >= 7 * n_layers / 8 || (i - n_layers / 8) % 3 == 2)); then
          args+=(--override "blk.$i.attn_v.weight=q6_k" --override "blk.$i.ffn_down.weight=q6_k")
        fi
      done ;;
    *) echo "make_kquant_ggufs: unknown format $fmt (q4_k, q6_k, q4_k_m)" >&2; exit 1 ;;
  esac
  "$pio" quantize -q -m "$src" -o "$out" "${args[@]}"
done
