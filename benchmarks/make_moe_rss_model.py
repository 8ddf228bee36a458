#!/usr/bin/env python3
"""Write a random-weight Qwen3-MoE checkpoint (bf16 safetensors, experts per
tensor as published) for measuring how the resident set follows the experts
actually used (benchmarks/moe_rss_bench.c).

    benchmarks/make_moe_rss_model.py OUT_DIR [--experts 64] [--top-k 4]
        [--layers 4] [--hidden 512] [--moe-ff 512] [--dead 32]

--dead N zeroes the router rows of the last N experts of every layer while
the others get large random rows: a zero row gives logit 0, the top-k of the
live experts' logits are positive for any input, so the dead experts are
never selected and their weights must never be paged in. Weights: N(0,
0.02), seeded; the tokenizer files are copied from the tiny test fixture
(448-row vocabulary). Only numpy is needed.
"""
import argparse
import json
import os
import shutil
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "..", "tests", "fixtures", "qwen3_moe", "e16_top4_mlponly_bf16")


def bf16_bytes(a):
    """float32 array -> bf16 bytes, round to nearest even."""
    u = np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype("<u2").tobytes()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--experts", type=int, default=64)
    ap.add_argument("--top-k", type=int, default=4)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--moe-ff", type=int, default=512)
    ap.add_argument("--dead", type=int, default=0)
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    H, F, E, L = a.hidden, a.moe_ff, a.experts, a.layers
    heads, kv, hd, vocab = 8, 2, 64, 448
    names = []   # (name, shape, generator)

    def mat(shape, std=0.02):
        return lambda: rng.standard_normal(shape, dtype=np.float32) * std

    def ones(n):
        return lambda: np.ones(n, np.float32)

    def router():
        r = rng.standard_normal((E, H), dtype=np.float32) * 0.5
        if a.dead:
            r[E - a.dead:] = 0.0
        return r

    names.append(("model.embed_tokens.weight", (vocab, H), mat((vocab, H), 1.0)))
    for l in range(L):
        p = f"model.layers.{l}."
        names += [(p + "input_layernorm.weight", (H,), ones(H)),
                  (p + "post_attention_layernorm.weight", (H,), ones(H)),
                  (p + "self_attn.q_norm.weight", (hd,), ones(hd)),
                  (p + "self_attn.k_norm.weight", (hd,), ones(hd)),
                  (p + "self_attn.q_proj.weight", (heads * hd, H), mat((heads * hd, H))),
                  (p + "self_attn.k_proj.weight", (kv * hd, H), mat((kv * hd, H))),
                  (p + "self_attn.v_proj.weight", (kv * hd, H), mat((kv * hd, H))),
                  (p + "self_attn.o_proj.weight", (H, heads * hd), mat((H, heads * hd))),
                  (p + "mlp.gate.weight", (E, H), router)]
        for e in range(E):
            q = f"{p}mlp.experts.{e}."
            names += [(q + "gate_proj.weight", (F, H), mat((F, H))),
                      (q + "up_proj.weight", (F, H), mat((F, H))),
                      (q + "down_proj.weight", (H, F), mat((H, F)))]
    names += [("model.norm.weight", (H,), ones(H)), ("lm_head.weight", (vocab, H), mat((vocab, H)))]

    header, off = {}, 0
    for n, shape, _ in names:
        size = int(np.prod(shape)) * 2
        header[n] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + size]}
        off += size
    hb = json.dumps(header).encode()
    hb += b" " * (-len(hb) % 8)
    os.makedirs(a.out, exist_ok=True)
    with open(os.path.join(a.out, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", len(hb)))
        f.write(hb)
        for _, _, gen in names:
            f.write(bf16_bytes(gen()))
    cfg = {"architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe", "vocab_size": vocab,
           "hidden_size": H, "intermediate_size": 4 * H, "moe_intermediate_size": F, "num_hidden_layers": L,
           "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": hd, "num_experts": E,
           "num_experts_per_tok": a.top_k, "norm_topk_prob": True, "decoder_sparse_step": 1,
           "mlp_only_layers": [], "max_position_embeddings": 4096, "rms_norm_eps": 1e-6, "rope_theta": 1e7,
           "tie_word_embeddings": False, "hidden_act": "silu", "torch_dtype": "bfloat16",
           "bos_token_id": 420, "eos_token_id": 422}
    with open(os.path.join(a.out, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
    for fn in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(FIXTURE, fn), a.out)
    per_expert = 3 * F * H * 2
    print(f"{a.out}: {off / 1e6:.1f} MB of weights, {L} layers x {E} experts ({a.dead} dead) x "
          f"{per_expert / 1e6:.2f} MB; experts {L * E * per_expert / 1e6:.1f} MB, other {(off - L * E * per_expert) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
