/*
 * test_formats.c - safetensors reader, weights directory, config.json and
 * generation_config.json: valid files and every broken case the readers must
 * reject, each with a message that names the file and the tensor or field.
 * All files are written by the test into a mkdtemp() directory.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "pio/formats.h"
#include "check.h"

#include <ftw.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_tmp[256];

/* ---- helpers ---------------------------------------------------------------- */

/* Fail (counted) unless the last error message contains `sub`. */
static void check_msg(int line, const char *expr, const char *sub)
{
    CHECK(strstr(pio_last_error(), sub) != NULL, "line %d: %s: message \"%s\" lacks \"%s\"", line, expr,
          pio_last_error(), sub);
}

/* expr must fail with status `want`, and the message must contain each string. */
#define CHECK_FAIL(expr, want, ...) do { \
    pio_status cf_st_ = (expr); \
    const char *cf_subs_[] = {__VA_ARGS__}; \
    CHECK(cf_st_ == (want), "%s -> %s, want %s: %s", #expr, pio_status_name(cf_st_), \
          pio_status_name(want), pio_last_error()); \
    for (size_t cf_i_ = 0; cf_i_ < sizeof cf_subs_ / sizeof cf_subs_[0]; cf_i_++) \
        check_msg(__LINE__, #expr, cf_subs_[cf_i_]); \
} while (0)

/* g_tmp/rel, in one of a few rotating buffers. */
static const char *tpath(const char *rel)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ & 3];
    snprintf(b, 512, "%s/%s", g_tmp, rel);
    return b;
}

static void make_dir(const char *rel)
{
    if (mkdir(tpath(rel), 0700) != 0) {
        perror(tpath(rel));
        exit(2);
    }
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(2);
    }
    fclose(f);
}

static void write_text(const char *rel, const char *text) { write_bytes(tpath(rel), text, strlen(text)); }

/*
 * A safetensors image in a malloc'd buffer: u64 header length `hlen_field`
 * (or the padded header's length when 0), the header padded with spaces to
 * a multiple of 8, then `data_len` bytes copied from `data` (zeros if NULL).
 */
static uint8_t *st_image(const char *header, uint64_t hlen_field, const void *data, size_t data_len,
                         size_t *len)
{
    size_t h = strlen(header), hp = (h + 7) / 8 * 8;
    uint64_t hl = hlen_field ? hlen_field : hp;
    uint8_t *buf = calloc(1, 8 + hp + data_len);
    for (int i = 0; i < 8; i++)
        buf[i] = (uint8_t)(hl >> (8 * i));
    memcpy(buf + 8, header, h);
    memset(buf + 8 + h, ' ', hp - h);
    if (data)
        memcpy(buf + 8 + hp, data, data_len);
    *len = 8 + hp + data_len;
    return buf;
}

static void write_st(const char *rel, const char *header, const void *data, size_t data_len)
{
    size_t len;
    uint8_t *img = st_image(header, 0, data, data_len, &len);
    write_bytes(tpath(rel), img, len);
    free(img);
}

/* Open g_tmp/rel as safetensors, expecting failure; the handle must stay NULL. */
static pio_status st_open_fail(const char *rel)
{
    pio_safetensors *st = (pio_safetensors *)1;
    pio_status s = pio_safetensors_open(tpath(rel), &st);
    CHECK(st == NULL, "%s: handle not NULL on failure", rel);
    if (s == PIO_STATUS_OK)
        pio_safetensors_free(st);
    return s;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(path);
}

/* ---- safetensors: valid files ------------------------------------------------ */

static void test_st_valid(void)
{
    const float vals[4] = {1.0f, 2.0f, 3.0f, 4.0f};
    uint8_t data[24] = {0};
    pio_safetensors *st = NULL;
    const pio_tensor *a, *b, *e;

    memcpy(data, vals, sizeof vals);
    data[16] = 0x80; data[17] = 0x3f;   /* BF16 1.0 */
    write_st("ok.safetensors",
             "{\"__metadata__\":{\"format\":\"pt\"},"
             "\"a\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]},"
             "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[16,22]},"
             "\"empty\":{\"dtype\":\"I64\",\"shape\":[0,5],\"data_offsets\":[16,16]},"
             "\"s\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[22,23]}}",
             data, 23);
    CHECK_OK(pio_safetensors_open(tpath("ok.safetensors"), &st));
    if (!st)
        return;
    CHECK(pio_safetensors_count(st) == 4, "count %d", pio_safetensors_count(st));
    a = pio_safetensors_find(st, "a");
    b = pio_safetensors_find(st, "b");
    e = pio_safetensors_find(st, "empty");
    CHECK(a && a->dtype == PIO_DTYPE_F32 && a->n_dims == 2 && a->shape[0] == 2 && a->shape[1] == 2 &&
          a->n_elements == 4 && a->nbytes == 16, "tensor a wrong");
    CHECK(a && ((const float *)a->data)[2] == 3.0f, "tensor a data wrong");
    CHECK(a && (uintptr_t)a->data % 4 == 0, "a misaligned");
    CHECK(a && strstr(a->file, "ok.safetensors"), "a->file %s", a ? a->file : "");
    CHECK(b && b->dtype == PIO_DTYPE_BF16 && b->n_elements == 3 && b->nbytes == 6, "tensor b wrong");
    CHECK(b && ((const uint8_t *)b->data)[1] == 0x3f, "tensor b data wrong");
    CHECK(e && e->n_elements == 0 && e->nbytes == 0, "empty tensor wrong");
    CHECK(pio_safetensors_find(st, "s") && pio_safetensors_find(st, "s")->n_dims == 0, "scalar wrong");
    CHECK(pio_safetensors_find(st, "__metadata__") == NULL, "__metadata__ is not a tensor");
    CHECK(pio_safetensors_find(st, "zz") == NULL, "found absent tensor");
    CHECK(pio_safetensors_at(st, 0) && strcmp(pio_safetensors_at(st, 0)->name, "a") == 0,
          "header order not kept");
    CHECK(pio_safetensors_at(st, 4) == NULL && pio_safetensors_at(st, -1) == NULL, "at() out of range");
    pio_safetensors_free(st);

    /* From memory: tensor data points into the caller's buffer, not a copy. */
    {
        size_t len;
        uint64_t *mem = calloc(1, 256);   /* 8-aligned storage */
        uint8_t *img = st_image("{\"w\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 0,
                                "\x01\x02\x03\x04", 4, &len);
        memcpy(mem, img, len);
        CHECK_OK(pio_safetensors_from_memory(mem, len, "mem.safetensors", &st));
        if (st) {
            const pio_tensor *w = pio_safetensors_find(st, "w");
            CHECK(w && (const uint8_t *)w->data == (const uint8_t *)mem + len - 4, "data is not in place");
            CHECK(w && strcmp(w->file, "mem.safetensors") == 0, "file name");
            pio_safetensors_free(st);
        }
        free(img);
        free(mem);
    }

    /* Empty header object: a valid file with no tensors. */
    write_st("none.safetensors", "{}", NULL, 0);
    CHECK_OK(pio_safetensors_open(tpath("none.safetensors"), &st));
    CHECK(pio_safetensors_count(st) == 0, "empty file count");
    pio_safetensors_free(st);
}

