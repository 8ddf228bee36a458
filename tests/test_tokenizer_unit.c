/*
 * test_tokenizer_unit.c - the tokenizer on small tokenizer.json files built
 * here (no shared data needed): added-token flags (lstrip, rstrip,
 * single_word, normalized), Split behaviors, ByteLevel with and without
 * the GPT-2 regex, byte_fallback/unk, ignore_merges, decoding, streaming,
 * UTF-8 checking, and clear errors for bad files.
 *
 * Expected ids come from Hugging Face `tokenizers` 0.23 run on the very
 * same JSON: set PIO_TOK_DUMP_DIR=dir to write each variant's JSON there
 * (variant_<name>.json) and re-derive them with Python:
 *   Tokenizer.from_file(f).encode(text, add_special_tokens=False).ids
 */
#include "check.h"
#include "pio/tokenizer.h"

#include <stdint.h>

#include <cjson/cJSON.h>

/* ---- building tokenizer.json variants ------------------------------------ */

/* A growable string. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_cat(sbuf *b, const char *s)
{
    size_t k = strlen(s);
    if (b->n + k + 1 > b->cap) {
        b->cap = (b->n + k + 1) * 2;
        b->p = realloc(b->p, b->cap);
        if (!b->p) abort();
    }
    memcpy(b->p + b->n, s, k + 1);
    b->n += k;
}

/* JSON string literal (with quotes) of the GPT-2 byte-alphabet character of byte v. */
static void byte_char_json(unsigned v, char out[16])
{
    unsigned cp;
    bool printable = (v >= '!' && v <= '~') || (v >= 0xA1 && v <= 0xAC) || v >= 0xAE;
    if (printable) cp = v;
    else if (v <= 0x20) cp = 256 + v;
    else if (v <= 0xA0) cp = 256 + 33 + (v - 0x7F);
    else cp = 256 + 67;
    if (cp == '"' || cp == '\\') snprintf(out, 16, "\"\\%c\"", (char)cp);
    else if (cp < 0x80) snprintf(out, 16, "\"%c\"", (char)cp);
    else snprintf(out, 16, "\"\\u%04x\"", cp);
}

/* Vocab of a byte-level model: the 256 byte characters (ids 0..255) and `extra`. */
static void byte_vocab(sbuf *b, const char *extra)
{
    sb_cat(b, "\"vocab\":{");
    for (unsigned v = 0; v < 256; v++) {
        char c[16], e[48];
        byte_char_json(v, c);
        snprintf(e, sizeof e, "%s%s:%u", v ? "," : "", c, v);
        sb_cat(b, e);
    }
    sb_cat(b, extra);
    sb_cat(b, "}");
}

#define QWEN_REGEX \
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}| ?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+"

#define BYTE_EXTRA \
    ",\"\\u0120t\":256,\"he\":257,\"\\u0120the\":258,\"in\":259,\"ing\":260,\"\\u0120s\":261," \
    "\"\\u0120\\u0120\":262,\"\\u0120\\u0120\\u0120\\u0120\":263,\"ll\":264,\"ell\":265,\"aa\":266"

#define MODEL_HEAD \
    "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"continuing_subword_prefix\":\"\"," \
    "\"end_of_word_suffix\":\"\",\"fuse_unk\":false,\"byte_fallback\":false,\"ignore_merges\":false,"

/* Variant "qwen": Qwen-style Split + ByteLevel, NFC, added tokens with every flag. */
static char *variant_qwen(void)
{
    sbuf b = { 0 };
    sb_cat(&b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":["
               "{\"id\":267,\"content\":\"<mask>\",\"single_word\":false,\"lstrip\":true,\"rstrip\":true,\"normalized\":false,\"special\":true},"
               "{\"id\":268,\"content\":\"ony\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
               "{\"id\":269,\"content\":\"e\\u0301t\\u00e9\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":true,\"special\":false},"
               "{\"id\":270,\"content\":\"[L]\",\"single_word\":false,\"lstrip\":true,\"rstrip\":false,\"normalized\":false,\"special\":false},"
               "{\"id\":271,\"content\":\"[R]\",\"single_word\":false,\"lstrip\":false,\"rstrip\":true,\"normalized\":false,\"special\":false},"
               "{\"id\":272,\"content\":\"<sw>\",\"single_word\":true,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":false},"
               "{\"id\":273,\"content\":\"<s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
               "\"normalizer\":{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"NFC\"}]},"
               "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
               "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"" QWEN_REGEX "\"},\"behavior\":\"Isolated\",\"invert\":false},"
               "{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false}]},"
               "\"post_processor\":null,"
               "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":false,\"use_regex\":false},"
               MODEL_HEAD);
    byte_vocab(&b, BYTE_EXTRA);
    sb_cat(&b, ",\"merges\":[[\"\\u0120\",\"t\"],[\"h\",\"e\"],[\"\\u0120t\",\"he\"],[\"i\",\"n\"],[\"in\",\"g\"],"
               "[\"\\u0120\",\"s\"],[\"\\u0120\",\"\\u0120\"],[\"\\u0120\\u0120\",\"\\u0120\\u0120\"],"
               "[\"l\",\"l\"],[\"e\",\"ll\"],[\"a\",\"a\"]]}}");
    return b.p;
}

