#!/usr/bin/env python3
"""Convert a small Hugging Face Qwen3 / Qwen3-MoE directory to GGUF with the
`gguf` package (pip install gguf), the way llama.cpp's convert_hf_to_gguf.py
does it, for test fixtures: an independent writer to check pio's GGUF reader
(and `pio quantize`) against.

    tools/hf_to_gguf.py MODEL_DIR OUT.gguf [--outtype f32|f16|bf16|q8_0|q4_0]
    tools/hf_to_gguf.py --vocab-only TOKENIZER_DIR OUT.gguf [--vocab-size N]

What it writes, as llama.cpp's converter does for Qwen3ForCausalLM
(Qwen3Model -> Qwen2Model -> TextModel; no q/k permutation):
  - general.architecture qwen3 (qwen3moe), general.name, general.file_type,
    general.quantization_version;
  - <arch>.context_length, embedding_length, block_count,
    feed_forward_length, attention.head_count, attention.head_count_kv,
    attention.key_length / value_length (head_dim), rope.freq_base,
    attention.layer_norm_rms_epsilon, expert_* for MoE;
  - the vocabulary as get_vocab_base writes it (ids up to the embedding rows,
    "[PAD<id>]" unused fillers, added tokens control or user-defined) with
    tokenizer.ggml.pre "qwen2", plus gguf.SpecialVocab (merges, bos/eos/pad
    ids, chat template);
  - tensors under gguf-py's TensorNameMap names; MoE experts stacked into
    3-D tensors (per-expert tensors, or transformers 5's fused gate_up_proj
    split into gate and up); 1-D tensors F32; matrices in --outtype (gguf.quants.quantize),
    falling back to F16 where a row is not whole 32-element blocks.
Only numpy and gguf are needed (safetensors files are read directly).
"""
import argparse
import json
import os
import re
import struct
import sys

import numpy as np
import gguf

QWEN2_REGEX = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
               "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")

OUTTYPES = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
}

ARCHS = {
    "Qwen3ForCausalLM": gguf.MODEL_ARCH.QWEN3,
    "Qwen3MoeForCausalLM": gguf.MODEL_ARCH.QWEN3MOE,
}


def read_safetensors(path):
    """{name: float32 array} of one safetensors file (F32, F16, BF16)."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        b, e = info["data_offsets"]
        raw = data[b:e]
        dt = info["dtype"]
        if dt == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif dt == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif dt == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            sys.exit(f"{path}: tensor {name}: dtype {dt} not handled")
        out[name] = a.reshape(info["shape"]).copy()
    return out


def read_model(d):
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        files = sorted(set(json.load(open(index))["weight_map"].values()))
    else:
        files = [f for f in sorted(os.listdir(d)) if f.endswith(".safetensors")]
    tensors = {}
    for f in files:
        tensors.update(read_safetensors(os.path.join(d, f)))
    return tensors


def looks_special(tok):
    """convert_hf_to_gguf.py's does_token_look_special (the parts that apply)."""
    return (tok.startswith("<|") and tok.endswith("|>")) or tok in ("<pad>", "<mask>")


