/*
 * gguf_write.c - writing GGUF v3 files, and converting a Hugging Face model
 * directory to one (pio quantize) with llama.cpp's tensor names, metadata
 * and tokenizer keys, so that the file loads in llama.cpp too.
 *
 * The writer keeps the metadata and tensor descriptions in memory, writes
 * the header once all are known, then streams tensor data: a model is never
 * held in memory whole.
 */
#include "gguf_int.h"

#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define GGUF_WRITE_ALIGNMENT 32
#define GGUF_WRITE_VERSION 3
#define GGUF_WRITE_MAX_NAME 63      /* llama.cpp: GGML_MAX_NAME 64 with the NUL */

typedef struct gw_tensor {
    char name[GGUF_WRITE_MAX_NAME + 1];
    uint32_t n_dims;
    uint64_t ne[4];
    uint32_t type;               /* GGML type */
    uint64_t offset, nbytes;
} gw_tensor;

struct pio_gguf_writer {
    char *path;
    FILE *f;
    uint8_t *kv;                 /* the serialized metadata section */
    size_t kv_len, kv_cap;
    uint64_t n_kv;
    char **keys;                 /* (n_kv) for the duplicate check */
    gw_tensor *tensors;
    int n_tensors, cap_tensors;
    uint64_t data_size;          /* data section bytes so far (aligned) */
    enum { GW_META, GW_DATA, GW_DONE, GW_FAILED } state;
    int cur;                     /* tensor being written */
    uint64_t cur_done;           /* its bytes written */
};

/* ---- the metadata buffer ------------------------------------------------------ */

static pio_status gw_fail(pio_gguf_writer *w, pio_status st)
{
    w->state = GW_FAILED;
    return st;
}

static pio_status gw_put(pio_gguf_writer *w, const void *p, size_t n)
{
    if (w->kv_cap - w->kv_len < n) {
        size_t cap = w->kv_cap ? w->kv_cap : 4096;
        while (cap - w->kv_len < n)
            cap *= 2;
        uint8_t *d = realloc(w->kv, cap);
        if (!d)
            return gw_fail(w, pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory for metadata", w->path));
        w->kv = d;
        w->kv_cap = cap;
    }
    memcpy(w->kv + w->kv_len, p, n);
    w->kv_len += n;
    return PIO_STATUS_OK;
}

static pio_status gw_put_le(pio_gguf_writer *w, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return gw_put(w, b, n);
}

static pio_status gw_put_str(pio_gguf_writer *w, const char *s, size_t n)
{
    pio_status st = gw_put_le(w, n, 8);
    return st ? st : gw_put(w, s, n);
}

/* Start a key: checks state and duplicates, writes key and type. */
static pio_status gw_key(pio_gguf_writer *w, const char *key, pio_gguf_type type)
{
    pio_status st;
    char **keys;
    if (w->state != GW_META)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: key \"%s\" added after the header was written", w->path, key);
    if (!key || !*key)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: empty metadata key", w->path);
    for (uint64_t i = 0; i < w->n_kv; i++)
        if (strcmp(w->keys[i], key) == 0)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: key \"%s\" added twice", w->path, key);
    keys = realloc(w->keys, (size_t)(w->n_kv + 1) * sizeof *keys);
    if (!keys || !(keys[w->n_kv] = strdup(key))) {
        if (keys)
            w->keys = keys;
        return gw_fail(w, pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", w->path));
    }
    w->keys = keys;
    w->n_kv++;
    if ((st = gw_put_str(w, key, strlen(key))) != PIO_STATUS_OK)
        return st;
    return gw_put_le(w, (uint64_t)type, 4);
}

pio_status pio_gguf_writer_add_u32(pio_gguf_writer *w, const char *key, uint32_t v)
{
    pio_status st = gw_key(w, key, PIO_GGUF_UINT32);
    return st ? st : gw_put_le(w, v, 4);
}

pio_status pio_gguf_writer_add_i32(pio_gguf_writer *w, const char *key, int32_t v)
{
    pio_status st = gw_key(w, key, PIO_GGUF_INT32);
    return st ? st : gw_put_le(w, (uint32_t)v, 4);
}

pio_status pio_gguf_writer_add_f32(pio_gguf_writer *w, const char *key, float v)
{
    uint32_t u;
    pio_status st = gw_key(w, key, PIO_GGUF_FLOAT32);
    memcpy(&u, &v, 4);
    return st ? st : gw_put_le(w, u, 4);
}

pio_status pio_gguf_writer_add_bool(pio_gguf_writer *w, const char *key, bool v)
{
    pio_status st = gw_key(w, key, PIO_GGUF_BOOL);
    return st ? st : gw_put_le(w, v ? 1 : 0, 1);
}

pio_status pio_gguf_writer_add_str(pio_gguf_writer *w, const char *key, const char *s)
{
    pio_status st = gw_key(w, key, PIO_GGUF_STRING);
    return st ? st : gw_put_str(w, s, strlen(s));
}

pio_status pio_gguf_writer_add_str_array(pio_gguf_writer *w, const char *key, const char *const *strs, uint64_t n)
{
    pio_status st = gw_key(w, key, PIO_GGUF_ARRAY);
    if (!st)
        st = gw_put_le(w, PIO_GGUF_STRING, 4);
    if (!st)
        st = gw_put_le(w, n, 8);
    for (uint64_t i = 0; !st && i < n; i++)
        st = gw_put_str(w, strs[i], strlen(strs[i]));
    return st;
}

pio_status pio_gguf_writer_add_i32_array(pio_gguf_writer *w, const char *key, const int32_t *v, uint64_t n)
{
    pio_status st = gw_key(w, key, PIO_GGUF_ARRAY);
    if (!st)
        st = gw_put_le(w, PIO_GGUF_INT32, 4);
    if (!st)
        st = gw_put_le(w, n, 8);
    for (uint64_t i = 0; !st && i < n; i++)
        st = gw_put_le(w, (uint32_t)v[i], 4);
    return st;
}

