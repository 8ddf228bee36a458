/*
 * gguf.c - a GGUF file (llama.cpp's format): mapped read-only, header,
 * metadata and tensor descriptions validated, tensor data used in place.
 *
 * Layout (ggml/docs/gguf.md), all little-endian:
 *   "GGUF" | u32 version | u64 n_tensors | u64 n_kv
 *   n_kv      x  string key | u32 type | value
 *   n_tensors x  string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset
 *   padding to the alignment | data section
 * string = u64 length + bytes (no NUL); array value = u32 element type + u64
 * count + elements. Offsets are relative to the data section, which starts
 * at the first multiple of general.alignment (u32, default 32) after the
 * tensor descriptions.
 */
#include "formats_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define GGUF_DEFAULT_ALIGNMENT 32
#define GGUF_MAX_DIMS 4
#define GGUF_MAX_KEY 65535          /* longest key accepted (bytes) */
#define GGUF_MAX_TENSOR_NAME 64     /* the spec's limit on tensor names (bytes) */
#define GGUF_MAX_STR_ELEMS ((uint64_t)1 << 26)  /* elements of one string array */

/* One metadata entry; value bytes stay in the file image. */
typedef struct gguf_kv {
    const char *key;             /* NUL-terminated copy in g->names */
    pio_gguf_type type;
    pio_gguf_type elem;          /* arrays: element type; scalars: = type */
    uint64_t n;                  /* arrays: length; scalars: 1 */
    const uint8_t *val;          /* scalar value, string length field, or first element */
    uint64_t str_base;           /* string arrays: index of element 0's offset in str_offs */
} gguf_kv;

struct pio_gguf {
    char *name;                  /* path or caller's name; pio_tensor.file points here */
    void *map;                   /* owned mapping (pio_gguf_open), else NULL */
    size_t map_len;
    const uint8_t *buf;
    size_t len;
    uint32_t version;
    uint64_t alignment;
    size_t data_off;             /* start of the data section */
    int n_kv;
    gguf_kv *kv;                 /* (n_kv) file order */
    const gguf_kv **kv_sorted;   /* (n_kv) by key, for bsearch */
    uint64_t *str_offs;          /* string arrays: offset of each element's length from
                                    its array's val, all arrays one after another */
    int n_tensors;
    pio_tensor *tensors;         /* (n_tensors) file order */
    int *ggml_types;             /* (n_tensors) */
    const pio_tensor **by_name;  /* (n_tensors) sorted by name */
    char *names;                 /* keys and tensor names, NUL-terminated */
};

/* ---- GGML types -------------------------------------------------------------- */

typedef struct ggml_type_info {
    const char *name;            /* NULL = no such type (removed numbers) */
    int blck;                    /* elements per block */
    int size;                    /* bytes per block */
    int dtype;                   /* our pio_dtype, -1 = not handled */
} ggml_type_info;

/* ggml.h's enum ggml_type, with the geometry of each type (ggml.c type_traits). */
static const ggml_type_info ggml_types[] = {
    [0] = { "F32", 1, 4, PIO_DTYPE_F32 },
    [1] = { "F16", 1, 2, PIO_DTYPE_F16 },
    [2] = { "Q4_0", 32, 18, PIO_DTYPE_Q4_0 },
    [3] = { "Q4_1", 32, 20, -1 },
    [6] = { "Q5_0", 32, 22, -1 },
    [7] = { "Q5_1", 32, 24, -1 },
    [8] = { "Q8_0", 32, 34, PIO_DTYPE_Q8_0 },
    [9] = { "Q8_1", 32, 36, -1 },
    [10] = { "Q2_K", 256, 84, -1 },
    [11] = { "Q3_K", 256, 110, -1 },
    [12] = { "Q4_K", 256, 144, PIO_DTYPE_Q4_K },
    [13] = { "Q5_K", 256, 176, -1 },
    [14] = { "Q6_K", 256, 210, PIO_DTYPE_Q6_K },
    [15] = { "Q8_K", 256, 292, -1 },
    [16] = { "IQ2_XXS", 256, 66, -1 },
    [17] = { "IQ2_XS", 256, 74, -1 },
    [18] = { "IQ3_XXS", 256, 98, -1 },
    [19] = { "IQ1_S", 256, 50, -1 },
    [20] = { "IQ4_NL", 32, 18, -1 },
    [21] = { "IQ3_S", 256, 110, -1 },
    [22] = { "IQ2_S", 256, 82, -1 },
    [23] = { "IQ4_XS", 256, 136, -1 },
    [24] = { "I8", 1, 1, -1 },
    [25] = { "I16", 1, 2, -1 },
    [26] = { "I32", 1, 4, -1 },
    [27] = { "I64", 1, 8, -1 },
    [28] = { "F64", 1, 8, -1 },
    [29] = { "IQ1_M", 256, 56, -1 },
    [30] = { "BF16", 1, 2, PIO_DTYPE_BF16 },
    [34] = { "TQ1_0", 256, 54, -1 },
    [35] = { "TQ2_0", 256, 66, -1 },
    [39] = { "MXFP4", 32, 17, -1 },
};
#define GGML_N_TYPES ((int)(sizeof ggml_types / sizeof ggml_types[0]))