def add_vocab(w, tok_dir, vocab_size):
    tj = json.load(open(os.path.join(tok_dir, "tokenizer.json"), encoding="utf-8"))
    pre = tj.get("pre_tokenizer") or {}
    pts = pre.get("pretokenizers") or []
    if not (len(pts) == 2 and pts[0].get("pattern", {}).get("Regex") == QWEN2_REGEX and pts[1]["type"] == "ByteLevel"):
        sys.exit(f"{tok_dir}/tokenizer.json: not Qwen2's pre-tokenizer")
    vocab = tj["model"]["vocab"]
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    n = max([vocab_size or 0, max(vocab.values()) + 1] + [i + 1 for i in added])
    rev = {i: t for t, i in vocab.items()}
    tokens, types = [], []
    for i in range(n):
        if i in added:
            t = added[i]["content"]
            tokens.append(t)
            special = added[i].get("special", False) or looks_special(t)
            types.append(gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED)
        elif i in rev:
            tokens.append(rev[i])
            types.append(gguf.TokenType.NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    special = gguf.SpecialVocab(tok_dir, load_merges=True, n_vocab=len(tokens))
    special.add_to_gguf(w)


def quantize(a, qtype):
    if qtype == gguf.GGMLQuantizationType.F32:
        return a.astype(np.float32)
    return gguf.quants.quantize(a.astype(np.float32), qtype)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model_dir")
    ap.add_argument("out")
    ap.add_argument("--outtype", default="f32", choices=sorted(OUTTYPES))
    ap.add_argument("--vocab-only", action="store_true", help="only the tokenizer (model_dir holds tokenizer.json)")
    ap.add_argument("--vocab-size", type=int, default=0, help="--vocab-only: pad the token list to this many ids")
    args = ap.parse_args()
    d = args.model_dir
    qtype, ftype = OUTTYPES[args.outtype]

    if args.vocab_only:
        w = gguf.GGUFWriter(args.out, "qwen3")
        w.add_name(os.path.basename(os.path.normpath(d)))
        add_vocab(w, d, args.vocab_size)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        return

    cfg = json.load(open(os.path.join(d, "config.json")))
    arch = ARCHS.get((cfg.get("architectures") or [""])[0])
    if arch is None:
        sys.exit(f"{d}: architecture {cfg.get('architectures')} is not Qwen3 / Qwen3-MoE")
    arch_name = gguf.MODEL_ARCH_NAMES[arch]
    n_layers = cfg["num_hidden_layers"]
    heads = cfg["num_attention_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // heads
    rope = cfg.get("rope_parameters") or {}
    theta = rope.get("rope_theta", cfg.get("rope_theta", 10000.0))

    w = gguf.GGUFWriter(args.out, arch_name)
    w.add_type(gguf.GGUFType.MODEL)
    w.add_name(os.path.basename(os.path.normpath(d)))
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(n_layers)
    if cfg.get("intermediate_size"):
        w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_head_count(heads)
    w.add_head_count_kv(cfg.get("num_key_value_heads", heads))
    w.add_rope_freq_base(theta)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    n_experts = cfg.get("num_experts") or cfg.get("num_local_experts") or 0
    if n_experts:
        w.add_expert_count(n_experts)
        w.add_expert_used_count(cfg["num_experts_per_tok"])
        w.add_expert_feed_forward_length(cfg["moe_intermediate_size"])
    if n_experts and not cfg.get("norm_topk_prob", False):
        # llama.cpp always renormalizes qwen3moe's top-k weights; say when not to (pio reads it)
        w.add_expert_weights_norm(False)
    w.add_file_type(ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_vocab(w, d, cfg["vocab_size"])

    tensors = read_model(d)
    if cfg.get("tie_word_embeddings"):
        tensors.pop("lm_head.weight", None)
    # stack MoE experts: model.layers.N.mlp.experts.E.<proj>.weight -> [E, rows, cols]
    experts = {}
    for name in list(tensors):
        m = re.fullmatch(r"model\.layers\.(\d+)\.mlp\.experts\.(\d+)\.(\w+)\.weight", name)
        if m:
            experts.setdefault((int(m.group(1)), m.group(3)), {})[int(m.group(2))] = tensors.pop(name)
    for (layer, proj), per in experts.items():
        tensors[f"model.layers.{layer}.mlp.experts.{proj}.weight"] = np.stack([per[e] for e in range(len(per))])
    # transformers >= 5's fused experts: gate_up_proj [E, 2*ff, hidden] (gate rows first) and
    # down_proj [E, hidden, ff] (no ".weight") -> the same stacked tensors
    for name in list(tensors):
        m = re.fullmatch(r"model\.layers\.(\d+)\.mlp\.experts\.(gate_up_proj|down_proj)", name)
        if not m:
            continue
        a, pre = tensors.pop(name), f"model.layers.{m.group(1)}.mlp.experts."
        if m.group(2) == "gate_up_proj":
            ff = a.shape[1] // 2
            tensors[pre + "gate_proj.weight"], tensors[pre + "up_proj.weight"] = a[:, :ff].copy(), a[:, ff:].copy()
        else:
            tensors[pre + "down_proj.weight"] = a

    names = gguf.TensorNameMap(arch, n_layers)
    # llama.cpp's qwen3moe has no dense FFN; layers that transformers keeps
    # dense (mlp_only_layers, decoder_sparse_step) get Qwen3's ffn_* names,
    # which pio reads (a layer without ffn_gate_inp is dense)
    dense_names = gguf.TensorNameMap(gguf.MODEL_ARCH.QWEN3, n_layers)
    for name in sorted(tensors):
        a = tensors[name]
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None and arch == gguf.MODEL_ARCH.QWEN3MOE:
            new = dense_names.get_name(name, try_suffixes=(".weight", ".bias"))
        if new is None:
            sys.exit(f"{d}: tensor {name} has no GGUF name")
        t = gguf.GGMLQuantizationType.F32 if a.ndim == 1 else qtype
        if t in (gguf.GGMLQuantizationType.Q8_0, gguf.GGMLQuantizationType.Q4_0) and a.shape[-1] % 32:
            t = gguf.GGMLQuantizationType.F16
        data = quantize(a, t)
        w.add_tensor(new, data, raw_dtype=t)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main()