/* ---- safetensors: broken files --------------------------------------------- */

/* Write `header` with `data_len` zero bytes as rel, open it, expect `want` and substrings. */
#define ST_BAD(rel, header, data_len, want, ...) do { \
    write_st(rel, header, NULL, data_len); \
    CHECK_FAIL(st_open_fail(rel), want, rel, __VA_ARGS__); \
} while (0)

static void test_st_broken(void)
{
    size_t len;
    uint8_t *img;

    /* Shorter than the 8-byte length field, and empty. */
    write_bytes(tpath("short.safetensors"), "\x10\x00\x00", 3);
    CHECK_FAIL(st_open_fail("short.safetensors"), PIO_STATUS_ERR_FORMAT, "short.safetensors", "shorter");
    write_bytes(tpath("empty.safetensors"), "", 0);
    CHECK_FAIL(st_open_fail("empty.safetensors"), PIO_STATUS_ERR_FORMAT, "empty.safetensors", "0 bytes");
    CHECK_FAIL(st_open_fail("absent.safetensors"), PIO_STATUS_ERR_MISSING, "absent.safetensors");

    /* Header length past the end of the file (a truncated download). */
    img = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 1000, NULL, 4, &len);
    write_bytes(tpath("trunc.safetensors"), img, len);
    free(img);
    CHECK_FAIL(st_open_fail("trunc.safetensors"), PIO_STATUS_ERR_FORMAT, "trunc.safetensors",
               "header length 1000", "past the end");
    /* A full file cut short in its data section. */
    img = st_image("{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 0, NULL, 16, &len);
    write_bytes(tpath("cut.safetensors"), img, len - 5);
    free(img);
    CHECK_FAIL(st_open_fail("cut.safetensors"), PIO_STATUS_ERR_FORMAT, "cut.safetensors", "\"a\"",
               "past the data section");

    /* Absurd header length (not a safetensors file at all). */
    img = st_image("{}", (uint64_t)1 << 40, NULL, 0, &len);
    write_bytes(tpath("absurd.safetensors"), img, len);
    free(img);
    CHECK_FAIL(st_open_fail("absurd.safetensors"), PIO_STATUS_ERR_FORMAT, "absurd.safetensors", "absurd");

    /* Header JSON broken, not an object, trailing garbage, bad __metadata__. */
    ST_BAD("badjson.safetensors", "{\"a\": {\"dtype\": \"F32\", ", 0, PIO_STATUS_ERR_FORMAT, "not valid JSON");
    ST_BAD("array.safetensors", "[1, 2, 3]", 0, PIO_STATUS_ERR_FORMAT, "not a JSON object");
    ST_BAD("trail.safetensors", "{} x", 0, PIO_STATUS_ERR_FORMAT, "not valid JSON");
    ST_BAD("meta.safetensors", "{\"__metadata__\": 5}", 0, PIO_STATUS_ERR_FORMAT, "__metadata__");

    /* Entry fields missing or of the wrong type. */
    ST_BAD("entry.safetensors", "{\"t.w\": 3}", 0, PIO_STATUS_ERR_FORMAT, "\"t.w\"", "not a JSON object");
    ST_BAD("nodtype.safetensors", "{\"t.w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "dtype");
    ST_BAD("noshape.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "shape");
    ST_BAD("nooffs.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "data_offsets");
    ST_BAD("dtypenum.safetensors", "{\"t.w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "dtype");
    ST_BAD("shapestr.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "shape");
    ST_BAD("offs1.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "data_offsets");
    ST_BAD("offsstr.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "data_offsets");

    /* Unknown and unsupported dtypes. */
    ST_BAD("dtype.safetensors", "{\"t.w\":{\"dtype\":\"Q4_K\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "Q4_K");
    ST_BAD("f64.safetensors", "{\"t.w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8,
           PIO_STATUS_ERR_UNSUPPORTED, "\"t.w\"", "F64");

    /* Bad dimensions. */
    ST_BAD("negdim.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[2,-1],\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "dimension 1");
    ST_BAD("fracdim.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "dimension 0");
    ST_BAD("overflow.safetensors",
           "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "overflow");
    ST_BAD("bytesoverflow.safetensors",
           "{\"t.w\":{\"dtype\":\"I64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}", 8,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "overflow");
    ST_BAD("ndims.safetensors", "{\"t.w\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
           1, PIO_STATUS_ERR_UNSUPPORTED, "\"t.w\"", "9 dimensions");

    /* Offsets: reversed, out of range, size mismatch, overlap, misaligned. */
    ST_BAD("rev.safetensors", "{\"t.w\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[4,2]}}", 8,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "begin > end");
    ST_BAD("range.safetensors", "{\"t.w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 16,
           PIO_STATUS_ERR_FORMAT, "\"t.w\"", "[8, 24]", "past the data section (16 bytes)");
    ST_BAD("size.safetensors", "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,20]}}", 20,
           PIO_STATUS_ERR_FORMAT,
           "size.safetensors: tensor \"model.norm.weight\": data_offsets [0, 20] but shape [4] of F32 needs 16 bytes");
    ST_BAD("overlap.safetensors",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[24,40]},"
           "\"c\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 40,
           PIO_STATUS_ERR_FORMAT, "overlap", "\"c\"", "\"a\"");
    ST_BAD("same.safetensors",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
           "\"b\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 16,
           PIO_STATUS_ERR_FORMAT, "overlap");
    ST_BAD("align.safetensors",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
           "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}", 6,
           PIO_STATUS_ERR_FORMAT, "\"b\"", "aligned");
    ST_BAD("dup.safetensors",
           "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]},"
           "\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}", 4,
           PIO_STATUS_ERR_FORMAT, "\"a\"", "twice");

    /* Zero-size tensors do not overlap anything. */
    {
        pio_safetensors *st = NULL;
        write_st("zero.safetensors",
                 "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                 "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]}}", NULL, 16);
        CHECK_OK(pio_safetensors_open(tpath("zero.safetensors"), &st));
        pio_safetensors_free(st);
    }
    /* A directory is not a safetensors file. */
    CHECK_FAIL(st_open_fail(""), PIO_STATUS_ERR_IO, g_tmp);
}

/* ---- weights directories ----------------------------------------------------- */

static const char *k_hdr_ab =
    "{\"a\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
    "\"ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[12,20]}}";

static void test_weights_single(void)
{
    pio_weights *w = NULL;
    const pio_tensor *t = NULL;

    make_dir("single");
    write_st("single/model.safetensors", k_hdr_ab, NULL, 20);
    write_text("single/config.json", "{}");
    CHECK_OK(pio_weights_open_dir(tpath("single"), &w));
    if (!w)
        return;
    CHECK(pio_weights_count(w) == 2, "count %d", pio_weights_count(w));
    CHECK(pio_weights_at(w, 0) && strcmp(pio_weights_at(w, 0)->name, "a") == 0, "at(0)");
    CHECK(pio_weights_find(w, "ids") != NULL && pio_weights_find(w, "nope") == NULL, "find");
    CHECK_OK(pio_weights_get(w, "a", 2, (const int64_t[]){2, 3}, &t));
    CHECK(t && t->dtype == PIO_DTYPE_BF16, "get a");

    /* Wrong shape: names tensor and file, expected and actual shape, dtype. */
    CHECK_FAIL(pio_weights_get(w, "a", 2, (const int64_t[]){3, 2}, &t), PIO_STATUS_ERR_SHAPE,
               "model.safetensors", "\"a\"", "[2, 3]", "expected [3, 2]", "BF16");
    CHECK(t == NULL, "out not cleared on failure");
    CHECK_FAIL(pio_weights_get(w, "a", 1, (const int64_t[]){6}, &t), PIO_STATUS_ERR_SHAPE,
               "\"a\"", "[2, 3]", "expected [6]");
    /* Wrong dtype. */
    CHECK_FAIL(pio_weights_get(w, "ids", 1, (const int64_t[]){2}, &t), PIO_STATUS_ERR_SHAPE,
               "model.safetensors", "\"ids\"", "I32", "F32, F16 or BF16");
    /* Missing tensor. */
    CHECK_FAIL(pio_weights_get(w, "model.norm.weight", 1, (const int64_t[]){2}, &t), PIO_STATUS_ERR_MISSING,
               "\"model.norm.weight\"", "single");
    pio_weights_free(w);

    /* The only *.safetensors file, whatever its name. */
    make_dir("other");
    write_st("other/weights-v2.safetensors", k_hdr_ab, NULL, 20);
    CHECK_OK(pio_weights_open_dir(tpath("other"), &w));
    CHECK(pio_weights_count(w) == 2, "other count");
    CHECK(pio_weights_find(w, "a") && strstr(pio_weights_find(w, "a")->file, "weights-v2.safetensors"),
          "other file");
    pio_weights_free(w);

    /* Several files and no index: ambiguous, names them. */
    make_dir("several");
    write_st("several/x.safetensors", k_hdr_ab, NULL, 20);
    write_st("several/y.safetensors", k_hdr_ab, NULL, 20);
    w = (pio_weights *)1;
    CHECK_FAIL(pio_weights_open_dir(tpath("several"), &w), PIO_STATUS_ERR_MISSING, "x.safetensors",
               "y.safetensors", "index");
    CHECK(w == NULL, "handle not NULL");

    /* No weights at all; not a directory. */
    make_dir("nothing");
    CHECK_FAIL(pio_weights_open_dir(tpath("nothing"), &w), PIO_STATUS_ERR_MISSING, "nothing", "safetensors");
    CHECK_FAIL(pio_weights_open_dir(tpath("no-such-dir"), &w), PIO_STATUS_ERR_MISSING, "no-such-dir");
    /* A broken model.safetensors: the error from the file comes through. */
    make_dir("broken");
    write_bytes(tpath("broken/model.safetensors"), "\x01\x02", 2);
    CHECK_FAIL(pio_weights_open_dir(tpath("broken"), &w), PIO_STATUS_ERR_FORMAT, "model.safetensors", "shorter");
}

static void test_weights_sharded(void)
{
    pio_weights *w = NULL;
    const char *s1 = "{\"model.embed.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}";
    const char *s2 = "{\"model.norm.weight\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[0,8]},"
                     "\"lm_head.weight\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}";
    const char *index =
        "{\"metadata\":{\"total_size\":32},\"weight_map\":{"
        "\"lm_head.weight\":\"model-00002-of-00002.safetensors\","
        "\"model.embed.weight\":\"model-00001-of-00002.safetensors\","
        "\"model.norm.weight\":\"model-00002-of-00002.safetensors\"}}";

    make_dir("shards");
    write_st("shards/model-00001-of-00002.safetensors", s1, NULL, 16);
    write_st("shards/model-00002-of-00002.safetensors", s2, NULL, 16);
    write_text("shards/model.safetensors.index.json", index);
    CHECK_OK(pio_weights_open_dir(tpath("shards"), &w));
    if (w) {
        const pio_tensor *t = NULL;
        CHECK(pio_weights_count(w) == 3, "count %d", pio_weights_count(w));
        CHECK_OK(pio_weights_get(w, "model.norm.weight", 1, (const int64_t[]){4}, &t));
        CHECK(t && strstr(t->file, "model-00002-of-00002.safetensors"), "norm file");
        t = pio_weights_find(w, "model.embed.weight");
        CHECK(t && strstr(t->file, "model-00001-of-00002.safetensors"), "embed file");
        CHECK_FAIL(pio_weights_get(w, "lm_head.weight", 2, (const int64_t[]){2, 4}, &t), PIO_STATUS_ERR_SHAPE,
                   "model-00002-of-00002.safetensors", "\"lm_head.weight\"", "[2, 2]", "[2, 4]");
        pio_weights_free(w);
        w = NULL;
    }

    /* The index lists a tensor its shard does not have. */
    make_dir("shard-lacks");
    write_st("shard-lacks/model-00001-of-00002.safetensors", s1, NULL, 16);
    write_st("shard-lacks/model-00002-of-00002.safetensors", s2, NULL, 16);
    write_text("shard-lacks/model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed.weight\":\"model-00001-of-00002.safetensors\","
               "\"model.layers.0.mlp.up_proj.weight\":\"model-00002-of-00002.safetensors\"}}");
    CHECK_FAIL(pio_weights_open_dir(tpath("shard-lacks"), &w), PIO_STATUS_ERR_MISSING,
               "model.safetensors.index.json", "\"model.layers.0.mlp.up_proj.weight\"",
               "model-00002-of-00002.safetensors");
    CHECK(w == NULL, "handle not NULL");

    /* The index lists a tensor under the wrong shard. */
    make_dir("shard-wrong");
    write_st("shard-wrong/model-00001-of-00002.safetensors", s1, NULL, 16);
    write_st("shard-wrong/model-00002-of-00002.safetensors", s2, NULL, 16);
    write_text("shard-wrong/model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed.weight\":\"model-00002-of-00002.safetensors\","
               "\"model.norm.weight\":\"model-00001-of-00002.safetensors\"}}");
    CHECK_FAIL(pio_weights_open_dir(tpath("shard-wrong"), &w), PIO_STATUS_ERR_FORMAT, "\"model.embed.weight\"",
               "model-00001-of-00002.safetensors");

    /* A shard file named by the index is missing. */
    make_dir("shard-gone");
    write_st("shard-gone/model-00001-of-00002.safetensors", s1, NULL, 16);
    write_text("shard-gone/model.safetensors.index.json", index);
    CHECK_FAIL(pio_weights_open_dir(tpath("shard-gone"), &w), PIO_STATUS_ERR_MISSING,
               "model-00002-of-00002.safetensors", "missing");

    /* The same tensor in two shards. */
    make_dir("shard-dup");
    write_st("shard-dup/model-00001-of-00002.safetensors", s1, NULL, 16);
    write_st("shard-dup/model-00002-of-00002.safetensors",
             "{\"model.embed.weight\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[0,16]}}", NULL, 16);
    write_text("shard-dup/model.safetensors.index.json",
               "{\"weight_map\":{\"model.embed.weight\":\"model-00001-of-00002.safetensors\","
               "\"x\":\"model-00002-of-00002.safetensors\"}}");
    CHECK_FAIL(pio_weights_open_dir(tpath("shard-dup"), &w), PIO_STATUS_ERR_FORMAT, "\"model.embed.weight\"",
               "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");

    /* A broken shard: its own error names it. */
    make_dir("shard-bad");
    write_st("shard-bad/model-00001-of-00002.safetensors", s1, NULL, 16);
    write_st("shard-bad/model-00002-of-00002.safetensors", s2, NULL, 12);
    write_text("shard-bad/model.safetensors.index.json", index);
    CHECK_FAIL(pio_weights_open_dir(tpath("shard-bad"), &w), PIO_STATUS_ERR_FORMAT,
               "model-00002-of-00002.safetensors", "\"lm_head.weight\"");

    /* Index: bad JSON, no weight_map, a path that leaves the directory. */
    make_dir("index-bad");
    write_text("index-bad/model.safetensors.index.json", "{\"weight_map\": {\"a\": }");
    CHECK_FAIL(pio_weights_open_dir(tpath("index-bad"), &w), PIO_STATUS_ERR_FORMAT,
               "model.safetensors.index.json", "invalid JSON", "line 1");
    make_dir("index-nomap");
    write_text("index-nomap/model.safetensors.index.json", "{\"metadata\": {}}");
    CHECK_FAIL(pio_weights_open_dir(tpath("index-nomap"), &w), PIO_STATUS_ERR_MISSING,
               "model.safetensors.index.json", "weight_map");
    make_dir("index-escape");
    write_text("index-escape/model.safetensors.index.json", "{\"weight_map\": {\"a\": \"../x.safetensors\"}}");
    CHECK_FAIL(pio_weights_open_dir(tpath("index-escape"), &w), PIO_STATUS_ERR_FORMAT, "\"a\"");
}

/* ~19000 tensors as in a 30B MoE: opening and looking up every name stays fast. */
static void test_weights_many(void)
{
    enum { N = 19000 };
    size_t cap = (size_t)N * 160 + 64, o = 0;
    char *hdr = malloc(cap);
    pio_weights *w = NULL;
    clock_t t0;
    int found = 0;

    o += (size_t)snprintf(hdr + o, cap - o, "{");
    for (int i = 0; i < N; i++)
        o += (size_t)snprintf(hdr + o, cap - o,
                              "%s\"model.layers.%d.mlp.experts.%d.up_proj.weight\":"
                              "{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[%d,%d]}",
                              i ? "," : "", i / 128, i % 128, 4 * i, 4 * i + 4);
    snprintf(hdr + o, cap - o, "}");
    make_dir("many");
    write_st("many/model.safetensors", hdr, NULL, 4 * N);
    free(hdr);

    t0 = clock();
    CHECK_OK(pio_weights_open_dir(tpath("many"), &w));
    for (int i = 0; i < N; i++) {
        char name[96];
        snprintf(name, sizeof name, "model.layers.%d.mlp.experts.%d.up_proj.weight", i / 128, i % 128);
        const pio_tensor *t = pio_weights_find(w, name);
        found += t && t->data == pio_weights_at(w, i)->data;
    }
    CHECK(found == N, "found %d of %d", found, N);
    CHECK(pio_weights_find(w, "model.layers.0.mlp.experts.0.down_proj.weight") == NULL, "phantom tensor");
    {
        double s = (double)(clock() - t0) / CLOCKS_PER_SEC;
        CHECK(s < 20.0, "open + %d lookups took %.2f s", N, s);
    }
    pio_weights_free(w);
}

/* ---- config.json ------------------------------------------------------------ */

static void test_config_qwen3(void)
{
    pio_hf_config c;
    const char *json =
        "{\"architectures\":[\"Qwen3ForCausalLM\"],\"attention_bias\":false,\"bos_token_id\":151643,"
        "\"eos_token_id\":151645,\"head_dim\":128,\"hidden_act\":\"silu\",\"hidden_size\":2560,"
        "\"intermediate_size\":9728,\"max_position_embeddings\":262144,\"model_type\":\"qwen3\","
        "\"num_attention_heads\":32,\"num_hidden_layers\":36,\"num_key_value_heads\":8,"
        "\"rms_norm_eps\":1e-06,\"rope_scaling\":null,\"rope_theta\":5000000,\"sliding_window\":null,"
        "\"tie_word_embeddings\":true,\"torch_dtype\":\"bfloat16\",\"vocab_size\":151936,"
        "\"use_sliding_window\":false,\"max_window_layers\":36}";

    CHECK_OK(pio_hf_config_parse(json, strlen(json), "q4b/config.json", &c));
    CHECK(strcmp(c.architecture, "Qwen3ForCausalLM") == 0, "arch %s", c.architecture);
    CHECK(strcmp(c.model_type, "qwen3") == 0, "model_type %s", c.model_type);
    CHECK(c.vocab_size == 151936 && c.hidden_size == 2560 && c.intermediate_size == 9728, "sizes");
    CHECK(c.num_hidden_layers == 36 && c.num_attention_heads == 32 && c.num_key_value_heads == 8, "heads");
    CHECK(c.head_dim == 128, "head_dim %lld", (long long)c.head_dim);
    CHECK(c.max_position_embeddings == 262144, "max pos");
    CHECK(c.rms_norm_eps == 1e-6 && c.rope_theta == 5e6, "eps %g theta %g", c.rms_norm_eps, c.rope_theta);
    CHECK(strcmp(c.rope_type, "default") == 0 && c.rope_factor == 1.0, "rope type %s", c.rope_type);
    CHECK(c.mrope_section[0] == 0 && !c.mrope_interleaved, "mrope");
    CHECK(c.tie_word_embeddings && !c.attention_bias, "bools");
    CHECK(strcmp(c.hidden_act, "silu") == 0 && strcmp(c.torch_dtype, "bfloat16") == 0, "strings");
    CHECK(c.bos_token_id == 151643 && c.n_eos == 1 && c.eos_token_ids[0] == 151645, "ids");
    CHECK(c.num_experts == 0 && c.num_experts_per_tok == 0, "not MoE");
    CHECK(strcmp(c.path, "q4b/config.json") == 0, "path");
    CHECK(c.json_root && c.json_text == c.json_root, "json parts");
    CHECK(pio_hf_config_int(&c, "max_window_layers", -1) == 36, "plugin int");
    CHECK(pio_hf_config_int(&c, "use_sliding_window", -1) == 0, "plugin bool as int");
    CHECK(pio_hf_config_int(&c, "sliding_window", -1) == -1, "null is absent");
    CHECK(pio_hf_config_int(&c, "nope", 7) == 7, "default");
    CHECK(pio_hf_config_double(&c, "rms_norm_eps", 0) == 1e-6, "plugin double");
    CHECK(pio_hf_config_double(&c, "hidden_act", 2.5) == 2.5, "string is not a number");
    pio_hf_config_free(&c);
    CHECK(c.json_root == NULL, "freed");
    pio_hf_config_free(&c);   /* twice is harmless */
}

static void test_config_moe(void)
{
    pio_hf_config c;
    const char *qc30 =
        "{\"architectures\":[\"Qwen3MoeForCausalLM\"],\"decoder_sparse_step\":1,\"eos_token_id\":151645,"
        "\"head_dim\":128,\"hidden_size\":2048,\"intermediate_size\":6144,\"model_type\":\"qwen3_moe\","
        "\"moe_intermediate_size\":768,\"norm_topk_prob\":true,\"num_attention_heads\":32,\"num_experts\":128,"
        "\"num_experts_per_tok\":8,\"num_hidden_layers\":48,\"num_key_value_heads\":4,\"rope_theta\":10000000,"
        "\"tie_word_embeddings\":false,\"vocab_size\":151936,\"mlp_only_layers\":[]}";
    const char *glm =
        "{\"architectures\":[\"Glm4MoeLiteForCausalLM\"],\"model_type\":\"glm4_moe_lite\",\"hidden_size\":2048,"
        "\"num_hidden_layers\":47,\"num_attention_heads\":20,\"num_key_value_heads\":20,\"vocab_size\":154880,"
        "\"n_routed_experts\":64,\"num_experts_per_tok\":4,\"moe_intermediate_size\":1536,\"norm_topk_prob\":true,"
        "\"routed_scaling_factor\":1.8,\"q_lora_rank\":768,\"kv_lora_rank\":512,\"rms_norm_eps\":1e-05,"
        "\"rope_theta\":1000000,\"pad_token_id\":154820,\"eos_token_id\":[154820,154827,154829],"
        "\"dtype\":\"bfloat16\",\"partial_rotary_factor\":1.0}";

    CHECK_OK(pio_hf_config_parse(qc30, strlen(qc30), "qc30/config.json", &c));
    CHECK(c.num_experts == 128 && c.num_experts_per_tok == 8 && c.moe_intermediate_size == 768 &&
          c.decoder_sparse_step == 1 && c.norm_topk_prob, "qwen moe");
    CHECK(c.num_key_value_heads == 4 && c.head_dim == 128 && c.rope_theta == 1e7 && !c.tie_word_embeddings,
          "qc30 attention");
    CHECK(c.bos_token_id == -1, "bos default");
    pio_hf_config_free(&c);

    /* transformers >= 5 saves Qwen3-MoE's expert count as num_local_experts. */
    {
        const char *v5 = "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":9,"
                         "\"num_local_experts\":16,\"num_experts_per_tok\":2}";
        CHECK_OK(pio_hf_config_parse(v5, strlen(v5), "v5/config.json", &c));
        CHECK(c.num_experts == 16 && c.num_experts_per_tok == 2, "num_local_experts");
        pio_hf_config_free(&c);
        v5 = "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":9,"
             "\"num_experts\":4,\"num_experts_per_tok\":8}";
        CHECK_FAIL(pio_hf_config_parse(v5, strlen(v5), "v5/config.json", &c), PIO_STATUS_ERR_FORMAT,
                   "v5/config.json", "num_experts_per_tok");
    }

    CHECK_OK(pio_hf_config_parse(glm, strlen(glm), "glm/config.json", &c));
    CHECK(c.num_experts == 64 && c.num_experts_per_tok == 4 && c.moe_intermediate_size == 1536, "glm moe");
    CHECK(c.n_eos == 3 && c.eos_token_ids[0] == 154820 && c.eos_token_ids[2] == 154829, "eos list");
    CHECK(c.head_dim == 0, "no head_dim when hidden/heads is not whole (MLA)");
    CHECK(c.rms_norm_eps == 1e-5 && strcmp(c.torch_dtype, "bfloat16") == 0, "eps/dtype");
    CHECK(c.intermediate_size == 0, "intermediate absent");
    CHECK(pio_hf_config_double(&c, "routed_scaling_factor", 0) == 1.8, "plugin double");
    CHECK(pio_hf_config_int(&c, "kv_lora_rank", 0) == 512, "plugin int");
    pio_hf_config_free(&c);
}

static void test_config_vl(void)
{
    pio_hf_config c;
    /* Qwen3-VL as transformers 4.x writes it: LM under text_config, rope_scaling with M-RoPE. */
    const char *vl4 =
        "{\"architectures\":[\"Qwen3VLForConditionalGeneration\"],\"image_token_id\":151655,"
        "\"model_type\":\"qwen3_vl\",\"tie_word_embeddings\":true,"
        "\"text_config\":{\"model_type\":\"qwen3_vl_text\",\"hidden_size\":2048,\"num_hidden_layers\":28,"
        "\"num_attention_heads\":16,\"num_key_value_heads\":8,\"head_dim\":128,\"intermediate_size\":6144,"
        "\"vocab_size\":151936,\"rms_norm_eps\":1e-06,\"rope_theta\":5000000,\"bos_token_id\":151643,"
        "\"eos_token_id\":151645,\"max_position_embeddings\":262144,"
        "\"rope_scaling\":{\"mrope_interleaved\":true,\"mrope_section\":[24,20,20],\"rope_type\":\"default\"}},"
        "\"vision_config\":{\"depth\":24,\"hidden_size\":1024}}";
    /* The same in transformers 5 style: rope_parameters. */
    const char *vl5 =
        "{\"architectures\":[\"Qwen3VLForConditionalGeneration\"],\"model_type\":\"qwen3_vl\","
        "\"text_config\":{\"hidden_size\":2048,\"num_hidden_layers\":28,\"num_attention_heads\":16,"
        "\"num_key_value_heads\":8,\"head_dim\":128,\"vocab_size\":151936,\"tie_word_embeddings\":true,"
        "\"rope_parameters\":{\"rope_theta\":5000000,\"rope_type\":\"default\",\"mrope_section\":[24,20,20],"
        "\"mrope_interleaved\":true}}}";

    CHECK_OK(pio_hf_config_parse(vl4, strlen(vl4), "qvl2/config.json", &c));
    CHECK(strcmp(c.architecture, "Qwen3VLForConditionalGeneration") == 0, "arch from root");
    CHECK(strcmp(c.model_type, "qwen3_vl") == 0, "model_type from root: %s", c.model_type);
    CHECK(c.hidden_size == 2048 && c.num_hidden_layers == 28 && c.num_attention_heads == 16 &&
          c.vocab_size == 151936 && c.intermediate_size == 6144, "LM sizes from text_config");
    CHECK(c.rope_theta == 5e6 && strcmp(c.rope_type, "default") == 0, "rope");
    CHECK(c.mrope_section[0] == 24 && c.mrope_section[1] == 20 && c.mrope_section[2] == 20 &&
          c.mrope_interleaved, "mrope");
    CHECK(c.tie_word_embeddings, "tie from root");
    CHECK(c.n_eos == 1 && c.eos_token_ids[0] == 151645 && c.bos_token_id == 151643, "ids from text_config");
    CHECK(c.json_text != c.json_root, "text part is text_config");
    CHECK(pio_hf_config_int(&c, "image_token_id", 0) == 151655, "root key through the text part");
    CHECK(pio_hf_config_int(&c, "head_dim", 0) == 128, "text key");
    pio_hf_config_free(&c);

    CHECK_OK(pio_hf_config_parse(vl5, strlen(vl5), "qvl2/config.json", &c));
    CHECK(c.rope_theta == 5e6 && c.mrope_section[0] == 24 && c.mrope_section[2] == 20 && c.mrope_interleaved,
          "rope_parameters");
    CHECK(c.tie_word_embeddings, "tie from text_config");
    pio_hf_config_free(&c);
}

static void test_config_rope_styles(void)
{
    pio_hf_config c;
    const char *base = "\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";
    char json[1024];

    /* Old style with the legacy "type" key and a factor. */
    snprintf(json, sizeof json, "{%s,\"rope_theta\":1000000.0,\"rope_scaling\":{\"type\":\"linear\",\"factor\":4.0}}",
             base);
    CHECK_OK(pio_hf_config_parse(json, strlen(json), "c.json", &c));
    CHECK(c.rope_theta == 1e6 && strcmp(c.rope_type, "linear") == 0 && c.rope_factor == 4.0, "old rope");
    CHECK(c.head_dim == 16 && c.num_key_value_heads == 4, "defaults from heads");
    CHECK(c.rms_norm_eps == 1e-6 && c.n_eos == 0 && c.bos_token_id == -1 && !c.tie_word_embeddings,
          "defaults");
    CHECK(c.architecture[0] == '\0' && strcmp(c.hidden_act, "silu") == 0, "string defaults");
    pio_hf_config_free(&c);

    /* New style, theta only inside rope_parameters; yarn with a factor. */
    snprintf(json, sizeof json,
             "{%s,\"rope_parameters\":{\"rope_theta\":250000,\"rope_type\":\"yarn\",\"factor\":8}}", base);
    CHECK_OK(pio_hf_config_parse(json, strlen(json), "c.json", &c));
    CHECK(c.rope_theta == 250000 && strcmp(c.rope_type, "yarn") == 0 && c.rope_factor == 8.0, "new rope");
    pio_hf_config_free(&c);

    /* rope_parameters without a theta falls back to top-level rope_theta. */
    snprintf(json, sizeof json, "{%s,\"rope_theta\":500000,\"rope_parameters\":{\"rope_type\":\"default\"}}", base);
    CHECK_OK(pio_hf_config_parse(json, strlen(json), "c.json", &c));
    CHECK(c.rope_theta == 500000, "theta fallback %g", c.rope_theta);
    pio_hf_config_free(&c);

    /* No RoPE keys at all: transformers' default theta. */
    snprintf(json, sizeof json, "{%s}", base);
    CHECK_OK(pio_hf_config_parse(json, strlen(json), "c.json", &c));
    CHECK(c.rope_theta == 10000.0, "default theta");
    pio_hf_config_free(&c);

    /* Broken RoPE fields. */
    snprintf(json, sizeof json, "{%s,\"rope_scaling\":{\"mrope_section\":[24,20]}}", base);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "c.json", &c), PIO_STATUS_ERR_FORMAT, "c.json",
               "rope_scaling.mrope_section");
    pio_hf_config_free(&c);
    snprintf(json, sizeof json, "{%s,\"rope_parameters\":{\"rope_theta\":\"big\"}}", base);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "c.json", &c), PIO_STATUS_ERR_FORMAT, "c.json",
               "rope_parameters.rope_theta", "string");
    snprintf(json, sizeof json, "{%s,\"rope_scaling\":\"linear\"}", base);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "c.json", &c), PIO_STATUS_ERR_FORMAT, "c.json",
               "rope_scaling");
    snprintf(json, sizeof json, "{%s,\"rope_theta\":-5}", base);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "c.json", &c), PIO_STATUS_ERR_FORMAT, "c.json",
               "rope_theta");
}