static const ggml_type_info *ggml_info(uint32_t t)
{
    return t < (uint32_t)GGML_N_TYPES && ggml_types[t].name ? &ggml_types[t] : NULL;
}

const char *pio_gguf_ggml_type_name(int t)
{
    const ggml_type_info *ti = t >= 0 ? ggml_info((uint32_t)t) : NULL;
    return ti ? ti->name : NULL;
}

int pio_gguf_ggml_type(pio_dtype dt)
{
    for (int t = 0; t < GGML_N_TYPES; t++)
        if (ggml_types[t].name && ggml_types[t].dtype == (int)dt)
            return t;
    return -1;
}

int pio_gguf_dtype_from_ggml(int t)
{
    const ggml_type_info *ti = t >= 0 ? ggml_info((uint32_t)t) : NULL;
    return ti ? ti->dtype : -1;
}

/* ---- metadata value types --------------------------------------------------- */

static const char *const gguf_type_names[PIO_GGUF_TYPE_COUNT] = {
    "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32",
    "bool", "string", "array", "uint64", "int64", "float64",
};

const char *pio_gguf_type_name(pio_gguf_type t)
{
    return (unsigned)t < PIO_GGUF_TYPE_COUNT ? gguf_type_names[t] : "?";
}

/* Bytes of a fixed-size value; 0 for string and array. */
static size_t gguf_scalar_size(pio_gguf_type t)
{
    switch (t) {
    case PIO_GGUF_UINT8: case PIO_GGUF_INT8: case PIO_GGUF_BOOL: return 1;
    case PIO_GGUF_UINT16: case PIO_GGUF_INT16: return 2;
    case PIO_GGUF_UINT32: case PIO_GGUF_INT32: case PIO_GGUF_FLOAT32: return 4;
    case PIO_GGUF_UINT64: case PIO_GGUF_INT64: case PIO_GGUF_FLOAT64: return 8;
    default: return 0;
    }
}

static bool gguf_is_int_type(pio_gguf_type t)
{
    return t == PIO_GGUF_UINT8 || t == PIO_GGUF_INT8 || t == PIO_GGUF_UINT16 || t == PIO_GGUF_INT16 ||
           t == PIO_GGUF_UINT32 || t == PIO_GGUF_INT32 || t == PIO_GGUF_UINT64 || t == PIO_GGUF_INT64;
}

/* Little-endian loads from possibly unaligned bytes. */
static uint64_t le_load(const uint8_t *p, size_t n)
{
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

/* Integer value of type t at p, into *out; false for a uint64 above INT64_MAX. */
static bool gguf_load_int(pio_gguf_type t, const uint8_t *p, int64_t *out)
{
    uint64_t u = le_load(p, gguf_scalar_size(t));
    switch (t) {
    case PIO_GGUF_INT8: *out = (int8_t)u; return true;
    case PIO_GGUF_INT16: *out = (int16_t)u; return true;
    case PIO_GGUF_INT32: *out = (int32_t)u; return true;
    case PIO_GGUF_INT64: *out = (int64_t)u; return true;
    case PIO_GGUF_UINT64:
        if (u > (uint64_t)INT64_MAX)
            return false;
        *out = (int64_t)u;
        return true;
    default: *out = (int64_t)u; return true;   /* uint8/16/32, bool */
    }
}

static double gguf_load_float(pio_gguf_type t, const uint8_t *p)
{
    if (t == PIO_GGUF_FLOAT32) {
        uint32_t u = (uint32_t)le_load(p, 4);
        float f;
        memcpy(&f, &u, 4);
        return f;
    } else {
        uint64_t u = le_load(p, 8);
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
}

/* ---- parsing ------------------------------------------------------------------ */

/* Cursor over the file image, with the context for messages. */
typedef struct gguf_rd {
    const uint8_t *p;
    size_t len, off;
    const char *file;
} gguf_rd;

static bool rd_has(const gguf_rd *r, uint64_t n) { return n <= r->len - r->off; }

static bool rd_u32(gguf_rd *r, uint32_t *v)
{
    if (!rd_has(r, 4))
        return false;
    *v = (uint32_t)le_load(r->p + r->off, 4);
    r->off += 4;
    return true;
}

static bool rd_u64(gguf_rd *r, uint64_t *v)
{
    if (!rd_has(r, 8))
        return false;
    *v = le_load(r->p + r->off, 8);
    r->off += 8;
    return true;
}

/* A growing block of NUL-terminated names, addressed by offset while parsing. */
typedef struct gguf_names {
    char *data;
    size_t len, cap;
} gguf_names;

static bool names_push(gguf_names *n, const uint8_t *s, size_t len, size_t *off)
{
    if (n->cap - n->len < len + 1) {
        size_t cap = n->cap ? n->cap : 4096;
        while (cap - n->len < len + 1)
            cap *= 2;
        char *d = realloc(n->data, cap);
        if (!d)
            return false;
        n->data = d;
        n->cap = cap;
    }
    memcpy(n->data + n->len, s, len);
    n->data[n->len + len] = '\0';
    *off = n->len;
    n->len += len + 1;
    return true;
}

/* Printable excerpt of a name that failed validation (for messages). */
static const char *gguf_excerpt(char *buf, size_t cap, const uint8_t *s, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 5 < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, s[i] >= 0x20 && s[i] < 0x7f ? "%c" : "\\x%02x", s[i]);
    buf[o < cap ? o : cap - 1] = '\0';
    return buf;
}

/*
 * Read a string header at the cursor: *s and *n the bytes, which must lie in
 * the file. `what` names it in messages ("key #3", "value of key \"x\"").
 */
static pio_status rd_string(gguf_rd *r, const char *what, const uint8_t **s, uint64_t *n)
{
    size_t at = r->off;
    if (!rd_u64(r, n))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: truncated at byte %zu reading the length of %s",
                         r->file, at, what);
    if (!rd_has(r, *n))
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: %s: string length %llu at byte %zu runs past the end of the file (%zu bytes)",
                         r->file, what, (unsigned long long)*n, at, r->len);
    *s = r->p + r->off;
    r->off += (size_t)*n;
    return PIO_STATUS_OK;
}

