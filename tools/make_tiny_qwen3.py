#!/usr/bin/env python3
"""Build tiny random Qwen3 (dense) checkpoints plus golden reference outputs.

The checkpoints are made with Hugging Face transformers' own classes
(Qwen3Config / Qwen3ForCausalLM, save_pretrained with safetensors), so the
engine's Qwen3 plugin, safetensors loader and tokenizer can be tested against
the reference implementation without downloading a real model.

Usage:
    python3 tools/make_tiny_qwen3.py --out tests/fixtures/qwen3

Everything is seeded and CPU-only, so re-running gives the same files (the
logits may differ in the last printed digit across torch versions/CPUs).
See tools/README.md for the layout of the output and of golden.json.
"""

import argparse
import json
import os
import shutil
import sys

import torch
import transformers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers
from transformers import AutoTokenizer, Qwen3Config, Qwen3ForCausalLM

# Qwen2/Qwen3 pre-tokenizer regex (digits are split one by one).
QWEN_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
              r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]

# Number of BPE tokens to train (256 byte tokens + merges); the 3 specials
# come after them, and the model's vocab_size is rounded up to a multiple of
# 64, which leaves padding rows that must never be sampled.
BPE_VOCAB = 420

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)

# Fixed English training text for the tokenizer (written for this tool).
TRAIN_TEXT = """\
The quick brown fox jumps over the lazy dog. The dog does not mind; it is
asleep in the warm sun, and the fox is already far away in the green hills.
Once upon a time there was a small robot who loved to read books. Every
morning the robot walked to the library, opened a new book and read it from
the first page to the last. It read about the sea and the stars, about old
kings and new machines, about numbers, words and the people who use them.
"What is the meaning of this word?" the robot asked the librarian one day.
"Words mean what the people who speak them want them to mean," she said.
"That is not a very good answer," said the robot, "but it is an honest one."

A function returns a value. If the value is None, the caller should check the
error and report it. The list contains 3 items, the dictionary maps 12 keys to
their values, and the string has 42 characters. Return the number of items in
the container. Return True if the object is an instance of the given class.
Open the file and return a stream; raise an error if the file cannot be opened.
Read at most n characters from the stream and return them as a single string.
Write the given string to the stream and return the number of characters
written. Close the file; a closed file cannot be read or written any more.

In 2024 the weather was warm in the summer and cold in the winter. People went
to the sea in July and to the mountains in December. The children played in
the garden while their parents talked about the news, the prices of bread and
the new train that would soon connect the two cities. It's a long way, they'll
say, but we've seen longer ones, and I'm sure you'd agree that the journey is
worth it when the view from the top of the hill is so beautiful.

The model reads a sequence of tokens and predicts the next one. Each token is
turned into a vector, the vectors pass through several layers of attention and
feed forward networks, and the last layer gives a score for every word in the
vocabulary. The word with the highest score is chosen, added to the sequence,
and the process starts again until the model writes the end of the text.
User: Hello! Can you help me with a question about the weather today?
Assistant: Of course. Today it is sunny and warm, with a light wind from the
west. Tomorrow there may be some rain in the morning, so take an umbrella.
"""

PROMPT_TEXT = "The robot read 3 books in the library today."
SECOND_MESSAGES = [{"role": "user", "content": "What is the weather today?"}]

# name -> (Qwen3Config kwargs, weights dtype, save options)
CONFIGS = {
    "tied_gqa2_f32": dict(
        cfg=dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=2,
                 head_dim=24, num_hidden_layers=2, intermediate_size=96,
                 max_position_embeddings=128, rope_theta=1e6,
                 tie_word_embeddings=True),
        dtype=torch.float32, shard=None, config_style="v5", seed=1001),
    "untied_gqa4_bf16_sharded": dict(
        cfg=dict(hidden_size=96, num_attention_heads=8, num_key_value_heads=2,
                 head_dim=16, num_hidden_layers=3, intermediate_size=160,
                 max_position_embeddings=256, rope_theta=5e6,
                 tie_word_embeddings=False),
        dtype=torch.bfloat16, shard="200KB", config_style="legacy", seed=1002),
    "mha_f32": dict(
        cfg=dict(hidden_size=64, num_attention_heads=4, num_key_value_heads=4,
                 head_dim=32, num_hidden_layers=2, intermediate_size=96,
                 max_position_embeddings=64, rope_theta=1e4,
                 tie_word_embeddings=False),
        dtype=torch.float32, shard=None, config_style="v5", seed=1003),
}