/* ---- tensors and the file ----------------------------------------------------- */

pio_status pio_gguf_writer_open(const char *path, pio_gguf_writer **out)
{
    pio_gguf_writer *w = calloc(1, sizeof *w);
    *out = NULL;
    if (!w || !(w->path = strdup(path))) {
        free(w);
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", path);
    }
    w->f = fopen(path, "wb");
    if (!w->f) {
        pio_status st = pio_error(PIO_STATUS_ERR_IO, "%s: cannot create: %s", path, strerror(errno));
        free(w->path);
        free(w);
        return st;
    }
    setvbuf(w->f, NULL, _IOFBF, 1 << 20);
    *out = w;
    return PIO_STATUS_OK;
}

void pio_gguf_writer_free(pio_gguf_writer *w)
{
    if (!w)
        return;
    if (w->f) {
        fclose(w->f);
        if (w->state != GW_DONE)
            remove(w->path);   /* never leave a partial file that looks like a model */
    }
    for (uint64_t i = 0; i < w->n_kv; i++)
        free(w->keys[i]);
    free(w->keys);
    free(w->kv);
    free(w->tensors);
    free(w->path);
    free(w);
}

static bool gw_dtype_ok(pio_dtype dt)
{
    return dt == PIO_DTYPE_F32 || dt == PIO_DTYPE_F16 || dt == PIO_DTYPE_BF16 || dt == PIO_DTYPE_Q8_0 ||
           dt == PIO_DTYPE_Q4_0 || dt == PIO_DTYPE_Q4_K || dt == PIO_DTYPE_Q6_K;
}

