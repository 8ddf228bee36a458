/*
 * test_gguf.c - the GGUF reader, writer and model mapping:
 *   - a valid file built byte by byte reads back (keys, arrays, tensors with
 *     their shapes reversed, data in place), from memory and from a file;
 *   - every malformed case is refused with a message naming the file and the
 *     key or tensor (bad magic, versions, truncation at every byte, absurd
 *     counts and lengths, bad types, nested arrays, misaligned or
 *     out-of-range or overlapping tensors, unknown and unsupported types);
 *   - the writer's files read back; tensor names map both ways;
 *   - a fixture model converted to GGUF gives the same config, generation
 *     eos, weights (by HF name) and tokenizer as its directory;
 *   - with the shared data: the real Qwen3 vocabulary written to GGUF gives a
 *     tokenizer that encodes every golden case as tokenizer.json does.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pio/formats.h"
#include "pio/tokenizer.h"
#include "check.h"

#include <cjson/cJSON.h>
#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

static char g_tmp[256];

/* ---- helpers ---------------------------------------------------------------- */

static void check_msg(int line, const char *sub)
{
    CHECK(strstr(pio_last_error(), sub) != NULL, "line %d: message \"%s\" lacks \"%s\"", line, pio_last_error(), sub);
}

static const char *tpath(const char *rel)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", g_tmp, rel);
    return b;
}

static int rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

/* A growing byte buffer for building GGUF images. */
typedef struct gbuf {
    uint8_t *p;
    size_t n, cap;
} gbuf;

static void put(gbuf *b, const void *d, size_t n)
{
    if (b->cap - b->n < n) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap - b->n < n) cap *= 2;
        b->p = realloc(b->p, cap);
        if (!b->p) { perror("realloc"); exit(2); }
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void put_le(gbuf *b, uint64_t v, int n)
{
    uint8_t x[8];
    for (int i = 0; i < n; i++) x[i] = (uint8_t)(v >> (8 * i));
    put(b, x, (size_t)n);
}
static void u32(gbuf *b, uint32_t v) { put_le(b, v, 4); }
static void u64(gbuf *b, uint64_t v) { put_le(b, v, 8); }
static void str(gbuf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void header(gbuf *b, uint32_t version, uint64_t n_tensors, uint64_t n_kv)
{
    put(b, "GGUF", 4);
    u32(b, version);
    u64(b, n_tensors);
    u64(b, n_kv);
}
static void kv_str(gbuf *b, const char *k, const char *v) { str(b, k); u32(b, PIO_GGUF_STRING); str(b, v); }
static void kv_u32(gbuf *b, const char *k, uint32_t v) { str(b, k); u32(b, PIO_GGUF_UINT32); u32(b, v); }
static void tinfo(gbuf *b, const char *name, uint32_t nd, const uint64_t *ne, uint32_t type, uint64_t off)
{
    str(b, name);
    u32(b, nd);
    for (uint32_t i = 0; i < nd; i++) u64(b, ne[i]);
    u32(b, type);
    u64(b, off);
}
static void pad(gbuf *b, size_t a)
{
    static const uint8_t z[64];
    put(b, z, (a - b->n % a) % a);
}
static void zeros(gbuf *b, size_t n)
{
    for (size_t i = 0; i < n; i++) put(b, "\0", 1);
}

/* Parse b (an exact-size copy, so ASan sees overreads). */
static pio_status parse(const gbuf *b, size_t len, pio_gguf **g)
{
    uint8_t *copy = malloc(len ? len : 1);
    pio_status st;
    memcpy(copy, b->p, len);
    st = pio_gguf_from_memory(copy, len, "case.gguf", g);
    if (st == PIO_STATUS_OK) {
        pio_gguf_free(*g);   /* the copy dies here; re-parse in place for callers that keep it */
        *g = NULL;
    }
    free(copy);
    return st;
}

/* b must fail with `want`, and the message name the file and each string. */
#define EXPECT_FAIL(b, want, ...) do { \
    pio_gguf *ef_g_ = NULL; \
    pio_status ef_st_ = parse((b), (b)->n, &ef_g_); \
    const char *ef_subs_[] = { "case.gguf", __VA_ARGS__ }; \
    CHECK(ef_st_ == (want), "line %d: got %s, want %s: %s", __LINE__, pio_status_name(ef_st_), \
          pio_status_name(want), pio_last_error()); \
    for (size_t ef_i_ = 0; ef_i_ < sizeof ef_subs_ / sizeof ef_subs_[0]; ef_i_++) \
        check_msg(__LINE__, ef_subs_[ef_i_]); \
} while (0)

/* ---- a valid file -------------------------------------------------------------- */

/* Two KVs + an array, tensors "a" F32 [4] and "b" Q8_0 [2 rows, 32 cols]. */
static void make_valid(gbuf *b, size_t *data_end)
{
    static const uint64_t ne_a[1] = { 4 }, ne_b[2] = { 32, 2 };
    memset(b, 0, sizeof *b);
    header(b, 3, 2, 4);
    kv_str(b, "general.architecture", "qwen3");
    kv_u32(b, "general.alignment", 32);
    str(b, "tokenizer.ggml.tokens"); u32(b, PIO_GGUF_ARRAY); u32(b, PIO_GGUF_STRING); u64(b, 3);
    str(b, "a"); str(b, ""); str(b, "ccc");
    str(b, "x.f32s"); u32(b, PIO_GGUF_ARRAY); u32(b, PIO_GGUF_FLOAT32); u64(b, 2);
    { float f[2] = { 1.5f, -2.0f }; put(b, f, 8); }
    tinfo(b, "a", 1, ne_a, 0, 0);
    tinfo(b, "b", 2, ne_b, 8, 32);
    pad(b, 32);
    for (int i = 0; i < 4; i++) { float f = (float)i; put(b, &f, 4); }
    zeros(b, 16);                    /* pad to 32 */
    for (int i = 0; i < 68; i++) put(b, &(uint8_t){ (uint8_t)i }, 1);   /* 2 Q8_0 blocks */
    *data_end = b->n;
    pad(b, 32);
}