static void test_config_broken(void)
{
    pio_hf_config c;
    char json[1024];
    const char *base3 = "\"num_hidden_layers\":2,\"num_attention_heads\":4,\"vocab_size\":100";

    /* Missing required fields, at the root and in text_config. */
    snprintf(json, sizeof json, "{%s}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "m/config.json", &c), PIO_STATUS_ERR_MISSING,
               "m/config.json", "\"hidden_size\"");
    CHECK(c.json_root == NULL, "no tree kept on failure");
    pio_hf_config_free(&c);
    snprintf(json, sizeof json, "{\"text_config\":{\"hidden_size\":8,\"num_hidden_layers\":2,\"vocab_size\":9}}");
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "m/config.json", &c), PIO_STATUS_ERR_MISSING,
               "m/config.json", "\"num_attention_heads\"", "text_config");

    /* Wrong types and ranges. */
    snprintf(json, sizeof json, "{%s,\"hidden_size\":\"2560\"}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "t/config.json", "\"hidden_size\"", "string \"2560\"");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":0}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"hidden_size\"", "positive");
    snprintf(json, sizeof json, "{\"hidden_size\":64,\"num_hidden_layers\":-2,\"num_attention_heads\":4,\"vocab_size\":100}");
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"num_hidden_layers\"", "-2");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64.5}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"hidden_size\"", "64.5");
    snprintf(json, sizeof json, "{\"text_config\":{%s,\"hidden_size\":[64]}}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"text_config.hidden_size\"");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"tie_word_embeddings\":\"yes\"}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"tie_word_embeddings\"", "true or false");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"num_key_value_heads\":3}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "num_key_value_heads");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"eos_token_id\":[1,2,3,4,5,6,7,8,9]}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_LIMIT,
               "\"eos_token_id\"");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"eos_token_id\":[1,\"x\"]}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"eos_token_id\"", "element 1");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"architectures\":\"Qwen3\"}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"architectures\"");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"text_config\":[]}", base3);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"text_config\"");
    snprintf(json, sizeof json, "{%s,\"hidden_size\":64,\"hidden_act\":\"%0100d\"}", base3, 0);
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "t/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "\"hidden_act\"", "characters");

    /* Bad JSON: the message gives the position. */
    snprintf(json, sizeof json, "{\n  \"hidden_size\": 64,\n  \"vocab_size\": ,\n}");
    CHECK_FAIL(pio_hf_config_parse(json, strlen(json), "j/config.json", &c), PIO_STATUS_ERR_FORMAT,
               "j/config.json", "invalid JSON", "line 3");
    CHECK_FAIL(pio_hf_config_parse("[]", 2, "j/config.json", &c), PIO_STATUS_ERR_FORMAT, "not a JSON object");
    CHECK_FAIL(pio_hf_config_parse("", 0, "j/config.json", &c), PIO_STATUS_ERR_FORMAT, "j/config.json");

    /* From files. */
    make_dir("cfg");
    write_text("cfg/config.json", "{\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
                                  "\"vocab_size\":100,\"eos_token_id\":[5,6]}");
    CHECK_OK(pio_hf_config_load(tpath("cfg/config.json"), &c));
    CHECK(c.n_eos == 2 && c.eos_token_ids[1] == 6 && strstr(c.path, "cfg/config.json"), "load");
    pio_hf_config_free(&c);
    write_text("cfg/bad.json", "{\"hidden_size\":64,,}");
    CHECK_FAIL(pio_hf_config_load(tpath("cfg/bad.json"), &c), PIO_STATUS_ERR_FORMAT, "cfg/bad.json", "line 1");
    CHECK_FAIL(pio_hf_config_load(tpath("cfg/none.json"), &c), PIO_STATUS_ERR_IO, "cfg/none.json");
    pio_hf_config_free(&c);
}