/* Variant "gpt2": ByteLevel pre-tokenizer with prefix space and the GPT-2 regex; "a b" merges. */
static char *variant_gpt2(void)
{
    sbuf b = { 0 };
    sb_cat(&b, "{\"version\":\"1.0\",\"added_tokens\":["
               "{\"id\":267,\"content\":\"<|endoftext|>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,\"special\":true}],"
               "\"normalizer\":null,"
               "\"pre_tokenizer\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
               "\"decoder\":{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true},"
               MODEL_HEAD);
    byte_vocab(&b, BYTE_EXTRA);
    sb_cat(&b, ",\"merges\":[\"\\u0120 t\",\"h e\",\"\\u0120t he\",\"i n\",\"in g\",\"\\u0120 s\","
               "\"\\u0120 \\u0120\",\"\\u0120\\u0120 \\u0120\\u0120\",\"l l\",\"e ll\",\"a a\"]}}");
    return b.p;
}

/* Variants "c_<behavior>": character-level BPE (no byte level), byte_fallback, fused unk. */
static char *variant_chars(const char *behavior, bool invert, bool ignore_merges)
{
    sbuf b = { 0 };
    char tmp[512];
    sb_cat(&b, "{\"version\":\"1.0\",\"added_tokens\":[],\"normalizer\":{\"type\":\"NFKC\"},");
    snprintf(tmp, sizeof tmp,
             "\"pre_tokenizer\":{\"type\":\"Sequence\",\"pretokenizers\":["
             "{\"type\":\"Split\",\"pattern\":{\"String\":\" \"},\"behavior\":\"%s\",\"invert\":%s},"
             "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"[0-9]+\"},\"behavior\":\"Isolated\",\"invert\":false}]},",
             behavior, invert ? "true" : "false");
    sb_cat(&b, tmp);
    snprintf(tmp, sizeof tmp,
             "\"decoder\":null,\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\","
             "\"continuing_subword_prefix\":null,\"end_of_word_suffix\":null,\"fuse_unk\":true,"
             "\"byte_fallback\":true,\"ignore_merges\":%s,", ignore_merges ? "true" : "false");
    sb_cat(&b, tmp);
    sb_cat(&b, "\"vocab\":{\"<unk>\":0,\"a\":1,\"b\":2,\"c\":3,\"ab\":4,\"abc\":5,\" \":6,\"<0xC3>\":7,"
               "\"<0xA9>\":8,\"1\":9,\"2\":10,\"12\":11,\"x\":12,\"y\":13},"
               "\"merges\":[\"a b\",\"1 2\"]}}");
    return b.p;
}

/* ---- expected results (from HF tokenizers 0.23.3) -------------------------- */

typedef struct tcase {
    const char *text;
    const char *ids;        /* JSON array */
    const char *decoded;    /* decode(ids, skip_special=false) */
} tcase;