/* Skip over one value of type t, validating it; `key` for messages. */
static pio_status rd_value(gguf_rd *r, const char *key, pio_gguf_type t)
{
    size_t sz = gguf_scalar_size(t);
    if (sz) {
        if (!rd_has(r, sz))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": %s value truncated at byte %zu",
                             r->file, key, pio_gguf_type_name(t), r->off);
        if (t == PIO_GGUF_BOOL && r->p[r->off] > 1)
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": bool value %u is not 0 or 1", r->file,
                             key, r->p[r->off]);
        r->off += sz;
        return PIO_STATUS_OK;
    }
    if (t == PIO_GGUF_STRING) {
        const uint8_t *s;
        uint64_t n;
        char what[300];
        snprintf(what, sizeof what, "the value of key \"%s\"", key);
        return rd_string(r, what, &s, &n);
    }
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": unknown value type %u", r->file, key,
                     (unsigned)t);
}

/* Offsets of string-array elements, for all arrays of the file: grown as
 * arrays are read (bounded by the file size and GGUF_MAX_STR_ELEMS). */
typedef struct gguf_offs {
    uint64_t *data;
    uint64_t n, cap;
} gguf_offs;

/*
 * Parse the value of kv (key already read) at the cursor: type, and for
 * arrays element type and count, checked against the bytes left. String
 * arrays record their elements' offsets in `offs` (kv->str_base = first).
 */
static pio_status rd_kv_value(gguf_rd *r, gguf_kv *kv, gguf_offs *offs)
{
    pio_status st;
    uint32_t t;
    size_t at = r->off;

    if (!rd_u32(r, &t))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": truncated at byte %zu reading its type",
                         r->file, kv->key, at);
    if (t >= PIO_GGUF_TYPE_COUNT)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": unknown value type %u", r->file, kv->key, t);
    kv->type = kv->elem = (pio_gguf_type)t;
    kv->n = 1;
    if (t != PIO_GGUF_ARRAY) {
        kv->val = r->p + r->off;
        return rd_value(r, kv->key, kv->type);
    }

    uint32_t et;
    uint64_t n;
    at = r->off;
    if (!rd_u32(r, &et) || !rd_u64(r, &n))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": truncated at byte %zu reading the array header",
                         r->file, kv->key, at);
    if (et == PIO_GGUF_ARRAY)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": arrays of arrays are not allowed", r->file,
                         kv->key);
    if (et >= PIO_GGUF_TYPE_COUNT)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": unknown array element type %u", r->file,
                         kv->key, et);
    kv->elem = (pio_gguf_type)et;
    kv->n = n;
    kv->val = r->p + r->off;
    size_t esz = gguf_scalar_size(kv->elem);
    if (esz) {
        if (n > (r->len - r->off) / esz)
            return pio_error(PIO_STATUS_ERR_FORMAT,
                             "%s: key \"%s\": array of %llu %s values at byte %zu runs past the end of the "
                             "file (%zu bytes)",
                             r->file, kv->key, (unsigned long long)n, pio_gguf_type_name(kv->elem), at, r->len);
        if (kv->elem == PIO_GGUF_BOOL)
            for (uint64_t j = 0; j < n; j++)
                if (r->p[r->off + j] > 1)
                    return pio_error(PIO_STATUS_ERR_FORMAT,
                                     "%s: key \"%s\": element %llu: bool value %u is not 0 or 1", r->file,
                                     kv->key, (unsigned long long)j, r->p[r->off + j]);
        r->off += (size_t)(n * esz);
        return PIO_STATUS_OK;
    }
    /* strings: each at least its 8-byte length */
    if (n > (r->len - r->off) / 8)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: key \"%s\": array of %llu strings at byte %zu cannot fit in the rest of the file",
                         r->file, kv->key, (unsigned long long)n, at);
    if (n > GGUF_MAX_STR_ELEMS - offs->n)
        return pio_error(PIO_STATUS_ERR_LIMIT, "%s: key \"%s\": %llu strings is more than pio accepts (%llu in all)",
                         r->file, kv->key, (unsigned long long)n, (unsigned long long)GGUF_MAX_STR_ELEMS);
    if (offs->cap - offs->n < n) {
        uint64_t cap = offs->cap ? offs->cap : 1024;
        while (cap - offs->n < n)
            cap *= 2;
        uint64_t *d = realloc(offs->data, (size_t)cap * sizeof *d);
        if (!d)
            return pio_error(PIO_STATUS_ERR_NOMEM, "%s: key \"%s\": out of memory for %llu strings", r->file,
                             kv->key, (unsigned long long)n);
        offs->data = d;
        offs->cap = cap;
    }
    kv->str_base = offs->n;
    for (uint64_t j = 0; j < n; j++) {
        const uint8_t *s;
        uint64_t sl;
        char what[300];
        offs->data[offs->n + j] = (uint64_t)(r->p + r->off - kv->val);
        snprintf(what, sizeof what, "element %llu of key \"%s\"", (unsigned long long)j, kv->key);
        st = rd_string(r, what, &s, &sl);
        if (st != PIO_STATUS_OK)
            return st;
    }
    offs->n += n;
    return PIO_STATUS_OK;
}

