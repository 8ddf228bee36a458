#!/usr/bin/env python3
"""Build tiny random Qwen3-MoE checkpoints plus golden reference outputs.

The checkpoints are made with Hugging Face transformers' own classes
(Qwen3MoeConfig / Qwen3MoeForCausalLM), so the engine's qwen3_moe plugin can
be tested against the reference implementation without downloading a real
model. The tokenizer, weight initialisation, golden.json layout and helpers
are those of tools/make_tiny_qwen3.py (imported from beside this file).

Usage:
    python3 tools/make_tiny_qwen3_moe.py --out tests/fixtures/qwen3_moe

Two expert layouts are written:
  - "per_expert": what save_pretrained writes (transformers 5 splits its fused
    expert parameters back into mlp.experts.E.{gate,up,down}_proj.weight, the
    layout of the published Qwen3-MoE checkpoints);
  - "fused": the model's own state_dict as transformers >= 5 holds it
    (mlp.experts.gate_up_proj [E, 2*ff, hidden], mlp.experts.down_proj
    [E, hidden, ff]) written with safetensors; from_pretrained loads it too
    (checked below).
Seeded and CPU-only. See tools/README.md.
"""

import argparse
import json
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import transformers  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from transformers import AutoTokenizer, Qwen3MoeConfig, Qwen3MoeForCausalLM  # noqa: E402

import make_tiny_qwen3 as base  # noqa: E402

# name -> (Qwen3MoeConfig kwargs, weights dtype, expert layout, config style)
CONFIGS = {
    # 8 experts, top-2, renormalized; every second layer sparse
    # (decoder_sparse_step 2: layers 1 and 3 MoE, 0 and 2 dense); fused layout
    "e8_top2_step2_f32_fused": dict(
        cfg=dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2,
                 head_dim=8, num_hidden_layers=4, intermediate_size=48,
                 moe_intermediate_size=16, num_experts=8, num_experts_per_tok=2,
                 norm_topk_prob=True, decoder_sparse_step=2, mlp_only_layers=[],
                 max_position_embeddings=128, rope_theta=1e6,
                 tie_word_embeddings=False),
        dtype=torch.float32, layout="fused", config_style="v5", seed=2001),
    # 16 experts, top-4, not renormalized; mlp_only_layers [2] (layers 0, 1,
    # 3 MoE); per-expert tensors as published; legacy config keys
    # (num_experts, rope_theta) as in Qwen3-30B-A3B's config.json
    "e16_top4_mlponly_bf16": dict(
        cfg=dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=1,
                 head_dim=16, num_hidden_layers=4, intermediate_size=40,
                 moe_intermediate_size=16, num_experts=16, num_experts_per_tok=4,
                 norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[2],
                 max_position_embeddings=256, rope_theta=1e7,
                 tie_word_embeddings=False),
        dtype=torch.bfloat16, layout="per_expert", config_style="legacy", seed=2002),
}