/* ---- generation_config.json ------------------------------------------------ */

/* Parse a NUL-terminated literal. */
static pio_status gc_parse(const char *json, const char *name, pio_generation_config *g)
{
    return pio_generation_config_parse(json, strlen(json), name, g);
}

static void test_generation_config(void)
{
    pio_generation_config g;
    const char *qwen = "{\"bos_token_id\":151643,\"do_sample\":true,\"eos_token_id\":[151645,151643],"
                       "\"pad_token_id\":151643,\"temperature\":0.7,\"top_k\":20,\"top_p\":0.8,"
                       "\"repetition_penalty\":1.05,\"min_p\":null,\"transformers_version\":\"4.51.0\"}";

    pio_generation_config_defaults(&g);
    CHECK(g.n_eos == 0 && g.bos_token_id == -1 && g.pad_token_id == -1 && !g.do_sample && g.temperature == 1.0 &&
          g.top_k == 50 && g.top_p == 1.0 && g.min_p == 0.0 && g.repetition_penalty == 1.0 &&
          g.max_new_tokens == -1, "defaults");

    CHECK_OK(pio_generation_config_parse(qwen, strlen(qwen), "generation_config.json", &g));
    CHECK(g.n_eos == 2 && g.eos_token_ids[0] == 151645 && g.eos_token_ids[1] == 151643, "eos");
    CHECK(g.bos_token_id == 151643 && g.pad_token_id == 151643 && g.do_sample, "ids");
    CHECK(g.temperature == 0.7 && g.top_k == 20 && g.top_p == 0.8 && g.repetition_penalty == 1.05, "sampling");
    CHECK(g.min_p == 0.0 && g.max_new_tokens == -1, "null and absent keep defaults");

    CHECK_OK(gc_parse("{\"eos_token_id\":2,\"max_new_tokens\":128,\"min_p\":0.05}",
                                         "g.json", &g));
    CHECK(g.n_eos == 1 && g.eos_token_ids[0] == 2 && g.max_new_tokens == 128 && g.min_p == 0.05 &&
          g.temperature == 1.0, "eos int");
    CHECK_OK(gc_parse("{}", "g.json", &g));
    CHECK(g.top_k == 50 && g.n_eos == 0, "empty file");

    CHECK_FAIL(gc_parse("{\"temperature\":\"hot\"}", "gen/generation_config.json", &g),
               PIO_STATUS_ERR_FORMAT, "gen/generation_config.json", "\"temperature\"");
    CHECK(g.temperature == 1.0, "defaults after failure");
    CHECK_FAIL(gc_parse("{\"top_p\":1.5}", "g.json", &g), PIO_STATUS_ERR_FORMAT,
               "g.json", "\"top_p\"");
    CHECK_FAIL(gc_parse("{\"top_k\":-1}", "g.json", &g), PIO_STATUS_ERR_FORMAT,
               "\"top_k\"");
    CHECK_FAIL(gc_parse("{\"do_sample\":1}", "g.json", &g), PIO_STATUS_ERR_FORMAT,
               "\"do_sample\"");
    CHECK_FAIL(gc_parse("{\"eos_token_id\":\"</s>\"}", "g.json", &g),
               PIO_STATUS_ERR_FORMAT, "\"eos_token_id\"");
    CHECK_FAIL(gc_parse("{\"eos_token_id\":[1,2,3,4,5,6,7,8,9,10]}", "g.json", &g),
               PIO_STATUS_ERR_LIMIT, "\"eos_token_id\"");
    CHECK_FAIL(gc_parse("{\"repetition_penalty\":0}", "g.json", &g),
               PIO_STATUS_ERR_FORMAT, "\"repetition_penalty\"");
    CHECK_FAIL(gc_parse("{\"top_k\": 20", "g.json", &g), PIO_STATUS_ERR_FORMAT,
               "g.json", "invalid JSON");
    CHECK_FAIL(gc_parse("7", "g.json", &g), PIO_STATUS_ERR_FORMAT, "not a JSON object");

    /* Files: a missing one leaves the defaults. */
    make_dir("gen");
    write_text("gen/generation_config.json", qwen);
    CHECK_OK(pio_generation_config_load(tpath("gen/generation_config.json"), &g));
    CHECK(g.top_k == 20 && g.n_eos == 2, "load");
    CHECK_OK(pio_generation_config_load(tpath("gen/absent.json"), &g));
    CHECK(g.top_k == 50 && g.n_eos == 0, "missing file gives defaults");
    write_text("gen/bad.json", "{\"top_k\": 20,\n\"top_p\": }");
    CHECK_FAIL(pio_generation_config_load(tpath("gen/bad.json"), &g), PIO_STATUS_ERR_FORMAT, "gen/bad.json",
               "line 2");
}