static int gguf_cmp_kv(const void *a, const void *b)
{
    return strcmp((*(const gguf_kv *const *)a)->key, (*(const gguf_kv *const *)b)->key);
}

static int gguf_cmp_tensor_name(const void *a, const void *b)
{
    return strcmp((*(const pio_tensor *const *)a)->name, (*(const pio_tensor *const *)b)->name);
}

static int gguf_cmp_tensor_off(const void *a, const void *b)
{
    const pio_tensor *x = *(const pio_tensor *const *)a, *y = *(const pio_tensor *const *)b;
    const char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return x < y ? -1 : x > y;
}

/* Description of tensor i at the cursor into t (name into names as an offset). */
typedef struct gguf_tinfo {
    size_t name_off;
    uint32_t n_dims;
    uint64_t ne[GGUF_MAX_DIMS];
    uint32_t type;
    uint64_t offset;
} gguf_tinfo;

static pio_status rd_tensor_info(gguf_rd *r, uint64_t i, gguf_names *names, gguf_tinfo *ti)
{
    pio_status st;
    const uint8_t *s;
    uint64_t n;
    char what[64], ex[200];
    const char *name;
    size_t at;

    snprintf(what, sizeof what, "the name of tensor #%llu", (unsigned long long)i);
    st = rd_string(r, what, &s, &n);
    if (st != PIO_STATUS_OK)
        return st;
    if (n == 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor #%llu has an empty name", r->file,
                         (unsigned long long)i);
    if (n > GGUF_MAX_TENSOR_NAME || memchr(s, '\0', (size_t)n))
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor #%llu: name \"%s\"%s is %s", r->file, (unsigned long long)i,
                         gguf_excerpt(ex, 80, s, (size_t)(n < 64 ? n : 64)), n > 64 ? "..." : "",
                         n > GGUF_MAX_TENSOR_NAME ? "longer than 64 bytes" : "not a C string (NUL byte)");
    if (!names_push(names, s, (size_t)n, &ti->name_off))
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", r->file);
    name = names->data + ti->name_off;

    at = r->off;
    if (!rd_u32(r, &ti->n_dims))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": truncated at byte %zu", r->file, name, at);
    if (ti->n_dims < 1 || ti->n_dims > GGUF_MAX_DIMS)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": %u dimensions (must be 1 to %d)", r->file,
                         name, ti->n_dims, GGUF_MAX_DIMS);
    for (uint32_t d = 0; d < ti->n_dims; d++) {
        at = r->off;
        if (!rd_u64(r, &ti->ne[d]))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": truncated at byte %zu", r->file, name, at);
        if (ti->ne[d] == 0 || ti->ne[d] > (uint64_t)INT64_MAX)
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": dimension ne[%u] = %llu is not in [1, 2^63)",
                             r->file, name, d, (unsigned long long)ti->ne[d]);
    }
    at = r->off;
    if (!rd_u32(r, &ti->type) || !rd_u64(r, &ti->offset))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": truncated at byte %zu", r->file, name, at);
    return PIO_STATUS_OK;
}

/*
 * Validate tensor info `ti` against the data section and fill t. Types we
 * know but do not handle pass here (their geometry is checked); the caller
 * reports them once the whole file is known to be well-formed.
 */
