#!/usr/bin/env bash
# Install what building and testing Inference-PIO needs on Debian/Ubuntu:
# the compiler toolchain and the libraries we link (PCRE2, utf8proc, cJSON,
# libmicrohttpd).
# With --test also clang (fuzz targets, sanitizers), SIMDe (the AVX-512 kernels run
# under emulation by test_kernels_simd_emu), numpy and gguf (the CLI tests that
# write GGUF and MoE models), Python's `tokenizers` (the tokenizer agreement
# test), `openai` and `pytest` (the server test). Safe to run again; does nothing when all is there.
set -euo pipefail
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

pkgs="build-essential cmake pkg-config libpcre2-dev libutf8proc-dev libcjson-dev libmicrohttpd-dev python3"
[ $want_test = 1 ] && pkgs="$pkgs clang libclang-rt-dev python3-pip libsimde-dev"
missing=""
for p in $pkgs; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $missing
fi
if [ $want_test = 1 ] && ! python3 -c "import tokenizers, numpy, gguf" 2>/dev/null; then
  python3 -m pip install -q tokenizers numpy gguf || python3 -m pip install -q --break-system-packages tokenizers numpy gguf
fi
# pio serve's tests (tests/server): the official OpenAI client and pytest
if [ $want_test = 1 ] && ! python3 -c "import openai, pytest" 2>/dev/null; then
  python3 -m pip install -q openai pytest || python3 -m pip install -q --break-system-packages openai pytest
fi
