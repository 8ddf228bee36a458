#!/usr/bin/env python3
"""Write the reference vectors tests/test_quant.c checks our GGML block formats against.

    python3 tools/quant_reference.py [--out tests/fixtures/quant] [--ggml-lib PATH]

Sources of truth:
  * the `gguf` package (pip install gguf numpy): gguf.quants quantizes Q8_0 and
    Q4_0 bit-exactly like ggml's quantize_row_*_ref, and dequantizes Q8_0, Q4_0,
    Q4_K and Q6_K like ggml's dequantize_row_*;
  * ggml itself (--ggml-lib, a libggml-base.so such as the one llama-cpp-python
    builds; its ggml-quants.c must be compiled without FMA, as ggml's build does):
    quantize_row_q4_K_ref, quantize_row_q6_K_ref and quantize_row_q8_K_ref, which
    gguf does not implement (also Q8_0/Q4_0, checked equal to gguf's).
    Without --ggml-lib, existing Q4_K/Q6_K/Q8_K files are left alone (a new
    Q4_K/Q6_K file holds only dequantization cases; no Q8_K file is written).

File format (little-endian), one file per dtype (q8_0.bin, q4_0.bin, q4_k.bin, q6_k.bin, q8_k.bin):
    char magic[8] = "PIOQREF1"; u32 n_cases;
    n_cases times:
        char dtype[8]  ("Q8_0", NUL-padded)   u32 kind (0 = quantize, 1 = dequantize)
        u32 rows; u32 cols; char label[24]
        kind 0: f32 x[rows*cols]       (the input)
        u8 blocks[rows * row_bytes]    (kind 0: the quantized x; kind 1: random blocks)
        f32 y[rows*cols]               (the blocks dequantized)
Inputs are random with a fixed seed plus awkward rows: zeros, constants, huge and
tiny magnitudes (f16 scale overflow/underflow), negatives only, per-block scales,
outliers, rounding ties.
"""
import argparse
import ctypes
import os
import struct
import sys

import numpy as np

try:
    from gguf import GGMLQuantizationType as QT
    from gguf import quants as gq
except ImportError:  # pragma: no cover
    sys.exit("quant_reference.py needs the gguf package: pip install gguf numpy")

BLOCK = {"Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_K": (256, 144), "Q6_K": (256, 210), "Q8_K": (256, 292)}
QTYPE = {"Q8_0": QT.Q8_0, "Q4_0": QT.Q4_0, "Q4_K": QT.Q4_K, "Q6_K": QT.Q6_K}