static pio_status gguf_make_tensor(const pio_gguf *g, const char *name, const gguf_tinfo *ti, pio_tensor *t)
{
    const ggml_type_info *info = ggml_info(ti->type);
    uint64_t rows = 1, elems, nbytes, data_len = g->len - g->data_off;

    if (!info)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": unknown GGML type %u", g->name, name,
                         ti->type);
    if (ti->ne[0] % (uint64_t)info->blck != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": row length ne[0] = %llu is not a multiple of the %s block (%d)",
                         g->name, name, (unsigned long long)ti->ne[0], info->name, info->blck);
    for (uint32_t d = 1; d < ti->n_dims; d++) {
        if (ti->ne[d] > (uint64_t)INT64_MAX / rows)
            goto overflow;
        rows *= ti->ne[d];
    }
    if (ti->ne[0] > (uint64_t)INT64_MAX / rows)
        goto overflow;
    elems = ti->ne[0] * rows;
    {
        uint64_t row_bytes = ti->ne[0] / (uint64_t)info->blck * (uint64_t)info->size;
        if (row_bytes != 0 && rows > UINT64_MAX / row_bytes)
            goto overflow;
        nbytes = row_bytes * rows;
    }
    if (ti->offset % g->alignment != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": offset %llu is not a multiple of the alignment %llu", g->name, name,
                         (unsigned long long)ti->offset, (unsigned long long)g->alignment);
    if (g->data_off > g->len || ti->offset > data_len || nbytes > data_len - ti->offset)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": data [%llu, +%llu) runs past the end of the data section "
                         "(%llu bytes at file offset %zu); truncated?",
                         g->name, name, (unsigned long long)ti->offset, (unsigned long long)nbytes,
                         (unsigned long long)(g->data_off <= g->len ? data_len : 0), g->data_off);

    memset(t, 0, sizeof *t);
    t->dtype = info->dtype >= 0 ? (pio_dtype)info->dtype : PIO_DTYPE_U8;
    t->n_dims = (int)ti->n_dims;
    for (uint32_t d = 0; d < ti->n_dims; d++)
        t->shape[d] = (int64_t)ti->ne[ti->n_dims - 1 - d];
    t->n_elements = (int64_t)elems;
    t->data = g->buf + g->data_off + ti->offset;
    t->nbytes = (size_t)nbytes;
    t->file = g->name;
    return PIO_STATUS_OK;
overflow:
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": dimensions overflow 64 bits", g->name, name);
}

/* Alignment from general.alignment: a uint32 power of two. */
static pio_status gguf_read_alignment(pio_gguf *g)
{
    int i = pio_gguf_find_key(g, "general.alignment");
    g->alignment = GGUF_DEFAULT_ALIGNMENT;
    if (i < 0)
        return PIO_STATUS_OK;
    if (g->kv[i].type != PIO_GGUF_UINT32)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"general.alignment\" has type %s, expected uint32",
                         g->name, pio_gguf_type_name(g->kv[i].type));
    g->alignment = le_load(g->kv[i].val, 4);
    if (g->alignment == 0 || (g->alignment & (g->alignment - 1)) != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"general.alignment\" = %llu is not a power of two",
                         g->name, (unsigned long long)g->alignment);
    return PIO_STATUS_OK;
}

