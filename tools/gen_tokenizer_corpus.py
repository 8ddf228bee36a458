#!/usr/bin/env python3
"""gen_tokenizer_corpus.py - a diverse tokenizer test corpus, encoded by HF `tokenizers`.

    python3 tools/gen_tokenizer_corpus.py --tokenizer tokenizer.json [--seed N] [--size CHARS] OUT.jsonl

Writes one JSON object per line, {"kind": ..., "text": ..., "ids": [...]}, where ids is
Tokenizer.encode(text, add_special_tokens=False).ids from the Python `tokenizers`
package (the reference implementation). tests/cli/tokenizer_corpus.sh compares
`pio tokenize` against it.

The texts are drawn, deterministically from the seed, from: chunks of the Python
standard library sources and of the C headers under /usr/include (files sorted, so the
same machine gives the same corpus); random mixes of scripts (Latin with combining
marks, CJK, kana, Hangul syllables and conjoining jamo, Cyrillic, Greek, Arabic,
Devanagari, Thai), emoji with ZWJ/skin tones/variation selectors, Unicode whitespace
runs, CRLF, numbers in several forms, English contractions in mixed case, random
characters assigned by Unicode 3.2, the tokenizer's own added tokens (whole and
truncated), and long runs of one character.
U+0000 is never generated (JSON strings holding it do not survive C string handling).
Exit status: 0 written, 2 bad arguments or `tokenizers` missing.
"""
import argparse
import glob
import json
import os
import random
import sys
import sysconfig
import unicodedata


def read_utf8(path, limit=1 << 20):
    """The file's text, or None when unreadable or not UTF-8."""
    try:
        with open(path, "rb") as f:
            data = f.read(limit)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def file_chunks(rng, files, budget, min_len=40, max_len=3000):
    """Random chunks of random files (starting anywhere, even mid-word), about budget characters."""
    got = tries = 0
    while got < budget and files and tries < 10000:
        tries += 1
        text = read_utf8(rng.choice(files))
        if not text:
            continue
        length = rng.randint(min_len, max_len)
        start = rng.randint(0, max(0, len(text) - length))
        chunk = text[start:start + length].replace("\x00", "")
        if chunk:
            got += len(chunk)
            yield chunk


def rand_range(rng, lo, hi):
    return chr(rng.randint(lo, hi))


# Pools of characters; each entry draws one short piece.
def piece_latin(rng):
    word = "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(1, 9)))
    if rng.random() < 0.3:  # combining marks, often NFC-composable
        i = rng.randrange(len(word) + 1)
        marks = "".join(rand_range(rng, 0x300, 0x36F) for _ in range(rng.randint(1, 3)))
        word = word[:i] + marks + word[i:]
    return word


def piece_accented(rng):
    return "".join(rand_range(rng, 0xC0, 0x24F) for _ in range(rng.randint(1, 6)))


def piece_cjk(rng):
    return "".join(rand_range(rng, 0x4E00, 0x9FFF) for _ in range(rng.randint(1, 12)))


def piece_kana(rng):
    s = "".join(rand_range(rng, 0x3041, 0x30FF) for _ in range(rng.randint(1, 8)))
    if rng.random() < 0.3:
        s += rng.choice(["\u3099", "\u309A"])  # combining voiced marks compose with kana
    return s


def piece_hangul(rng):
    if rng.random() < 0.5:
        return "".join(rand_range(rng, 0xAC00, 0xD7A3) for _ in range(rng.randint(1, 6)))
    # conjoining jamo L V (T): NFC composes them into syllables
    out = ""
    for _ in range(rng.randint(1, 4)):
        out += rand_range(rng, 0x1100, 0x1112) + rand_range(rng, 0x1161, 0x1175)
        if rng.random() < 0.5:
            out += rand_range(rng, 0x11A8, 0x11C2)
    return out


def piece_script(rng):
    lo, hi = rng.choice([(0x410, 0x44F), (0x391, 0x3C9), (0x627, 0x64A), (0x905, 0x939), (0xE01, 0xE2E),
                         (0x5D0, 0x5EA), (0x10D0, 0x10FA), (0x531, 0x556)])
    s = "".join(rand_range(rng, lo, hi) for _ in range(rng.randint(1, 8)))
    if lo == 0x905 and rng.random() < 0.5:
        s += rand_range(rng, 0x93E, 0x94D)  # Devanagari vowel signs and virama
    return s


def piece_emoji(rng):
    e = rand_range(rng, 0x1F300, 0x1F64F) if rng.random() < 0.6 else rand_range(rng, 0x1F900, 0x1F9FF)
    r = rng.random()
    if r < 0.2:
        e += rand_range(rng, 0x1F3FB, 0x1F3FF)  # skin tone
    elif r < 0.35:
        e += "\u200d" + rand_range(rng, 0x1F300, 0x1F64F)  # ZWJ sequence
    elif r < 0.5:
        e = rng.choice(["\u2764", "\u263a", "\u2728", "\u2705"]) + "\ufe0f"
    elif r < 0.6:
        e = rand_range(rng, 0x1F1E6, 0x1F1FF) + rand_range(rng, 0x1F1E6, 0x1F1FF)  # flag
    return e


WHITESPACE = [" ", " ", " ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2002", "\u2009", "\u200a",
              "\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\u202f", "\u205f", "\u1680",
              "\u180e", "\u200b", "\ufeff", "\x1c", "\x1f"]  # the last five are not White_Space


def piece_space(rng):
    return "".join(rng.choice(WHITESPACE) for _ in range(rng.randint(1, 6)))