static const tcase cases_qwen[] = {
/* BEGIN qwen */
    { "the thing <mask> x", "[116,257,256,104,260,267,120]", "the thing<mask>x" },
    { "Hello<mask>world", "[72,265,111,267,119,111,114,108,100]", "Hello<mask>world" },
    { "a <mask>\t\tb <mask>", "[97,267,98,267]", "a<mask>b<mask>" },
    { "  <mask>  <mask>  ", "[267,267]", "<mask><mask>" },
    { "pony ony tony ony.", "[112,111,110,121,32,268,256,111,110,121,32,268,46]", "pony ony tony ony." },
    { "ony", "[268]", "ony" },
    { "\303\251ony", "[195,169,111,110,121]", "\303\251ony" },
    { "\303\251t\303\251", "[269]", "\357\277\275t\357\277\275" },
    { "e\314\201te\314\201 x\303\251t\303\251y", "[269,32,120,269,121]", "\357\277\275t\357\277\275 x\357\277\275t\357\277\275y" },
    { "a[L]b  [L]c [R]  d[R]e", "[97,270,98,270,99,32,271,100,271,101]", "a[L]b[L]c [R]d[R]e" },
    { "<sw> x<sw> <sw>y _<sw> <sw>.", "[272,32,120,60,115,119,62,32,60,115,119,62,121,32,95,60,115,119,62,32,272,46]", "<sw> x<sw> <sw>y _<sw> <sw>." },
    { "<s <sw> <sw", "[273,32,272,32,273,119]", "<s <sw> <sw" },
    { "the  thing   aaa aaaa", "[116,257,32,256,104,260,262,32,266,97,32,266,266]", "the  thing   aaa aaaa" },
    { "\303\251 composed vs e\314\201 decomposed", "[195,169,32,99,111,109,112,111,115,101,100,32,118,115,32,195,169,32,100,101,99,111,109,112,111,115,101,100]", "\303\251 composed vs \303\251 decomposed" },
    { "", "[]", "" },
    { "   ", "[262,32]", "   " },
    { "I'm sure you've SEEN it's 123 4567", "[73,39,109,261,117,114,101,32,121,111,117,39,118,101,32,83,69,69,78,32,105,116,39,115,32,49,50,51,32,52,53,54,55]", "I'm sure you've SEEN it's 123 4567" },
    { "emoji \360\237\230\200\360\237\221\215\360\237\217\275 \344\270\255\346\226\207 \355\225\234\352\265\255\354\226\264", "[101,109,111,106,105,32,240,159,152,128,240,159,145,141,240,159,143,189,32,228,184,173,230,150,135,32,237,149,156,234,181,173,236,150,180]", "emoji \360\237\230\200\360\237\221\215\360\237\217\275 \344\270\255\346\226\207 \355\225\234\352\265\255\354\226\264" },
    { "line\r\nbreak\n\n  \tend", "[108,259,101,13,10,98,114,101,97,107,10,10,262,9,101,110,100]", "line\r\nbreak\n\n  \tend" },
    { "<mask>", "[267]", "<mask>" },
    { "<mask><mask>", "[267,267]", "<mask><mask>" },
    { "x\343\200\200<mask>\342\200\200y", "[120,267,121]", "x<mask>y" },
    { "<m", "[60,109]", "<m" },
    { "tell hello well\n", "[116,265,32,257,264,111,32,119,265,10]", "tell hello well\n" },
    { "\341\240\216's \341\240\216\341\240\216 x", "[225,160,142,39,115,32,225,160,142,225,160,142,32,120]", "\341\240\216's \341\240\216\341\240\216 x" },
/* END qwen */
};
static const tcase cases_gpt2[] = {
/* BEGIN gpt2 */
    { "the thing", "[258,256,104,260]", " the thing" },
    { " the thing", "[258,256,104,260]", " the thing" },
    { "Hello world<|endoftext|>the end", "[32,72,265,111,32,119,111,114,108,100,267,258,32,101,110,100]", " Hello world<|endoftext|> the end" },
    { "<|endoftext|>", "[267]", "<|endoftext|>" },
    { "  multiple   spaces  ", "[32,32,109,117,108,116,105,112,108,101,262,261,112,97,99,101,115,262]", "  multiple   spaces  " },
    { "it's 12345 ok!!", "[32,105,116,39,115,32,49,50,51,52,53,32,111,107,33,33]", " it's 12345 ok!!" },
    { "aaa aaaaa", "[32,266,97,32,266,266,97]", " aaa aaaaa" },
    { "", "[]", "" },
    { "\303\251", "[32,195,169]", " \303\251" },
    { "tab\tnew\nline", "[256,97,98,9,110,101,119,10,108,259,101]", " tab\tnew\nline" },
    { "<|endoftext|><|endoftext|> the", "[267,267,258]", "<|endoftext|><|endoftext|> the" },
    { "a\341\240\216's  \341\240\216 b \343\200\200\343\200\200", "[32,97,225,160,142,39,115,32,32,225,160,142,32,98,32,227,128,128,227,128,128]", " a\341\240\216's  \341\240\216 b \343\200\200\343\200\200" },
/* END gpt2 */
};
static const tcase cases_chars[] = {
/* BEGIN chars */
    /* chars_Removed */
    { "ab abc  12 x", "[4,4,3,11,12]", "ab ab c 12 x" },
    { "abc123 yx", "[4,3,11,0,13,12]", "ab c 12 <unk> y x" },
    { " a  b ", "[1,2]", "a b" },
    { "\303\251\342\202\254\342\202\254 x", "[7,8,0,12]", "<0xC3> <0xA9> <unk> x" },
    { "\342\221\240\342\221\241 c", "[11,3]", "12 c" },
    { "zzz ab", "[0,4]", "<unk> ab" },
    { "abc", "[4,3]", "ab c" },
    { "  ", "[]", "" },
    /* chars_Isolated */
    { "ab abc  12 x", "[4,6,4,3,6,6,11,6,12]", "ab   ab c     12   x" },
    { "abc123 yx", "[4,3,11,0,6,13,12]", "ab c 12 <unk>   y x" },
    { " a  b ", "[6,1,6,6,2,6]", "  a     b  " },
    { "\303\251\342\202\254\342\202\254 x", "[7,8,0,6,12]", "<0xC3> <0xA9> <unk>   x" },
    { "\342\221\240\342\221\241 c", "[11,6,3]", "12   c" },
    { "zzz ab", "[0,6,4]", "<unk>   ab" },
    { "abc", "[4,3]", "ab c" },
    { "  ", "[6,6]", "   " },
    /* chars_MergedWithPrevious */
    { "ab abc  12 x", "[4,6,4,3,6,6,11,6,12]", "ab   ab c     12   x" },
    { "abc123 yx", "[4,3,11,0,6,13,12]", "ab c 12 <unk>   y x" },
    { " a  b ", "[6,1,6,6,2,6]", "  a     b  " },
    { "\303\251\342\202\254\342\202\254 x", "[7,8,0,6,12]", "<0xC3> <0xA9> <unk>   x" },
    { "\342\221\240\342\221\241 c", "[11,6,3]", "12   c" },
    { "zzz ab", "[0,6,4]", "<unk>   ab" },
    { "abc", "[4,3]", "ab c" },
    { "  ", "[6,6]", "   " },
    /* chars_MergedWithNext */
    { "ab abc  12 x", "[4,6,4,3,6,6,11,6,12]", "ab   ab c     12   x" },
    { "abc123 yx", "[4,3,11,0,6,13,12]", "ab c 12 <unk>   y x" },
    { " a  b ", "[6,1,6,6,2,6]", "  a     b  " },
    { "\303\251\342\202\254\342\202\254 x", "[7,8,0,6,12]", "<0xC3> <0xA9> <unk>   x" },
    { "\342\221\240\342\221\241 c", "[11,6,3]", "12   c" },
    { "zzz ab", "[0,6,4]", "<unk>   ab" },
    { "abc", "[4,3]", "ab c" },
    { "  ", "[6,6]", "   " },
    /* chars_Contiguous */
    { "ab abc  12 x", "[4,6,4,3,6,6,11,6,12]", "ab   ab c     12   x" },
    { "abc123 yx", "[4,3,11,0,6,13,12]", "ab c 12 <unk>   y x" },
    { " a  b ", "[6,1,6,6,2,6]", "  a     b  " },
    { "\303\251\342\202\254\342\202\254 x", "[7,8,0,6,12]", "<0xC3> <0xA9> <unk>   x" },
    { "\342\221\240\342\221\241 c", "[11,6,3]", "12   c" },
    { "zzz ab", "[0,6,4]", "<unk>   ab" },
    { "abc", "[4,3]", "ab c" },
    { "  ", "[6,6]", "   " },
    /* chars_Removed_invert */
    { "ab abc  12 x", "[6,6,6,6]", "       " },
    { "abc123 yx", "[6]", " " },
    { " a  b ", "[6,6,6,6]", "       " },
    { "\303\251\342\202\254\342\202\254 x", "[6]", " " },
    { "\342\221\240\342\221\241 c", "[6]", " " },
    { "zzz ab", "[6]", " " },
    { "abc", "[]", "" },
    { "  ", "[6,6]", "   " },
    /* chars_Isolated_ignore_merges */
    { "ab abc  12 x", "[4,6,5,6,6,11,6,12]", "ab   abc     12   x" },
    { "abc123 yx", "[5,11,0,6,13,12]", "abc 12 <unk>   y x" },
    { " a  b ", "[6,1,6,6,2,6]", "  a     b  " },
    { "\303\251\342\202\254\342\202\254 x", "[7,8,0,6,12]", "<0xC3> <0xA9> <unk>   x" },
    { "\342\221\240\342\221\241 c", "[11,6,3]", "12   c" },
    { "zzz ab", "[0,6,4]", "<unk>   ab" },
    { "abc", "[5]", "abc" },
    { "  ", "[6,6]", "   " },
/* END chars */
};