static void test_valid(void)
{
    gbuf b;
    size_t data_end;
    pio_gguf *g = NULL;
    make_valid(&b, &data_end);

    CHECK_OK(pio_gguf_from_memory(b.p, b.n, "valid.gguf", &g));
    if (!g) { free(b.p); return; }
    CHECK(pio_gguf_version(g) == 3, "version");
    CHECK(pio_gguf_alignment(g) == 32, "alignment");
    CHECK(pio_gguf_kv_count(g) == 4, "kv count %d", pio_gguf_kv_count(g));
    const char *s;
    size_t n;
    int64_t v;
    double d;
    CHECK_OK(pio_gguf_get_str(g, "general.architecture", &s, &n));
    CHECK(n == 5 && !memcmp(s, "qwen3", 5), "architecture");
    CHECK_OK(pio_gguf_get_int(g, "general.alignment", &v));
    CHECK(v == 32, "alignment value");
    CHECK_OK(pio_gguf_get_float(g, "general.alignment", &d));
    CHECK(pio_gguf_get_int(g, "general.architecture", &v) == PIO_STATUS_ERR_FORMAT, "string as int");
    check_msg(__LINE__, "general.architecture");
    CHECK(pio_gguf_get_int(g, "nope", &v) == PIO_STATUS_ERR_MISSING, "missing key");
    check_msg(__LINE__, "nope");
    int k = pio_gguf_find_key(g, "tokenizer.ggml.tokens");
    CHECK(k == 2 && pio_gguf_kv_type(g, k) == PIO_GGUF_ARRAY && pio_gguf_kv_elem_type(g, k) == PIO_GGUF_STRING &&
          pio_gguf_kv_len(g, k) == 3, "string array");
    CHECK(pio_gguf_arr_str(g, k, 2, &s, &n) && n == 3 && !memcmp(s, "ccc", 3), "element 2");
    CHECK(pio_gguf_arr_str(g, k, 1, &s, &n) && n == 0, "empty element");
    CHECK(!pio_gguf_arr_str(g, k, 3, &s, &n), "out of range element");
    k = pio_gguf_find_key(g, "x.f32s");
    CHECK(pio_gguf_arr_float(g, k, 1, &d) && d == -2.0, "float element");
    CHECK(!pio_gguf_arr_int(g, k, 0, &v), "float array is not int");

    CHECK(pio_gguf_tensor_count(g) == 2, "tensor count");
    const pio_tensor *a = pio_gguf_find_tensor(g, "a"), *t = pio_gguf_find_tensor(g, "b");
    CHECK(a && a->dtype == PIO_DTYPE_F32 && a->n_dims == 1 && a->shape[0] == 4 && a->nbytes == 16, "tensor a");
    CHECK(a && ((const float *)a->data)[3] == 3.0f, "tensor a data");
    CHECK(t && t->dtype == PIO_DTYPE_Q8_0 && t->n_dims == 2 && t->shape[0] == 2 && t->shape[1] == 32 &&
          t->nbytes == 68 && t->n_elements == 64, "tensor b: rows first");
    CHECK(t && ((const uint8_t *)t->data)[67] == 67 && (const uint8_t *)t->data == b.p + data_end - 68,
          "tensor b data in place");
    CHECK(t && !strcmp(t->file, "valid.gguf"), "file name");
    pio_gguf_free(g);

    /* the same from a file, and pio_file_is_gguf */
    FILE *f = fopen(tpath("valid.gguf"), "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    CHECK(pio_file_is_gguf(tpath("valid.gguf")), "is gguf");
    CHECK(!pio_file_is_gguf(g_tmp), "a directory is not gguf");
    CHECK_OK(pio_gguf_open(tpath("valid.gguf"), &g));
    CHECK(g && pio_gguf_find_tensor(g, "b") != NULL, "opened file");
    pio_gguf_free(g);
    CHECK(pio_gguf_open(tpath("missing.gguf"), &g) == PIO_STATUS_ERR_MISSING, "missing file");
    check_msg(__LINE__, "missing.gguf");

    /* Truncated at every byte: each prefix that cuts the header or the
     * tensor data fails; none crashes or reads past the end (ASan). */
    for (size_t len = 0; len < b.n; len++) {
        pio_gguf *g2 = NULL;
        pio_status st = parse(&b, len, &g2);
        if (len < data_end)
            CHECK(st != PIO_STATUS_OK, "prefix of %zu bytes accepted", len);
        if (st != PIO_STATUS_OK && len >= 4)
            CHECK(strstr(pio_last_error(), "case.gguf") != NULL, "prefix %zu: message lacks the file: %s", len,
                  pio_last_error());
    }
    free(b.p);
}

/* ---- malformed files ------------------------------------------------------------ */

static void test_errors(void)
{
    gbuf b = { 0 };
    static const uint64_t ne4[1] = { 4 }, ne32[2] = { 32, 2 };

#define FRESH() do { free(b.p); memset(&b, 0, sizeof b); } while (0)
    put(&b, "GGML", 4); u32(&b, 3); u64(&b, 0); u64(&b, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "magic");
    FRESH(); header(&b, 1, 0, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_UNSUPPORTED, "version 1");
    FRESH(); header(&b, 0x03000000u, 0, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_UNSUPPORTED, "big-endian");
    FRESH(); header(&b, 7, 0, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "version 7");
    FRESH(); put(&b, "GGUF", 4); u32(&b, 3); u64(&b, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "truncated");
    FRESH(); header(&b, 3, 0, (uint64_t)1 << 60);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "metadata keys");
    FRESH(); header(&b, 3, (uint64_t)1 << 62, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "tensors");
    FRESH(); header(&b, 3, UINT64_MAX, UINT64_MAX);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "metadata keys");

    /* keys and values */
    FRESH(); header(&b, 3, 0, 1); u64(&b, UINT64_MAX); put(&b, "abcdefghijklmnop", 16);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "key #0", "string length");
    FRESH(); header(&b, 3, 0, 1); u64(&b, 0); u32(&b, PIO_GGUF_UINT8); put(&b, "xxxxxxxx", 8);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "key #0", "empty");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.key"); u32(&b, PIO_GGUF_STRING); u64(&b, (uint64_t)1 << 40);
    put(&b, "abcd", 4);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.key", "past the end");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.key"); u32(&b, 13); u64(&b, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.key", "unknown value type 13");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.key"); u32(&b, PIO_GGUF_UINT64); u32(&b, 1);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.key", "truncated");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.bool"); u32(&b, PIO_GGUF_BOOL); put(&b, "\2", 1);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.bool", "not 0 or 1");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.arr"); u32(&b, PIO_GGUF_ARRAY); u32(&b, PIO_GGUF_ARRAY); u64(&b, 1);
    u32(&b, PIO_GGUF_UINT8); u64(&b, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.arr", "arrays of arrays");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.arr"); u32(&b, PIO_GGUF_ARRAY); u32(&b, PIO_GGUF_INT64);
    u64(&b, (uint64_t)1 << 61); u64(&b, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.arr", "past the end");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.arr"); u32(&b, PIO_GGUF_ARRAY); u32(&b, PIO_GGUF_STRING);
    u64(&b, UINT64_MAX); u64(&b, 0);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.arr", "strings");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.arr"); u32(&b, PIO_GGUF_ARRAY); u32(&b, PIO_GGUF_STRING); u64(&b, 2);
    str(&b, "ok"); u64(&b, 1000); put(&b, "short", 5);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "element 1 of key \"my.arr\"");
    FRESH(); header(&b, 3, 0, 1); str(&b, "my.arr"); u32(&b, PIO_GGUF_ARRAY); u32(&b, 77); u64(&b, 1);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "my.arr", "element type 77");
    FRESH(); header(&b, 3, 0, 2); kv_u32(&b, "dup", 1); kv_u32(&b, "dup", 2);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "\"dup\"", "twice");
    FRESH(); header(&b, 3, 0, 1); kv_u32(&b, "general.alignment", 24);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "general.alignment", "power of two");
    FRESH(); header(&b, 3, 0, 1); kv_str(&b, "general.alignment", "32");
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "general.alignment", "uint32");

    /* tensors */
    {
        static const uint64_t ne5[5] = { 1, 1, 1, 1, 1 }, ne0[2] = { 4, 0 }, nebig[3] = { 1ull << 40, 1ull << 40, 1ull << 40 };
        FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.five", 5, ne5, 0, 0); pad(&b, 32); zeros(&b, 4);
        EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.five", "dimensions");
        FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.zero", 2, ne0, 0, 0); pad(&b, 32); zeros(&b, 4);
        EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.zero", "ne[1] = 0");
        FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.huge", 3, nebig, 0, 0); pad(&b, 32); zeros(&b, 4);
        EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.huge", "overflow");
    }
    FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.unknown", 1, ne4, 99, 0); pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.unknown", "unknown GGML type 99");
    FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.removed", 1, ne4, 4, 0); pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.removed", "unknown GGML type 4");
    {
        static const uint64_t ne256[1] = { 256 };
        FRESH(); header(&b, 3, 1, 0); tinfo(&b, "blk.0.attn_q.weight", 1, ne256, 13, 0); pad(&b, 32); zeros(&b, 176);
        EXPECT_FAIL(&b, PIO_STATUS_ERR_UNSUPPORTED, "blk.0.attn_q.weight", "Q5_K");
        FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.iq", 1, ne256, 23, 0); pad(&b, 32); zeros(&b, 136);
        EXPECT_FAIL(&b, PIO_STATUS_ERR_UNSUPPORTED, "t.iq", "IQ4_XS");
    }
    {
        static const uint64_t ne33[1] = { 33 };
        FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.q8", 1, ne33, 8, 0); pad(&b, 32); zeros(&b, 128);
        EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.q8", "not a multiple of the Q8_0 block");
    }
    FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.misaligned", 1, ne4, 0, 16); pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.misaligned", "alignment");
    FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.far", 1, ne4, 0, 1ull << 50); pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.far", "past the end");
    FRESH(); header(&b, 3, 1, 0); tinfo(&b, "t.short", 2, ne32, 0, 0); pad(&b, 32); zeros(&b, 100);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.short", "past the end");
    FRESH(); header(&b, 3, 2, 0); tinfo(&b, "t.one", 2, ne32, 0, 0); tinfo(&b, "t.two", 1, ne4, 0, 128);
    pad(&b, 32); zeros(&b, 256);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.one", "t.two", "overlaps");
    FRESH(); header(&b, 3, 2, 0); tinfo(&b, "t.same", 1, ne4, 0, 0); tinfo(&b, "t.same", 1, ne4, 0, 32);
    pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "t.same", "twice");
    FRESH(); header(&b, 3, 1, 0);
    tinfo(&b, "a.name.that.is.much.longer.than.the.sixty.four.bytes.gguf.allows.x", 1, ne4, 0, 0);
    pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "tensor #0", "longer than 64");
    FRESH(); header(&b, 3, 1, 0); u64(&b, 0); u32(&b, 1); u64(&b, 4); u32(&b, 0); u64(&b, 0); pad(&b, 32); zeros(&b, 64);
    EXPECT_FAIL(&b, PIO_STATUS_ERR_FORMAT, "tensor #0", "empty name");
    /* a v2 file with no tensors and a custom alignment is fine */
    FRESH(); header(&b, 2, 0, 1); kv_u32(&b, "general.alignment", 64);
    {
        pio_gguf *g = NULL;
        CHECK_OK(pio_gguf_from_memory(b.p, b.n, "v2.gguf", &g));
        CHECK(g && pio_gguf_alignment(g) == 64 && pio_gguf_version(g) == 2, "v2 alignment");
        pio_gguf_free(g);
    }
    free(b.p);