N_GREEDY = 20
WEIGHT_STD = 0.2        # std of every linear / embedding weight
NORM_STD = 0.1          # RMSNorm weights: 1 + N(0, NORM_STD)
QK_NORM_STD = 0.3       # q_norm / k_norm weights: 1 + N(0, QK_NORM_STD)
PAD_ROW_SCALE = 1.5     # output rows of padding ids are scaled up (see below)


def build_tokenizer():
    """Train the tiny Qwen-style byte-level BPE tokenizer; returns a Tokenizer."""
    tok = Tokenizer(models.BPE(dropout=None, unk_token=None,
                               continuing_subword_prefix="", end_of_word_suffix="",
                               fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, min_frequency=2,
                                  show_progress=False, special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([TRAIN_TEXT], trainer=trainer)
    if tok.get_vocab_size() != BPE_VOCAB:
        sys.exit(f"tokenizer: trained {tok.get_vocab_size()} tokens, wanted {BPE_VOCAB}")
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False,
                                       lstrip=False, rstrip=False, single_word=False)
                            for s in SPECIALS])
    return tok


def save_tokenizer(tok, out_dir):
    """Write tokenizer.json and a Qwen-style tokenizer_config.json."""
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    added = {}
    for s in SPECIALS:
        added[str(tok.token_to_id(s))] = {
            "content": s, "lstrip": False, "normalized": False,
            "rstrip": False, "single_word": False, "special": True}
    tcfg = {
        "add_bos_token": False,
        "add_prefix_space": False,
        "added_tokens_decoder": added,
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": "<|im_end|>",
        "errors": "replace",
        "model_max_length": 131072,
        "pad_token": "<|endoftext|>",
        "split_special_tokens": False,
        "tokenizer_class": "Qwen2Tokenizer",
        "unk_token": None,
    }
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(tcfg, f, indent=2)
        f.write("\n")


def reinit_weights(model, seed, n_real):
    """Re-initialise every parameter so logits are O(1-10) and norms matter.

    Linear/embedding weights ~ N(0, WEIGHT_STD); RMSNorm weights ~ 1 + N(0,
    NORM_STD); q_norm/k_norm ~ 1 + N(0, QK_NORM_STD) (a wider spread makes a
    wrong norm/RoPE order visible).  Rows >= n_real of the output matrix (the
    padding ids) are scaled by PAD_ROW_SCALE so that an engine that forgets to
    mask them would often pick one.
    """
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.named_parameters()):
            if name.endswith(("q_norm.weight", "k_norm.weight")):
                v = 1.0 + QK_NORM_STD * torch.randn(p.shape, generator=gen)
            elif name.endswith("norm.weight"):
                v = 1.0 + NORM_STD * torch.randn(p.shape, generator=gen)
            else:
                v = WEIGHT_STD * torch.randn(p.shape, generator=gen)
            p.copy_(v.to(p.dtype))
        out = model.get_output_embeddings().weight
        out[n_real:] *= PAD_ROW_SCALE


@torch.no_grad()
def forward_logits(model, ids):
    """Full forward of one sequence; returns float32 logits [len(ids), vocab]."""
    x = torch.tensor([ids], dtype=torch.long)
    return model(input_ids=x, use_cache=False).logits[0].float()


@torch.no_grad()
def greedy(model, ids, n, n_real):
    """Greedy continuation by re-running the full forward each step.

    argmax is taken over the real tokens only (ids < n_real); eos is ignored.
    Also returns how many steps would have picked a padding id unmasked.
    """
    seq = list(ids)
    out, pad_hits = [], 0
    for _ in range(n):
        last = forward_logits(model, seq)[-1]
        if int(torch.argmax(last)) >= n_real:
            pad_hits += 1
        nxt = int(torch.argmax(last[:n_real]))
        out.append(nxt)
        seq.append(nxt)
    return out, pad_hits


def fmt(x):
    """A float32 value as a JSON number with 7 significant digits."""
    return float(f"{float(x):.7g}")


