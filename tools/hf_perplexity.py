#!/usr/bin/env python3
"""Reference perplexity of a Hugging Face causal LM on a text file.

Definition (the one Inference-PIO's own perplexity must reproduce):
  * the whole file is tokenized once with the model dir's tokenizer
    (tokenizer.json), add_special_tokens=False;
  * the ids are cut into non-overlapping windows of --ctx tokens (stride = ctx;
    the last window may be shorter, a window of 1 token is skipped);
  * for each window, loss = model(input_ids=window, labels=window).loss, the
    mean NLL of the window's len-1 next-token predictions (the first token of
    each window is context only);
  * total NLL = sum(loss * (len - 1)), n = sum(len - 1),
    PPL = exp(total NLL / n).

--dtype f32 loads the weights and upcasts them to float32 (the computation is
f32); --dtype bf16 keeps them (and the computation) in bfloat16.
--ctx defaults to the model's training context: "ctx" in train_info.json in
the model dir when present (models/demo has it), else max_position_embeddings.

Prints one JSON line: {"nll_mean":..., "ppl":..., "n_tokens":..., "ctx":...}
(n_tokens = number of predicted tokens, n above).

Requirements: pip install torch transformers tokenizers safetensors
Example: python3 tools/hf_perplexity.py models/demo models/demo/heldout.txt --dtype f32
"""

import argparse
import json
import math
import os
import sys


def default_ctx(model_dir):
    """Training context of model_dir: train_info.json "ctx", else
    config.json max_position_embeddings."""
    info = os.path.join(model_dir, "train_info.json")
    if os.path.exists(info):
        with open(info) as f:
            ctx = json.load(f).get("ctx")
        if ctx:
            return int(ctx)
    with open(os.path.join(model_dir, "config.json")) as f:
        return int(json.load(f)["max_position_embeddings"])


def perplexity(model, ids, ctx):
    """Return (nll_mean, n_predicted) of ids under model with non-overlapping
    windows of ctx tokens (see the module docstring)."""
    import torch
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(ids), ctx):
            window = ids[start:start + ctx]
            if len(window) < 2:
                continue
            x = torch.tensor([window], dtype=torch.long)
            loss = model(input_ids=x, labels=x).loss.float().item()
            total += loss * (len(window) - 1)
            count += len(window) - 1
    if count == 0:
        raise ValueError("text too short: no token to predict")
    return total / count, count


def main():
    ap = argparse.ArgumentParser(description="transformers perplexity, non-overlapping windows")
    ap.add_argument("model_dir")
    ap.add_argument("text_file")
    ap.add_argument("--ctx", type=int, default=None,
                    help="window length in tokens (default: the model's training context)")
    ap.add_argument("--dtype", choices=["f32", "bf16"], default="f32")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    ctx = args.ctx or default_ctx(args.model_dir)
    if ctx < 2:
        sys.exit("--ctx must be at least 2")

    tok = AutoTokenizer.from_pretrained(args.model_dir)
    tok.model_max_length = sys.maxsize  # whole-file encode; windows are cut below
    with open(args.text_file, encoding="utf-8") as f:
        text = f.read()
    ids = tok(text, add_special_tokens=False).input_ids

    dtype = torch.float32 if args.dtype == "f32" else torch.bfloat16
    model = AutoModelForCausalLM.from_pretrained(args.model_dir, dtype=dtype)
    model.eval()

    nll, n = perplexity(model, ids, ctx)
    print(json.dumps({"nll_mean": nll, "ppl": math.exp(nll), "n_tokens": n, "ctx": ctx,
                      "dtype": args.dtype, "n_input_tokens": len(ids)}))


if __name__ == "__main__":
    main()