def awkward_inputs(rng, qk):
    """(label, float32 [rows, cols]) cases; cols are multiples of qk."""
    c = lambda n: max(qk, (n // qk) * qk)  # noqa: E731
    cases = []
    cases.append(("normal", rng.standard_normal((3, c(256))).astype(np.float32)))
    cases.append(("weights", (rng.standard_normal((2, c(512))) * 0.02).astype(np.float32)))
    cases.append(("zeros", np.zeros((1, c(64)), np.float32)))
    cases.append(("const", np.array([[0.5] * c(96), [-3.25] * c(96)], np.float32)))
    huge = rng.standard_normal((2, c(128))).astype(np.float32)
    huge[0] *= 3e4      # scales stay finite in f16
    huge[1] *= 1e7      # Q8_0/Q4_0 scale overflows f16 -> inf
    cases.append(("huge", huge))
    tiny = rng.standard_normal((2, c(64))).astype(np.float32)
    tiny[0] *= 1e-6     # f16 subnormal scales
    tiny[1] *= 1e-12    # scales flush to zero in f16
    cases.append(("tiny", tiny))
    cases.append(("negative", rng.uniform(-2.0, -0.01, (2, c(128))).astype(np.float32)))
    bs = rng.standard_normal((2, c(512))).astype(np.float32)
    bs *= (10.0 ** rng.uniform(-4, 4, (2, c(512) // 32))).repeat(32, axis=1).astype(np.float32)
    cases.append(("blockscale", bs.astype(np.float32)))
    out = (rng.standard_normal((2, c(256))) * 0.02).astype(np.float32)
    for r in range(out.shape[0]):
        for b in range(out.shape[1] // 32):
            out[r, b * 32 + rng.integers(32)] = rng.choice([-1.0, 1.0]) * 1.0
    cases.append(("outlier", out))
    # rounding ties: a block whose largest magnitude is 127 (Q8_0 scale 1) or -8
    # (Q4_0 scale 1), the rest on half-integers
    ties = np.zeros((1, c(256)), np.float32)
    for b in range(ties.shape[1] // 32):
        blk = (rng.integers(-16, 16, 32) + 0.5).astype(np.float32)
        blk[0] = 127.0 if b % 2 == 0 else -8.0
        ties[0, b * 32:(b + 1) * 32] = blk
    cases.append(("ties", ties))
    # K-quant sub-blocks that are all positive / all zero except one value
    mixed = (rng.standard_normal((1, c(256))) * 0.05).astype(np.float32)
    mixed[0, :32] = np.abs(mixed[0, :32]) + 0.1
    mixed[0, 32:64] = 0.0
    mixed[0, 40] = 0.3
    cases.append(("subblocks", mixed))
    return cases


def random_blocks(rng, dtype, n_blocks):
    """Random but finite blocks for dequantization checks."""
    _, bb = BLOCK[dtype]
    raw = rng.integers(0, 256, (n_blocks, bb), dtype=np.uint8)
    f16 = lambda a: np.asarray(a, np.float32).astype(np.float16).view(np.uint8).reshape(n_blocks, 2)  # noqa: E731
    if dtype == "Q4_K":          # d, dmin at bytes 0..3
        raw[:, 0:2] = f16(np.abs(rng.standard_normal(n_blocks)) * 1e-3)
        raw[:, 2:4] = f16(np.abs(rng.standard_normal(n_blocks)) * 1e-3)
        raw[0, 0:4] = 0          # a zero block scale
    elif dtype == "Q6_K":        # d at bytes 208..209
        raw[:, 208:210] = f16(rng.standard_normal(n_blocks) * 1e-3)
        raw[0, 208:210] = 0
    elif dtype in ("Q8_0", "Q4_0"):
        raw[:, 0:2] = f16(rng.standard_normal(n_blocks) * 1e-2)
    return raw


class GgmlRef:
    """ggml's own quantize_row_*_ref through ctypes."""

    def __init__(self, path):
        self.lib = ctypes.CDLL(path)
        for name in ("quantize_row_q4_K_ref", "quantize_row_q6_K_ref", "quantize_row_q8_K_ref",
                     "quantize_row_q8_0_ref", "quantize_row_q4_0_ref", "dequantize_row_q8_K"):
            fn = getattr(self.lib, name)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
            fn.restype = None

    def quantize(self, dtype, x):
        qk, bb = BLOCK[dtype]
        x = np.ascontiguousarray(x, np.float32)
        out = np.zeros(x.size // qk * bb, np.uint8)
        fn = getattr(self.lib, "quantize_row_%s_ref" % dtype.lower().replace("_k", "_K"))
        fn(x.ctypes.data, out.ctypes.data, x.size)
        return out.reshape(x.shape[0], -1)

    def dequantize_q8_K(self, blocks, n):
        blocks = np.ascontiguousarray(blocks, np.uint8)
        out = np.zeros(n, np.float32)
        self.lib.dequantize_row_q8_K(blocks.ctypes.data, out.ctypes.data, n)
        return out


def record(dtype, kind, label, rows, cols, x, blocks, y):
    assert blocks.dtype == np.uint8 and y.dtype == np.float32
    out = bytearray()
    out += dtype.encode().ljust(8, b"\0")
    out += struct.pack("<III", kind, rows, cols)
    out += label.encode()[:23].ljust(24, b"\0")
    if kind == 0:
        out += np.ascontiguousarray(x, "<f4").tobytes()
    out += np.ascontiguousarray(blocks).tobytes()
    out += np.ascontiguousarray(y, "<f4").tobytes()
    return bytes(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "quant"))
    ap.add_argument("--ggml-lib", help="libggml-base.so for Q4_K/Q6_K quantization references")
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    ggml = GgmlRef(args.ggml_lib) if args.ggml_lib else None

    total = 0
    for dtype in ("Q8_0", "Q4_0", "Q4_K", "Q6_K", "Q8_K"):
        rng = np.random.default_rng(args.seed + sum(map(ord, dtype)))
        qk, bb = BLOCK[dtype]
        path = os.path.join(args.out, dtype.lower() + ".bin")
        recs = []
        if dtype in ("Q4_K", "Q6_K", "Q8_K") and not ggml and (os.path.exists(path) or dtype == "Q8_K"):
            print("%s: left as is (its quantize references need --ggml-lib)" % path)
            continue
        if dtype in ("Q8_0", "Q4_0") or ggml:
            for label, x in awkward_inputs(rng, qk):
                rows, cols = x.shape
                if dtype in ("Q8_0", "Q4_0"):
                    with np.errstate(all="ignore"):   # f16 scale overflow in "huge" is intended
                        blocks = gq.quantize(x, QTYPE[dtype]).reshape(rows, -1)
                    if ggml:   # the two references must agree
                        assert np.array_equal(blocks, ggml.quantize(dtype, x)), (dtype, label)
                else:
                    blocks = ggml.quantize(dtype, x)
                assert blocks.shape == (rows, cols // qk * bb)
                if dtype == "Q8_K":
                    y = ggml.dequantize_q8_K(blocks, rows * cols).reshape(rows, cols)
                else:
                    with np.errstate(all="ignore"):
                        y = gq.dequantize(blocks, QTYPE[dtype]).reshape(rows, cols).astype(np.float32)
                recs.append(record(dtype, 0, label, rows, cols, x, blocks, y))
        n_blocks = 8 if qk == 256 else 32
        if dtype == "Q8_K":      # activations only: no random-block case
            n_blocks = 0
        blocks = random_blocks(rng, dtype, n_blocks) if n_blocks else None
        if n_blocks:
            with np.errstate(all="ignore"):
                y = gq.dequantize(blocks.reshape(1, -1), QTYPE[dtype]).reshape(1, -1).astype(np.float32)
            recs.append(record(dtype, 1, "random_blocks", 1, n_blocks * qk, None, blocks.reshape(1, -1), y))
        data = b"PIOQREF1" + struct.pack("<I", len(recs)) + b"".join(recs)
        with open(path, "wb") as f:
            f.write(data)
        total += len(data)
        print("%s: %d cases, %d bytes%s" % (path, len(recs), len(data),
              "" if (dtype in ("Q8_0", "Q4_0") or ggml) else " (dequantize only: no --ggml-lib)"))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