#undef FRESH
}

/* ---- writer --------------------------------------------------------------------- */

static void test_writer(void)
{
    pio_gguf_writer *w = NULL;
    pio_gguf *g = NULL;
    const char *strs[3] = { "x", "", "Ġthe" };
    int32_t ints[3] = { 1, -2, 3 };
    float a[6] = { 1, 2, 3, 4, 5, 6 };
    uint8_t q[3 * 2 * 34];
    int64_t sh_a[2] = { 2, 3 }, sh_q[3] = { 3, 2, 32 }, sh_bad[2] = { 2, 48 };

    for (size_t i = 0; i < sizeof q; i++) q[i] = (uint8_t)(i * 7);
    CHECK_OK(pio_gguf_writer_open(tpath("w.gguf"), &w));
    CHECK_OK(pio_gguf_writer_add_str(w, "general.architecture", "qwen3"));
    CHECK_OK(pio_gguf_writer_add_u32(w, "u", 7));
    CHECK_OK(pio_gguf_writer_add_i32(w, "i", -7));
    CHECK_OK(pio_gguf_writer_add_f32(w, "f", 0.25f));
    CHECK_OK(pio_gguf_writer_add_bool(w, "b", true));
    CHECK_OK(pio_gguf_writer_add_str_array(w, "sa", strs, 3));
    CHECK_OK(pio_gguf_writer_add_i32_array(w, "ia", ints, 3));
    CHECK(pio_gguf_writer_add_u32(w, "u", 8) == PIO_STATUS_ERR_INVALID_ARG, "duplicate key");
    check_msg(__LINE__, "\"u\"");
    CHECK_OK(pio_gguf_writer_add_tensor(w, "a", PIO_DTYPE_F32, 2, sh_a));
    CHECK_OK(pio_gguf_writer_add_tensor(w, "q", PIO_DTYPE_Q8_0, 3, sh_q));
    CHECK(pio_gguf_writer_add_tensor(w, "bad", PIO_DTYPE_Q8_0, 2, sh_bad) == PIO_STATUS_ERR_SHAPE, "cols %% 32");
    check_msg(__LINE__, "bad");
    CHECK_OK(pio_gguf_writer_begin_data(w));
    CHECK_OK(pio_gguf_writer_write(w, a, 10));
    CHECK_OK(pio_gguf_writer_write(w, (const uint8_t *)a + 10, 14));
    CHECK_OK(pio_gguf_writer_write(w, q, sizeof q));
    CHECK_OK(pio_gguf_writer_finish(w));
    pio_gguf_writer_free(w);

    CHECK_OK(pio_gguf_open(tpath("w.gguf"), &g));
    if (g) {
        int64_t v;
        double d;
        bool bv;
        const char *s;
        size_t n;
        CHECK(pio_gguf_get_int(g, "u", &v) == PIO_STATUS_OK && v == 7, "u32");
        CHECK(pio_gguf_get_int(g, "i", &v) == PIO_STATUS_OK && v == -7, "i32");
        CHECK(pio_gguf_get_float(g, "f", &d) == PIO_STATUS_OK && d == 0.25, "f32");
        CHECK(pio_gguf_get_bool(g, "b", &bv) == PIO_STATUS_OK && bv, "bool");
        int k = pio_gguf_find_key(g, "sa");
        CHECK(pio_gguf_arr_str(g, k, 2, &s, &n) && n == strlen("Ġthe") && !memcmp(s, "Ġthe", n), "str array");
        k = pio_gguf_find_key(g, "ia");
        CHECK(pio_gguf_arr_int(g, k, 1, &v) && v == -2, "int array");
        const pio_tensor *t = pio_gguf_find_tensor(g, "a"), *tq = pio_gguf_find_tensor(g, "q");
        CHECK(t && t->shape[0] == 2 && t->shape[1] == 3 && !memcmp(t->data, a, sizeof a), "tensor a");
        CHECK(tq && tq->n_dims == 3 && tq->shape[0] == 3 && tq->shape[2] == 32 && tq->dtype == PIO_DTYPE_Q8_0 &&
              tq->nbytes == sizeof q && !memcmp(tq->data, q, sizeof q), "tensor q (3-D, Q8_0)");
        CHECK(((uintptr_t)tq->data - (uintptr_t)t->data) % 32 == 0, "aligned");
    }
    pio_gguf_free(g);

    /* unfinished: the file is removed */
    CHECK_OK(pio_gguf_writer_open(tpath("partial.gguf"), &w));
    CHECK_OK(pio_gguf_writer_add_tensor(w, "a", PIO_DTYPE_F32, 2, sh_a));
    CHECK_OK(pio_gguf_writer_begin_data(w));
    CHECK_OK(pio_gguf_writer_write(w, a, 8));
    CHECK(pio_gguf_writer_finish(w) == PIO_STATUS_ERR_INVALID_ARG, "short tensor");
    check_msg(__LINE__, "\"a\"");
    pio_gguf_writer_free(w);
    CHECK(access(tpath("partial.gguf"), F_OK) != 0, "partial file removed");
}