/* ---- checks ------------------------------------------------------------- */

static char *dump_dir;

static void dump_variant(const char *name, const char *json)
{
    if (!dump_dir) return;
    char path[1024];
    snprintf(path, sizeof path, "%s/variant_%s.json", dump_dir, name);
    FILE *f = fopen(path, "w");
    if (!f) { perror(path); return; }
    fputs(json, f);
    fclose(f);
}

/* Encode/decode/stream every case of `cases` with the tokenizer from `json`. */
static void check_variant(const char *name, char *json, const tcase *cases, size_t n)
{
    pio_tokenizer *tok = NULL;
    dump_variant(name, json);
    CHECK_OK(pio_tokenizer_load_from_memory(json, strlen(json), name, &tok));
    free(json);
    if (!tok) return;
    for (size_t i = 0; i < n; i++) {
        const tcase *c = &cases[i];
        cJSON *want = cJSON_Parse(c->ids);
        int32_t *ids = NULL;
        size_t n_ids = 0;
        CHECK(want != NULL, "%s case %zu: bad expected ids", name, i);
        pio_status st = pio_tokenizer_encode(tok, c->text, strlen(c->text), &ids, &n_ids);
        CHECK(st == PIO_STATUS_OK, "%s case %zu: %s", name, i, pio_last_error());
        bool same = want && (size_t)cJSON_GetArraySize(want) == n_ids;
        for (size_t k = 0; same && k < n_ids; k++)
            same = cJSON_GetArrayItem(want, (int)k)->valueint == ids[k];
        if (!same) {
            fprintf(stderr, "%s case %zu text \"%s\": got [", name, i, c->text);
            for (size_t k = 0; k < n_ids; k++) fprintf(stderr, k ? ",%d" : "%d", ids[k]);
            fprintf(stderr, "] want %s\n", c->ids);
        }
        CHECK(same, "%s case %zu: ids differ", name, i);

        char *text = NULL;
        size_t len = 0;
        CHECK_OK(pio_tokenizer_decode(tok, ids, n_ids, false, &text, &len));
        CHECK(text && len == strlen(c->decoded) && !memcmp(text, c->decoded, len),
              "%s case %zu: decoded \"%s\", want \"%s\"", name, i, text ? text : "(null)", c->decoded);

        /* streaming gives the same text */
        pio_detok *d = NULL;
        CHECK_OK(pio_detok_new(tok, false, &d));
        sbuf acc = { 0 };
        sb_cat(&acc, "");
        for (size_t k = 0; d && k < n_ids; k++) {
            const char *piece;
            size_t plen;
            CHECK_OK(pio_detok_push(d, ids[k], &piece, &plen));
            CHECK(strlen(piece) == plen, "piece length");
            sb_cat(&acc, piece);
        }
        if (d) {
            const char *piece;
            size_t plen;
            CHECK_OK(pio_detok_flush(d, &piece, &plen));
            sb_cat(&acc, piece);
        }
        CHECK(text && !strcmp(acc.p, text), "%s case %zu: stream \"%s\" != one-shot \"%s\"", name, i, acc.p,
              text ? text : "");
        free(acc.p);
        pio_detok_free(d);
        free(text);
        free(ids);
        cJSON_Delete(want);
    }
    pio_tokenizer_free(tok);
}