pio_status pio_gguf_writer_add_tensor(pio_gguf_writer *w, const char *name, pio_dtype dtype, int n_dims,
                                      const int64_t *shape)
{
    gw_tensor *t;
    uint64_t rows = 1;
    size_t row_bytes;

    if (w->state != GW_META)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor \"%s\" added after the header was written", w->path,
                         name);
    if (!name || !*name || strlen(name) > GGUF_WRITE_MAX_NAME)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor name \"%s\" must be 1 to %d bytes", w->path,
                         name ? name : "", GGUF_WRITE_MAX_NAME);
    if (!gw_dtype_ok(dtype))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: tensor \"%s\": dtype %s cannot be written", w->path, name,
                         pio_dtype_name(dtype));
    if (n_dims < 1 || n_dims > 4)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor \"%s\": %d dimensions (1 to 4)", w->path, name, n_dims);
    for (int d = 0; d < n_dims; d++)
        if (shape[d] < 1)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor \"%s\": dimension %d is %lld", w->path, name, d,
                             (long long)shape[d]);
    row_bytes = pio_dtype_row_bytes(dtype, shape[n_dims - 1]);
    if (row_bytes == 0)
        return pio_error(PIO_STATUS_ERR_SHAPE, "%s: tensor \"%s\": rows of %lld are not whole %s blocks of %d", w->path,
                         name, (long long)shape[n_dims - 1], pio_dtype_name(dtype), pio_dtype_block_elems(dtype));
    for (int i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor \"%s\" added twice", w->path, name);
    if (w->n_tensors == w->cap_tensors) {
        int cap = w->cap_tensors ? w->cap_tensors * 2 : 64;
        gw_tensor *nt = realloc(w->tensors, (size_t)cap * sizeof *nt);
        if (!nt)
            return gw_fail(w, pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", w->path));
        w->tensors = nt;
        w->cap_tensors = cap;
    }
    t = &w->tensors[w->n_tensors++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n_dims = (uint32_t)n_dims;
    for (int d = 0; d < n_dims; d++) {
        t->ne[d] = (uint64_t)shape[n_dims - 1 - d];
        if (d > 0)
            rows *= t->ne[d];
    }
    t->type = (uint32_t)pio_gguf_ggml_type(dtype);
    t->nbytes = rows * row_bytes;
    t->offset = w->data_size;
    w->data_size += (t->nbytes + GGUF_WRITE_ALIGNMENT - 1) / GGUF_WRITE_ALIGNMENT * GGUF_WRITE_ALIGNMENT;
    return PIO_STATUS_OK;
}

static bool gw_le(FILE *f, uint64_t v, size_t n)
{
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    return fwrite(b, 1, n, f) == n;
}

static bool gw_pad(FILE *f, uint64_t pos)
{
    static const uint8_t zeros[GGUF_WRITE_ALIGNMENT];
    size_t pad = (size_t)((GGUF_WRITE_ALIGNMENT - pos % GGUF_WRITE_ALIGNMENT) % GGUF_WRITE_ALIGNMENT);
    return fwrite(zeros, 1, pad, f) == pad;
}

static pio_status gw_io_error(pio_gguf_writer *w)
{
    return gw_fail(w, pio_error(PIO_STATUS_ERR_IO, "%s: write failed: %s", w->path, strerror(errno)));
}

/* Skip finished (or empty) tensors: pad after each. */
static pio_status gw_advance(pio_gguf_writer *w)
{
    while (w->cur < w->n_tensors && w->cur_done == w->tensors[w->cur].nbytes) {
        if (!gw_pad(w->f, w->tensors[w->cur].nbytes))
            return gw_io_error(w);
        w->cur++;
        w->cur_done = 0;
    }
    return PIO_STATUS_OK;
}

pio_status pio_gguf_writer_begin_data(pio_gguf_writer *w)
{
    uint64_t pos;
    if (w->state != GW_META)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: header already written", w->path);
    if (fwrite("GGUF", 1, 4, w->f) != 4 || !gw_le(w->f, GGUF_WRITE_VERSION, 4) ||
        !gw_le(w->f, (uint64_t)w->n_tensors, 8) || !gw_le(w->f, w->n_kv, 8) ||
        (w->kv_len && fwrite(w->kv, 1, w->kv_len, w->f) != w->kv_len))
        return gw_io_error(w);
    pos = 24 + w->kv_len;
    for (int i = 0; i < w->n_tensors; i++) {
        const gw_tensor *t = &w->tensors[i];
        size_t nl = strlen(t->name);
        if (!gw_le(w->f, nl, 8) || fwrite(t->name, 1, nl, w->f) != nl || !gw_le(w->f, t->n_dims, 4))
            return gw_io_error(w);
        for (uint32_t d = 0; d < t->n_dims; d++)
            if (!gw_le(w->f, t->ne[d], 8))
                return gw_io_error(w);
        if (!gw_le(w->f, t->type, 4) || !gw_le(w->f, t->offset, 8))
            return gw_io_error(w);
        pos += 8 + nl + 4 + 8ull * t->n_dims + 4 + 8;
    }
    if (!gw_pad(w->f, pos))
        return gw_io_error(w);
    w->state = GW_DATA;
    w->cur = 0;
    w->cur_done = 0;
    return gw_advance(w);
}

pio_status pio_gguf_writer_write(pio_gguf_writer *w, const void *data, size_t n)
{
    const uint8_t *p = data;
    if (w->state != GW_DATA)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor data written outside the data section", w->path);
    while (n > 0) {
        pio_status st;
        if (w->cur >= w->n_tensors)
            return gw_fail(w, pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: %zu bytes of tensor data too many", w->path, n));
        uint64_t left = w->tensors[w->cur].nbytes - w->cur_done;
        size_t k = n < left ? n : (size_t)left;
        if (fwrite(p, 1, k, w->f) != k)
            return gw_io_error(w);
        p += k;
        n -= k;
        w->cur_done += k;
        if ((st = gw_advance(w)) != PIO_STATUS_OK)
            return st;
    }
    return PIO_STATUS_OK;
}

pio_status pio_gguf_writer_finish(pio_gguf_writer *w)
{
    pio_status st = PIO_STATUS_OK;
    if (w->state == GW_META && (st = pio_gguf_writer_begin_data(w)) != PIO_STATUS_OK)
        return st;
    if (w->state != GW_DATA)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: writer is not writing data", w->path);
    if (w->cur < w->n_tensors)
        return gw_fail(w, pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: tensor \"%s\" has %llu of %llu bytes written",
                                    w->path, w->tensors[w->cur].name, (unsigned long long)w->cur_done,
                                    (unsigned long long)w->tensors[w->cur].nbytes));
    if (fflush(w->f) != 0 || ferror(w->f))
        return gw_io_error(w);
    if (fclose(w->f) != 0) {
        w->f = NULL;
        remove(w->path);
        return gw_fail(w, pio_error(PIO_STATUS_ERR_IO, "%s: close failed: %s", w->path, strerror(errno)));
    }
    w->f = NULL;
    w->state = GW_DONE;
    return PIO_STATUS_OK;
}

/* ==== converting a Hugging Face directory ====================================== */

/* Read and parse dir/name; *out NULL (no error) when the file is absent and !required. */
static pio_status cv_json(const char *dir, const char *name, bool required, cJSON **out)
{
    pio_status st;
    char *path = pio_fmt_path_join(dir, name), *text = NULL;
    size_t len;
    struct stat sb;
    *out = NULL;
    if (!path)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", dir);
    if (stat(path, &sb) != 0 && !required) {
        free(path);
        return PIO_STATUS_OK;
    }
    st = pio_fmt_read_file(path, PIO_FMT_MAX_JSON_FILE, &text, &len);
    if (st == PIO_STATUS_OK)
        st = pio_fmt_json_parse_named(text, len, path, out);
    free(text);
    free(path);
    return st;
}

/* Token string of a special-token entry of tokenizer_config.json (a string or
 * {"content": ...}); NULL when absent. */
static const char *cv_special_str(const cJSON *tcfg, const char *key)
{
    const cJSON *v = pio_fmt_json_child(tcfg, key);
    if (cJSON_IsObject(v))
        v = pio_fmt_json_child(v, "content");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The tokenizer pieces we need from tokenizer.json. */
typedef struct cv_vocab {
    int64_t n;                   /* ids */
    char **tokens;               /* (n) malloc'd strings */
    int32_t *types;              /* (n) */
    int64_t n_merges;
    char **merges;               /* (n_merges) "a b" */
} cv_vocab;

static void cv_vocab_free(cv_vocab *v)
{
    for (int64_t i = 0; v->tokens && i < v->n; i++)
        free(v->tokens[i]);
    for (int64_t i = 0; v->merges && i < v->n_merges; i++)
        free(v->merges[i]);
    free(v->tokens);
    free(v->types);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

/* Qwen's Split regex: the only pre-tokenizer we can name in GGUF ("qwen2"). */
static bool cv_is_qwen2_pretok(const cJSON *tok)
{
    static const char want[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
                               "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    const cJSON *pre = pio_fmt_json_child(tok, "pre_tokenizer");
    const cJSON *list = pio_fmt_json_child(pre, "pretokenizers");
    const cJSON *split = cJSON_GetArrayItem(list, 0), *bl = cJSON_GetArrayItem(list, 1);
    const cJSON *rx = pio_fmt_json_child(pio_fmt_json_child(split, "pattern"), "Regex");
    const cJSON *type = pio_fmt_json_child(bl, "type");
    return cJSON_GetArraySize(list) == 2 && cJSON_IsString(rx) && strcmp(rx->valuestring, want) == 0 &&
           cJSON_IsString(type) && strcmp(type->valuestring, "ByteLevel") == 0;
}

/* llama.cpp's converter marks added tokens that look special as control
 * tokens even when tokenizer.json says "special": false. */
static bool cv_looks_special(const char *s)
{
    size_t n = strlen(s);
    return n >= 4 && strncmp(s, "<|", 2) == 0 && strcmp(s + n - 2, "|>") == 0;
}

static char *cv_strdup(const char *s, pio_status *st, const char *file)
{
    char *c = strdup(s);
    if (!c)
        *st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", file);
    return c;
}

/* tokens / token types / merges as llama.cpp's get_vocab_base writes them. */
static pio_status cv_vocab_load(const cJSON *tok, const char *file, int64_t vocab_size, cv_vocab *v)
{
    pio_status st = PIO_STATUS_OK;
    const cJSON *model = pio_fmt_json_child(tok, "model"), *vocab = pio_fmt_json_child(model, "vocab");
    const cJSON *merges = pio_fmt_json_child(model, "merges"), *added = pio_fmt_json_child(tok, "added_tokens");
    const cJSON *e;
    int64_t max_id = -1, id, k = 0;

    memset(v, 0, sizeof *v);
    if (!cJSON_IsObject(vocab) || !cJSON_IsArray(merges))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: expected a BPE model with \"vocab\" and \"merges\"", file);
    cJSON_ArrayForEach(e, vocab)
        if (pio_fmt_json_is_int(e, &id) && id > max_id)
            max_id = id;
    cJSON_ArrayForEach(e, added)
        if (pio_fmt_json_is_int(pio_fmt_json_child(e, "id"), &id) && id > max_id)
            max_id = id;
    v->n = max_id + 1 > vocab_size ? max_id + 1 : vocab_size;
    if (v->n > ((int64_t)1 << 24))
        return pio_error(PIO_STATUS_ERR_LIMIT, "%s: %lld token ids is too many", file, (long long)v->n);
    v->tokens = calloc((size_t)v->n + 1, sizeof *v->tokens);
    v->types = calloc((size_t)v->n + 1, sizeof *v->types);
    v->n_merges = cJSON_GetArraySize(merges);
    v->merges = calloc((size_t)v->n_merges + 1, sizeof *v->merges);
    if (!v->tokens || !v->types || !v->merges)
        goto nomem;
    cJSON_ArrayForEach(e, vocab) {
        if (!pio_fmt_json_is_int(e, &id) || id < 0) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: model.vocab: id of '%.64s' is not a token id", file, e->string);
            goto fail;
        }
        free(v->tokens[id]);
        if (!(v->tokens[id] = cv_strdup(e->string, &st, file)))
            goto fail;
        v->types[id] = PIO_GGUF_TOKEN_NORMAL;
    }
    cJSON_ArrayForEach(e, added) {
        const cJSON *c = pio_fmt_json_child(e, "content"), *sp = pio_fmt_json_child(e, "special");
        if (!pio_fmt_json_is_int(pio_fmt_json_child(e, "id"), &id) || id < 0 || !cJSON_IsString(c)) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: added_tokens[%lld]: needs an id and a content", file, (long long)k);
            goto fail;
        }
        free(v->tokens[id]);
        if (!(v->tokens[id] = cv_strdup(c->valuestring, &st, file)))
            goto fail;
        v->types[id] = cJSON_IsTrue(sp) || cv_looks_special(c->valuestring) ? PIO_GGUF_TOKEN_CONTROL
                                                                            : PIO_GGUF_TOKEN_USER_DEFINED;
        k++;
    }
    for (id = 0; id < v->n; id++) {
        if (v->tokens[id])
            continue;
        char pad[40];
        snprintf(pad, sizeof pad, "[PAD%lld]", (long long)id);
        if (!(v->tokens[id] = cv_strdup(pad, &st, file)))
            goto fail;
        v->types[id] = PIO_GGUF_TOKEN_UNUSED;
    }
    k = 0;
    cJSON_ArrayForEach(e, merges) {
        const char *a, *b;
        if (cJSON_IsString(e)) {
            if (!(v->merges[k] = cv_strdup(e->valuestring, &st, file)))
                goto fail;
        } else if (cJSON_GetArraySize(e) == 2 && cJSON_IsString(cJSON_GetArrayItem(e, 0)) &&
                   cJSON_IsString(cJSON_GetArrayItem(e, 1))) {
            a = cJSON_GetArrayItem(e, 0)->valuestring;
            b = cJSON_GetArrayItem(e, 1)->valuestring;
            if (strchr(a, ' ') || strchr(b, ' ')) {
                st = pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: model.merges[%lld] has a space inside a token", file,
                               (long long)k);
                goto fail;
            }
            v->merges[k] = malloc(strlen(a) + strlen(b) + 2);
            if (!v->merges[k])
                goto nomem;
            sprintf(v->merges[k], "%s %s", a, b);
        } else {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: model.merges[%lld]: expected \"a b\" or [\"a\", \"b\"]", file,
                           (long long)k);
            goto fail;
        }
        k++;
    }
    return PIO_STATUS_OK;
nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", file);
fail:
    cv_vocab_free(v);
    return st;
}

/* Id of token string s in v (special tokens are in added_tokens), or -1. */
static int64_t cv_token_id(const cv_vocab *v, const char *s)
{
    for (int64_t i = v->n; s && i-- > 0;)
        if (v->types[i] != PIO_GGUF_TOKEN_UNUSED && strcmp(v->tokens[i], s) == 0)
            return i;
    return -1;
}

pio_status pio_gguf_writer_add_tokenizer(pio_gguf_writer *w, const char *dir, int64_t vocab_size,
                                         const pio_hf_config *cfg)
{
    pio_status st;
    cJSON *tok = NULL, *tcfg = NULL;
    cv_vocab v = { 0 };

#define CV(expr) do { if ((st = (expr)) != PIO_STATUS_OK) goto done; } while (0)
    CV(cv_json(dir, "tokenizer.json", true, &tok));
    CV(cv_json(dir, "tokenizer_config.json", false, &tcfg));
    if (!cv_is_qwen2_pretok(tok)) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s/tokenizer.json: the pre-tokenizer is not Qwen2's Split regex + ByteLevel; "
                       "only that one (tokenizer.ggml.pre \"qwen2\") can be written", dir);
        goto done;
    }
    CV(cv_vocab_load(tok, "tokenizer.json", vocab_size, &v));
    CV(pio_gguf_writer_add_str(w, "tokenizer.ggml.model", "gpt2"));
    CV(pio_gguf_writer_add_str(w, "tokenizer.ggml.pre", "qwen2"));
    CV(pio_gguf_writer_add_str_array(w, "tokenizer.ggml.tokens", (const char *const *)v.tokens, (uint64_t)v.n));
    CV(pio_gguf_writer_add_i32_array(w, "tokenizer.ggml.token_type", v.types, (uint64_t)v.n));
    CV(pio_gguf_writer_add_str_array(w, "tokenizer.ggml.merges", (const char *const *)v.merges, (uint64_t)v.n_merges));
    {
        /* gguf-py SpecialVocab: tokenizer_config.json's strings, else config.json's ids */
        static const struct { const char *cfg_key, *id_key, *gguf; } sp[] = {
            { "bos_token", "bos_token_id", "tokenizer.ggml.bos_token_id" },
            { "eos_token", "eos_token_id", "tokenizer.ggml.eos_token_id" },
            { "pad_token", "pad_token_id", "tokenizer.ggml.padding_token_id" },
            { "unk_token", "unk_token_id", "tokenizer.ggml.unknown_token_id" },
        };
        for (int i = 0; i < (int)(sizeof sp / sizeof sp[0]); i++) {
            int64_t id = cv_token_id(&v, cv_special_str(tcfg, sp[i].cfg_key));
            if (id < 0 && cfg)
                id = pio_hf_config_int(cfg, sp[i].id_key, -1);
            if (id < 0 && cfg && i == 1 && cfg->n_eos > 0)
                id = cfg->eos_token_ids[0];
            if (id >= 0 && id < v.n)
                CV(pio_gguf_writer_add_u32(w, sp[i].gguf, (uint32_t)id));
        }
        const cJSON *ab = pio_fmt_json_child(tcfg, "add_bos_token");
        CV(pio_gguf_writer_add_bool(w, "tokenizer.ggml.add_bos_token", cJSON_IsTrue(ab)));
        const cJSON *tpl = pio_fmt_json_child(tcfg, "chat_template");
        if (cJSON_IsString(tpl)) {
            CV(pio_gguf_writer_add_str(w, "tokenizer.chat_template", tpl->valuestring));
        } else {
            /* transformers >= 4.43 may save it beside: chat_template.jinja */
            char *path = pio_fmt_path_join(dir, "chat_template.jinja"), *text = NULL;
            size_t len;
            struct stat sb;
            if (path && stat(path, &sb) == 0 && S_ISREG(sb.st_mode) &&
                pio_fmt_read_file(path, PIO_FMT_MAX_JSON_FILE, &text, &len) == PIO_STATUS_OK &&
                strlen(text) == len)
                st = pio_gguf_writer_add_str(w, "tokenizer.chat_template", text);
            free(text);
            free(path);
            if (st != PIO_STATUS_OK)
                goto done;
        }
    }

