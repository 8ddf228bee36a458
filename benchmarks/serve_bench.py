#!/usr/bin/env python3
"""serve_bench.py - load generator: `pio serve` vs llama.cpp's llama-server on
the same GGUF, same machine, same KV budget, in turns; writes the table to
benchmarks/results/<date>-<commit>-serve.md (raw numbers in .json).

Loopback only and bounded: every scenario sends a fixed number of requests
and gives up after --time-limit seconds (the unfinished ones are reported).

Scenarios, for each engine (one server process per engine, started and
stopped here):
  streams S    S client threads, each sending --requests-per-stream
               streaming /v1/completions requests one after another: a
               --prompt-tokens word prompt (different per request), greedy,
               max_tokens --gen-tokens. Aggregate generation tokens/s = all
               completion tokens / wall time from the first request sent to
               the last one finished (prefill included), plus TTFT and
               inter-token latency medians.
  prefix       a --prefix-tokens prompt sent once (uncached TTFT), then the
               same prefix with another ending (cached TTFT), max_tokens 1;
               repeated with --prefix-reps different prefixes. The ratio
               cached/uncached is the prefix cache's effect.

llama-server is compiled here from the llama-cpp-python sdist that
run_vs_llamacpp.py already downloaded (WORK/dl), i.e. the very llama.cpp the
other benchmarks use, with GGML_NATIVE=ON; its options: -t T -tb T
-c S_max*ctx -np S_max (every slot gets ctx positions, like pio's
--max-seqs S_max --kv-blocks S_max*ctx/16), continuous batching and prompt
caching on (its defaults), f16 KV (both engines' default).

  python3 benchmarks/serve_bench.py                       # full run
  python3 benchmarks/serve_bench.py --streams 1,4 --gen-tokens 16 --prefix-tokens 256 --quick
"""
import argparse
import datetime
import http.client
import json
import os
import platform
import random
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
HOST = "127.0.0.1"              # loopback only, never anything else
TARGETS = {"tps16": 1.5, "prefix_ttft_share": 0.15}

# Common English words: each is one token (with its leading space) in the
# Qwen3 vocabulary, so a prompt of N words is ~N tokens; usage reports the
# exact count.
WORDS = ("the of and to in is was for on that with as by at from his it an were are which this be "
         "or has had not but first one their its new after who they have her she two been other when "
         "there all during into school time may years more most only over city some world would where "
         "later up such used many can state about national out known university united then made "
         "also team year part three him film both while season since no war series these under "
         "american well played high through between being did however early second own government "
         "including south north music four several same before against called last each city game "
         "people life based number day party company work area group name around long home public "
         "river west church until following any line system five great house album water member").split()