/* Loading `json` fails with status `want` and a message containing `needle`. */
static void check_bad(const char *json, pio_status want, const char *needle)
{
    pio_tokenizer *tok = (pio_tokenizer *)1;
    pio_status st = pio_tokenizer_load_from_memory(json, strlen(json), "bad.json", &tok);
    CHECK(st == want, "load of %.60s...: status %s, want %s (%s)", json, pio_status_name(st),
          pio_status_name(want), pio_last_error());
    CHECK(tok == NULL, "failed load leaves *out NULL");
    CHECK(strstr(pio_last_error(), needle) != NULL, "message \"%s\" lacks \"%s\"", pio_last_error(), needle);
    CHECK(strstr(pio_last_error(), "bad.json") != NULL, "message \"%s\" names no file", pio_last_error());
}

static void check_bad_files(void)
{
    check_bad("{\"model\": {\"vocab\": {}", PIO_STATUS_ERR_FORMAT, "invalid JSON");
    check_bad("", PIO_STATUS_ERR_FORMAT, "invalid JSON");
    check_bad("[1,2]", PIO_STATUS_ERR_FORMAT, "not a JSON object");
    check_bad("{\"added_tokens\": []}", PIO_STATUS_ERR_MISSING, "model");
    check_bad("{\"model\": 3}", PIO_STATUS_ERR_FORMAT, "model");
    check_bad("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", PIO_STATUS_ERR_UNSUPPORTED, "WordPiece");
    check_bad("{\"model\": {\"type\": \"BPE\"}}", PIO_STATUS_ERR_MISSING, "model.vocab");
    check_bad("{\"model\": {\"vocab\": [\"a\"]}}", PIO_STATUS_ERR_FORMAT, "model.vocab");
    check_bad("{\"model\": {\"vocab\": {\"a\": \"0\"}}}", PIO_STATUS_ERR_FORMAT, "model.vocab");
    check_bad("{\"model\": {\"vocab\": {\"a\": -1}}}", PIO_STATUS_ERR_FORMAT, "model.vocab");
    check_bad("{\"model\": {\"vocab\": {\"a\": 1.5}}}", PIO_STATUS_ERR_FORMAT, "model.vocab");
    check_bad("{\"model\": {\"vocab\": {\"a\": 1e12}}}", PIO_STATUS_ERR_FORMAT, "model.vocab");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": {}}}", PIO_STATUS_ERR_FORMAT, "model.merges");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a b\"]}}", PIO_STATUS_ERR_FORMAT,
              "model.merges[0]: 'b' is not in the vocabulary");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}, \"merges\": [\"a a\"]}}", PIO_STATUS_ERR_FORMAT,
              "model.merges[0]: 'aa'");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0, \"aa\": 1}, \"merges\": [\"aa\"]}}", PIO_STATUS_ERR_FORMAT,
              "model.merges[0]");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0, \"aa\": 1}, \"merges\": [[\"a\", 1]]}}", PIO_STATUS_ERR_FORMAT,
              "model.merges[0]");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}, \"unk_token\": \"<unk>\"}}", PIO_STATUS_ERR_FORMAT,
              "unk_token");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}, \"byte_fallback\": \"yes\"}}", PIO_STATUS_ERR_FORMAT,
              "model.byte_fallback");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}, \"dropout\": 0.1}}", PIO_STATUS_ERR_UNSUPPORTED, "dropout");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": {}}", PIO_STATUS_ERR_FORMAT, "added_tokens");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": \"1\", \"content\": \"x\"}]}",
              PIO_STATUS_ERR_FORMAT, "added_tokens[0]");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": 1}]}", PIO_STATUS_ERR_MISSING,
              "added_tokens[0].content");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"added_tokens\": [{\"id\": 1, \"content\": \"x\", \"special\": 1}]}",
              PIO_STATUS_ERR_FORMAT, "added_tokens[0].special");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"normalizer\": {\"type\": \"Lowercase\"}}",
              PIO_STATUS_ERR_UNSUPPORTED, "Lowercase");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": 1}}",
              PIO_STATUS_ERR_FORMAT, "normalizer.normalizers");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Whitespace\"}}",
              PIO_STATUS_ERR_UNSUPPORTED, "Whitespace");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
              "{\"Regex\": \"(a\"}, \"behavior\": \"Isolated\", \"invert\": false}}",
              PIO_STATUS_ERR_FORMAT, "pre_tokenizer.pattern.Regex: regex does not compile");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": "
              "{\"Regex\": \"a\"}, \"behavior\": \"Sideways\", \"invert\": false}}",
              PIO_STATUS_ERR_FORMAT, "Sideways");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
              "{\"type\": \"ByteLevel\"}, {\"type\": \"Split\", \"pattern\": {\"String\": \"a\"}, \"behavior\": \"Isolated\"}]}}",
              PIO_STATUS_ERR_UNSUPPORTED, "after ByteLevel");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"decoder\": {\"type\": \"WordPiece\"}}",
              PIO_STATUS_ERR_UNSUPPORTED, "decoder");
    check_bad("{\"model\": {\"vocab\": {\"a\": 0}}, \"decoder\": {\"kind\": \"ByteLevel\"}}",
              PIO_STATUS_ERR_MISSING, "decoder.type");

    /* missing files name the path */
    pio_tokenizer *tok = (pio_tokenizer *)1;
    CHECK(pio_tokenizer_load("/nonexistent/tokenizer.json", &tok) == PIO_STATUS_ERR_IO, "missing file");
    CHECK(tok == NULL && strstr(pio_last_error(), "/nonexistent/tokenizer.json"), "%s", pio_last_error());
    CHECK(pio_tokenizer_load("/", &tok) == PIO_STATUS_ERR_IO, "directory without tokenizer.json");
    CHECK(strstr(pio_last_error(), "//tokenizer.json") || strstr(pio_last_error(), "/tokenizer.json"), "%s",
          pio_last_error());
}