/* ---- names ------------------------------------------------------------------------ */

static void test_names(void)
{
    static const char *const pairs[][2] = {
        { "token_embd.weight", "model.embed_tokens.weight" },
        { "output_norm.weight", "model.norm.weight" },
        { "output.weight", "lm_head.weight" },
        { "blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight" },
        { "blk.12.attn_q.weight", "model.layers.12.self_attn.q_proj.weight" },
        { "blk.3.attn_k.weight", "model.layers.3.self_attn.k_proj.weight" },
        { "blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight" },
        { "blk.3.attn_output.weight", "model.layers.3.self_attn.o_proj.weight" },
        { "blk.3.attn_q_norm.weight", "model.layers.3.self_attn.q_norm.weight" },
        { "blk.3.attn_k_norm.weight", "model.layers.3.self_attn.k_norm.weight" },
        { "blk.3.ffn_norm.weight", "model.layers.3.post_attention_layernorm.weight" },
        { "blk.3.ffn_gate.weight", "model.layers.3.mlp.gate_proj.weight" },
        { "blk.3.ffn_up.weight", "model.layers.3.mlp.up_proj.weight" },
        { "blk.3.ffn_down.weight", "model.layers.3.mlp.down_proj.weight" },
        { "blk.47.ffn_gate_inp.weight", "model.layers.47.mlp.gate.weight" },
        { "blk.47.ffn_gate_exps.weight", "model.layers.47.mlp.experts.gate_proj.weight" },
        { "blk.47.ffn_up_exps.weight", "model.layers.47.mlp.experts.up_proj.weight" },
        { "blk.47.ffn_down_exps.weight", "model.layers.47.mlp.experts.down_proj.weight" },
    };
    char buf[256];
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        CHECK(pio_gguf_name_to_hf(pairs[i][0], buf, sizeof buf) && !strcmp(buf, pairs[i][1]), "%s -> %s", pairs[i][0],
              buf);
        CHECK(pio_gguf_name_from_hf(pairs[i][1], buf, sizeof buf) && !strcmp(buf, pairs[i][0]), "%s <- %s",
              pairs[i][0], buf);
    }
    CHECK(!pio_gguf_name_to_hf("blk.01.attn_q.weight", buf, sizeof buf), "leading zero");
    CHECK(!pio_gguf_name_to_hf("blk.x.attn_q.weight", buf, sizeof buf), "no layer");
    CHECK(!pio_gguf_name_to_hf("blk.1.attn_qq.weight", buf, sizeof buf), "unknown");
    CHECK(!pio_gguf_name_to_hf("rope_freqs.weight", buf, sizeof buf), "unmapped");
    CHECK(!pio_gguf_name_from_hf("model.layers.0.mlp.experts.5.gate_proj.weight", buf, sizeof buf), "per expert");
    CHECK(!pio_gguf_name_to_hf("blk.3.attn_q.weight", buf, 10), "too small a buffer");
    CHECK(pio_gguf_arch_to_hf("qwen3") && !strcmp(pio_gguf_arch_to_hf("qwen3moe"), "Qwen3MoeForCausalLM"), "arch");
    CHECK(pio_gguf_arch_to_hf("llama") == NULL, "llama unmapped");
}

