#!/usr/bin/env python3
"""run_vs_llamacpp.py - Inference-PIO vs llama.cpp, side by side, same machine,
same weights, in alternating turns; writes the ratio table to
benchmarks/results/<date>-<commit>-qwen3-4b.md (and the raw runs as .json).

What it does:
 1. Makes a venv (WORK/venv, --system-site-packages) with gguf and
    llama-cpp-python==LLAMA_CPP_PYTHON_VERSION, built from source by pip with
    the machine's compiler and GGML_NATIVE=ON (-march=native, llama.cpp's
    default for a local build), keeping pip's build directory (WORK/llama-build).
    The wheel ships no tools, so llama-bench is then compiled from the same
    sdist's tools/llama-bench against the libraries of that build: the very
    llama.cpp the wheel holds. Skipped when already there.
 2. Makes the random-weight Qwen3-4B checkpoint (make_qwen3_4b.py) when missing,
    and the K-quant files q4_k, q6_k, q4_k_m with pio quantize (make_kquant_ggufs.sh).
 3. Builds benchmarks/membw.c and measures the DRAM read bandwidth with -t
    threads before and after the runs; the roofline uses the best figure.
    The bandwidth of a shared VM drifts by 20% and more within minutes, so
    it is also measured right before and after every engine run, and the
    report adds each engine's share of the roofline at the best of those two
    figures (its own neighbourhood) next to the share at the run-wide best.
    membw reads a buffer on 2 MiB pages, as the weights are mapped.
    Before a format's runs its GGUF is dropped from the page cache and read
    once from start to end, so both engines map it from the same cache (on
    Linux 6.x, 2 MiB folios; the report gives FileHugePages).
 4. For each format (q8_0, q4_0, bf16) and each test, runs llama.cpp
    with llama-bench (or, with --llama-runner python or when llama-bench
    could not be built, llamacpp_bench.py: the same loop through the bindings)
    and `pio bench`, alternating which goes first:
      pp+tg     -p P -n N -t T          prompt and generation speed
      tg_1t     -p 0 -n N -t 1          generation on one thread
      tg_depth  -p 0 -n N -t T -d D     generation after D tokens of context
      roofline  -p 0 -n M -t T -r 1, --roofline-samples times per engine,
                each run between two membw measurements (its share at the
                better of the two). pio runs with --roofline as well: M more
                tokens, each between two reads of a 512 MiB buffer inside
                the process, so each token has the bandwidth of its own
                ~100 ms; the median of those shares is the judged figure
    pio runs on the same GGUF file when it can load GGUF (pio info -m FILE
    succeeds), else on the safetensors directory with --dtype FORMAT; the
    report says which, and whether pio really used that format.
 5. Prints and writes the table: tokens/s of both, the ratio pio/llama.cpp,
    peak RSS (of each engine process, from wait4), and the share of the DRAM roofline (bandwidth / bytes read per
    token: the weights, plus at depth the f16 KV cache of the context).

  python3 benchmarks/run_vs_llamacpp.py                 # the full run (~1 h+)
  python3 benchmarks/run_vs_llamacpp.py --quick         # short smoke run
  python3 benchmarks/run_vs_llamacpp.py -p 64 -n 16 --depth 1024 -r 1 --formats q8_0
"""
import argparse
import datetime
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "benchmarks"
LLAMA_CPP_PYTHON_VERSION = "0.3.36"
FORMATS = ("q8_0", "q4_0", "bf16")
# made by make_kquant_ggufs.sh (pio quantize), not make_qwen3_4b.py
KQUANT_FORMATS = ("q4_k", "q6_k", "q4_k_m")
# Qwen3-4B KV geometry for the depth roofline: 36 layers x (K + V) x 8 heads x 128 x f16
KV_BYTES_PER_POS = 36 * 2 * 8 * 128 * 2
TARGETS = {   # issue 4 targets, as pio/llama.cpp ratios or roofline shares
    "pp": 1.5, "tg": 1.0, "tg_1t": 1.3, "tg_depth": 2.0, "rss": 1.05,
    "roofline": {"q8_0": 0.92, "q4_0": 0.92, "bf16": 0.90},
}


def show(c):
    """A command argument as printed in the report: paths relative to the repository."""
    c = str(c)
    if c.startswith(str(REPO) + "/"):
        return os.path.relpath(c, REPO)
    return c


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw).stdout


def venv_python(work):
    return work / "venv" / "bin" / "python"


