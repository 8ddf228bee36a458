#!/usr/bin/env python3
"""llamacpp_bench.py - llama-bench's pp/tg measurement through the
llama-cpp-python bindings (the pip wheel ships no llama-bench binary).

Mirrors tools/llama-bench/llama-bench.cpp of the llama.cpp the wheel was
built from: the model is loaded with mmap, the context has n_ctx = depth + p
+ n, n_batch 2048, n_ubatch 512, f16 KV cache and flash attention "auto"
(llama-bench's defaults); prompts are random token ids (the first one BOS
when the vocab adds one) decoded with llama_batch_get_one in chunks of
n_batch; generation decodes one random token at a time; a warmup runs one
full prompt and one generated token first. With a depth, the depth tokens
are decoded once and, instead of llama-bench's state save/restore, the
positions >= depth are removed after each repetition (llama_memory_seq_rm)
so every repetition starts from the same cache.

Prints one JSON object in the shape of `pio bench --json` (tokens/s median,
mean, sd, min, max; peak RSS from getrusage and VmHWM; the RSS of the
Python process before the model was loaded, so it can be subtracted).

  python benchmarks/llamacpp_bench.py -m model.gguf -t 2 -p 512 -n 128 [-d 0] [-r 3]
"""
import argparse
import ctypes
import json
import random
import resource
import statistics
import sys
import time


def vm_status(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def stats(seconds, tokens):
    tps = sorted(tokens / s for s in seconds)
    return {
        "tokens": tokens,
        "seconds": seconds,
        "tokens_per_s": statistics.median(tps),
        "tokens_per_s_mean": statistics.fmean(tps),
        "tokens_per_s_sd": statistics.stdev(tps) if len(tps) > 1 else 0.0,
        "tokens_per_s_min": tps[0],
        "tokens_per_s_max": tps[-1],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", required=True)
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("-d", "--depth", type=int, default=0)
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("-b", "--batch", type=int, default=2048)
    ap.add_argument("-ub", "--ubatch", type=int, default=512)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    rss_before = vm_status("VmRSS")
    import llama_cpp as L

    if not args.verbose:
        @ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
        def quiet(level, text, user):
            pass
        L.llama_log_set(quiet, None)
        main.quiet = quiet          # keep the callback alive
    L.llama_backend_init()
    rss_python = vm_status("VmRSS")

    t0 = time.perf_counter()
    mp = L.llama_model_default_params()
    mp.use_mmap = True
    model = L.llama_model_load_from_file(args.model.encode(), mp)
    if not model:
        print(f"llamacpp_bench: cannot load {args.model}", file=sys.stderr)
        return 1
    cp = L.llama_context_default_params()
    cp.n_ctx = args.depth + args.n_prompt + args.n_gen
    cp.n_batch = args.batch
    cp.n_ubatch = args.ubatch
    cp.n_threads = args.threads
    cp.n_threads_batch = args.threads
    ctx = L.llama_init_from_model(model, cp)
    if not ctx:
        print("llamacpp_bench: cannot create a context", file=sys.stderr)
        return 1
    load_s = time.perf_counter() - t0
    vocab = L.llama_model_get_vocab(model)
    n_vocab = L.llama_vocab_n_tokens(vocab)
    add_bos = bool(L.llama_vocab_get_add_bos(vocab))
    bos = L.llama_vocab_bos(vocab)
    mem = L.llama_get_memory(ctx)
    rng = random.Random(args.seed)
    L.llama_set_n_threads(ctx, args.threads, args.threads)

    def decode(ids):
        arr = (L.llama_token * len(ids))(*ids)
        rc = L.llama_decode(ctx, L.llama_batch_get_one(arr, len(ids)))
        if rc != 0:
            raise SystemExit(f"llamacpp_bench: llama_decode returned {rc}")

    def test_prompt(n):
        done = 0
        while done < n:
            cnt = min(n - done, args.batch)
            ids = [rng.randrange(n_vocab) for _ in range(cnt)]
            if done == 0 and add_bos:
                ids[0] = bos
            decode(ids)
            done += cnt
        L.llama_synchronize(ctx)

    def test_gen(n):
        tok = bos if add_bos else rng.randrange(n_vocab)
        for _ in range(n):
            decode([tok])
            L.llama_synchronize(ctx)
            tok = rng.randrange(n_vocab)

    if not args.no_warmup:
        if args.n_prompt > 0:
            test_prompt(args.n_prompt)
        if args.n_gen > 0:
            test_gen(1)
    L.llama_memory_clear(mem, False)
    depth_s = 0.0
    if args.depth > 0:
        t0 = time.perf_counter()
        test_prompt(args.depth)
        depth_s = time.perf_counter() - t0

    pp_s, tg_s = [], []
    for _ in range(args.reps):
        if args.depth > 0:
            L.llama_memory_seq_rm(mem, 0, args.depth, -1)
        else:
            L.llama_memory_clear(mem, False)
        if args.n_prompt > 0:
            t0 = time.perf_counter()
            test_prompt(args.n_prompt)
            pp_s.append(time.perf_counter() - t0)
        if args.n_gen > 0:
            if args.depth > 0:
                L.llama_memory_seq_rm(mem, 0, args.depth, -1)
            else:
                L.llama_memory_clear(mem, False)
            t0 = time.perf_counter()
            test_gen(args.n_gen)
            tg_s.append(time.perf_counter() - t0)

    out = {
        "engine": "llama.cpp",
        "version": "llama-cpp-python " + getattr(L, "__version__", "?"),
        "system_info": L.llama_print_system_info().decode(errors="replace").strip(),
        "model": args.model,
        "n_params": L.llama_model_n_params(model),
        "weight_bytes": L.llama_model_size(model),
        "n_vocab": n_vocab,
        "n_threads": args.threads,
        "n_ctx": cp.n_ctx,
        "n_batch": args.batch,
        "n_ubatch": args.ubatch,
        "n_depth": args.depth,
        "depth_prefill_s": depth_s,
        "reps": args.reps,
        "load_s": load_s,
    }
    if pp_s:
        out["pp"] = stats(pp_s, args.n_prompt)
    if tg_s:
        out["tg"] = stats(tg_s, args.n_gen)
        out["tg"]["weight_gb_per_s"] = out["weight_bytes"] * out["tg"]["tokens_per_s"] / 1e9
    out["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out["vm_hwm_bytes"] = vm_status("VmHWM")
    out["vm_rss_bytes"] = vm_status("VmRSS")
    out["rss_before_import_bytes"] = rss_before
    out["rss_python_baseline_bytes"] = rss_python
    L.llama_free(ctx)
    L.llama_model_free(model)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