def to_json(obj, indent=0):
    """JSON text with dicts indented and lists of numbers kept on one line."""
    pad = " " * indent
    if isinstance(obj, dict):
        items = [f'{pad}  {json.dumps(k)}: {to_json(v, indent + 2).lstrip()}'
                 for k, v in obj.items()]
        return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, list) and obj and isinstance(obj[0], (list, dict)):
        items = [to_json(v, indent + 2) for v in obj]
        return pad + "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return pad + json.dumps(obj, separators=(",", ":"))


def patch_config_json(path, style, weights_dtype, theta):
    """Rewrite config.json: 'v5' keeps transformers 5 keys and adds torch_dtype;
    'legacy' uses the transformers 4 layout (rope_theta, rope_scaling,
    torch_dtype) as found in the real Qwen3 checkpoints."""
    with open(path) as f:
        cfg = json.load(f)
    dt = {torch.float32: "float32", torch.bfloat16: "bfloat16"}[weights_dtype]
    if style == "legacy":
        cfg.pop("rope_parameters", None)
        cfg.pop("dtype", None)
        cfg["rope_theta"] = theta
        cfg["rope_scaling"] = None
    else:
        cfg["dtype"] = dt
    cfg["torch_dtype"] = dt
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def make_one(name, spec, tok, hf_tok, out_root):
    """Build, save and record golden outputs for one configuration."""
    out_dir = os.path.join(out_root, name)
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)

    n_real = tok.get_vocab_size()
    vocab = (n_real + 63) // 64 * 64
    eot, ims, ime = (tok.token_to_id(s) for s in SPECIALS)
    kw = dict(spec["cfg"])
    theta = kw.pop("rope_theta")
    cfg = Qwen3Config(vocab_size=vocab, rms_norm_eps=1e-6, hidden_act="silu",
                      rope_parameters={"rope_type": "default", "rope_theta": theta},
                      bos_token_id=eot, eos_token_id=ime, pad_token_id=eot,
                      attention_bias=False, use_sliding_window=False,
                      dtype=spec["dtype"], **kw)
    cfg.architectures = ["Qwen3ForCausalLM"]
    torch.manual_seed(spec["seed"])
    model = Qwen3ForCausalLM(cfg).to(torch.float32)
    reinit_weights(model, spec["seed"], n_real)
    model.to(spec["dtype"])
    model.config.dtype = spec["dtype"]
    if spec["shard"]:
        model.save_pretrained(out_dir, safe_serialization=True, max_shard_size=spec["shard"])
    else:
        model.save_pretrained(out_dir, safe_serialization=True)
    patch_config_json(os.path.join(out_dir, "config.json"), spec["config_style"],
                      spec["dtype"], theta)
    gcfg = {"bos_token_id": None, "do_sample": True, "eos_token_id": [ime, eot],
            "pad_token_id": eot, "temperature": 0.7, "top_k": 20, "top_p": 0.8,
            "transformers_version": transformers.__version__}
    with open(os.path.join(out_dir, "generation_config.json"), "w") as f:
        json.dump(gcfg, f, indent=2)
        f.write("\n")
    save_tokenizer(tok, out_dir)

    # Reference: the weights as stored (bf16 values if bf16) upcast to float32
    # in a fresh float32 model (model.float() on the saved model would also
    # upcast the RoPE inv_freq buffer after it was rounded to bf16).
    stored = {k: v.float() for k, v in model.state_dict().items()}
    cfg.dtype = torch.float32
    model = Qwen3ForCausalLM._from_config(cfg, attn_implementation="eager")
    model.load_state_dict(stored)
    model = model.float().eval()

    prompt_ids = tok.encode(PROMPT_TEXT).ids
    assert prompt_ids == hf_tok(PROMPT_TEXT)["input_ids"], "tokenizers disagree"
    chat_text = hf_tok.apply_chat_template(SECOND_MESSAGES, tokenize=False,
                                           add_generation_prompt=True)
    second_ids = tok.encode(chat_text).ids
    logits = forward_logits(model, prompt_ids)
    greedy_ids, pad_hits = greedy(model, prompt_ids, N_GREEDY, n_real)
    second_last = forward_logits(model, second_ids)[-1]

    # Batch check: both prompts right-padded in one batch; the last real
    # position of each row must match the single-sequence result.
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
        "prompt_text": PROMPT_TEXT,
        "prompt_ids": prompt_ids,
        "vocab_size": vocab,
        "n_real_tokens": n_real,
        "max_position_embeddings": kw["max_position_embeddings"],
        "weights_dtype": wdt,
        "compute_dtype": "float32",
        "note": ("reference logits are computed with the stored weights upcast to "
                 "float32 (model.float()): " + wdt + " weights, float32 compute; "
                 "eager attention, no cache. greedy_ids: argmax over ids < "
                 "n_real_tokens (padding rows masked), eos ignored. Output rows of "
                 "padding ids are scaled by %g so an unmasked argmax tends to pick "
                 "them." % PAD_ROW_SCALE),
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
            "messages": SECOND_MESSAGES,
            "prompt_text": chat_text,
            "prompt_ids": second_ids,
            "last_logits": [fmt(v) for v in second_last.tolist()],
        },
        "logits": [[fmt(v) for v in row] for row in logits.tolist()],
    }
    with open(os.path.join(out_dir, "golden.json"), "w") as f:
        f.write(to_json(golden))
        f.write("\n")
    return out_dir, logits, greedy_ids, pad_hits, max(d1, d2)


