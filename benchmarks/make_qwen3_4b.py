#!/usr/bin/env python3
"""make_qwen3_4b.py - a full-size random-weight checkpoint with the real shapes
of Qwen3-4B-Instruct-2507, as a Hugging Face directory and as GGUF files.

Outputs under WORK (default benchmarks/work/, git-ignored):
  WORK/qwen3-4b/                  config.json, generation_config.json,
                                  model-0000k-of-0000n.safetensors (bf16, <= 4 GB
                                  shards as the real checkpoint) + index json,
                                  tokenizer.json / tokenizer_config.json copied
                                  from ../shared/data/qwen3-tokenizer when present
  WORK/qwen3-4b-bf16.gguf         the same values as GGUF BF16 (norms F32)
  WORK/qwen3-4b-q8_0.gguf         every 2-D weight Q8_0 (a "pure" file: also token_embd)
  WORK/qwen3-4b-q4_0.gguf         every 2-D weight Q4_0 (pure; llama-quantize would
                                  put token_embd in Q6_K, which we avoid so that
                                  each file exercises one weight format)

Weights: normal(0, 0.02), rounded to bf16 (round to nearest even), one
generator per tensor seeded with (seed, crc32(name)) so a tensor does not
depend on the order of the others; norm weights are 1.0. The safetensors
files are the source of truth: the GGUF files are made from them (mmap'd),
so the bf16 GGUF holds exactly the same bits and Q8_0/Q4_0 quantize exactly
those values with gguf.quants (bit-identical to ggml's reference
quantize_row_q8_0 / quantize_row_q4_0).

Memory: tensors are generated and quantized in row chunks of at most
CHUNK_ELEMS values, so peak RSS stays around 1 GB apart from the page cache.

Usage:
  python3 benchmarks/make_qwen3_4b.py [--work DIR] [--formats st,bf16,q8_0,q4_0]
                                      [--layers N] [--seed N] [--force]
--layers N makes a shallow model with the same layer shapes (for smoke tests).
"""
import argparse
import json
import os
import shutil
import struct
import sys
import time
import zlib
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
CHUNK_ELEMS = 1 << 25          # 32 Mi values (128 MiB as f32) per generation/quantization step
SHARD_BYTES = 4_000_000_000    # HF's max_shard_size="4GB": 8.04 GB -> 3 shards, as published

# Qwen3-4B-Instruct-2507 config.json (MODELS.md §2-3)
CONFIG = {
    "architectures": ["Qwen3ForCausalLM"],
    "attention_bias": False,
    "attention_dropout": 0.0,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "head_dim": 128,
    "hidden_act": "silu",
    "hidden_size": 2560,
    "initializer_range": 0.02,
    "intermediate_size": 9728,
    "max_position_embeddings": 262144,
    "max_window_layers": 36,
    "model_type": "qwen3",
    "num_attention_heads": 32,
    "num_hidden_layers": 36,
    "num_key_value_heads": 8,
    "rms_norm_eps": 1e-06,
    "rope_scaling": None,
    "rope_theta": 5000000,
    "sliding_window": None,
    "tie_word_embeddings": True,
    "torch_dtype": "bfloat16",
    "transformers_version": "4.51.0",
    "use_cache": True,
    "use_sliding_window": False,
    "vocab_size": 151936,
}
GENERATION_CONFIG = {
    "bos_token_id": 151643,
    "do_sample": True,
    "eos_token_id": [151645, 151643],
    "pad_token_id": 151643,
    "temperature": 0.7,
    "top_k": 20,
    "top_p": 0.8,
    "transformers_version": "4.51.0",
}