def patch_config(path, style, weights_dtype, theta):
    """base.patch_config_json, and for the legacy style the expert count
    under Qwen's own key (num_experts) rather than transformers 5's
    num_local_experts."""
    base.patch_config_json(path, style, weights_dtype, theta)
    with open(path) as f:
        cfg = json.load(f)
    if style == "legacy" and "num_local_experts" in cfg:
        cfg["num_experts"] = cfg.pop("num_local_experts")
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def save_fused(model, out_dir):
    """The in-memory state dict (fused experts) as model.safetensors."""
    sd = {k: v.contiguous() for k, v in model.state_dict().items()}
    if model.config.tie_word_embeddings:
        sd.pop("lm_head.weight", None)
    save_file(sd, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(out_dir)


def make_one(name, spec, tok, hf_tok, out_root):
    """Build, save and record golden outputs for one configuration."""
    out_dir = os.path.join(out_root, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    n_real = tok.get_vocab_size()
    vocab = (n_real + 63) // 64 * 64
    eot, ims, ime = (tok.token_to_id(s) for s in base.SPECIALS)
    kw = dict(spec["cfg"])
    theta = kw.pop("rope_theta")
    cfg = Qwen3MoeConfig(vocab_size=vocab, rms_norm_eps=1e-6, hidden_act="silu",
                         rope_parameters={"rope_type": "default", "rope_theta": theta},
                         bos_token_id=eot, eos_token_id=ime, pad_token_id=eot,
                         attention_bias=False, use_sliding_window=False,
                         dtype=spec["dtype"], **kw)
    cfg.architectures = ["Qwen3MoeForCausalLM"]
    torch.manual_seed(spec["seed"])
    model = Qwen3MoeForCausalLM(cfg).to(torch.float32)
    base.reinit_weights(model, spec["seed"], n_real)
    model.to(spec["dtype"])
    model.config.dtype = spec["dtype"]
    if spec["layout"] == "fused":
        save_fused(model, out_dir)
    else:
        model.save_pretrained(out_dir, safe_serialization=True)
    patch_config(os.path.join(out_dir, "config.json"), spec["config_style"], spec["dtype"], theta)
    gcfg = {"bos_token_id": None, "do_sample": True, "eos_token_id": [ime, eot],
            "pad_token_id": eot, "temperature": 0.7, "top_k": 20, "top_p": 0.8,
            "transformers_version": transformers.__version__}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gcfg, f, indent=2)
        f.write("\n")
    base.save_tokenizer(tok, out_dir)

    # Reference: the stored weights upcast to float32 in a fresh float32 model.
    stored = {k: v.float() for k, v in model.state_dict().items()}
    cfg.dtype = torch.float32
    model = Qwen3MoeForCausalLM._from_config(cfg, attn_implementation="eager")
    model.load_state_dict(stored)
    model = model.float().eval()

    prompt_ids = tok.encode(base.PROMPT_TEXT).ids
    assert prompt_ids == hf_tok(base.PROMPT_TEXT)["input_ids"], "tokenizers disagree"
    chat_text = hf_tok.apply_chat_template(base.SECOND_MESSAGES, tokenize=False,
                                           add_generation_prompt=True)
    second_ids = tok.encode(chat_text).ids
    logits = base.forward_logits(model, prompt_ids)
    greedy_ids, pad_hits = base.greedy(model, prompt_ids, base.N_GREEDY, n_real)
    second_last = base.forward_logits(model, second_ids)[-1]

    # Router margins: the smallest gap between the k-th and (k+1)-th expert
    # probability over all tokens and MoE layers of the prompt (a tiny gap
    # would make the expert choice fragile against rounding).
    gaps = []

    def router_hook(mod, inp, out):
        p = torch.softmax(out[0].float(), dim=-1)
        top = torch.topk(p, cfg.num_experts_per_tok + 1, dim=-1).values
        gaps.append(float((top[:, -2] - top[:, -1]).min()))

    hooks = [l.mlp.gate.register_forward_hook(router_hook)
             for l in model.model.layers if hasattr(l.mlp, "gate")]
    base.forward_logits(model, prompt_ids)
    for h in hooks:
        h.remove()
    min_gap = min(gaps)

    with torch.no_grad():
        L = max(len(prompt_ids), len(second_ids))
        rows = [prompt_ids + [eot] * (L - len(prompt_ids)),
                second_ids + [eot] * (L - len(second_ids))]
        mask = [[1] * len(prompt_ids) + [0] * (L - len(prompt_ids)),
                [1] * len(second_ids) + [0] * (L - len(second_ids))]
        bl = model(input_ids=torch.tensor(rows), attention_mask=torch.tensor(mask),
                   use_cache=False).logits.float()
        d1 = (bl[0, len(prompt_ids) - 1] - logits[-1]).abs().max().item()
        d2 = (bl[1, len(second_ids) - 1] - second_last).abs().max().item()

    wdt = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[spec["dtype"]]
    golden = {
        "config_name": name,
        "prompt_text": base.PROMPT_TEXT,
        "prompt_ids": prompt_ids,
        "vocab_size": vocab,
        "n_real_tokens": n_real,
        "max_position_embeddings": kw["max_position_embeddings"],
        "weights_dtype": wdt,
        "compute_dtype": "float32",
        "expert_layout": spec["layout"],
        "moe_layers": [i for i, l in enumerate(model.model.layers) if hasattr(l.mlp, "gate")],
        "router_min_topk_gap": min_gap,
        "note": ("reference logits are computed with the stored weights upcast to "
                 "float32: " + wdt + " weights, float32 compute; eager attention, no "
                 "cache. greedy_ids: argmax over ids < n_real_tokens (padding rows "
                 "masked), eos ignored. router_min_topk_gap: smallest p_k - p_(k+1) "
                 "of the prompt's routing."),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "greedy_ids": greedy_ids,
        "greedy_text": tok.decode(greedy_ids, skip_special_tokens=False),
        "greedy_unmasked_pad_hits": pad_hits,
        "logits_batch_check": {
            "description": "both prompts right-padded in one HF batch; max |diff| "
                           "of each row's last-position logits vs. single runs",
            "max_abs_diff": max(d1, d2)},
        "golden_second_prompt": {
            "messages": base.SECOND_MESSAGES,
            "prompt_text": chat_text,
            "prompt_ids": second_ids,
            "last_logits": [base.fmt(v) for v in second_last.tolist()],
        },
        "logits": [[base.fmt(v) for v in row] for row in logits.tolist()],
    }
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        f.write(base.to_json(golden))
        f.write("\n")
    return out_dir, logits, greedy_ids, pad_hits, max(d1, d2), min_gap


def verify(out_dir):
    """Reload the saved checkpoint with from_pretrained (either layout) and
    check it reproduces golden.json; returns (max |logit diff|, max |logit|)."""
    with open(os.path.join(out_dir, "golden.json")) as f:
        g = json.load(f)
    m = Qwen3MoeForCausalLM.from_pretrained(out_dir, dtype=torch.float32,
                                            attn_implementation="eager").eval()
    ref = torch.tensor(g["logits"])
    got = base.forward_logits(m, g["prompt_ids"])
    diff = (got - ref).abs().max().item()
    scale = ref.abs().max().item()
    if diff > 1e-5 * max(1.0, scale):
        sys.exit(f"{out_dir}: reloaded logits differ by {diff}")
    gi, _ = base.greedy(m, g["prompt_ids"], base.N_GREEDY, g["n_real_tokens"])
    if gi != g["greedy_ids"]:
        sys.exit(f"{out_dir}: reloaded greedy ids differ")
    hf_tok = AutoTokenizer.from_pretrained(out_dir)
    if hf_tok(g["prompt_text"])["input_ids"] != g["prompt_ids"]:
        sys.exit(f"{out_dir}: reloaded tokenizer gives other ids")
    return diff, scale


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/qwen3_moe")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    os.makedirs(args.out, exist_ok=True)

    tok = base.build_tokenizer()
    tmp = os.path.join(args.out, ".tok_tmp")
    os.makedirs(tmp, exist_ok=True)
    base.save_tokenizer(tok, tmp)
    hf_tok = AutoTokenizer.from_pretrained(tmp)
    shutil.rmtree(tmp)

    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    for name, spec in CONFIGS.items():
        out_dir, logits, gids, pad_hits, bdiff, gap = make_one(name, spec, tok, hf_tok, args.out)
        diff, scale = verify(out_dir)
        files = sorted(os.listdir(out_dir))
        print(f"\n== {name}: {base.dir_size(out_dir) / 1024:.0f} KiB, files: {', '.join(files)}")
        print(f"   prompt {len(logits)} tokens, max|logit| {scale:.3f}, "
              f"batch-check diff {bdiff:.2e}, reload diff {diff:.2e}, router min top-k gap {gap:.2e}")
        print(f"   greedy ids {gids} (unmasked argmax hit padding {pad_hits}x)")
        if len(set(gids)) < 5:
            sys.exit(f"{name}: greedy continuation is degenerate")
    print(f"\ntotal {base.dir_size(args.out) / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