def verify(out_dir):
    """Reload the saved checkpoint with from_pretrained and check it
    reproduces golden.json; returns (max |logit diff|, max |logit|)."""
    with open(os.path.join(out_dir, "golden.json")) as f:
        g = json.load(f)
    m = Qwen3ForCausalLM.from_pretrained(out_dir, dtype=torch.float32,
                                         attn_implementation="eager").eval()
    ref = torch.tensor(g["logits"])
    got = forward_logits(m, g["prompt_ids"])
    diff = (got - ref).abs().max().item()
    scale = ref.abs().max().item()
    if diff > 1e-5 * max(1.0, scale):
        sys.exit(f"{out_dir}: reloaded logits differ by {diff}")
    got2 = forward_logits(m, g["golden_second_prompt"]["prompt_ids"])[-1]
    d2 = (got2 - torch.tensor(g["golden_second_prompt"]["last_logits"])).abs().max().item()
    if d2 > 1e-5 * max(1.0, scale):
        sys.exit(f"{out_dir}: reloaded second-prompt logits differ by {d2}")
    gi, _ = greedy(m, g["prompt_ids"], N_GREEDY, g["n_real_tokens"])
    if gi != g["greedy_ids"]:
        sys.exit(f"{out_dir}: reloaded greedy ids differ")
    hf_tok = AutoTokenizer.from_pretrained(out_dir)
    if hf_tok(g["prompt_text"])["input_ids"] != g["prompt_ids"]:
        sys.exit(f"{out_dir}: reloaded tokenizer gives other ids")
    return diff, scale


def dir_size(path):
    return sum(os.path.getsize(os.path.join(d, f))
               for d, _, fs in os.walk(path) for f in fs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="tests/fixtures/qwen3")
    args = ap.parse_args()
    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    os.makedirs(args.out, exist_ok=True)

    tok = build_tokenizer()
    # Load through transformers too (chat template, cross-check of ids).
    tmp = os.path.join(args.out, ".tok_tmp")
    os.makedirs(tmp, exist_ok=True)
    save_tokenizer(tok, tmp)
    hf_tok = AutoTokenizer.from_pretrained(tmp)
    shutil.rmtree(tmp)

    print(f"torch {torch.__version__}, transformers {transformers.__version__}")
    print(f"tokenizer: {tok.get_vocab_size()} tokens "
          f"({BPE_VOCAB} BPE + {len(SPECIALS)} specials)")
    for name, spec in CONFIGS.items():
        out_dir, logits, gids, pad_hits, bdiff = make_one(name, spec, tok, hf_tok, args.out)
        diff, scale = verify(out_dir)
        files = sorted(os.listdir(out_dir))
        print(f"\n== {name}: {dir_size(out_dir) / 1024:.0f} KiB, files: {', '.join(files)}")
        print(f"   prompt {len(logits)} tokens, max|logit| {scale:.3f}, "
              f"logit std {logits.std().item():.3f}, batch-check diff {bdiff:.2e}, "
              f"reload diff {diff:.2e}")
        print(f"   greedy ids {gids} (unmasked argmax hit padding {pad_hits}x)")
        print(f"   greedy text {tok.decode(gids)!r}")
        if len(set(gids)) < 5:
            sys.exit(f"{name}: greedy continuation is degenerate")
    print(f"\ntotal {dir_size(args.out) / 1024:.0f} KiB in {args.out}")


if __name__ == "__main__":
    main()