def log(msg):
    print(f"[serve_bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def words_prompt(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n))


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def vm_hwm(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


# ---- one streaming request ------------------------------------------------------

def stream_completion(port, body, deadline):
    """POST /v1/completions with stream=true; returns a dict with ttft,
    token arrival times, completion/prompt token counts (from the usage
    chunk, else the number of text chunks) and an error string or None."""
    t0 = time.monotonic()
    res = {"t0": t0, "ttft": None, "times": [], "completion_tokens": 0, "prompt_tokens": None,
           "error": None, "t_end": None}
    timeout = max(1.0, deadline - t0)
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        payload = json.dumps(body).encode()
        conn.request("POST", "/v1/completions", body=payload,
                     headers={"Content-Type": "application/json", "Accept": "text/event-stream"})
        resp = conn.getresponse()
        if resp.status != 200:
            res["error"] = f"HTTP {resp.status}: {resp.read()[:200]!r}"
            return res
        chunks = 0
        usage = None
        while True:
            if time.monotonic() > deadline:
                res["error"] = "time limit"
                break
            line = resp.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data:"):
                continue
            data = line[5:].strip()
            if data == b"[DONE]":
                break
            ev = json.loads(data)
            if ev.get("usage"):
                usage = ev["usage"]
            for ch in ev.get("choices") or []:
                if ch.get("text"):
                    now = time.monotonic()
                    if res["ttft"] is None:
                        res["ttft"] = now - t0
                    res["times"].append(now)
                    chunks += 1
        if usage:
            res["completion_tokens"] = usage.get("completion_tokens", chunks)
            res["prompt_tokens"] = usage.get("prompt_tokens")
        else:
            res["completion_tokens"] = chunks
    except (OSError, http.client.HTTPException, ValueError) as e:
        res["error"] = f"{type(e).__name__}: {e}"
    finally:
        res["t_end"] = time.monotonic()
        conn.close()
    return res


def request_body(model, prompt, max_tokens, seed):
    return {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0.0,
            "seed": seed, "stream": True, "stream_options": {"include_usage": True}}


# ---- servers --------------------------------------------------------------------

class Server:
    def __init__(self, name, cmd, port, log_path):
        self.name, self.cmd, self.port = name, cmd, port
        self.log_f = open(log_path, "w")
        log(f"{name}: {shlex.join(str(c) for c in cmd)}")
        self.proc = subprocess.Popen([str(c) for c in cmd], stdout=self.log_f, stderr=subprocess.STDOUT)

    def wait_ready(self, limit_s):
        t_end = time.monotonic() + limit_s
        while time.monotonic() < t_end:
            if self.proc.poll() is not None:
                raise SystemExit(f"serve_bench: {self.name} exited with {self.proc.returncode} "
                                 f"(log: {self.log_f.name})")
            try:
                c = http.client.HTTPConnection(HOST, self.port, timeout=2)
                c.request("GET", "/health")
                if c.getresponse().status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.5)
        raise SystemExit(f"serve_bench: {self.name} not ready after {limit_s} s")

    def stop(self):
        hwm = vm_hwm(self.proc.pid)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log_f.close()
        return hwm


def build_llama_server(work):
    exe = work / "llama-server-build" / "bin" / "llama-server"
    if exe.exists():
        return exe
    src = next((p / "vendor" / "llama.cpp" for p in sorted((work / "dl").glob("llama_cpp_python-*"))
                if (p / "vendor" / "llama.cpp" / "tools" / "server").is_dir()), None)
    if src is None:
        raise SystemExit("serve_bench: no llama.cpp source in WORK/dl (run run_vs_llamacpp.py first, "
                         "or pass --llama-server)")
    bdir = work / "llama-server-build"
    log(f"building llama-server from {src} (GGML_NATIVE=ON), ~15 min on 2 cores")
    subprocess.run(["cmake", "-S", src, "-B", bdir, "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON",
                    "-DLLAMA_BUILD_SERVER=ON", "-DLLAMA_BUILD_TOOLS=ON", "-DLLAMA_BUILD_TESTS=OFF",
                    "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF"], check=True)
    subprocess.run(["cmake", "--build", bdir, "-j", str(os.cpu_count() or 2), "--target", "llama-server"],
                   check=True)
    return exe


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", REPO, "rev-parse", "--short=10", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return rev + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---- scenarios -------------------------------------------------------------------

def run_streams(port, model, streams, args, seed_base):
    """S client threads x --requests-per-stream requests each."""
    rng = random.Random(seed_base)
    prompts = [[words_prompt(rng, args.prompt_tokens) for _ in range(args.requests_per_stream)]
               for _ in range(streams)]
    results = [[] for _ in range(streams)]
    t_start = time.monotonic()
    deadline = t_start + args.time_limit

    def client(i):
        for j, p in enumerate(prompts[i]):
            if time.monotonic() > deadline:
                break
            results[i].append(stream_completion(port, request_body(model, p, args.gen_tokens,
                                                                   seed_base + 97 * i + j), deadline))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(streams)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [r for rs in results for r in rs]
    wall = max(r["t_end"] for r in flat) - t_start
    ok = [r for r in flat if not r["error"]]
    gen = sum(r["completion_tokens"] for r in ok)
    itl = []
    for r in ok:
        itl += [b - a for a, b in zip(r["times"], r["times"][1:])]
    ttfts = [r["ttft"] for r in ok if r["ttft"] is not None]
    return {
        "streams": streams, "requests": streams * args.requests_per_stream, "ok": len(ok),
        "errors": sorted({r["error"] for r in flat if r["error"]}),
        "wall_s": wall, "completion_tokens": gen,
        "prompt_tokens": sum(r["prompt_tokens"] or 0 for r in ok),
        "gen_tps": gen / wall if wall > 0 else 0.0,
        "ttft_median_s": statistics.median(ttfts) if ttfts else None,
        "itl_median_s": statistics.median(itl) if itl else None,
    }


def run_prefix(port, model, args, seed_base):
    """TTFT of a long prompt uncached, then with its prefix cached."""
    reps = []
    deadline = time.monotonic() + args.time_limit
    for k in range(args.prefix_reps):
        rng = random.Random(seed_base + 1000 + k)
        prefix = words_prompt(rng, args.prefix_tokens)
        a = stream_completion(port, request_body(model, prefix + " " + words_prompt(rng, 16), 1, 1), deadline)
        b = stream_completion(port, request_body(model, prefix + " " + words_prompt(rng, 16), 1, 2), deadline)
        if a["error"] or b["error"] or a["ttft"] is None or b["ttft"] is None:
            reps.append({"error": a["error"] or b["error"] or "no token"})
            continue
        reps.append({"prompt_tokens": a["prompt_tokens"], "uncached_s": a["ttft"], "cached_s": b["ttft"]})
    good = [r for r in reps if "error" not in r]
    out = {"reps": reps}
    if good:
        out["uncached_s"] = statistics.median(r["uncached_s"] for r in good)
        out["cached_s"] = statistics.median(r["cached_s"] for r in good)
        out["share"] = out["cached_s"] / out["uncached_s"]
        out["prompt_tokens"] = good[0]["prompt_tokens"]
    return out


def bench_engine(name, cmd, port, args, logs):
    srv = Server(name, cmd, port, logs / f"serve-{name}.log")
    try:
        srv.wait_ready(args.load_limit)
        # warm-up: page the weights in and run each kernel once
        stream_completion(port, request_body(args.model_name, "warm up the engine", 4, 0),
                          time.monotonic() + args.time_limit)
        res = {"streams": [], "prefix": None}
        for s in args.streams:
            log(f"{name}: {s} stream(s)")
            r = run_streams(port, args.model_name, s, args, seed_base=s * 7919)
            log(f"{name}: {s} stream(s): {r['gen_tps']:.2f} gen tok/s, {r['ok']}/{r['requests']} ok, "
                f"wall {r['wall_s']:.1f} s")
            res["streams"].append(r)
        if args.prefix_tokens > 0:
            log(f"{name}: prefix cache, {args.prefix_tokens}-word prefix")
            res["prefix"] = run_prefix(port, args.model_name, args, seed_base=4242)
            p = res["prefix"]
            if "share" in p:
                log(f"{name}: TTFT uncached {p['uncached_s']*1e3:.0f} ms, cached {p['cached_s']*1e3:.0f} ms "
                    f"({100*p['share']:.1f}%)")
    finally:
        res_hwm = srv.stop()
    res["peak_rss_bytes"] = res_hwm
    return res


def fmt(v, spec):
    return "n/a" if v is None else format(v, spec)


def report(args, meta, results):
    lines = [f"# pio serve vs llama.cpp llama-server ({meta['date']})", "",
             f"- commit: {meta['commit']}", f"- CPU: {meta['cpu']} ({meta['cores']} cores)",
             f"- model: {meta['model']}", f"- command: `{meta['command']}`",
             f"- pio: `{meta['cmd_pio']}`", f"- llama.cpp: `{meta['cmd_llama']}`",
             f"- workload: streaming /v1/completions, greedy, prompt {args.prompt_tokens} words, "
             f"max_tokens {args.gen_tokens}, {args.requests_per_stream} request(s) per stream; "
             f"prefix test: {args.prefix_tokens}-word prefix + 16 words, max_tokens 1, "
             f"{args.prefix_reps} prefix(es)", "",
             "| streams | pio gen tok/s | llama.cpp gen tok/s | ratio | pio TTFT med | llama TTFT med | "
             "pio ITL med | llama ITL med | target |",
             "|---|---|---|---|---|---|---|---|---|"]
    P, L = results.get("pio"), results.get("llama")
    for i, s in enumerate(args.streams):
        p = P["streams"][i] if P else None
        q = L["streams"][i] if L else None
        ratio = p["gen_tps"] / q["gen_tps"] if p and q and q["gen_tps"] else None
        tgt = f"≥ {TARGETS['tps16']}×" if s == 16 else ""
        if tgt and ratio is not None:
            tgt += " met" if ratio >= TARGETS["tps16"] else " missed"
        ms = lambda r, k: fmt(r[k] * 1e3 if r and r[k] is not None else None, ".0f") + " ms"
        lines.append(f"| {s} | {fmt(p and p['gen_tps'], '.2f')} | {fmt(q and q['gen_tps'], '.2f')} | "
                     f"{fmt(ratio, '.2f')}× | {ms(p, 'ttft_median_s')} | {ms(q, 'ttft_median_s')} | "
                     f"{ms(p, 'itl_median_s')} | {ms(q, 'itl_median_s')} | {tgt} |")
    lines.append("")
    if args.prefix_tokens > 0:
        lines += ["| prefix cache | prompt tokens | uncached TTFT | cached TTFT | cached/uncached | target |",
                  "|---|---|---|---|---|---|"]
        for name, r in (("pio", P), ("llama.cpp", L)):
            if not r or not r["prefix"] or "share" not in r["prefix"]:
                continue
            x = r["prefix"]
            tgt = ""
            if name == "pio":
                tgt = f"≤ {100*TARGETS['prefix_ttft_share']:.0f}% " + \
                      ("met" if x["share"] <= TARGETS["prefix_ttft_share"] else "missed")
            lines.append(f"| {name} | {x['prompt_tokens']} | {x['uncached_s']*1e3:.0f} ms | "
                         f"{x['cached_s']*1e3:.0f} ms | {100*x['share']:.1f}% | {tgt} |")
        lines.append("")
    lines.append("| engine | peak RSS (VmHWM) | failed requests |")
    lines.append("|---|---|---|")
    for name, r in (("pio", P), ("llama.cpp", L)):
        if r:
            errs = sum(s["requests"] - s["ok"] for s in r["streams"])
            lines.append(f"| {name} | {r['peak_rss_bytes']/2**20:.0f} MiB | {errs} |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(BENCH / "work"), help="work directory (models, llama.cpp build)")
    ap.add_argument("--model", default=None, help="GGUF both servers load (default WORK/qwen3-4b-q8_0.gguf)")
    ap.add_argument("--model-name", default="bench", help="model id sent in requests")
    ap.add_argument("--pio", default=str(REPO / "build" / "pio"))
    ap.add_argument("--llama-server", default=None, help="llama-server binary (default: build it in WORK)")
    ap.add_argument("--engines", default="pio,llama", help="which servers, in this order")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("--streams", default="1,4,16")
    ap.add_argument("--ctx", type=int, default=2560, help="positions per sequence / slot")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--gen-tokens", type=int, default=128)
    ap.add_argument("--requests-per-stream", type=int, default=1)
    ap.add_argument("--prefix-tokens", type=int, default=2000)
    ap.add_argument("--prefix-reps", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=900, help="seconds per scenario")
    ap.add_argument("--load-limit", type=float, default=600, help="seconds for a server to get ready")
    ap.add_argument("--quick", action="store_true", help="no results file")
    args = ap.parse_args()
    args.streams = [int(s) for s in args.streams.split(",")]
    work = Path(args.work)
    model = Path(args.model) if args.model else work / "qwen3-4b-q8_0.gguf"
    if not model.exists():
        raise SystemExit(f"serve_bench: {model} missing (make it with run_vs_llamacpp.py / make_qwen3_4b.py)")
    engines = args.engines.split(",")
    smax = max(args.streams)
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)

    port = free_port()
    cmd_pio = [args.pio, "serve", "-m", model, "-t", args.threads, "--host", HOST, "--port", port,
               "--ctx", args.ctx, "--max-seqs", smax, "--kv-blocks", smax * args.ctx // 16,
               "--model-name", args.model_name, "-q"]
    llama = None
    if "llama" in engines:
        llama = Path(args.llama_server) if args.llama_server else build_llama_server(work)
    cmd_llama = [llama, "-m", model, "-t", args.threads, "-tb", args.threads, "--host", HOST,
                 "--port", port, "-c", smax * args.ctx, "-np", smax, "--alias", args.model_name,
                 "--no-webui"]
    meta = {"date": datetime.date.today().isoformat(), "commit": git_rev(), "cpu": cpu_name(),
            "cores": os.cpu_count(), "model": str(model), "command": shlex.join(sys.argv),
            "cmd_pio": shlex.join(str(c) for c in cmd_pio), "cmd_llama": shlex.join(str(c) for c in cmd_llama)}
    results = {}
    order = [e for e in engines if e in ("pio", "llama")]     # the order given by --engines
    for e in order:
        cmd = cmd_pio if e == "pio" else cmd_llama
        results[e] = bench_engine(e, cmd, port, args, logs)
    text = report(args, meta, results)
    print(text)
    if not args.quick:
        out = BENCH / "results" / f"{meta['date']}-{meta['commit']}-serve"
        out.with_suffix(".md").write_text(text)
        out.with_suffix(".json").write_text(json.dumps({"meta": meta, "args": vars(args), "results": results},
                                                       indent=1, default=str))
        log(f"wrote {out}.md")


if __name__ == "__main__":
    main()
