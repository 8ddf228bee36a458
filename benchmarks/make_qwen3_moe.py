#!/usr/bin/env python3
"""make_qwen3_moe.py - a full-size random-weight GGUF with the real shapes of
Qwen3-Coder-30B-A3B-Instruct (Qwen3MoeForCausalLM: 48 layers, hidden 2048,
32/4 heads of 128, 128 experts of ff 768, top-8), written directly quantized
(about 17 GB at Q4_0), for the issue #5 benchmark against llama.cpp.

Output: WORK/qwen3-30b-a3b-<type>.gguf (WORK default benchmarks/work/, git-ignored),
llama.cpp's qwen3moe layout: blk.N.ffn_gate_inp.weight [128, 2048] router,
blk.N.ffn_{gate,up}_exps.weight [128, 768, 2048] and ffn_down_exps
[128, 2048, 768] (3-D, experts outermost), attention as Qwen3, token_embd and
a separate output.weight (untied, as the real model), 1-D norms F32 = 1.0.
The vocabulary comes from ../shared/data/qwen3-tokenizer (or a placeholder).

Weights, two modes:
  --exact   normal(0, 0.02) values quantized with gguf.quants (ggml's reference
            rounding); slow for 30B values (tens of minutes);
  default   random blocks written directly: each Q4_0 block gets the f16 scale
            d = 0.02 / 4.3 and random nibbles uniform in 1..15 (values (q - 8)·d,
            mean 0, std about 0.02); Q8_0 blocks d = 0.02 / 73.6 and random int8 in
            [-127, 127]. The speed of a kernel does not depend on the values,
            and the file is written at disk speed.
The router rows are random too, so the experts a token picks are spread as
in a real model.

Usage:
  python3 benchmarks/make_qwen3_moe.py [--work DIR] [--type q4_0|q8_0]
        [--layers N] [--experts N] [--exact] [--seed N] [--force]
--layers/--experts make a smaller model with the same per-expert shapes (smoke
tests). Peak RSS: one tensor (about 113 MB at Q4_0) at a time.
"""
import argparse
import os
import sys
import time
import zlib
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_qwen3_4b as dense  # noqa: E402  (vocabulary helpers)

REPO = HERE.parent

# Qwen3-Coder-30B-A3B-Instruct config.json (MODELS.md §2, §4)
CONFIG = {
    "architectures": ["Qwen3MoeForCausalLM"],
    "hidden_size": 2048,
    "intermediate_size": 6144,
    "moe_intermediate_size": 768,
    "num_hidden_layers": 48,
    "num_attention_heads": 32,
    "num_key_value_heads": 4,
    "head_dim": 128,
    "num_experts": 128,
    "num_experts_per_tok": 8,
    "norm_topk_prob": True,
    "max_position_embeddings": 262144,
    "rms_norm_eps": 1e-06,
    "rope_theta": 10000000,
    "vocab_size": 151936,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "pad_token_id": 151643,
}


def tensor_specs(cfg):
    """[(gguf_name, shape outermost first, is_norm)] in llama.cpp's order."""
    H, V, D = cfg["hidden_size"], cfg["vocab_size"], cfg["head_dim"]
    E, F = cfg["num_experts"], cfg["moe_intermediate_size"]
    q, kv = cfg["num_attention_heads"] * D, cfg["num_key_value_heads"] * D
    specs = [("token_embd.weight", (V, H), False)]
    for l in range(cfg["num_hidden_layers"]):
        g = f"blk.{l}."
        specs += [
            (g + "attn_norm.weight", (H,), True),
            (g + "attn_q.weight", (q, H), False),
            (g + "attn_k.weight", (kv, H), False),
            (g + "attn_v.weight", (kv, H), False),
            (g + "attn_output.weight", (H, q), False),
            (g + "attn_q_norm.weight", (D,), True),
            (g + "attn_k_norm.weight", (D,), True),
            (g + "ffn_norm.weight", (H,), True),
            (g + "ffn_gate_inp.weight", (E, H), False),
            (g + "ffn_gate_exps.weight", (E, F, H), False),
            (g + "ffn_up_exps.weight", (E, F, H), False),
            (g + "ffn_down_exps.weight", (E, H, F), False),
        ]
    specs += [("output_norm.weight", (H,), True), ("output.weight", (V, H), False)]
    return specs