#undef CV
done:
    cv_vocab_free(&v);
    cJSON_Delete(tok);
    cJSON_Delete(tcfg);
    return st;
}

/* Metadata: general.*, hyperparameters, tokenizer. */
static pio_status cv_metadata(pio_gguf_writer *w, const char *dir, const pio_hf_config *cfg, const char *arch,
                              pio_dtype dtype)
{
    pio_status st;
    cJSON *gen = NULL;
    char key[160], name[256];
    const char *base;

#define CV(expr) do { if ((st = (expr)) != PIO_STATUS_OK) goto done; } while (0)
    CV(pio_gguf_writer_add_str(w, "general.architecture", arch));
    CV(pio_gguf_writer_add_str(w, "general.type", "model"));
    snprintf(name, sizeof name, "%s", dir);
    while (strlen(name) > 1 && name[strlen(name) - 1] == '/')
        name[strlen(name) - 1] = '\0';
    base = strrchr(name, '/');
    CV(pio_gguf_writer_add_str(w, "general.name", base ? base + 1 : name));
    {
        /* llama_ftype: ALL_F32 0, MOSTLY_F16 1, Q4_0 2, Q8_0 7, Q4_K_S 14, Q6_K 18, BF16 32 */
        uint32_t ft = dtype == PIO_DTYPE_F16 ? 1 : dtype == PIO_DTYPE_Q4_0 ? 2 : dtype == PIO_DTYPE_Q8_0 ? 7
                    : dtype == PIO_DTYPE_Q4_K ? 14 : dtype == PIO_DTYPE_Q6_K ? 18 : dtype == PIO_DTYPE_BF16 ? 32 : 0;
        CV(pio_gguf_writer_add_u32(w, "general.file_type", ft));
        CV(pio_gguf_writer_add_u32(w, "general.quantization_version", 2));
    }

    for (int i = 0; i < pio_gguf_n_hparams; i++) {
        const pio_gguf_hparam *h = &pio_gguf_hparams[i];
        double d = pio_hf_config_double(cfg, h->hf, -1);
        if (!strcmp(h->hf, "head_dim"))
            d = (double)cfg->head_dim;       /* derived when config.json has none */
        else if (!strcmp(h->hf, "num_key_value_heads"))
            d = (double)cfg->num_key_value_heads;
        else if (!strcmp(h->hf, "rope_theta"))
            d = cfg->rope_theta;
        else if (!strcmp(h->hf, "rms_norm_eps"))
            d = cfg->rms_norm_eps;
        else if (!strcmp(h->hf, "num_experts"))
            d = cfg->num_experts > 0 ? (double)cfg->num_experts : -1;
        if (d < 0 || (h->kind == 'u' && d < 1))
            continue;
        snprintf(key, sizeof key, "%s.%s", arch, h->gguf);
        if (h->kind == 'u')
            CV(pio_gguf_writer_add_u32(w, key, (uint32_t)d));
        else
            CV(pio_gguf_writer_add_f32(w, key, (float)d));
        if (!strcmp(h->hf, "head_dim")) {
            snprintf(key, sizeof key, "%s.attention.value_length", arch);
            CV(pio_gguf_writer_add_u32(w, key, (uint32_t)d));
        }
    }

    if (cfg->num_experts > 0 && !cfg->norm_topk_prob) {   /* llama.cpp's default is true */
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        CV(pio_gguf_writer_add_bool(w, key, false));
    }
    CV(pio_gguf_writer_add_tokenizer(w, dir, cfg->vocab_size, cfg));

    /* sampling defaults (llama.cpp's general.sampling.*) from generation_config.json */
    CV(cv_json(dir, "generation_config.json", false, &gen));
    if (cJSON_IsTrue(pio_fmt_json_child(gen, "do_sample"))) {
        static const struct { const char *hf, *gguf; bool is_int; } keys[] = {
            { "temperature", "general.sampling.temp", false }, { "top_k", "general.sampling.top_k", true },
            { "top_p", "general.sampling.top_p", false }, { "min_p", "general.sampling.min_p", false },
            { "repetition_penalty", "general.sampling.penalty_repeat", false },
        };
        for (int i = 0; i < (int)(sizeof keys / sizeof keys[0]); i++) {
            const cJSON *x = pio_fmt_json_child(gen, keys[i].hf);
            if (!cJSON_IsNumber(x) || x->valuedouble < 0)
                continue;
            if (keys[i].is_int)
                CV(pio_gguf_writer_add_i32(w, keys[i].gguf, (int32_t)x->valuedouble));
            else
                CV(pio_gguf_writer_add_f32(w, keys[i].gguf, (float)x->valuedouble));
        }
    }
#undef CV
done:
    cJSON_Delete(gen);
    return st;
}