def tensor_specs(cfg):
    """[(hf_name, gguf_name, shape, is_norm)] in the checkpoint's order."""
    H, F, V = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"]
    D = cfg["head_dim"]
    q, kv = cfg["num_attention_heads"] * D, cfg["num_key_value_heads"] * D
    specs = [("model.embed_tokens.weight", "token_embd.weight", (V, H), False)]
    for l in range(cfg["num_hidden_layers"]):
        p, g = f"model.layers.{l}.", f"blk.{l}."
        specs += [
            (p + "input_layernorm.weight", g + "attn_norm.weight", (H,), True),
            (p + "self_attn.q_proj.weight", g + "attn_q.weight", (q, H), False),
            (p + "self_attn.k_proj.weight", g + "attn_k.weight", (kv, H), False),
            (p + "self_attn.v_proj.weight", g + "attn_v.weight", (kv, H), False),
            (p + "self_attn.o_proj.weight", g + "attn_output.weight", (H, q), False),
            (p + "self_attn.q_norm.weight", g + "attn_q_norm.weight", (D,), True),
            (p + "self_attn.k_norm.weight", g + "attn_k_norm.weight", (D,), True),
            (p + "post_attention_layernorm.weight", g + "ffn_norm.weight", (H,), True),
            (p + "mlp.gate_proj.weight", g + "ffn_gate.weight", (F, H), False),
            (p + "mlp.up_proj.weight", g + "ffn_up.weight", (F, H), False),
            (p + "mlp.down_proj.weight", g + "ffn_down.weight", (H, F), False),
        ]
    specs.append(("model.norm.weight", "output_norm.weight", (H,), True))
    return specs


def f32_to_bf16(x):
    """Round-to-nearest-even f32 -> bf16 bits (uint16), as torch and ggml do (no NaNs here)."""
    u = x.view(np.uint32)
    return ((u + (np.uint32(0x7FFF) + ((u >> 16) & np.uint32(1)))) >> 16).astype(np.uint16)


def bf16_to_f32(b):
    return (b.astype(np.uint32) << 16).view(np.float32)


def row_chunks(shape):
    """Row ranges of a 2-D (or 1-D) tensor of at most CHUNK_ELEMS values each."""
    rows = shape[0] if len(shape) == 2 else 1
    cols = shape[-1]
    step = max(1, CHUNK_ELEMS // cols)
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def generate_bf16(name, shape, is_norm, seed, out):
    """Write the tensor's bf16 bytes to the file object `out`, chunk by chunk."""
    if is_norm:
        out.write(np.full(shape, 0x3F80, dtype=np.uint16).tobytes())   # bf16 1.0
        return
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    for r0, r1 in row_chunks(shape):
        x = rng.standard_normal(size=(r1 - r0) * shape[1], dtype=np.float32)
        x *= np.float32(0.02)
        out.write(f32_to_bf16(x).tobytes())


def write_safetensors(hf_dir, cfg, seed, log):
    specs = tensor_specs(cfg)
    # shard like HF save_pretrained: start a new file when the next tensor would pass the limit
    shards, cur, cur_bytes = [], [], 0
    for s in specs:
        nb = int(np.prod(s[2])) * 2
        if cur and cur_bytes + nb > SHARD_BYTES:
            shards.append(cur)
            cur, cur_bytes = [], 0
        cur.append(s)
        cur_bytes += nb
    shards.append(cur)
    n = len(shards)
    weight_map, total = {}, 0
    for k, shard in enumerate(shards, 1):
        fname = f"model-{k:05d}-of-{n:05d}.safetensors"
        header, off = {"__metadata__": {"format": "pt"}}, 0
        for hf, _, shape, _ in shard:
            nb = int(np.prod(shape)) * 2
            header[hf] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [off, off + nb]}
            off += nb
            weight_map[hf] = fname
        total += off
        hj = json.dumps(header, separators=(",", ":")).encode()
        hj += b" " * ((8 - len(hj) % 8) % 8)
        t0 = time.time()
        tmp = hf_dir / (fname + ".part")
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(hj)))
            f.write(hj)
            for hf, _, shape, is_norm in shard:
                generate_bf16(hf, shape, is_norm, seed, f)
        tmp.rename(hf_dir / fname)
        log(f"  {fname}: {len(shard)} tensors, {off / 1e9:.2f} GB in {time.time() - t0:.0f} s")
    with open(hf_dir / "model.safetensors.index.json", "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
        f.write("\n")


class SafetensorsReader:
    """The bf16 tensors of an HF directory, mmap'd (np.memmap), by HF name."""

    def __init__(self, hf_dir):
        index = json.loads((hf_dir / "model.safetensors.index.json").read_text())
        self.where = {}
        for fname in sorted(set(index["weight_map"].values())):
            path = hf_dir / fname
            with open(path, "rb") as f:
                (hlen,) = struct.unpack("<Q", f.read(8))
                header = json.loads(f.read(hlen))
            for name, info in header.items():
                if name == "__metadata__":
                    continue
                if info["dtype"] != "BF16":
                    raise SystemExit(f"{path}: {name} is {info['dtype']}, expected BF16")
                self.where[name] = (path, 8 + hlen + info["data_offsets"][0], tuple(info["shape"]))

    def bf16(self, name):
        path, off, shape = self.where[name]
        return np.memmap(path, dtype=np.uint16, mode="r", offset=off, shape=shape)


def load_vocab(tok_dir, n_vocab):
    """tokens, token types, merges as convert_hf_to_gguf writes them for Qwen
    (gpt2 model, "qwen2" pre-tokenizer); None when there is no tokenizer.json."""
    import gguf
    path = tok_dir / "tokenizer.json" if tok_dir else None
    if not path or not path.exists():
        return None
    tj = json.loads(path.read_text())
    reverse = {i: t for t, i in tj["model"]["vocab"].items()}
    added = {a["id"]: a for a in tj.get("added_tokens", [])}
    for i, a in added.items():
        reverse[i] = a["content"]
    tokens, types = [], []
    for i in range(n_vocab):
        if i not in reverse:
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        elif i in added:
            t = reverse[i]
            looks_special = t.startswith("<|") and t.endswith("|>")
            types.append(gguf.TokenType.CONTROL if added[i].get("special") or looks_special
                         else gguf.TokenType.USER_DEFINED)
            tokens.append(t)
        else:
            tokens.append(reverse[i])
            types.append(gguf.TokenType.NORMAL)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tj["model"].get("merges", [])]
    return tokens, types, merges