pio_status pio_gguf_from_memory(const void *buf, size_t len, const char *name, pio_gguf **out)
{
    pio_status st = PIO_STATUS_OK;
    gguf_rd r = { buf, len, 0, NULL };
    gguf_names names = { NULL, 0, 0 };
    gguf_tinfo *tinfo = NULL;
    size_t *key_offs = NULL;
    const pio_tensor **by_off = NULL;
    pio_gguf *g = NULL;
    uint64_t n_tensors = 0, n_kv = 0;
    gguf_offs offs = { NULL, 0, 0 };
    const char *unsupported = NULL;
    int unsupported_type = 0;

    *out = NULL;
    if (!name)
        name = "<memory>";
    r.file = name;
    if (len < 4 || memcmp(buf, GGUF_MAGIC, 4) != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: not a GGUF file (no \"GGUF\" magic at byte 0)", name);
    g = calloc(1, sizeof *g);
    if (!g || !(g->name = strdup(name)))
        goto nomem;
    r.file = g->name;
    g->buf = buf;
    g->len = len;
    r.off = 4;
    if (!rd_u32(&r, &g->version)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: truncated: file ends in the header (%zu bytes)", name, len);
        goto fail;
    }
    if (g->version == 1 || (g->version >= 0x01000000u && (g->version & 0xFFFF) == 0)) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: GGUF %s is not supported (only little-endian v2 and v3)",
                       name, g->version == 1 ? "version 1" : "big-endian file");
        goto fail;
    }
    if (g->version != 2 && g->version != 3) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: unknown GGUF version %u (expected 2 or 3)", name, g->version);
        goto fail;
    }
    if (!rd_u64(&r, &n_tensors) || !rd_u64(&r, &n_kv)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: truncated: file ends in the header (%zu bytes)", name, len);
        goto fail;
    }
    /* A key/value takes at least 8 + 1 + 4 + 1 bytes, a tensor info 8 + 1 + 4 + 8 + 4 + 8. */
    if (n_kv > (len - r.off) / 14) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: header claims %llu metadata keys, more than %zu bytes can hold",
                       name, (unsigned long long)n_kv, len);
        goto fail;
    }
    if (n_tensors > (len - r.off) / 33 || n_tensors > INT32_MAX) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: header claims %llu tensors, more than %zu bytes can hold",
                       name, (unsigned long long)n_tensors, len);
        goto fail;
    }

    /* ---- metadata */
    g->kv = calloc((size_t)n_kv + 1, sizeof *g->kv);
    g->kv_sorted = calloc((size_t)n_kv + 1, sizeof *g->kv_sorted);
    key_offs = calloc((size_t)n_kv + 1, sizeof *key_offs);
    if (!g->kv || !g->kv_sorted || !key_offs)
        goto nomem;
    for (uint64_t i = 0; i < n_kv; i++) {
        const uint8_t *s;
        uint64_t kn;
        char what[64], ex[200];
        gguf_kv *kv = &g->kv[i];
        snprintf(what, sizeof what, "key #%llu", (unsigned long long)i);
        st = rd_string(&r, what, &s, &kn);
        if (st != PIO_STATUS_OK)
            goto fail;
        if (kn == 0 || kn > GGUF_MAX_KEY || memchr(s, '\0', (size_t)kn)) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: key #%llu (\"%s\"%s) is %s", name, (unsigned long long)i,
                           gguf_excerpt(ex, 80, s, (size_t)(kn < 64 ? kn : 64)), kn > 64 ? "..." : "",
                           kn == 0 ? "empty" : kn > GGUF_MAX_KEY ? "too long" : "not a C string (NUL byte)");
            goto fail;
        }
        if (!names_push(&names, s, (size_t)kn, &key_offs[i]))
            goto nomem;
        kv->key = names.data + key_offs[i];   /* valid until the next push; fixed up below */
        st = rd_kv_value(&r, kv, &offs);
        if (st != PIO_STATUS_OK)
            goto fail;
    }
    g->str_offs = offs.data;
    offs.data = NULL;
    g->n_kv = (int)n_kv;

    /* ---- tensor descriptions (before names are final: store offsets) */
    tinfo = calloc((size_t)n_tensors + 1, sizeof *tinfo);
    if (!tinfo)
        goto nomem;
    for (uint64_t i = 0; i < n_tensors; i++) {
        st = rd_tensor_info(&r, i, &names, &tinfo[i]);
        if (st != PIO_STATUS_OK)
            goto fail;
    }

    /* Names are final: point keys into the block, sort, reject duplicates. */
    g->names = names.data;
    names.data = NULL;
    for (int i = 0; i < g->n_kv; i++) {
        g->kv[i].key = g->names + key_offs[i];
        g->kv_sorted[i] = &g->kv[i];
    }
    qsort(g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, gguf_cmp_kv);
    for (int i = 1; i < g->n_kv; i++) {
        if (strcmp(g->kv_sorted[i - 1]->key, g->kv_sorted[i]->key) == 0) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" appears twice", name, g->kv_sorted[i]->key);
            goto fail;
        }
    }
    st = gguf_read_alignment(g);
    if (st != PIO_STATUS_OK)
        goto fail;
    g->data_off = r.off + (size_t)((g->alignment - r.off % g->alignment) % g->alignment);
    if (g->data_off < r.off)
        g->data_off = SIZE_MAX;

    /* ---- tensors */
    g->tensors = calloc((size_t)n_tensors + 1, sizeof *g->tensors);
    g->ggml_types = calloc((size_t)n_tensors + 1, sizeof *g->ggml_types);
    g->by_name = calloc((size_t)n_tensors + 1, sizeof *g->by_name);
    by_off = calloc((size_t)n_tensors + 1, sizeof *by_off);
    if (!g->tensors || !g->ggml_types || !g->by_name || !by_off)
        goto nomem;
    for (uint64_t i = 0; i < n_tensors; i++) {
        const char *tname = g->names + tinfo[i].name_off;
        const ggml_type_info *info;
        st = gguf_make_tensor(g, tname, &tinfo[i], &g->tensors[i]);
        if (st != PIO_STATUS_OK)
            goto fail;
        g->tensors[i].name = tname;
        g->ggml_types[i] = (int)tinfo[i].type;
        info = ggml_info(tinfo[i].type);
        if (info->dtype < 0 && !unsupported) {
            unsupported = tname;
            unsupported_type = (int)tinfo[i].type;
        }
        g->by_name[i] = &g->tensors[i];
        by_off[i] = &g->tensors[i];
    }
    g->n_tensors = (int)n_tensors;

    qsort(g->by_name, (size_t)g->n_tensors, sizeof *g->by_name, gguf_cmp_tensor_name);
    for (int i = 1; i < g->n_tensors; i++) {
        if (strcmp(g->by_name[i - 1]->name, g->by_name[i]->name) == 0) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\" appears twice", name, g->by_name[i]->name);
            goto fail;
        }
    }
    qsort(by_off, (size_t)g->n_tensors, sizeof *by_off, gguf_cmp_tensor_off);
    for (int i = 1; i < g->n_tensors; i++) {
        const pio_tensor *a = by_off[i - 1], *b = by_off[i];
        if ((const uint8_t *)a->data + a->nbytes > (const uint8_t *)b->data) {
            const uint8_t *d0 = g->buf + g->data_off;
            st = pio_error(PIO_STATUS_ERR_FORMAT,
                           "%s: tensor \"%s\" (data [%zu, %zu)) overlaps tensor \"%s\" (data [%zu, %zu))", name,
                           b->name, (size_t)((const uint8_t *)b->data - d0),
                           (size_t)((const uint8_t *)b->data - d0) + b->nbytes, a->name,
                           (size_t)((const uint8_t *)a->data - d0),
                           (size_t)((const uint8_t *)a->data - d0) + a->nbytes);
            goto fail;
        }
    }
    if (unsupported) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                       "%s: tensor \"%s\" has type %s (GGML type %d), which pio does not handle "
                       "(supported: F32, F16, BF16, Q8_0, Q4_0, Q4_K, Q6_K)",
                       name, unsupported, pio_gguf_ggml_type_name(unsupported_type), unsupported_type);
        goto fail;
    }

    *out = g;
    g = NULL;
    goto done;

nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory reading the GGUF header", name);
fail:
    pio_gguf_free(g);
done:
    free(names.data);
    free(tinfo);
    free(key_offs);
    free(by_off);
    free(offs.data);
    return st;
}

pio_status pio_gguf_open(const char *path, pio_gguf **out)
{
    pio_status st;
    struct stat sb;
    void *map;
    size_t len;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pio_error(errno == ENOENT ? PIO_STATUS_ERR_MISSING : PIO_STATUS_ERR_IO, "%s: cannot open: %s", path,
                         strerror(errno));
    if (fstat(fd, &sb) != 0) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: not a regular file", path);
        goto close_fd;
    }
    len = (size_t)sb.st_size;
    if (len < 24) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: file is %zu bytes, shorter than a GGUF header (24)", path, len);
        goto close_fd;
    }
    /* Read-only private mapping: pages come from the page cache, never copied. */
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, len, strerror(errno));
        goto close_fd;
    }
    st = pio_gguf_from_memory(map, len, path, out);
    if (st != PIO_STATUS_OK) {
        munmap(map, len);
        goto close_fd;
    }
    (*out)->map = map;
    (*out)->map_len = len;
close_fd:
    close(fd);
    return st;
}

bool pio_gguf_is_mapped(const pio_gguf *g)
{
    return g && g->map != NULL;
}

void pio_gguf_free(pio_gguf *g)
{
    if (!g)
        return;
    if (g->map)
        munmap(g->map, g->map_len);
    free(g->kv);
    free(g->kv_sorted);
    free(g->str_offs);
    free(g->tensors);
    free(g->ggml_types);
    free(g->by_name);
    free(g->names);
    free(g->name);
    free(g);
}

bool pio_file_is_gguf(const char *path)
{
    struct stat sb;
    char magic[4];
    bool ok = false;
    FILE *f;
    if (stat(path, &sb) != 0 || !S_ISREG(sb.st_mode))
        return false;
    f = fopen(path, "rb");
    if (!f)
        return false;
    ok = fread(magic, 1, 4, f) == 4 && memcmp(magic, GGUF_MAGIC, 4) == 0;
    fclose(f);
    return ok;
}

/* ---- accessors ----------------------------------------------------------------- */

const char *pio_gguf_name(const pio_gguf *g) { return g ? g->name : ""; }
uint32_t pio_gguf_version(const pio_gguf *g) { return g ? g->version : 0; }
size_t pio_gguf_alignment(const pio_gguf *g) { return g ? (size_t)g->alignment : 0; }
int pio_gguf_kv_count(const pio_gguf *g) { return g ? g->n_kv : 0; }

static const gguf_kv *gguf_kv_at(const pio_gguf *g, int i)
{
    return g && i >= 0 && i < g->n_kv ? &g->kv[i] : NULL;
}

const char *pio_gguf_kv_key(const pio_gguf *g, int i)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    return kv ? kv->key : NULL;
}

pio_gguf_type pio_gguf_kv_type(const pio_gguf *g, int i)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    return kv ? kv->type : PIO_GGUF_TYPE_COUNT;
}

pio_gguf_type pio_gguf_kv_elem_type(const pio_gguf *g, int i)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    return kv ? kv->elem : PIO_GGUF_TYPE_COUNT;
}

uint64_t pio_gguf_kv_len(const pio_gguf *g, int i)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    return kv ? kv->n : 0;
}

static int gguf_cmp_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const gguf_kv *const *)elem)->key);
}

int pio_gguf_find_key(const pio_gguf *g, const char *key)
{
    const gguf_kv *const *hit;
    if (!g || !key || g->n_kv == 0 || !g->kv_sorted[0] || !g->kv_sorted[0]->key)
        return -1;
    hit = bsearch(key, g->kv_sorted, (size_t)g->n_kv, sizeof *g->kv_sorted, gguf_cmp_key);
    return hit ? (int)(*hit - g->kv) : -1;
}