/* ---- a fixture model through GGUF ------------------------------------------------- */

static const char *src_dir(void)
{
    const char *s = getenv("PIO_SOURCE_DIR");
    return s ? s : ".";
}

/* Encode `text` with both tokenizers; true when the ids agree. */
static bool same_ids(const pio_tokenizer *a, const pio_tokenizer *b, const char *text)
{
    int32_t *ia = NULL, *ib = NULL;
    size_t na = 0, nb = 0;
    bool ok = pio_tokenizer_encode(a, text, strlen(text), &ia, &na) == PIO_STATUS_OK &&
              pio_tokenizer_encode(b, text, strlen(text), &ib, &nb) == PIO_STATUS_OK && na == nb &&
              (na == 0 || !memcmp(ia, ib, na * sizeof *ia));
    free(ia);
    free(ib);
    return ok;
}

static void test_model(const char *fixture, pio_dtype dt)
{
    char dir[1024], path[1200], out[600];
    pio_hf_config want, got;
    pio_generation_config gen;
    pio_weights *w = NULL, *wd = NULL;
    pio_tokenizer *tj = NULL, *tg = NULL;
    pio_gguf *g = NULL;
    pio_gguf_convert_stats stats;

    snprintf(dir, sizeof dir, "%s/tests/fixtures/qwen3/%s", src_dir(), fixture);
    snprintf(out, sizeof out, "%s", tpath("model.gguf"));
    CHECK_OK(pio_gguf_convert_dir(dir, out, dt, NULL, 2, NULL, &stats));
    snprintf(path, sizeof path, "%s/config.json", dir);
    CHECK_OK(pio_hf_config_load(path, &want));
    CHECK_OK(pio_gguf_open(out, &g));
    if (!g) { pio_hf_config_free(&want); return; }
    CHECK_OK(pio_hf_config_from_gguf(g, &got));
    CHECK(!strcmp(got.architecture, want.architecture) && got.vocab_size == want.vocab_size &&
          got.hidden_size == want.hidden_size && got.intermediate_size == want.intermediate_size &&
          got.num_hidden_layers == want.num_hidden_layers && got.num_attention_heads == want.num_attention_heads &&
          got.num_key_value_heads == want.num_key_value_heads && got.head_dim == want.head_dim &&
          got.max_position_embeddings == want.max_position_embeddings && got.rms_norm_eps == want.rms_norm_eps &&
          got.rope_theta == want.rope_theta && got.tie_word_embeddings == want.tie_word_embeddings &&
          !strcmp(got.rope_type, "default") && got.bos_token_id == want.bos_token_id,
          "%s: config from GGUF differs", fixture);
    CHECK(!strcmp(got.path, out), "config path %s", got.path);
    CHECK(pio_hf_config_int(&got, "num_hidden_layers", 0) == want.num_hidden_layers, "json_root");
    CHECK_OK(pio_generation_config_from_gguf(g, &gen));
    CHECK(gen.n_eos == 2 && gen.eos_token_ids[0] == 422 && gen.eos_token_ids[1] == 420, "%s: eos %d [%lld, ...]",
          fixture, gen.n_eos, (long long)gen.eos_token_ids[0]);
    CHECK(gen.do_sample && fabs(gen.temperature - 0.7) < 1e-12 && gen.top_k == 20 && fabs(gen.top_p - 0.8) < 1e-12,
          "sampling defaults");
    CHECK_OK(pio_tokenizer_from_gguf(g, &tg));
    pio_hf_config_free(&got);

    /* weights: HF names, shapes as the directory's, dtype as asked */
    CHECK_OK(pio_weights_from_gguf(g, &w));   /* takes g */
    CHECK_OK(pio_weights_open_dir(dir, &wd));
    if (w && wd) {
        int n_expected = pio_weights_count(wd) - (want.tie_word_embeddings && pio_weights_find(wd, "lm_head.weight"));
        CHECK(pio_weights_count(w) == n_expected, "%s: %d tensors, want %d", fixture, pio_weights_count(w), n_expected);
        for (int i = 0; i < pio_weights_count(wd); i++) {
            const pio_tensor *td = pio_weights_at(wd, i), *tgt = pio_weights_find(w, td->name);
            if (!tgt) {
                CHECK(want.tie_word_embeddings && !strcmp(td->name, "lm_head.weight"), "%s missing", td->name);
                continue;
            }
            CHECK(tgt->n_dims == td->n_dims && tgt->shape[0] == td->shape[0] &&
                  (td->n_dims == 1 || tgt->shape[1] == td->shape[1]), "%s shape", td->name);
            CHECK(tgt->dtype == (td->n_dims == 1 ? PIO_DTYPE_F32 : dt) || (dt == PIO_DTYPE_Q4_K && tgt->dtype == PIO_DTYPE_Q8_0),
                  "%s dtype %s", td->name, pio_dtype_name(tgt->dtype));
            if (td->dtype == tgt->dtype)
                CHECK(!memcmp(td->data, tgt->data, td->nbytes), "%s data", td->name);
        }
        const pio_tensor *t;
        int64_t shape[2] = { want.vocab_size, want.hidden_size };
        CHECK_OK(pio_weights_get(w, "model.embed_tokens.weight", 2, shape, &t));
        if (dt == PIO_DTYPE_Q4_K)
            CHECK(stats.n_fallback > 0, "Q4_K on 64/96-wide rows falls back");
    }
    pio_weights_free(w);
    pio_weights_free(wd);

    /* tokenizer: the same ids as tokenizer.json, and pio_tokenizer_load on the .gguf */
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(pio_tokenizer_load(path, &tj));
    if (tj && tg) {
        static const char *const texts[] = { "The robot read 3 books in the library today.",
                                             "<|im_start|>user\nHello there!<|im_end|>\n", "  spaces\t\ttabs\r\n",
                                             "naïve café 123456 ÿ" };
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
            CHECK(same_ids(tj, tg, texts[i]), "%s: ids differ for \"%s\"", fixture, texts[i]);
        CHECK(pio_tokenizer_n_vocab(tj) == pio_tokenizer_n_vocab(tg), "n_vocab %d vs %d", pio_tokenizer_n_vocab(tj),
              pio_tokenizer_n_vocab(tg));
        CHECK(pio_tokenizer_is_special(tg, 422) && !pio_tokenizer_is_special(tg, 100), "special flags");
    }
    pio_tokenizer_free(tg);
    tg = NULL;
    CHECK_OK(pio_tokenizer_load(out, &tg));
    CHECK(tg && tj && same_ids(tj, tg, "load() of a .gguf path"), "pio_tokenizer_load(.gguf)");
    pio_tokenizer_free(tg);
    pio_tokenizer_free(tj);
    pio_hf_config_free(&want);
}