/* ---- files written by the Python tools (tests/fixtures/qwen3) ---------------- */

/*
 * The committed tiny Qwen3 checkpoints were written by transformers and
 * safetensors (Python): they must open cleanly, single-file and sharded.
 * Quietly skipped when the fixtures are not there.
 */
static void test_python_fixtures(void)
{
    static const char *const dirs[] = {"mha_f32", "tied_gqa2_f32", "untied_gqa4_bf16_sharded"};
    const char *src = getenv("PIO_SOURCE_DIR");
    char dir[1024], path[1200];

    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        pio_weights *w = NULL;
        pio_hf_config c;
        pio_generation_config g;
        struct stat sb;

        snprintf(dir, sizeof dir, "%s/tests/fixtures/qwen3/%s", src ? src : ".", dirs[i]);
        snprintf(path, sizeof path, "%s/config.json", dir);
        if (stat(path, &sb) != 0) {
            printf("note: %s absent, not checked\n", dir);
            continue;
        }
        CHECK_OK(pio_hf_config_load(path, &c));
        CHECK(strcmp(c.architecture, "Qwen3ForCausalLM") == 0 && c.head_dim > 0, "%s: config", dirs[i]);
        CHECK_OK(pio_weights_open_dir(dir, &w));
        CHECK(pio_weights_count(w) > 0, "%s: no tensors", dirs[i]);
        if (w) {
            const pio_tensor *t = NULL;
            const int64_t emb[2] = {c.vocab_size, c.hidden_size};
            CHECK_OK(pio_weights_get(w, "model.embed_tokens.weight", 2, emb, &t));
        }
        pio_weights_free(w);
        pio_hf_config_free(&c);
        snprintf(path, sizeof path, "%s/generation_config.json", dir);
        CHECK_OK(pio_generation_config_load(path, &g));
    }
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(g_tmp, sizeof g_tmp, "%s/pio_test_formats_XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_tmp)) {
        perror("mkdtemp");
        return 2;
    }

    test_st_valid();
    test_st_broken();
    test_weights_single();
    test_weights_sharded();
    test_weights_many();
    test_config_qwen3();
    test_config_moe();
    test_config_vl();
    test_config_rope_styles();
    test_config_broken();
    test_generation_config();
    test_python_fixtures();

    nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return check_report("test_formats");
}