def setup_venv(work, jobs):
    """Create WORK/venv with gguf and llama-cpp-python (built from source)."""
    py = venv_python(work)
    if not py.exists():
        log(f"venv: creating {work / 'venv'}")
        subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(work / "venv")], check=True)
    probe = subprocess.run([str(py), "-c", "import gguf, llama_cpp; print(llama_cpp.__version__)"],
                           text=True, capture_output=True)
    if probe.returncode == 0 and probe.stdout.strip() == LLAMA_CPP_PYTHON_VERSION:
        return
    env = dict(os.environ)
    env["CMAKE_ARGS"] = env.get("CMAKE_ARGS", "-DGGML_NATIVE=ON -DLLAVA_BUILD=OFF -DCMAKE_BUILD_TYPE=Release")
    env["CMAKE_BUILD_PARALLEL_LEVEL"] = str(jobs)
    logf = work / "logs" / "pip-llama.log"
    logf.parent.mkdir(parents=True, exist_ok=True)
    log(f"venv: pip install llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION} gguf "
        f"(builds llama.cpp from source, CMAKE_ARGS={env['CMAKE_ARGS']!r}; log {logf})")
    with open(logf, "w") as f:
        subprocess.run([str(py), "-m", "pip", "install", "--no-cache-dir", "-v",
                        f"--config-settings=build-dir={work / 'llama-build'}",
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "gguf"],
                       check=True, env=env, stdout=f, stderr=subprocess.STDOUT)


def llama_cpp_sdist(work):
    """The llama-cpp-python sdist unpacked under WORK/dl (pip download), or None."""
    dl = work / "dl"
    src = dl / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}"
    if not src.exists():
        try:
            dl.mkdir(parents=True, exist_ok=True)
            subprocess.run([str(venv_python(work)), "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}", "-d", str(dl)],
                           check=True, capture_output=True)
            tgz = dl / f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}.tar.gz"
            subprocess.run(["tar", "xzf", str(tgz), "-C", str(dl)], check=True)
        except (subprocess.CalledProcessError, OSError):
            return None
    return src


def llama_cpp_commit(work):
    """The llama.cpp commit vendored in the llama-cpp-python sdist; else None."""
    src = llama_cpp_sdist(work)
    try:
        return sh(["git", "-C", str(src / "vendor" / "llama.cpp"), "log", "-1", "--format=%H %cs"]).strip()
    except (subprocess.CalledProcessError, OSError, TypeError):
        return None


def build_llama_bench(work):
    """WORK/llama-bench: tools/llama-bench of the sdist linked against the
    libraries pip built (WORK/llama-build/bin); None when that is not possible."""
    exe = work / "llama-bench"
    if exe.exists():
        return exe
    bindir = work / "llama-build" / "bin"
    src = llama_cpp_sdist(work)
    if src is None or not bindir.exists():
        log("llama-bench: no sdist or no pip build directory; using the Python runner")
        return None
    lc = src / "vendor" / "llama.cpp"

    def lib(stem):
        cands = sorted(bindir.glob(f"lib{stem}.so.*.*"))
        return "-l:" + cands[-1].name if cands else "-l" + stem
    cmd = ["g++", "-O2", "-std=c++17", "-DNDEBUG", f"-I{lc / 'include'}", f"-I{lc / 'common'}",
           f"-I{lc / 'ggml' / 'include'}", f"-I{lc / 'tools' / 'llama-bench'}", f"-I{lc / 'vendor'}",
           str(lc / "tools" / "llama-bench" / "llama-bench.cpp"), str(lc / "tools" / "llama-bench" / "main.cpp"),
           f"-L{bindir}", lib("llama-common"), lib("llama"), lib("ggml"), lib("ggml-base"), "-pthread",
           f"-Wl,-rpath,{bindir}", "-o", str(exe)]
    log("llama-bench: building " + " ".join(cmd[-3:]))
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        log("llama-bench: build failed (using the Python runner):\n" + p.stderr[-2000:])
        return None
    return exe