def synthetic_vocab(n_vocab):
    """A placeholder vocabulary (no merges) for when the Qwen3 tokenizer is absent:
    llama.cpp needs some tokenizer.ggml.* to load; speed does not depend on it."""
    import gguf
    tokens = [f"[TOK{i}]" for i in range(n_vocab)]
    types = [gguf.TokenType.NORMAL] * n_vocab
    return tokens, types, []


def write_gguf(path, cfg, reader, qname, tok_dir, log):
    import gguf
    from gguf import GGMLQuantizationType as Q
    qtype = {"bf16": Q.BF16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[qname]
    ftype = {"bf16": gguf.LlamaFileType.MOSTLY_BF16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0,
             "q4_0": gguf.LlamaFileType.MOSTLY_Q4_0}[qname]
    arch = "qwen3"
    w = gguf.GGUFWriter(str(path) + ".part", arch)
    w.add_name(f"Qwen3-4B-Instruct-2507 shapes, random weights ({qname})")
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
    w.add_file_type(ftype)
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)

    vocab = load_vocab(tok_dir, cfg["vocab_size"])
    w.add_tokenizer_model("gpt2")
    if vocab is None:
        log("  no tokenizer.json: writing a placeholder vocabulary")
        tokens, types, merges = synthetic_vocab(cfg["vocab_size"])
        w.add_tokenizer_pre("default")
    else:
        tokens, types, merges = vocab
        w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    if merges:
        w.add_token_merges(merges)
    w.add_bos_token_id(GENERATION_CONFIG["bos_token_id"])
    w.add_eos_token_id(CONFIG["eos_token_id"])
    w.add_pad_token_id(GENERATION_CONFIG["pad_token_id"])
    w.add_add_bos_token(False)
    tc = tok_dir / "tokenizer_config.json" if tok_dir else None
    if tc and tc.exists():
        tpl = json.loads(tc.read_text()).get("chat_template")
        if tpl:
            w.add_chat_template(tpl)

    specs = tensor_specs(cfg)
    plan = []
    for hf, gg, shape, is_norm in specs:
        if is_norm:
            t = Q.F32                       # convert_hf_to_gguf keeps 1-D tensors in F32
        else:
            t = qtype
        bs, ts = gguf.GGML_QUANT_SIZES[t]
        nbytes = int(np.prod(shape)) // bs * ts
        # element shape (rows, cols); the writer stores it reversed (ne0 = cols)
        w.add_tensor_info(gg, shape, np.dtype(np.float32), nbytes, raw_dtype=t)
        plan.append((hf, gg, shape, t, nbytes))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    t_quant = 0.0
    for hf, gg, shape, t, nbytes in plan:
        src = reader.bf16(hf)
        if t == Q.F32:
            data = bf16_to_f32(np.asarray(src)).reshape(shape)
        elif t == Q.BF16:
            data = np.asarray(src).view(np.uint8).reshape(-1)
        else:
            parts = []
            t0 = time.time()
            for r0, r1 in row_chunks(shape):
                parts.append(gguf.quants.quantize(bf16_to_f32(np.asarray(src[r0:r1])), t))
            t_quant += time.time() - t0
            data = np.concatenate(parts, axis=0).reshape(-1)
        assert data.nbytes == nbytes, (gg, data.nbytes, nbytes)
        w.write_tensor_data(data)
        del data
    w.close()
    os.replace(str(path) + ".part", path)
    return t_quant


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(REPO / "benchmarks" / "work"), help="output directory")
    ap.add_argument("--name", default="qwen3-4b", help="base name of the outputs")
    ap.add_argument("--formats", default="st,bf16,q8_0,q4_0",
                    help="comma list of st (safetensors), bf16, q8_0, q4_0")
    ap.add_argument("--layers", type=int, default=None, help="number of layers (default 36, the real model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tokenizer-dir", default=None,
                    help="directory with the Qwen3 tokenizer.json (default: ../shared/data/qwen3-tokenizer "
                         "or $PIO_SHARED/data/qwen3-tokenizer)")
    ap.add_argument("--force", action="store_true", help="rewrite outputs that exist")
    args = ap.parse_args()

    def log(msg):
        print(msg, flush=True)

    cfg = dict(CONFIG)
    if args.layers:
        cfg["num_hidden_layers"] = args.layers
        cfg["max_window_layers"] = args.layers
    work = Path(args.work)
    hf_dir = work / args.name
    hf_dir.mkdir(parents=True, exist_ok=True)
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]

    tok_src = None
    cands = [args.tokenizer_dir] if args.tokenizer_dir else [
        os.path.join(os.environ["PIO_SHARED"], "data", "qwen3-tokenizer") if os.environ.get("PIO_SHARED") else None,
        str(REPO.parent / "shared" / "data" / "qwen3-tokenizer")]
    for c in cands:
        if c and (Path(c) / "tokenizer.json").exists():
            tok_src = Path(c)
            break

    # the HF directory (small files always rewritten; weights only when missing or --force)
    (hf_dir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    (hf_dir / "generation_config.json").write_text(json.dumps(GENERATION_CONFIG, indent=2) + "\n")
    if tok_src:
        for f in ("tokenizer.json", "tokenizer_config.json"):
            if (tok_src / f).exists():
                shutil.copyfile(tok_src / f, hf_dir / f)
        log(f"tokenizer: copied from {tok_src}")
    else:
        log("tokenizer: Qwen3 tokenizer not found; the HF directory has none and the GGUF a placeholder")

    index = hf_dir / "model.safetensors.index.json"
    if "st" in formats or not index.exists():
        if index.exists() and not args.force:
            log(f"safetensors: {hf_dir} exists (use --force to rewrite)")
        else:
            for old in hf_dir.glob("model-*.safetensors"):
                old.unlink()
            t0 = time.time()
            log(f"safetensors: writing {hf_dir} ({cfg['num_hidden_layers']} layers, seed {args.seed})")
            write_safetensors(hf_dir, cfg, args.seed, log)
            log(f"safetensors: done in {time.time() - t0:.0f} s")

    reader = SafetensorsReader(hf_dir)
    for q in formats:
        if q == "st":
            continue
        if q not in ("bf16", "q8_0", "q4_0"):
            raise SystemExit(f"unknown format {q!r}")
        out = work / f"{args.name}-{q}.gguf"
        if out.exists() and not args.force:
            log(f"gguf {q}: {out} exists (use --force to rewrite)")
            continue
        t0 = time.time()
        log(f"gguf {q}: writing {out}")
        tq = write_gguf(out, cfg, reader, q, hf_dir if tok_src else None, log)
        log(f"gguf {q}: {out.stat().st_size / 1e9:.2f} GB in {time.time() - t0:.0f} s "
            f"(quantization {tq:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