/* ---- tensors ------------------------------------------------------------------ */

/* One output tensor: 1 source, or n_expert sources stacked on a new outer dimension. */
typedef struct cv_out {
    char gguf[GGUF_WRITE_MAX_NAME + 1];
    char hf[256];
    const pio_tensor **src;      /* (n_src) */
    int n_src;
    pio_dtype dtype;
    bool fallback;
} cv_out;

/* "model.layers.N.mlp.experts.E.<proj>.weight": N, E and <proj>. */
static bool cv_expert_name(const char *name, long *layer, long *expert, char *proj, size_t cap)
{
    char p[64];
    int n = 0;
    if (sscanf(name, "model.layers.%ld.mlp.experts.%ld.%63[a-z_].weight%n", layer, expert, p, &n) != 3 ||
        name[n] != '\0' || *layer < 0 || *expert < 0)
        return false;
    snprintf(proj, cap, "%s", p);
    return true;
}

/* The type of matrix `o` (cols per row): dtype, overrides, then the fallback. */
static pio_status cv_choose_type(cv_out *o, int64_t cols, int n_dims, pio_dtype dtype, const char *overrides)
{
    o->dtype = n_dims == 1 ? PIO_DTYPE_F32 : dtype;
    if (n_dims > 1 && overrides && *overrides) {
        char *list = strdup(overrides), *save = NULL, *item;
        if (!list)
            return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
        for (item = strtok_r(list, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
            char *eq = strrchr(item, '=');
            int dt;
            if (!eq)
                continue;
            *eq = '\0';
            dt = pio_dtype_from_name(eq + 1);
            if (dt >= 0 && (fnmatch(item, o->hf, 0) == 0 || fnmatch(item, o->gguf, 0) == 0))
                o->dtype = (pio_dtype)dt;
        }
        free(list);
    }
    o->fallback = false;
    if (pio_dtype_row_bytes(o->dtype, cols) == 0) {
        o->fallback = true;
        o->dtype = (o->dtype == PIO_DTYPE_Q4_K || o->dtype == PIO_DTYPE_Q6_K) && cols % 32 == 0 ? PIO_DTYPE_Q8_0
                                                                                           : PIO_DTYPE_F16;
    }
    return PIO_STATUS_OK;
}

/* Check an overrides string: PATTERN=TYPE items with a type we can write. */
static pio_status cv_check_overrides(const char *overrides)
{
    pio_status st = PIO_STATUS_OK;
    char *list, *save = NULL, *item;
    if (!overrides || !*overrides)
        return PIO_STATUS_OK;
    list = strdup(overrides);
    if (!list)
        return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    for (item = strtok_r(list, ",", &save); item && st == PIO_STATUS_OK; item = strtok_r(NULL, ",", &save)) {
        char *eq = strrchr(item, '=');
        int dt = eq ? pio_dtype_from_name(eq + 1) : -1;
        if (!eq || eq == item)
            st = pio_error(PIO_STATUS_ERR_INVALID_ARG, "override \"%s\" is not PATTERN=TYPE", item);
        else if (dt < 0 || !gw_dtype_ok((pio_dtype)dt))
            st = pio_error(PIO_STATUS_ERR_INVALID_ARG,
                           "override \"%s\": type \"%s\" is not one of f32, f16, bf16, q8_0, q4_0, q4_k, q6_k", item,
                           eq + 1);
    }
    free(list);
    return st;
}

/* Rows to convert in parallel: source rows -> f32 -> destination rows. */
typedef struct cv_job {
    const uint8_t *src;
    pio_dtype sdt;
    size_t src_row;
    uint8_t *dst;
    pio_dtype ddt;
    size_t dst_row;
    int64_t rows, cols;
    float *tmp;                  /* (n_threads) x cols */
    int n_tasks;
} cv_job;

static void cv_task(void *ctx, int task, int thread)
{
    cv_job *j = ctx;
    int64_t r0 = j->rows * task / j->n_tasks, r1 = j->rows * (task + 1) / j->n_tasks;
    float *x = j->tmp + (size_t)thread * (size_t)j->cols;
    for (int64_t r = r0; r < r1; r++) {
        pio_convert_to_f32(x, j->src + (size_t)r * j->src_row, j->sdt, j->cols);
        pio_quantize_row(j->ddt, x, j->dst + (size_t)r * j->dst_row, j->cols);
    }
}

/* Stream the data of `o` into the writer, converted, in chunks of rows. */
static pio_status cv_write_tensor(pio_gguf_writer *w, pio_threadpool *tp, const cv_out *o, uint8_t **buf,
                                  size_t *buf_cap, float **tmp, size_t *tmp_cap)
{
    pio_status st;
    for (int s = 0; s < o->n_src; s++) {
        const pio_tensor *t = o->src[s];
        int64_t cols = t->shape[t->n_dims - 1], rows = t->n_elements / cols;
        size_t src_row = pio_dtype_row_bytes(t->dtype, cols), dst_row = pio_dtype_row_bytes(o->dtype, cols);
        int n_threads = tp ? pio_threadpool_size(tp) : 1;
        int64_t chunk;

        if (t->dtype == o->dtype) {          /* same type: the bytes as they are */
            if ((st = pio_gguf_writer_write(w, t->data, t->nbytes)) != PIO_STATUS_OK)
                return st;
            continue;
        }
        chunk = (int64_t)((16u << 20) / dst_row);
        if (chunk < 1)
            chunk = 1;
        if (chunk > rows)
            chunk = rows;
        if (*buf_cap < (size_t)chunk * dst_row) {
            free(*buf);
            *buf_cap = (size_t)chunk * dst_row;
            if (!(*buf = malloc(*buf_cap))) {
                *buf_cap = 0;
                return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory converting %s", o->hf);
            }
        }
        if (*tmp_cap < (size_t)n_threads * (size_t)cols) {
            free(*tmp);
            *tmp_cap = (size_t)n_threads * (size_t)cols;
            if (!(*tmp = malloc(*tmp_cap * sizeof **tmp))) {
                *tmp_cap = 0;
                return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory converting %s", o->hf);
            }
        }
        for (int64_t r = 0; r < rows; r += chunk) {
            int64_t n = rows - r < chunk ? rows - r : chunk;
            cv_job job = { (const uint8_t *)t->data + (size_t)r * src_row, t->dtype, src_row, *buf, o->dtype,
                           dst_row, n, cols, *tmp, 0 };
            job.n_tasks = (int)(n < (int64_t)n_threads * 4 ? n : (int64_t)n_threads * 4);
            pio_threadpool_run(tp, job.n_tasks, cv_task, &job);
            if ((st = pio_gguf_writer_write(w, *buf, (size_t)n * dst_row)) != PIO_STATUS_OK)
                return st;
        }
    }
    return PIO_STATUS_OK;
}

/* The output tensors of `wts` in file order, with experts stacked. */
static pio_status cv_plan(const pio_weights *wts, const pio_hf_config *cfg, const char *dir, cv_out **outs, int *n_out)
{
    int n = pio_weights_count(wts), k = 0;
    cv_out *o = calloc((size_t)n + 1, sizeof *o);
    const pio_tensor **srcs = calloc((size_t)n + 1, sizeof *srcs);
    int used = 0;

    *outs = NULL;
    *n_out = 0;
    if (!o || !srcs) {
        free(o);
        free(srcs);
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", dir);
    }
    o[0].src = srcs;   /* o[0].src owns the pointer block */
    for (int i = 0; i < n; i++) {
        const pio_tensor *t = pio_weights_at(wts, i);
        char proj[64];
        long layer, expert;
        if (cfg->tie_word_embeddings && strcmp(t->name, "lm_head.weight") == 0)
            continue;   /* tied: llama.cpp uses token_embd */
        if (cv_expert_name(t->name, &layer, &expert, proj, sizeof proj)) {
            int64_t ne = cfg->num_experts;
            if (ne < 1 || expert >= ne)
                goto bad_experts;
            if (expert != 0)
                continue;   /* gathered with expert 0 */
            if (used + ne > n)
                goto bad_experts;
            o[k].src = srcs + used;
            for (long e = 0; e < ne; e++) {
                char nm[256];
                snprintf(nm, sizeof nm, "model.layers.%ld.mlp.experts.%ld.%s.weight", layer, e, proj);
                const pio_tensor *x = pio_weights_find(wts, nm);
                if (!x || x->n_dims != 2 || x->shape[0] != t->shape[0] || x->shape[1] != t->shape[1] ||
                    x->dtype != t->dtype) {
                    free(srcs);
                    free(o);
                    return pio_error(PIO_STATUS_ERR_SHAPE, "%s: expert tensor \"%s\" is missing or differs from expert 0",
                                     dir, nm);
                }
                srcs[used++] = x;
            }
            o[k].n_src = (int)ne;
            snprintf(o[k].hf, sizeof o[k].hf, "model.layers.%ld.mlp.experts.%s.weight", layer, proj);
        } else {
            o[k].src = srcs + used;
            srcs[used++] = t;
            o[k].n_src = 1;
            snprintf(o[k].hf, sizeof o[k].hf, "%s", t->name);
        }
        if (!pio_gguf_name_from_hf(o[k].hf, o[k].gguf, sizeof o[k].gguf)) {
            pio_status st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                                      "%s: tensor \"%s\" has no llama.cpp name for this architecture", dir, o[k].hf);
            free(srcs);
            free(o);
            return st;
        }
        k++;
    }
    *outs = o;
    *n_out = k;
    return PIO_STATUS_OK;
bad_experts:
    free(srcs);
    free(o);
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: expert tensors do not match num_experts = %lld", dir,
                     (long long)cfg->num_experts);
}