def cpu_info():
    info = {}
    try:
        for line in sh(["lscpu"]).splitlines():
            k, _, v = line.partition(":")
            info[k.strip()] = v.strip()
    except (subprocess.CalledProcessError, OSError):
        pass
    flags = info.get("Flags", "").split()
    simd = [f for f in ("avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                        "avx512_bf16", "avx_vnni", "amx_int8", "amx_bf16") if f in flags]
    mem_gb = None
    try:
        with open("/proc/meminfo") as f:
            mem_gb = int(f.readline().split()[1]) / 1e6
    except OSError:
        pass
    return {
        "model": info.get("Model name", platform.processor()),
        "cpus": info.get("CPU(s)"),
        "l3": info.get("L3 cache"),
        "hypervisor": info.get("Hypervisor vendor"),
        "simd": " ".join(simd),
        "mem_gb": mem_gb,
        "kernel": platform.release(),
    }


def git_commit():
    try:
        h = sh(["git", "-C", str(REPO), "rev-parse", "--short=10", "HEAD"]).strip()
        dirty = sh(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"]).strip()
        return h + ("-dirty" if dirty else "")
    except (subprocess.CalledProcessError, OSError):
        return "unknown"


def membw(work, threads):
    exe = work / "membw"
    src = BENCH / "membw.c"
    if not exe.exists() or exe.stat().st_mtime < src.stat().st_mtime:
        subprocess.run(["cc", "-O3", "-march=native", "-pthread", str(src), "-o", str(exe)], check=True)
    return json.loads(sh([str(exe), str(threads), "2048", "10"]))


def file_huge_kb():
    """FileHugePages of /proc/meminfo in kB (page cache held in 2 MiB folios), or None."""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("FileHugePages:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def settle_page_cache(path):
    """Drop the file's cached pages and read it once, start to end, so that both
    engines map it from the same page cache: on Linux 6.x (ext4, XFS) a sequential
    read fills it with 2 MiB folios, which a mapping then gets as 2 MiB pages. Left
    as it was, the cache holds whatever folios wrote or last read the file, and
    decode speed depends on it (4 KiB pages cost a TLB miss each). Returns the
    GB of FileHugePages after, or None where /proc/meminfo lacks it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        if hasattr(os, "posix_fadvise"):
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        while os.read(fd, 16 << 20):
            pass
    finally:
        os.close(fd)
    kb = file_huge_kb()
    return None if kb is None else kb * 1024 / 1e9


def run_measured(cmd, timeout):
    """Run cmd; returns (exit status, stdout, stderr, peak RSS bytes of the
    process from wait4, wall seconds). Status None = timed out (killed)."""
    log("  $ " + " ".join(shlex.quote(show(c)) for c in cmd))
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.time()
        p = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err, text=True)
        status, ru = None, None
        while True:
            pid, st, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                status = os.waitstatus_to_exitcode(st)
                p.returncode = status
                break
            if time.time() - t0 > timeout:
                p.kill()
                _, _, ru = os.wait4(p.pid, 0)
                p.returncode = -9
                break
            time.sleep(0.2)
        wall = time.time() - t0
        out.seek(0)
        err.seek(0)
        return status, out.read(), err.read(), ru.ru_maxrss * 1024, wall


def tps_stats(tokens_per_s):
    v = sorted(tokens_per_s)
    return {"tokens_per_s": statistics.median(v), "tokens_per_s_mean": statistics.fmean(v),
            "tokens_per_s_sd": statistics.stdev(v) if len(v) > 1 else 0.0,
            "tokens_per_s_min": v[0], "tokens_per_s_max": v[-1]}


def from_llama_bench(entries):
    """llama-bench -o json output in the shape of `pio bench --json`."""
    out = {"engine": "llama.cpp (llama-bench)"}
    for e in entries:
        out.setdefault("version", f"llama.cpp {e.get('build_commit')} ({e.get('build_number')})")
        out.setdefault("cpu_info", e.get("cpu_info"))
        out["weight_bytes"] = e["model_size"]
        out["n_params"] = e["model_n_params"]
        out["flash_attn"] = e.get("flash_attn")
        out["type_k"] = e.get("type_k")
        key = "pp" if e["n_prompt"] > 0 and e["n_gen"] == 0 else "tg"
        st = tps_stats(e["samples_ts"])
        st["tokens"] = e["n_prompt"] if key == "pp" else e["n_gen"]
        st["seconds"] = [ns / 1e9 for ns in e["samples_ns"]]
        out[key] = st
    return out


def run_engine(cmd, timeout, kind):
    """Run one benchmark; kind "llama-bench" parses its JSON array, else the
    last stdout line is one JSON object. Adds the wait4 peak RSS and wall time."""
    status, out, err, rss, wall = run_measured(cmd, timeout)
    if status is None:
        return {"error": f"timed out after {timeout} s", "wall_s": wall}
    if status != 0:
        return {"error": (err.strip().splitlines() or ["exit %d" % status])[-1], "wall_s": wall}
    try:
        if kind == "llama-bench":
            res = from_llama_bench(json.loads(out))
        else:
            res = json.loads(out.strip().splitlines()[-1])
    except (ValueError, IndexError, KeyError) as e:
        return {"error": f"cannot parse the output ({e}): {out[-300:]}", "wall_s": wall}
    res["process_peak_rss_bytes"] = rss
    res["wall_s"] = wall
    return res


def pio_reads_gguf(pio, gguf_path):
    p = subprocess.run([str(pio), "info", "-m", str(gguf_path)], capture_output=True, text=True)
    return p.returncode == 0


def fmt_num(x, nd=2):
    return "—" if x is None else f"{x:.{nd}f}"


def tps(run, key):
    if not run or "error" in run or key not in run:
        return None
    return run[key]["tokens_per_s"]


def net_rss(run):
    """Peak RSS of an engine process in bytes (wait4); for the Python runner
    minus the interpreter's own RSS before the model was loaded."""
    if not run or "error" in run:
        return None
    rss = run.get("process_peak_rss_bytes") or max(run.get("peak_rss_bytes", -1), run.get("vm_hwm_bytes", -1))
    return rss - max(0, run.get("rss_python_baseline_bytes", 0))


def ratio(a, b):
    return a / b if a is not None and b else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default=str(BENCH / "work"))
    ap.add_argument("--name", default="qwen3-4b", help="model base name made by make_qwen3_4b.py "
                    "(or an existing WORK/NAME-FORMAT.gguf, e.g. qwen3-30b-a3b from make_qwen3_moe.py)")
    ap.add_argument("--roofline-bytes", type=float, default=None,
                    help="weight bytes read per generated token for the roofline (default: the whole "
                         "model; give the active bytes for an MoE)")
    ap.add_argument("--kv-bytes-per-pos", type=int, default=KV_BYTES_PER_POS,
                    help="f16 KV bytes per position for the depth roofline (default: Qwen3-4B's)")
    ap.add_argument("--pio", default=None, help="the pio binary (default: build/pio, else build-*/pio)")
    ap.add_argument("--formats", default=",".join(FORMATS))
    ap.add_argument("--tests", default="pp+tg,tg_1t,tg_depth,roofline")
    ap.add_argument("--roofline-samples", type=int, default=5,
                    help="runs per engine in the roofline test, each between two membw measurements")
    ap.add_argument("--roofline-n", type=int, default=64, help="tokens generated per roofline run")
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-p", "--n-prompt", type=int, default=512)
    ap.add_argument("-n", "--n-gen", type=int, default=128)
    ap.add_argument("--depth", type=int, default=8192)
    ap.add_argument("--depth-n", type=int, default=None, help="tokens generated in tg_depth (default: -n)")
    ap.add_argument("-r", "--reps", type=int, default=3)
    ap.add_argument("--pio-input", choices=("auto", "gguf", "st"), default="auto",
                    help="what pio loads: the GGUF file, or the safetensors dir with --dtype (auto: GGUF if it can)")
    ap.add_argument("--timeout", type=int, default=7200, help="seconds per engine run")
    ap.add_argument("--jobs", type=int, default=2, help="build parallelism for llama-cpp-python")
    ap.add_argument("--llama-runner", choices=("auto", "llama-bench", "python"), default="auto",
                    help="llama-bench binary (auto: when it can be built) or the Python bindings loop")
    ap.add_argument("--llama-extra", default="", help="extra llama-bench arguments, e.g. \"--poll 0\"")
    ap.add_argument("--pio-extra", default="", help="extra pio bench arguments")
    ap.add_argument("--skip-install", action="store_true")
    ap.add_argument("--quick", action="store_true", help="smoke run: -p 32 -n 8 --depth 256 -r 1")
    ap.add_argument("--note", default="", help="text for the report (e.g. what pio supports at this commit)")
    ap.add_argument("--out", default=None, help="report path (default benchmarks/results/<date>-<commit>-NAME.md)")
    args = ap.parse_args()
    if args.quick:
        args.n_prompt, args.n_gen, args.depth, args.reps = 32, 8, 256, 1

    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    pio = Path(args.pio) if args.pio else None
    if pio is None:
        cands = [REPO / "build" / "pio"] + sorted(REPO.glob("build-*/pio"))
        pio = next((c for c in cands if c.exists()), None)
    if pio is None or not pio.exists():
        raise SystemExit("run_vs_llamacpp: no pio binary (build it, or pass --pio)")
    formats = [f for f in args.formats.split(",") if f]
    tests = [t for t in args.tests.split(",") if t]

    if not args.skip_install:
        setup_venv(work, args.jobs)
    py = venv_python(work)
    llama_bench = build_llama_bench(work) if args.llama_runner != "python" else None
    if args.llama_runner == "llama-bench" and not llama_bench:
        raise SystemExit("run_vs_llamacpp: llama-bench is not available")
    hf_dir = work / args.name
    missing = [f for f in formats if not (work / f"{args.name}-{f}.gguf").exists()]
    kquant = [f for f in missing if f in KQUANT_FORMATS]
    missing = [f for f in missing if f not in KQUANT_FORMATS]
    need_st = args.pio_input == "st" or kquant
    if missing or (need_st and not (hf_dir / "model.safetensors.index.json").exists()):
        log(f"model: making {args.name} ({', '.join(missing) or 'safetensors'})")
        subprocess.run([str(py), str(BENCH / "make_qwen3_4b.py"), "--work", str(work), "--name", args.name,
                        "--formats", ",".join(["st"] + missing)], check=True)
    if kquant:
        # the gguf package cannot write K-quants: pio quantize does, from the safetensors
        log(f"model: making {', '.join(kquant)} with pio quantize")
        subprocess.run(["bash", str(BENCH / "make_kquant_ggufs.sh"), str(work), args.name, ",".join(kquant)],
                       check=True, env=dict(os.environ, PIO=str(pio)))

    env_info = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "commit": git_commit(),
        "cpu": cpu_info(),
        "llama_cpp_python": sh([str(py), "-c", "import llama_cpp; print(llama_cpp.__version__)"]).strip(),
        "llama_cpp_commit": llama_cpp_commit(work),
        "pio": str(pio),
        "llama_runner": show(llama_bench) if llama_bench else "benchmarks/llamacpp_bench.py",
        "load_avg_start": os.getloadavg(),
    }
    log(f"machine: {env_info['cpu']['model']}, {env_info['cpu']['cpus']} CPUs, {env_info['cpu']['simd']}")
    bw = [membw(work, args.threads)]
    log(f"DRAM read bandwidth ({args.threads} threads): best {bw[0]['best_gb_per_s']:.1f} GB/s")

    test_defs = {
        "pp+tg": dict(p=args.n_prompt, n=args.n_gen, t=args.threads, d=0),
        "tg_1t": dict(p=0, n=args.n_gen, t=1, d=0),
        "tg_depth": dict(p=0, n=args.depth_n or args.n_gen, t=args.threads, d=args.depth),
        "roofline": dict(p=0, n=args.roofline_n, t=args.threads, d=0),
    }
    unknown = [t for t in tests if t not in test_defs]
    if unknown:
        raise SystemExit(f"run_vs_llamacpp: unknown test(s) {', '.join(unknown)}; known: {', '.join(test_defs)}")
    runs = []
    turn = 0
    for fmt in formats:
        gguf_path = work / f"{args.name}-{fmt}.gguf"
        use_gguf = args.pio_input == "gguf" or (args.pio_input == "auto" and pio_reads_gguf(pio, gguf_path))
        huge = settle_page_cache(gguf_path)
        env_info.setdefault("page_cache", {})[fmt] = huge
        log(f"[{fmt}] page cache: {gguf_path.name} dropped and read once"
            + (f"; page cache in 2 MiB folios: {huge:.2f} GB" if huge is not None else ""))
        for test in tests:
            d = test_defs[test]
            common = ["-p", d["p"], "-n", d["n"], "-t", d["t"], "-r", 1 if test == "roofline" else args.reps]
            if d["d"]:
                common += ["-d", d["d"]]
            if llama_bench:
                llama_cmd = [llama_bench, "-m", gguf_path] + common + ["-o", "json"]
            else:
                llama_cmd = [py, BENCH / "llamacpp_bench.py", "-m", gguf_path] + common
            llama_cmd += shlex.split(args.llama_extra)
            if use_gguf:
                pio_cmd = [pio, "bench", "-m", gguf_path] + common + ["--json"]
            else:
                pio_cmd = [pio, "bench", "-m", hf_dir, "--dtype", fmt] + common + ["--json"]
            pio_cmd += shlex.split(args.pio_extra)
            if test == "roofline":
                pio_cmd.append("--roofline")
            order = [("llama.cpp", llama_cmd, "llama-bench" if llama_bench else "json"),
                     ("pio", pio_cmd, "json")]
            if turn % 2:
                order.reverse()
            turn += 1
            res = {"format": fmt, "test": test, "pio_input": "gguf" if use_gguf else "safetensors --dtype " + fmt}
            if test == "roofline":
                res.update(roofline_samples(work, args, order))
                runs.append(res)
                continue
            for engine, cmd, kind in order:
                log(f"[{fmt} {test}] {engine}")
                load = os.getloadavg()[0]
                r = run_between_membw(work, args, cmd, kind)
                r["command"] = " ".join(shlex.quote(show(c)) for c in cmd)
                r["load_before"] = load
                res[engine] = r
                if "error" in r:
                    log(f"  error: {r['error']}")
                else:
                    parts = [f"{k} {r[k]['tokens_per_s']:.2f} t/s" for k in ("pp", "tg") if k in r]
                    log("  " + ", ".join(parts) + f", peak RSS {net_rss(r) / 1e6:.0f} MB")
            runs.append(res)
    bw.append(membw(work, args.threads))
    bandwidth = max(b["best_gb_per_s"] for b in bw)
    env_info["load_avg_end"] = os.getloadavg()
    log(f"DRAM read bandwidth after: best {bw[1]['best_gb_per_s']:.1f} GB/s; using {bandwidth:.1f} GB/s")

    report = make_report(args, env_info, bw, bandwidth, runs)
    print(report)
    out = Path(args.out) if args.out else (
        BENCH / "results" / f"{datetime.date.today().isoformat()}-{env_info['commit']}-{args.name}.md")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report)
    out.with_suffix(".json").write_text(json.dumps(
        {"env": env_info, "bandwidth": bw, "args": vars(args), "runs": runs}, indent=1) + "\n")
    log(f"wrote {out} and {out.with_suffix('.json')}")
    return 0


def run_between_membw(work, args, cmd, kind):
    """run_engine, with membw measured right before and after (r["bw_around"])."""
    before = membw(work, args.threads)["best_gb_per_s"]
    r = run_engine(cmd, args.timeout, kind)
    r["bw_around"] = [before, membw(work, args.threads)["best_gb_per_s"]]
    return r


def roofline_samples(work, args, order):
    """The roofline test: --roofline-samples decode runs of each engine,
    alternating which goes first, each between two membw measurements, so
    that every run has the bandwidth of its own minutes (a shared VM's drifts
    by 50% within minutes: one run-wide figure cannot judge a 92% share)."""
    out = {e: {"samples": [], "command": " ".join(shlex.quote(show(c)) for c in cmd)} for e, cmd, _ in order}
    for i in range(args.roofline_samples):
        for engine, cmd, kind in (order if i % 2 == 0 else order[::-1]):
            log(f"  roofline sample {i + 1}/{args.roofline_samples}: {engine}")
            r = run_between_membw(work, args, cmd, kind)
            before, after = r["bw_around"]
            if "error" in r:
                out[engine]["error"] = r["error"]
                log(f"  error: {r['error']}")
                continue
            out[engine].update({k: r[k] for k in ("weight_bytes", "dtypes", "kernels", "dtype_applied", "version")
                                if k in r})
            out[engine]["samples"].append({"tokens_per_s": r["tg"]["tokens_per_s"], "bw_around": [before, after],
                                           "in_process": r.get("roofline")})
            log(f"  tg {r['tg']['tokens_per_s']:.2f} t/s, membw {before:.1f} / {after:.1f} GB/s"
                + (f"; in-process roofline {100 * r['roofline']['share']:.1f}% at {r['roofline']['membw_gb_per_s']:.1f}"
                   " GB/s" if r.get("roofline") else ""))
    for e in out.values():
        if e["samples"]:
            e["tg"] = tps_stats([s["tokens_per_s"] for s in e["samples"]])
    return out


def roofline_shares(run, wb):
    """Each sample's share of the roofline at the better bandwidth around it."""
    if not run or "error" in run:
        return []
    return [s["tokens_per_s"] * wb / (local_bw(s) * 1e9) for s in run.get("samples", [])]


def make_report(args, env, bw, bandwidth, runs):
    by = {(r["format"], r["test"]): r for r in runs}
    formats = list(dict.fromkeys(r["format"] for r in runs))
    cpu = env["cpu"]
    L = []
    L.append(f"# Inference-PIO vs llama.cpp — {args.name} (random weights, real shapes)\n")
    L.append(f"- date: {env['date']}; commit: `{env['commit']}`")
    L.append(f"- CPU: {cpu['model']} ({cpu['cpus']} CPUs, L3 {cpu['l3']}, hypervisor {cpu['hypervisor']}), "
             f"SIMD: {cpu['simd']}; RAM {fmt_num(cpu['mem_gb'], 1)} GB; kernel {cpu['kernel']}")
    L.append(f"- llama.cpp: llama-cpp-python {env['llama_cpp_python']} built from source with GGML_NATIVE=ON"
             + (f", llama.cpp commit {env['llama_cpp_commit']}" if env.get("llama_cpp_commit") else "")
             + f"; measured with {env['llama_runner']}")
    L.append(f"- DRAM read bandwidth ({args.threads} threads, benchmarks/membw.c): "
             + ", ".join(f"{b['best_gb_per_s']:.1f} (median {b['median_gb_per_s']:.1f})" for b in bw)
             + f" GB/s before/after; roofline uses {bandwidth:.1f} GB/s")
    la0, la1 = env["load_avg_start"], env.get("load_avg_end", (0, 0, 0))
    L.append(f"- load average at start / end: {la0[0]:.2f} / {la1[0]:.2f} (other work on the machine skews numbers; "
             f"the per-run 1-minute figure includes the previous run's own {args.threads} threads, so up to "
             f"~{args.threads} is this benchmark itself)")
    L.append(f"- settings: -p {args.n_prompt} -n {args.n_gen} -t {args.threads} (tg_1t: -t 1), "
             f"depth {args.depth} (-n {args.depth_n or args.n_gen}), {args.reps} repetitions, median reported")
    if env.get("page_cache"):
        L.append("- page cache: before its runs each GGUF was dropped from the cache and read once from start "
                 "to end, so both engines map the same pages (2 MiB folios where the kernel makes them; "
                 "FileHugePages after: "
                 + ", ".join(f"{f} {'?' if g is None else fmt_num(g, 2)} GB" for f, g in env["page_cache"].items())
                 + ")")
    if args.note:
        L.append(f"- note: {args.note}")
    L.append("")
    for fmt in formats:
        pt, t1, td = by.get((fmt, "pp+tg")), by.get((fmt, "tg_1t")), by.get((fmt, "tg_depth"))
        rf = by.get((fmt, "roofline"))
        any_run = pt or t1 or td or rf
        L.append(f"## {fmt.upper()}\n")
        L.append(f"pio input: {any_run['pio_input']}" + pio_dtype_note(any_run))
        L.append("")
        L.append("| metric | llama.cpp | pio | pio / llama.cpp | target | load before (llama.cpp / pio) |")
        L.append("| --- | ---: | ---: | ---: | --- | --- |")

        def load(run):
            return " / ".join(fmt_num(run[e].get("load_before"), 1) for e in ("llama.cpp", "pio"))

        def row(label, run, key, target, higher=True):
            if not run:
                return
            a, b = tps(run["llama.cpp"], key), tps(run["pio"], key)
            r = ratio(b, a)
            mark = "" if r is None else (" ✅" if (r >= target if higher else r <= target) else " ❌")
            L.append(f"| {label} | {fmt_num(a)} | {fmt_num(b)} | {fmt_num(r)}{mark} | ≥ {target}× | {load(run)} |")

        row(f"pp{args.n_prompt} t/s", pt, "pp", TARGETS["pp"])
        row(f"tg{args.n_gen} t/s", pt, "tg", TARGETS["tg"])
        row(f"tg{args.n_gen} t/s, 1 thread", t1, "tg", TARGETS["tg_1t"])
        row(f"tg{args.depth_n or args.n_gen} t/s @ depth {args.depth}", td, "tg", TARGETS["tg_depth"])
        rss_run = pt or t1
        if rss_run:
            a, b = net_rss(rss_run["llama.cpp"]), net_rss(rss_run["pio"])
            r = ratio(b, a)
            mark = "" if r is None else (" ✅" if r <= TARGETS["rss"] else " ❌")
            L.append(f"| peak RSS MB ({rss_run['test']}) | {fmt_num(a and a / 1e6, 0)} | "
                     f"{fmt_num(b and b / 1e6, 0)} | {fmt_num(r)}{mark} | ≤ {TARGETS['rss']}× | |")
        if td:
            a, b = net_rss(td["llama.cpp"]), net_rss(td["pio"])
            L.append(f"| peak RSS MB (depth {args.depth}) | {fmt_num(a and a / 1e6, 0)} | "
                     f"{fmt_num(b and b / 1e6, 0)} | {fmt_num(ratio(b, a))} | | |")
        # roofline: bytes per token = the format's weight bytes (+ f16 KV of the context at depth)
        wb = None
        for run in (pt, t1, td, rf):
            if run and "error" not in run["llama.cpp"] and run["llama.cpp"].get("weight_bytes"):
                wb = run["llama.cpp"]["weight_bytes"]
                break
        wb_model = wb
        if wb and args.roofline_bytes:
            wb = args.roofline_bytes
        if wb:
            roof = bandwidth * 1e9 / wb
            tgt = TARGETS["roofline"].get(fmt, 0.9)
            if rf:
                sa, sb = roofline_shares(rf["llama.cpp"], wb), roofline_shares(rf["pio"], wb)
                a = statistics.median(sa) if sa else None
                b = statistics.median(sb) if sb else None
                bws = [local_bw(s) for e in ("llama.cpp", "pio") for s in rf[e].get("samples", [])]
                ip = [s["in_process"] for s in rf["pio"].get("samples", []) if s.get("in_process")]
                if ip:
                    c = statistics.median(x["share"] for x in ip)
                    mark = " ✅" if c >= tgt else " ❌"
                    L.append(f"| **% of roofline, pio's tokens each between two bandwidth reads in the process** "
                             f"(pio bench --roofline: median of its {len(ip)} runs' medians; per run: "
                             + ", ".join(f"{100 * x['share']:.1f}% at {x['membw_gb_per_s']:.1f} GB/s" for x in ip)
                             + f") | | {100 * c:.1f}{mark} | | pio ≥ {100 * tgt:.0f}% | |")
                L.append(f"| % of roofline, tg{args.roofline_n}, each run at the bandwidth measured around it "
                         f"(median of {args.roofline_samples} runs each; membw {min(bws or [0]):.1f}-"
                         f"{max(bws or [0]):.1f} GB/s) | {fmt_num(a and 100 * a, 1)} | {fmt_num(b and 100 * b, 1)}"
                         f" | {fmt_num(ratio(b, a))} | | |")
                for e, sh_ in (("llama.cpp", sa), ("pio", sb)):
                    if sh_:
                        L.append(f"| — {e}'s runs: " + ", ".join(
                            f"{s['tokens_per_s']:.2f} t/s at {local_bw(s):.1f} GB/s = {100 * x:.0f}%"
                            for s, x in zip(rf[e]["samples"], sh_)) + " | | | | | |")
            for label, run in ((f"tg{args.n_gen}", pt), (f"tg{args.n_gen}, 1 thread", t1)):
                if run:
                    a, b = tps(run["llama.cpp"], "tg"), tps(run["pio"], "tg")
                    target = f"pio ≥ {100 * tgt:.0f}%" if run is pt and not rf else ""
                    L.append(f"| % of roofline, {label} ({roof:.2f} t/s) | {fmt_num(a and 100 * a / roof, 1)} | "
                             f"{fmt_num(b and 100 * b / roof, 1)} | | {target} | |")
                    la, lb = local_bw(run["llama.cpp"]), local_bw(run["pio"])
                    if la and lb:
                        L.append(f"| % of roofline, {label}, bandwidth around each run ({la:.1f} / {lb:.1f} GB/s) | "
                                 f"{fmt_num(a and 100 * a * wb / (la * 1e9), 1)} | "
                                 f"{fmt_num(b and 100 * b * wb / (lb * 1e9), 1)} | | | |")
            if td:
                kv = args.kv_bytes_per_pos * (args.depth + (args.depth_n or args.n_gen) / 2)
                roof_d = bandwidth * 1e9 / (wb + kv)
                a, b = tps(td["llama.cpp"], "tg"), tps(td["pio"], "tg")
                L.append(f"| % of roofline @ depth {args.depth} (weights + {kv / 1e9:.2f} GB f16 KV: "
                         f"{roof_d:.2f} t/s) | {fmt_num(a and 100 * a / roof_d, 1)} | "
                         f"{fmt_num(b and 100 * b / roof_d, 1)} | | | |")
            if wb != wb_model:
                L.append(f"\nweights: {wb / 1e9:.3f} GB read per token (--roofline-bytes: the active "
                         f"weights) of {wb_model / 1e9:.3f} GB (llama.cpp's model size for this GGUF)")
            else:
                L.append(f"\nweights: {wb / 1e9:.3f} GB per token (llama.cpp's model size for this GGUF)")
        errors = [(run["test"], e, run[e]["error"]) for run in (pt, t1, td, rf) if run
                  for e in ("llama.cpp", "pio") if "error" in run[e]]
        for test, eng, msg in errors:
            L.append(f"- {test}: {eng} failed: {msg}")
        L.append("")
    L.append("## Commands\n")
    L.append("```")
    L.append("python3 benchmarks/run_vs_llamacpp.py " + " ".join(shlex.quote(show(a)) for a in sys.argv[1:]))
    for r in runs:
        for e in ("llama.cpp", "pio"):
            L.append(r[e]["command"])
    L.append("```\n")
    sysinfo = next((r["llama.cpp"].get("system_info") or r["llama.cpp"].get("cpu_info") for r in runs
                    if "error" not in r["llama.cpp"]), None)
    if sysinfo:
        L.append(f"llama.cpp system / CPU info: `{sysinfo}`\n")
    return "\n".join(L) + "\n"


def local_bw(run):
    """Best bandwidth (GB/s) measured right before / after an engine run (or a
    roofline sample), or None."""
    bw = run.get("bw_around")
    return max(bw) if bw else None


def pio_dtype_note(run):
    p = run["pio"]
    if "error" in p:
        return ""
    note = f"; pio's weights: {p.get('dtypes', '?')}; pio kernels: {p.get('kernels', '?')}"
    if p.get("dtype_applied") is False:
        note += " — **--dtype not applied: pio ran the bf16 weights, so this is not a like-for-like comparison**"
    return note


if __name__ == "__main__":
    sys.exit(main())