static void check_utf8(void)
{
    static const struct { const char *s; size_t n; int64_t bad; } cases[] = {
        { "", 0, -1 },
        { "plain ascii text, long enough for the 8-byte path", 50, -1 },
        { "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", 9, -1 },   /* é € 😀 */
        { "ab\xC3", 3, 2 },                                    /* truncated at end */
        { "ab\xC3(", 4, 2 },                                   /* bad continuation */
        { "\xC0\xAF", 2, 0 },                                  /* overlong */
        { "x\xE0\x80\xAF", 4, 1 },                             /* overlong 3-byte */
        { "xx\xED\xA0\x80", 5, 2 },                            /* surrogate */
        { "\xF4\x90\x80\x80", 4, 0 },                          /* above U+10FFFF */
        { "12345678\xFF", 9, 8 },
        { "\x80", 1, 0 },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CHECK(pio_utf8_check(cases[i].s, cases[i].n) == cases[i].bad, "utf8 case %zu: %lld", i,
              (long long)pio_utf8_check(cases[i].s, cases[i].n));
}

/* Streaming with a byte-level tokenizer: characters split across tokens. */
static void check_stream_bytes(void)
{
    char *json = variant_qwen();
    pio_tokenizer *tok = NULL;
    CHECK_OK(pio_tokenizer_load_from_memory(json, strlen(json), "stream", &tok));
    free(json);
    if (!tok) return;
    /* "a€😀b" as one token per byte: this vocab gives byte v the id v */
    const uint8_t bytes[] = { 'a', 0xE2, 0x82, 0xAC, 0xF0, 0x9F, 0x98, 0x80, 'b' };
    int32_t ids[sizeof bytes];
    for (size_t i = 0; i < sizeof bytes; i++) ids[i] = (int32_t)bytes[i];
    pio_detok *d = NULL;
    CHECK_OK(pio_detok_new(tok, false, &d));
    const char *p;
    size_t n;
    const size_t want_len[] = { 1, 0, 0, 3, 0, 0, 0, 4, 1 };
    for (size_t i = 0; d && i < sizeof bytes; i++) {
        CHECK_OK(pio_detok_push(d, ids[i], &p, &n));
        CHECK(n == want_len[i], "push %zu gave %zu bytes, want %zu", i, n, want_len[i]);
    }
    /* an incomplete character at the end becomes U+FFFD on flush */
    CHECK_OK(pio_detok_push(d, 0xE2, &p, &n));
    CHECK(n == 0, "held back");
    CHECK_OK(pio_detok_flush(d, &p, &n));
    CHECK(n == 3 && !memcmp(p, "\xEF\xBF\xBD", 3), "flush gives U+FFFD");
    /* an impossible byte comes out at once as U+FFFD, and a broken sequence as one U+FFFD */
    CHECK_OK(pio_detok_push(d, 0xFF, &p, &n));
    CHECK(n == 3 && !memcmp(p, "\xEF\xBF\xBD", 3), "0xFF gives U+FFFD");
    CHECK_OK(pio_detok_push(d, 0xE2, &p, &n));
    CHECK_OK(pio_detok_push(d, 0x82, &p, &n));
    CHECK_OK(pio_detok_push(d, 'x', &p, &n));
    CHECK(n == 4 && !memcmp(p, "\xEF\xBF\xBDx", 4), "E2 82 x gives U+FFFD x (%zu bytes)", n);
    /* reset drops pending bytes */
    CHECK_OK(pio_detok_push(d, 0xC3, &p, &n));
    pio_detok_reset(d);
    CHECK_OK(pio_detok_push(d, 'y', &p, &n));
    CHECK(n == 1 && p[0] == 'y', "reset");
    /* bad ids are errors */
    CHECK(pio_detok_push(d, 99999, &p, &n) == PIO_STATUS_ERR_INVALID_ARG, "bad id in stream");
    CHECK(pio_detok_push(d, -1, &p, &n) == PIO_STATUS_ERR_INVALID_ARG, "negative id in stream");
    pio_detok_free(d);

    /* skip_special drops <mask> (special) but keeps [L] (not special) */
    int32_t sp[] = { 'a', 267, 270, 'b' };
    char *text;
    size_t len;
    CHECK_OK(pio_tokenizer_decode(tok, sp, 4, true, &text, &len));
    CHECK(text && !strcmp(text, "a[L]b"), "skip_special: \"%s\"", text);
    free(text);
    CHECK_OK(pio_tokenizer_decode(tok, sp, 4, false, &text, &len));
    CHECK(text && !strcmp(text, "a<mask>[L]b"), "no skip: \"%s\"", text);
    free(text);
    int32_t bad[] = { 1, 274 };
    CHECK(pio_tokenizer_decode(tok, bad, 2, false, &text, &len) == PIO_STATUS_ERR_INVALID_ARG, "hole id");
    CHECK(strstr(pio_last_error(), "274") != NULL, "%s", pio_last_error());

    /* lookups */
    CHECK(pio_tokenizer_n_vocab(tok) == 274, "n_vocab %d", pio_tokenizer_n_vocab(tok));
    CHECK(pio_tokenizer_token_to_id(tok, "<mask>") == 267, "token_to_id added");
    CHECK(pio_tokenizer_token_to_id(tok, "\xC4\xA0the") == 258, "token_to_id vocab");
    CHECK(pio_tokenizer_token_to_id(tok, "nope") == -1, "token_to_id missing");
    CHECK(pio_tokenizer_id_to_token(tok, 258) && !strcmp(pio_tokenizer_id_to_token(tok, 258), "\xC4\xA0the"),
          "id_to_token");
    CHECK(pio_tokenizer_id_to_token(tok, 269) && !strcmp(pio_tokenizer_id_to_token(tok, 269), "\xC3\xA9t\xC3\xA9"),
          "id_to_token of a normalized added token gives its normalized content (as HF)");
    CHECK(pio_tokenizer_token_to_id(tok, "e\xCC\x81t\xC3\xA9") == 269, "token_to_id takes the content as written");
    CHECK(pio_tokenizer_id_to_token(tok, 274) == NULL && pio_tokenizer_id_to_token(tok, -5) == NULL, "no token");
    CHECK(pio_tokenizer_is_special(tok, 267) && !pio_tokenizer_is_special(tok, 270) &&
          !pio_tokenizer_is_special(tok, 5), "is_special");

    /* invalid UTF-8 input */
    int32_t *ids2;
    size_t n2;
    CHECK(pio_tokenizer_encode(tok, "ok \xE2\x82", 5, &ids2, &n2) == PIO_STATUS_ERR_UTF8, "bad utf8");
    CHECK(strstr(pio_last_error(), "invalid UTF-8 at byte offset 3") != NULL, "%s", pio_last_error());
    CHECK(ids2 == NULL && n2 == 0, "no output on error");
    /* empty input gives no ids (and a freeable pointer) */
    CHECK_OK(pio_tokenizer_encode(tok, "", 0, &ids2, &n2));
    CHECK(n2 == 0, "empty");
    free(ids2);
    pio_tokenizer_free(tok);
}

int main(void)
{
    dump_dir = getenv("PIO_TOK_DUMP_DIR");
    check_utf8();
    check_bad_files();
    check_stream_bytes();
    check_variant("qwen", variant_qwen(), cases_qwen, sizeof cases_qwen / sizeof cases_qwen[0]);
    check_variant("gpt2", variant_gpt2(), cases_gpt2, sizeof cases_gpt2 / sizeof cases_gpt2[0]);
    static const char *behaviors[] = { "Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous" };
    size_t per = sizeof cases_chars / sizeof cases_chars[0] / 7;
    for (size_t b = 0; b < 7; b++) {
        char name[64];
        const char *beh = behaviors[b < 5 ? b : b - 5];
        bool invert = b == 5, ignore = b == 6;
        snprintf(name, sizeof name, "chars_%s%s%s", beh, invert ? "_invert" : "", ignore ? "_ignore_merges" : "");
        check_variant(name, variant_chars(beh, invert, ignore), cases_chars + b * per, per);
    }
    return check_report("test_tokenizer_unit");
}