/* Config errors name the GGUF key. */
static void test_config_errors(void)
{
    gbuf b = { 0 };
    pio_gguf *g = NULL;
    pio_hf_config cfg;
    static const uint64_t ne[2] = { 4, 8 };

    header(&b, 3, 1, 1);
    kv_str(&b, "general.architecture", "llama");
    tinfo(&b, "token_embd.weight", 2, ne, 0, 0);
    pad(&b, 32);
    zeros(&b, 128);
    CHECK_OK(pio_gguf_from_memory(b.p, b.n, "llama.gguf", &g));
    CHECK(pio_hf_config_from_gguf(g, &cfg) == PIO_STATUS_ERR_UNSUPPORTED, "llama");
    check_msg(__LINE__, "llama.gguf");
    check_msg(__LINE__, "general.architecture \"llama\"");
    pio_hf_config_free(&cfg);
    pio_gguf_free(g);

    free(b.p);
    memset(&b, 0, sizeof b);
    header(&b, 3, 1, 3);
    kv_str(&b, "general.architecture", "qwen3");
    kv_u32(&b, "qwen3.context_length", 128);
    kv_u32(&b, "qwen3.block_count", 2);
    tinfo(&b, "token_embd.weight", 2, ne, 0, 0);
    pad(&b, 32);
    zeros(&b, 128);
    CHECK_OK(pio_gguf_from_memory(b.p, b.n, "partial.gguf", &g));
    CHECK(pio_hf_config_from_gguf(g, &cfg) == PIO_STATUS_ERR_MISSING, "missing embedding_length");
    check_msg(__LINE__, "partial.gguf");
    check_msg(__LINE__, "qwen3.embedding_length");
    pio_hf_config_free(&cfg);
    pio_gguf_free(g);
    free(b.p);
}