def piece_number(rng):
    r = rng.random()
    if r < 0.3:
        return str(rng.randint(0, 10 ** rng.randint(1, 15)))
    if r < 0.5:
        return f"{rng.uniform(-1e6, 1e6):.{rng.randint(0, 8)}f}"
    if r < 0.6:
        return f"{rng.randint(1900, 2100)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    if r < 0.7:
        return hex(rng.randint(0, 1 << 32))
    if r < 0.8:  # other digit systems and numeric symbols (\p{N})
        lo, hi = rng.choice([(0x660, 0x669), (0xFF10, 0xFF19), (0x966, 0x96F), (0x2460, 0x2473), (0xB2, 0xB3),
                             (0xBC, 0xBE), (0x2150, 0x215E)])
        return "".join(rand_range(rng, lo, hi) for _ in range(rng.randint(1, 5)))
    return "1" * rng.randint(1, 30)


CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'M", "'LL", "'D", "'x", "'"]


def piece_contraction(rng):
    return rng.choice(["it", "you", "I", "they", "We", "DON", "can", "she", "x", ""]) + rng.choice(CONTRACTIONS)


def piece_punct(rng):
    return "".join(rng.choice("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~¿¡«»—–…·•§¶†‡※") for _ in range(rng.randint(1, 5)))


def piece_any(rng):
    """
    A random code point, BMP or not, among those assigned by Unicode 3.2 (Python's frozen
    unicodedata.ucd_3_2_0): characters added later may be unknown to one side (utf8proc,
    PCRE2 and the Rust crates each carry their own Unicode version), e.g. U+1715 (Unicode
    14, combining class 9) is reordered by HF's NFC but not by utf8proc 2.6 (Unicode 13).
    """
    while True:
        cp = rng.randint(1, 0x10FFFF) if rng.random() < 0.3 else rng.randint(1, 0xFFFF)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        if unicodedata.ucd_3_2_0.category(chr(cp)) != "Cn":
            return chr(cp)


PIECES = [(piece_latin, 20), (piece_accented, 4), (piece_cjk, 8), (piece_kana, 4), (piece_hangul, 5),
          (piece_script, 6), (piece_emoji, 5), (piece_space, 14), (piece_number, 8), (piece_contraction, 5),
          (piece_punct, 8), (piece_any, 3)]


def unicode_mix(rng, added, length):
    fns = [f for f, _ in PIECES]
    weights = [w for _, w in PIECES]
    out = []
    n = 0
    while n < length:
        if added and rng.random() < 0.03:
            tok = rng.choice(added)
            p = tok if rng.random() < 0.7 else tok[:rng.randint(1, len(tok) - 1)]
        else:
            p = rng.choices(fns, weights)[0](rng)
        out.append(p)
        n += len(p)
    return "".join(out)


def long_runs(rng):
    return [
        "a" * rng.randint(1000, 5000),
        "=" * rng.randint(500, 3000),
        " " * rng.randint(200, 2000) + "x",
        "\n" * rng.randint(50, 500),
        "".join(rand_range(rng, 0x4E00, 0x9FFF) for _ in range(rng.randint(1000, 3000))),
        "ab" * rng.randint(500, 2000),
        "\U0001F600" * rng.randint(100, 400),
        "1234567890" * rng.randint(50, 200),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", help="the .jsonl file to write")
    ap.add_argument("--tokenizer", required=True, help="tokenizer.json used for the reference ids")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--size", type=int, default=400_000, help="approximate total characters")
    args = ap.parse_args()
    try:
        from tokenizers import Tokenizer
    except ImportError:
        print("gen_tokenizer_corpus: the Python package `tokenizers` is not installed (pip install tokenizers)",
              file=sys.stderr)
        return 2
    tok = Tokenizer.from_file(args.tokenizer)
    added = sorted(t.content for t in tok.get_added_tokens_decoder().values())
    rng = random.Random(args.seed)

    stdlib = sysconfig.get_paths()["stdlib"]
    py_files = sorted(glob.glob(os.path.join(stdlib, "**", "*.py"), recursive=True))
    h_files = sorted(glob.glob("/usr/include/**/*.h", recursive=True))
    budget = args.size
    cases = []
    # a fifth each: Python sources, C headers; the rest synthetic
    for kind, files in (("python", py_files), ("c_header", h_files)):
        cases += [(kind, text) for text in file_chunks(rng, files, budget // 5)]
    for text in long_runs(rng):
        cases.append(("long_run", text))
    got = 0
    while got < budget - 2 * (budget // 5):
        text = unicode_mix(rng, added, rng.randint(1, 2000))
        cases.append(("unicode_mix", text))
        got += len(text)
    # short edge cases
    for text in ["", " ", "\n", "\r\n", "\t \t", "a", "'s", "'S", "'ll've", " 's", "<|im_start|",
                 "\u0301", "e\u0301", "\u1100\u1161\u11a8", "\u00a0x", "x\u00a0", "  \n  x", "x  ",
                 "\ufeffBOM", "\u200b\u200c\u200d", "\u180e's", " \u180e\n", "\U0010FFFF", "\ud7a3\u11a8", "Ａ１２"]:
        cases.append(("edge", text))
    cases += [("added", a) for a in added]
    cases.append(("added", "".join(added)))

    with open(args.out, "w", encoding="utf-8") as f:
        for kind, text in cases:
            ids = tok.encode(text, add_special_tokens=False).ids
            f.write(json.dumps({"kind": kind, "text": text, "ids": ids}, ensure_ascii=False) + "\n")
    total = sum(len(t.encode("utf-8")) for _, t in cases)
    print(f"gen_tokenizer_corpus: {len(cases)} cases, {total} bytes -> {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