def random_blocks(qtype, n_values, rng):
    """n_values/32 random Q4_0 or Q8_0 blocks (std about 0.02) as bytes."""
    import gguf
    nb = n_values // 32
    if qtype == gguf.GGMLQuantizationType.Q4_0:
        # nibbles uniform in 1..15 (values -7..7, mean 0): uniform 0..15 would
        # give every weight a mean of -d/2, and that common component grows
        # layer by layer until every token's hidden state points the same way
        # and the router picks the same 8 experts for all of them
        d = np.full((nb, 1), 0.02 / 4.3, dtype=np.float16).view(np.uint8)
        lo = rng.integers(1, 16, size=(nb, 16), dtype=np.uint8)
        hi = rng.integers(1, 16, size=(nb, 16), dtype=np.uint8)
        qs = lo | (hi << 4)
    else:
        d = np.full((nb, 1), 0.02 / 73.6, dtype=np.float16).view(np.uint8)
        qs = rng.integers(-127, 128, size=(nb, 32), dtype=np.int8).view(np.uint8)
    return np.concatenate([d, qs], axis=1).reshape(-1)


def tensor_data(name, shape, is_norm, qtype, exact, seed):
    import gguf
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    n = int(np.prod(shape))
    if is_norm:
        return np.ones(shape, dtype=np.float32)
    if not exact:
        return random_blocks(qtype, n, rng)
    cols = shape[-1]
    rows = n // cols
    step = max(1, (1 << 24) // cols)
    parts = []
    for r0 in range(0, rows, step):
        x = rng.standard_normal(size=(min(rows, r0 + step) - r0, cols), dtype=np.float32) * np.float32(0.02)
        parts.append(gguf.quants.quantize(x, qtype).reshape(-1))
    return np.concatenate(parts)


def main():
    import gguf
    from gguf import GGMLQuantizationType as Q
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"))
    ap.add_argument("--type", default="q4_0", choices=["q4_0", "q8_0"])
    ap.add_argument("--layers", type=int, default=None)
    ap.add_argument("--experts", type=int, default=None)
    ap.add_argument("--exact", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-dir", default=None)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()

    cfg = dict(CONFIG)
    if args.layers:
        cfg["num_hidden_layers"] = args.layers
    if args.experts:
        cfg["num_experts"] = args.experts
        cfg["num_experts_per_tok"] = min(cfg["num_experts_per_tok"], args.experts)
    qtype = {"q4_0": Q.Q4_0, "q8_0": Q.Q8_0}[args.type]
    ftype = {"q4_0": gguf.LlamaFileType.MOSTLY_Q4_0, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[args.type]
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    suffix = "" if (args.layers is None and args.experts is None) else f"-l{cfg['num_hidden_layers']}e{cfg['num_experts']}"
    out = work / f"qwen3-30b-a3b{suffix}-{args.type}.gguf"
    if out.exists() and not args.force:
        print(f"{out} exists (use --force to rewrite)")
        return 0

    tok_dir = None
    for c in ([args.tokenizer_dir] if args.tokenizer_dir else
              [os.path.join(os.environ.get("PIO_SHARED", str(REPO.parent / "shared")), "data", "qwen3-tokenizer")]):
        if c and (Path(c) / "tokenizer.json").exists():
            tok_dir = Path(c)

    t0 = time.time()
    w = gguf.GGUFWriter(str(out) + ".part", "qwen3moe")
    w.add_name(f"Qwen3-Coder-30B-A3B-Instruct shapes, random weights ({args.type})")
    w.add_type("model")
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(cfg["num_attention_heads"])
    w.add_head_count_kv(cfg["num_key_value_heads"])
    w.add_key_length(cfg["head_dim"])
    w.add_value_length(cfg["head_dim"])
    w.add_rope_freq_base(float(cfg["rope_theta"]))
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_expert_count(cfg["num_experts"])
    w.add_expert_used_count(cfg["num_experts_per_tok"])
    w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    w.add_file_type(ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    vocab = dense.load_vocab(tok_dir, cfg["vocab_size"]) if tok_dir else None
    w.add_tokenizer_model("gpt2")
    if vocab is None:
        print("no Qwen3 tokenizer.json: writing a placeholder vocabulary")
        tokens, types, merges = dense.synthetic_vocab(cfg["vocab_size"])
        w.add_tokenizer_pre("default")
    else:
        tokens, types, merges = vocab
        w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    if merges:
        w.add_token_merges(merges)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    w.add_pad_token_id(cfg["pad_token_id"])
    w.add_add_bos_token(False)

    plan = []
    for name, shape, is_norm in tensor_specs(cfg):
        t = Q.F32 if is_norm else qtype
        bs, ts = gguf.GGML_QUANT_SIZES[t]
        nbytes = int(np.prod(shape)) // bs * ts
        w.add_tensor_info(name, shape, np.dtype(np.float32), nbytes, raw_dtype=t)
        plan.append((name, shape, is_norm, nbytes))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    total = 0
    for name, shape, is_norm, nbytes in plan:
        data = tensor_data(name, shape, is_norm, qtype, args.exact, args.seed)
        assert data.nbytes == nbytes, (name, data.nbytes, nbytes)
        w.write_tensor_data(data)
        total += nbytes
        del data
    w.close()
    os.replace(str(out) + ".part", out)
    print(f"{out}: {total / 1e9:.2f} GB of tensors, {len(plan)} tensors, in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
