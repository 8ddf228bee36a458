#!/usr/bin/env bash
# `pio tokenize` against Hugging Face `tokenizers` on a generated corpus of
# ~600 KB (tools/gen_tokenizer_corpus.py: Python and C sources, scripts and
# emoji, Unicode whitespace, numbers, added tokens, long runs): every case
# must encode to exactly the reference ids, and decoding the reference ids
# must give exactly what tokenizers' decode gives. Then the same with a small
# GPT-2 style byte-level BPE trained on the corpus.
# Skips (77) when `tokenizers` is not importable or the shared Qwen3
# tokenizer (../shared/data) is absent. PIO_TOK_CORPUS_SEED picks the seed.
set -u
PIO=${PIO:-build/pio}
SRC=${PIO_SOURCE_DIR:-.}
DATA=${PIO_SHARED:-../shared}/data
TOK=$DATA/qwen3-tokenizer/tokenizer.json
SEED=${PIO_TOK_CORPUS_SEED:-1}

[ -f "$TOK" ] || { echo "SKIP: shared data ($DATA) not found"; exit 77; }
python3 -c "import tokenizers" 2>/dev/null || { echo "SKIP: python3 cannot import tokenizers (pip install tokenizers)"; exit 77; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 "$SRC/tools/gen_tokenizer_corpus.py" --tokenizer "$TOK" --seed "$SEED" "$tmp/corpus.jsonl" || { echo "FAIL: generator"; exit 1; }

start=$(date +%s.%N)
"$PIO" tokenize --tokenizer "$TOK" --jsonl < "$tmp/corpus.jsonl" > "$tmp/ids.jsonl" 2>"$tmp/err" || {
  echo "FAIL: pio tokenize --jsonl"; head -5 "$tmp/err"; exit 1; }
end=$(date +%s.%N)
"$PIO" tokenize --tokenizer "$TOK" --jsonl --decode < "$tmp/corpus.jsonl" > "$tmp/text.jsonl" 2>"$tmp/err" || {
  echo "FAIL: pio tokenize --jsonl --decode"; head -5 "$tmp/err"; exit 1; }
if grep -qE 'Sanitizer|runtime error' "$tmp/err"; then echo "FAIL: sanitizer report"; exit 1; fi

# compare TOKENIZER_JSON CASES_JSONL IDS_JSONL TEXT_JSONL START END: report and exit status
compare() {
python3 - "$@" <<'PY'
import json, sys
from tokenizers import Tokenizer
tok = Tokenizer.from_file(sys.argv[1])
cases = [json.loads(l) for l in open(sys.argv[2], encoding="utf-8")]
got_ids = [json.loads(l) for l in open(sys.argv[3], encoding="utf-8")]
got_text = [json.loads(l) for l in open(sys.argv[4], encoding="utf-8")]
if not (len(cases) == len(got_ids) == len(got_text)):
    print(f"FAIL: {len(cases)} cases but {len(got_ids)} id lines and {len(got_text)} text lines")
    sys.exit(1)
bad_enc = bad_dec = 0
for i, (c, ids, text) in enumerate(zip(cases, got_ids, got_text)):
    if ids != c["ids"]:
        bad_enc += 1
        if bad_enc <= 5:
            k = next((j for j in range(min(len(ids), len(c["ids"]))) if ids[j] != c["ids"][j]),
                     min(len(ids), len(c["ids"])))
            print(f"FAIL encode case {i} ({c['kind']}): first difference at id {k}:"
                  f" want {[tok.id_to_token(x) for x in c['ids'][max(0, k - 2):k + 3]]}"
                  f" got {[tok.id_to_token(x) for x in ids[max(0, k - 2):k + 3]]}")
    want = tok.decode(c["ids"], skip_special_tokens=False)
    if text != want:
        bad_dec += 1
        if bad_dec <= 5:
            print(f"FAIL decode case {i} ({c['kind']}): {text[:80]!r} != {want[:80]!r}")
nbytes = sum(len(c["text"].encode("utf-8")) for c in cases)
secs = float(sys.argv[6]) - float(sys.argv[5])
print(f"tokenizer_corpus: {len(cases)} cases, {nbytes} bytes, {sum(len(c['ids']) for c in cases)} ids; "
      f"{len(cases) - bad_enc} encode ok, {len(cases) - bad_dec} decode ok "
      f"(pio tokenize incl. load: {secs:.2f} s)")
sys.exit(1 if bad_enc or bad_dec else 0)
PY
}
compare "$TOK" "$tmp/corpus.jsonl" "$tmp/ids.jsonl" "$tmp/text.jsonl" "$start" "$end" || exit 1

# Second tokenizer, GPT-2 style: a small byte-level BPE trained here on the same texts,
# with NFKC, ByteLevel(add_prefix_space, GPT-2 regex) and normalized added tokens.
python3 - "$tmp/corpus.jsonl" "$tmp/bl.json" "$tmp/bl.jsonl" <<'PY' || { echo "FAIL: training the byte-level tokenizer"; exit 1; }
import json, sys
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
texts = [json.loads(l)["text"] for l in open(sys.argv[1], encoding="utf-8")]
tok = Tokenizer(models.BPE())
tok.normalizer = normalizers.NFKC()
tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True)
tok.decoder = decoders.ByteLevel()
tok.train_from_iterator(texts, trainers.BpeTrainer(
    vocab_size=2000, special_tokens=["<|endoftext|>"], show_progress=False,
    initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
tok.add_tokens(["<tool>", "ony"])
tok.save(sys.argv[2])
with open(sys.argv[3], "w", encoding="utf-8") as f:
    for t in texts + ["<|endoftext|>x ony pony <tool>"]:
        f.write(json.dumps({"kind": "bytelevel", "text": t, "ids": tok.encode(t, add_special_tokens=False).ids},
                           ensure_ascii=False) + "\n")
PY
start=$(date +%s.%N)
"$PIO" tokenize --tokenizer "$tmp/bl.json" --jsonl < "$tmp/bl.jsonl" > "$tmp/bl_ids.jsonl" 2>"$tmp/err" || {
  echo "FAIL: pio tokenize --jsonl (byte-level)"; head -5 "$tmp/err"; exit 1; }
end=$(date +%s.%N)
"$PIO" tokenize --tokenizer "$tmp/bl.json" --jsonl --decode < "$tmp/bl.jsonl" > "$tmp/bl_text.jsonl" 2>"$tmp/err" || {
  echo "FAIL: pio tokenize --jsonl --decode (byte-level)"; head -5 "$tmp/err"; exit 1; }
compare "$tmp/bl.json" "$tmp/bl.jsonl" "$tmp/bl_ids.jsonl" "$tmp/bl_text.jsonl" "$start" "$end"