/* ---- the real Qwen3 vocabulary ------------------------------------------------------ */

/* Every case of a golden JSONL ({"text", "ids"}) encodes to its ids with tok. */
static void check_golden(const pio_tokenizer *tok, const char *path, int *n_cases)
{
    FILE *f = fopen(path, "rb");
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int k = 0;
    *n_cases = 0;
    CHECK(f != NULL, "%s", path);
    if (!f) return;
    while ((len = getline(&line, &cap, f)) > 0) {
        cJSON *c = cJSON_ParseWithLength(line, (size_t)len);
        const cJSON *text = cJSON_GetObjectItemCaseSensitive(c, "text"), *ids = cJSON_GetObjectItemCaseSensitive(c, "ids");
        int32_t *got = NULL;
        size_t n = 0;
        k++;
        if (!cJSON_IsString(text) || !cJSON_IsArray(ids)) {
            cJSON_Delete(c);
            continue;
        }
        CHECK_OK(pio_tokenizer_encode(tok, text->valuestring, strlen(text->valuestring), &got, &n));
        bool same = (int)n == cJSON_GetArraySize(ids);
        for (size_t i = 0; same && i < n; i++)
            same = got[i] == cJSON_GetArrayItem(ids, (int)i)->valueint;
        CHECK(same, "%s case %d: %zu ids, want %d", path, k, n, cJSON_GetArraySize(ids));
        (*n_cases)++;
        free(got);
        cJSON_Delete(c);
    }
    free(line);
    fclose(f);
}

static void test_qwen3_vocab(const char *data)
{
    char dir[600], path[700];
    pio_gguf_writer *w = NULL;
    pio_gguf *g = NULL;
    pio_tokenizer *tg = NULL, *tj = NULL;
    int n1 = 0, n2 = 0;

    snprintf(dir, sizeof dir, "%s/qwen3-tokenizer", data);
    CHECK_OK(pio_gguf_writer_open(tpath("vocab.gguf"), &w));
    CHECK_OK(pio_gguf_writer_add_str(w, "general.architecture", "qwen3"));
    CHECK_OK(pio_gguf_writer_add_tokenizer(w, dir, 151936, NULL));
    CHECK_OK(pio_gguf_writer_finish(w));
    pio_gguf_writer_free(w);
    CHECK_OK(pio_gguf_open(tpath("vocab.gguf"), &g));
    if (!g) return;
    {
        int k = pio_gguf_find_key(g, "tokenizer.ggml.tokens");
        int64_t type;
        CHECK(pio_gguf_kv_len(g, k) == 151936, "padded to the embedding rows");
        k = pio_gguf_find_key(g, "tokenizer.ggml.token_type");
        CHECK(pio_gguf_arr_int(g, k, 151644, &type) && type == 3, "<|im_start|> control");
        CHECK(pio_gguf_arr_int(g, k, 151667, &type) && type == 4, "<think> user-defined");
        CHECK(pio_gguf_arr_int(g, k, 151659, &type) && type == 3, "<|fim_prefix|> looks special: control");
        CHECK(pio_gguf_arr_int(g, k, 151700, &type) && type == 5, "filler unused");
    }
    CHECK_OK(pio_tokenizer_from_gguf(g, &tg));
    snprintf(path, sizeof path, "%s/tokenizer.json", dir);
    CHECK_OK(pio_tokenizer_load(path, &tj));
    if (tg && tj) {
        CHECK(pio_tokenizer_n_vocab(tg) == pio_tokenizer_n_vocab(tj), "n_vocab %d vs %d", pio_tokenizer_n_vocab(tg),
              pio_tokenizer_n_vocab(tj));
        int bad = 0;
        for (int32_t id = 0; id < pio_tokenizer_n_vocab(tj); id++) {
            const char *a = pio_tokenizer_id_to_token(tg, id), *b = pio_tokenizer_id_to_token(tj, id);
            if (!a || !b || strcmp(a, b)) bad++;
        }
        CHECK(bad == 0, "%d token strings differ", bad);
        snprintf(path, sizeof path, "%s/golden/tokenizer_qwen3.jsonl", data);
        check_golden(tg, path, &n1);
        snprintf(path, sizeof path, "%s/golden/tokenizer_qwen2_llamacpp.jsonl", data);
        check_golden(tg, path, &n2);
        printf("Qwen3 vocabulary from GGUF: %d + %d golden cases checked\n", n1, n2);
        CHECK(n1 == 63 && n2 == 47, "golden cases %d + %d", n1, n2);
        {
            int32_t ids[3] = { 151644, 9707, 151645 };
            char *ta = NULL, *tb = NULL;
            size_t la, lb;
            CHECK_OK(pio_tokenizer_decode(tg, ids, 3, true, &ta, &la));
            CHECK_OK(pio_tokenizer_decode(tj, ids, 3, true, &tb, &lb));
            CHECK(ta && tb && !strcmp(ta, tb), "decode skip_special: \"%s\" vs \"%s\"", ta, tb);
            free(ta);
            free(tb);
        }
    }
    pio_tokenizer_free(tg);
    pio_tokenizer_free(tj);
    pio_gguf_free(g);
}