pio_status pio_gguf_convert_dir(const char *dir, const char *out_path, pio_dtype dtype, const char *overrides,
                                int n_threads, void (*log)(const char *line), pio_gguf_convert_stats *stats)
{
    pio_status st;
    pio_hf_config cfg;
    pio_weights *wts = NULL;
    pio_gguf_writer *w = NULL;
    pio_threadpool *tp = NULL;
    cv_out *outs = NULL;
    int n_out = 0;
    uint8_t *buf = NULL;
    float *tmp = NULL;
    size_t buf_cap = 0, tmp_cap = 0;
    char *cfg_path = NULL;
    const char *arch;
    pio_gguf_convert_stats s = { 0 };

    if (stats)
        memset(stats, 0, sizeof *stats);
    memset(&cfg, 0, sizeof cfg);
    if (!gw_dtype_ok(dtype))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "GGUF output type %s is not one of F32, F16, BF16, Q8_0, Q4_0, "
                         "Q4_K, Q6_K", pio_dtype_name(dtype));
    if ((st = cv_check_overrides(overrides)) != PIO_STATUS_OK)
        return st;
    if (!(cfg_path = pio_fmt_path_join(dir, "config.json")))
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", dir);
    st = pio_hf_config_load(cfg_path, &cfg);
    free(cfg_path);
    if (st != PIO_STATUS_OK)
        goto done;
    arch = pio_gguf_arch_from_hf(cfg.architecture);
    if (!arch) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s: architecture \"%s\" cannot be written as GGUF (Qwen3ForCausalLM, Qwen3MoeForCausalLM)",
                       cfg.path, cfg.architecture);
        goto done;
    }
    if ((st = pio_weights_open_dir(dir, &wts)) != PIO_STATUS_OK)
        goto done;
    if ((st = cv_plan(wts, &cfg, dir, &outs, &n_out)) != PIO_STATUS_OK)
        goto done;
    if ((st = pio_gguf_writer_open(out_path, &w)) != PIO_STATUS_OK)
        goto done;
    if ((st = cv_metadata(w, dir, &cfg, arch, dtype)) != PIO_STATUS_OK)
        goto done;

    for (int i = 0; i < n_out; i++) {
        cv_out *o = &outs[i];
        const pio_tensor *t = o->src[0];
        int64_t shape[4];
        int nd = t->n_dims + (o->n_src > 1 ? 1 : 0);
        if (t->n_dims < 1 || nd > 4) {
            st = pio_error(PIO_STATUS_ERR_SHAPE, "%s: tensor \"%s\" has %d dimensions", dir, o->hf, t->n_dims);
            goto done;
        }
        if (o->n_src > 1)
            shape[0] = o->n_src;
        memcpy(shape + (o->n_src > 1), t->shape, (size_t)t->n_dims * sizeof *shape);
        if ((st = cv_choose_type(o, shape[nd - 1], t->n_dims, dtype, overrides)) != PIO_STATUS_OK)
            goto done;
        if (t->dtype != PIO_DTYPE_F32 && t->dtype != PIO_DTYPE_F16 && t->dtype != PIO_DTYPE_BF16) {
            st = pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: tensor \"%s\" is %s; only F32/F16/BF16 sources are converted",
                           t->file, t->name, pio_dtype_name(t->dtype));
            goto done;
        }
        if ((st = pio_gguf_writer_add_tensor(w, o->gguf, o->dtype, nd, shape)) != PIO_STATUS_OK)
            goto done;
        s.n_tensors++;
        s.n_fallback += o->fallback;
        for (int k = 0; k < o->n_src; k++)
            s.bytes_in += (int64_t)o->src[k]->nbytes;
        s.bytes_out += (int64_t)(pio_dtype_row_bytes(o->dtype, shape[nd - 1]) *
                                 (size_t)(t->n_elements / shape[nd - 1] * o->n_src));
        if (log) {
            char line[512];
            snprintf(line, sizeof line, "%-34s %-5s -> %-5s%s  %s", o->gguf, pio_dtype_name(t->dtype),
                     pio_dtype_name(o->dtype), o->fallback ? " (fallback: rows not whole blocks)" : "", o->hf);
            log(line);
        }
    }
    if ((st = pio_gguf_writer_begin_data(w)) != PIO_STATUS_OK)
        goto done;
    if ((st = pio_threadpool_new(n_threads, &tp)) != PIO_STATUS_OK)
        goto done;
    for (int i = 0; i < n_out; i++)
        if ((st = cv_write_tensor(w, tp, &outs[i], &buf, &buf_cap, &tmp, &tmp_cap)) != PIO_STATUS_OK)
            goto done;
    st = pio_gguf_writer_finish(w);
    if (st == PIO_STATUS_OK && stats)
        *stats = s;
done:
    pio_threadpool_free(tp);
    pio_gguf_writer_free(w);
    free(buf);
    free(tmp);
    if (outs)
        free(outs[0].src);
    free(outs);
    pio_weights_free(wts);
    pio_hf_config_free(&cfg);
    return st;
}