/* The scalar kv for key, or an error naming it. */
static pio_status gguf_scalar(const pio_gguf *g, const char *key, const gguf_kv **out)
{
    int i = pio_gguf_find_key(g, key);
    *out = NULL;
    if (i < 0)
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: key \"%s\" is missing", pio_gguf_name(g), key);
    *out = &g->kv[i];
    return PIO_STATUS_OK;
}

pio_status pio_gguf_get_int(const pio_gguf *g, const char *key, int64_t *out)
{
    const gguf_kv *kv;
    pio_status st = gguf_scalar(g, key, &kv);
    if (st != PIO_STATUS_OK)
        return st;
    if (!gguf_is_int_type(kv->type))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" has type %s, expected an integer", g->name, key,
                         kv->type == PIO_GGUF_ARRAY ? "array" : pio_gguf_type_name(kv->type));
    if (!gguf_load_int(kv->type, kv->val, out))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\": value %llu is out of range", g->name, key,
                         (unsigned long long)le_load(kv->val, 8));
    return PIO_STATUS_OK;
}

pio_status pio_gguf_get_float(const pio_gguf *g, const char *key, double *out)
{
    const gguf_kv *kv;
    int64_t v;
    pio_status st = gguf_scalar(g, key, &kv);
    if (st != PIO_STATUS_OK)
        return st;
    if (kv->type == PIO_GGUF_FLOAT32 || kv->type == PIO_GGUF_FLOAT64) {
        *out = gguf_load_float(kv->type, kv->val);
        return PIO_STATUS_OK;
    }
    if (gguf_is_int_type(kv->type) && gguf_load_int(kv->type, kv->val, &v)) {
        *out = (double)v;
        return PIO_STATUS_OK;
    }
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" has type %s, expected a number", g->name, key,
                     pio_gguf_type_name(kv->type));
}

pio_status pio_gguf_get_bool(const pio_gguf *g, const char *key, bool *out)
{
    const gguf_kv *kv;
    pio_status st = gguf_scalar(g, key, &kv);
    if (st != PIO_STATUS_OK)
        return st;
    if (kv->type != PIO_GGUF_BOOL)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" has type %s, expected bool", g->name, key,
                         pio_gguf_type_name(kv->type));
    *out = kv->val[0] != 0;
    return PIO_STATUS_OK;
}

pio_status pio_gguf_get_str(const pio_gguf *g, const char *key, const char **s, size_t *len)
{
    const gguf_kv *kv;
    pio_status st = gguf_scalar(g, key, &kv);
    if (st != PIO_STATUS_OK)
        return st;
    if (kv->type != PIO_GGUF_STRING)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" has type %s, expected string", g->name, key,
                         pio_gguf_type_name(kv->type));
    *len = (size_t)le_load(kv->val, 8);
    *s = (const char *)kv->val + 8;
    return PIO_STATUS_OK;
}

bool pio_gguf_arr_int(const pio_gguf *g, int i, uint64_t j, int64_t *out)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    if (!kv || kv->type != PIO_GGUF_ARRAY || j >= kv->n ||
        !(gguf_is_int_type(kv->elem) || kv->elem == PIO_GGUF_BOOL))
        return false;
    return gguf_load_int(kv->elem, kv->val + j * gguf_scalar_size(kv->elem), out);
}

bool pio_gguf_arr_float(const pio_gguf *g, int i, uint64_t j, double *out)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    if (!kv || kv->type != PIO_GGUF_ARRAY || j >= kv->n ||
        (kv->elem != PIO_GGUF_FLOAT32 && kv->elem != PIO_GGUF_FLOAT64))
        return false;
    *out = gguf_load_float(kv->elem, kv->val + j * gguf_scalar_size(kv->elem));
    return true;
}

bool pio_gguf_arr_str(const pio_gguf *g, int i, uint64_t j, const char **s, size_t *len)
{
    const gguf_kv *kv = gguf_kv_at(g, i);
    const uint8_t *p;
    if (!kv || kv->type != PIO_GGUF_ARRAY || kv->elem != PIO_GGUF_STRING || j >= kv->n)
        return false;
    p = kv->val + g->str_offs[kv->str_base + j];
    *len = (size_t)le_load(p, 8);
    *s = (const char *)p + 8;
    return true;
}

int pio_gguf_tensor_count(const pio_gguf *g) { return g ? g->n_tensors : 0; }

const pio_tensor *pio_gguf_tensor_at(const pio_gguf *g, int i)
{
    return g && i >= 0 && i < g->n_tensors ? &g->tensors[i] : NULL;
}

static int gguf_cmp_tkey(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const pio_tensor *const *)elem)->name);
}

const pio_tensor *pio_gguf_find_tensor(const pio_gguf *g, const char *name)
{
    const pio_tensor *const *hit;
    if (!g || !name || g->n_tensors == 0)
        return NULL;
    hit = bsearch(name, g->by_name, (size_t)g->n_tensors, sizeof *g->by_name, gguf_cmp_tkey);
    return hit ? *hit : NULL;
}