/* A Qwen3-MoE file made with the writer: config keys and 3-D expert tensors. */
static void test_moe(void)
{
    pio_gguf_writer *w = NULL;
    pio_gguf *g = NULL;
    pio_weights *wt = NULL;
    pio_hf_config cfg;
    static const struct { const char *name; pio_dtype dt; int nd; int64_t shape[3]; } ts[] = {
        { "token_embd.weight", PIO_DTYPE_Q6_K, 2, { 8, 256 } },
        { "output_norm.weight", PIO_DTYPE_F32, 1, { 256 } },
        { "output.weight", PIO_DTYPE_Q8_0, 2, { 8, 256 } },
        { "blk.0.ffn_gate_inp.weight", PIO_DTYPE_F32, 2, { 4, 256 } },
        { "blk.0.ffn_gate_exps.weight", PIO_DTYPE_Q4_K, 3, { 4, 32, 256 } },
        { "blk.0.ffn_up_exps.weight", PIO_DTYPE_Q4_K, 3, { 4, 32, 256 } },
        { "blk.0.ffn_down_exps.weight", PIO_DTYPE_Q8_0, 3, { 4, 256, 32 } },
    };
    uint8_t *zero = calloc(1, 1 << 20);

    CHECK_OK(pio_gguf_writer_open(tpath("moe.gguf"), &w));
    CHECK_OK(pio_gguf_writer_add_str(w, "general.architecture", "qwen3moe"));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.context_length", 256));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.embedding_length", 256));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.block_count", 1));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.attention.head_count", 4));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.attention.head_count_kv", 2));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.attention.key_length", 64));
    CHECK_OK(pio_gguf_writer_add_f32(w, "qwen3moe.attention.layer_norm_rms_epsilon", 1e-6f));
    CHECK_OK(pio_gguf_writer_add_f32(w, "qwen3moe.rope.freq_base", 1e7f));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.expert_count", 4));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.expert_used_count", 2));
    CHECK_OK(pio_gguf_writer_add_u32(w, "qwen3moe.expert_feed_forward_length", 32));
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++)
        CHECK_OK(pio_gguf_writer_add_tensor(w, ts[i].name, ts[i].dt, ts[i].nd, ts[i].shape));
    CHECK_OK(pio_gguf_writer_begin_data(w));
    for (size_t i = 0; i < sizeof ts / sizeof ts[0]; i++) {
        int64_t rows = 1;
        for (int d = 0; d + 1 < ts[i].nd; d++) rows *= ts[i].shape[d];
        CHECK_OK(pio_gguf_writer_write(w, zero, (size_t)rows * pio_dtype_row_bytes(ts[i].dt, ts[i].shape[ts[i].nd - 1])));
    }
    CHECK_OK(pio_gguf_writer_finish(w));
    pio_gguf_writer_free(w);
    free(zero);

    CHECK_OK(pio_gguf_open(tpath("moe.gguf"), &g));
    if (!g) return;
    CHECK_OK(pio_hf_config_from_gguf(g, &cfg));
    CHECK(!strcmp(cfg.architecture, "Qwen3MoeForCausalLM") && !strcmp(cfg.model_type, "qwen3_moe") &&
          cfg.num_experts == 4 && cfg.num_experts_per_tok == 2 && cfg.moe_intermediate_size == 32 &&
          cfg.norm_topk_prob && cfg.head_dim == 64 && cfg.vocab_size == 8 && !cfg.tie_word_embeddings &&
          cfg.rope_theta == 1e7 && cfg.rms_norm_eps == 1e-6 && cfg.intermediate_size == 0,
          "qwen3moe config: experts %lld/%lld ff %lld", (long long)cfg.num_experts, (long long)cfg.num_experts_per_tok,
          (long long)cfg.moe_intermediate_size);
    pio_hf_config_free(&cfg);
    CHECK_OK(pio_weights_from_gguf(g, &wt));
    if (wt) {
        const pio_tensor *t = pio_weights_find(wt, "model.layers.0.mlp.experts.gate_proj.weight");
        CHECK(t && t->n_dims == 3 && t->shape[0] == 4 && t->shape[1] == 32 && t->shape[2] == 256 &&
              t->dtype == PIO_DTYPE_Q4_K && t->nbytes == 4 * 32 * 144, "stacked gate_proj");
        t = pio_weights_find(wt, "model.layers.0.mlp.experts.down_proj.weight");
        CHECK(t && t->shape[0] == 4 && t->shape[1] == 256 && t->shape[2] == 32, "stacked down_proj");
        t = pio_weights_find(wt, "model.layers.0.mlp.gate.weight");
        CHECK(t && t->shape[0] == 4 && t->shape[1] == 256, "router");
        t = pio_weights_find(wt, "model.embed_tokens.weight");
        CHECK(t && t->dtype == PIO_DTYPE_Q6_K && t->nbytes == 8 * 210, "Q6_K embeddings");
        CHECK(pio_weights_find(wt, "lm_head.weight") != NULL, "untied");
    }
    pio_weights_free(wt);
}

int main(void)
{
    const char *data;
    snprintf(g_tmp, sizeof g_tmp, "/tmp/pio_test_gguf_XXXXXX");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }
    test_valid();
    test_errors();
    test_writer();
    test_names();
    test_model("tied_gqa2_f32", PIO_DTYPE_Q8_0);
    test_model("tied_gqa2_f32", PIO_DTYPE_F32);
    test_model("untied_gqa4_bf16_sharded", PIO_DTYPE_BF16);
    test_model("untied_gqa4_bf16_sharded", PIO_DTYPE_Q4_K);
    test_config_errors();
    test_moe();
    data = check_shared_data();
    if (data)
        test_qwen3_vocab(data);
    else
        printf("note: shared data (../shared/data) not found; the Qwen3 vocabulary check is skipped\n");
    nftw(g_tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
    return check_report("test_gguf");
}
