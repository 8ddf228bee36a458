/*
 * safetensors.c - one safetensors file: mapped read-only, header validated,
 * tensor data used in place (no copy).
 *
 * Layout (https://github.com/huggingface/safetensors, "Format"):
 *   u64 little-endian N | N bytes of JSON header | data section
 * The header maps each tensor name to {dtype, shape, data_offsets: [begin, end]}
 * with offsets relative to the start of the data section, plus an optional
 * "__metadata__" object. Writers pad the header with spaces to a multiple of
 * 8 bytes, so data starts 8-aligned in the file.
 */
#include "formats_int.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header longer than this is treated as corrupt (the 30B MoE's is ~2 MB). */
#define PIO_ST_MAX_HEADER ((uint64_t)100 << 20)

struct pio_safetensors {
    char *name;                  /* path or caller's name; pio_tensor.file points here */
    void *map;                   /* owned mapping (pio_safetensors_open), else NULL */
    size_t map_len;
    int n;
    pio_tensor *tensors;         /* (n) in header order */
    char *names;                 /* all tensor names, NUL-separated, one block */
    const pio_tensor **by_name;  /* (n) sorted by name, for bsearch */
};

/* Spellings from the safetensors spec that are valid but not handled here. */
static const char *const st_unsupported_dtypes[] = {
    "BOOL", "I8", "I16", "U16", "U32", "U64", "F64", "F8_E4M3", "F8_E5M2",
    "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

/* Map a safetensors dtype string to ours; false if unknown. */
static bool st_dtype_from_name(const char *s, pio_dtype *out)
{
    for (int d = 0; d < PIO_DTYPE_COUNT; d++) {
        if (pio_dtype_is_quantized((pio_dtype)d))
            continue;   /* GGML block types exist in GGUF files only */
        if (strcmp(s, pio_dtype_name((pio_dtype)d)) == 0) {
            *out = (pio_dtype)d;
            return true;
        }
    }
    return false;
}

/* "[a, b, c]" into buf (truncated to cap). */
static const char *st_shape_str(char *buf, size_t cap, int n, const int64_t *dims)
{
    size_t o = 0;
    o += (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)dims[i]);
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

/* a*b into *out; false on overflow of uint64. */
static bool st_mul_ok(uint64_t a, uint64_t b, uint64_t *out)
{
    if (a != 0 && b > UINT64_MAX / a)
        return false;
    *out = a * b;
    return true;
}

static int st_cmp_name(const void *a, const void *b)
{
    const pio_tensor *x = *(const pio_tensor *const *)a, *y = *(const pio_tensor *const *)b;
    return strcmp(x->name, y->name);
}

/* Tensors by position in the data section, then by size; ties broken by address. */
static int st_cmp_offset(const void *a, const void *b)
{
    const pio_tensor *x = *(const pio_tensor *const *)a, *y = *(const pio_tensor *const *)b;
    const char *px = x->data, *py = y->data;
    if (px != py)
        return px < py ? -1 : 1;
    if (x->nbytes != y->nbytes)
        return x->nbytes < y->nbytes ? -1 : 1;
    return x < y ? -1 : x > y;
}

/*
 * Validate one header entry `e` (tensor `tname`) and fill `t`. `data` is the
 * start of the data section, `data_len` its length. Errors name the file
 * and the tensor.
 */
static pio_status st_parse_entry(const char *file, const char *tname, const cJSON *e,
                                 const uint8_t *data, uint64_t data_len, pio_tensor *t)
{
    const cJSON *dtype, *shape, *offs, *d;
    char sbuf[200];
    uint64_t elems = 1, need, begin, end;
    int64_t v;
    int k = 0;

    if (!cJSON_IsObject(e))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": entry is not a JSON object", file,
                         tname);
    dtype = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
    offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!dtype)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", file, tname);
    if (!shape)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": missing \"shape\"", file, tname);
    if (!offs)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": missing \"data_offsets\"", file,
                         tname);

    if (!cJSON_IsString(dtype))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": \"dtype\" is not a string", file,
                         tname);
    if (!st_dtype_from_name(dtype->valuestring, &t->dtype)) {
        for (size_t i = 0; i < sizeof st_unsupported_dtypes / sizeof st_unsupported_dtypes[0]; i++)
            if (strcmp(dtype->valuestring, st_unsupported_dtypes[i]) == 0)
                return pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                                 "%s: tensor \"%s\": dtype %s is not supported "
                                 "(supported: F32, F16, BF16, I32, I64, U8)",
                                 file, tname, dtype->valuestring);
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": unknown dtype \"%.40s\" "
                         "(supported: F32, F16, BF16, I32, I64, U8)",
                         file, tname, dtype->valuestring);
    }

    if (!cJSON_IsArray(shape))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" is not an array", file,
                         tname);
    if (cJSON_GetArraySize(shape) > PIO_MAX_DIMS)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: tensor \"%s\": %d dimensions, at most %d supported",
                         file, tname, cJSON_GetArraySize(shape), PIO_MAX_DIMS);
    cJSON_ArrayForEach(d, shape) {
        if (!pio_fmt_json_is_int(d, &v) || v < 0)
            return pio_error(PIO_STATUS_ERR_FORMAT,
                             "%s: tensor \"%s\": \"shape\" dimension %d is not a non-negative integer",
                             file, tname, k);
        t->shape[k++] = v;
        if (!st_mul_ok(elems, (uint64_t)v, &elems) || elems > (uint64_t)INT64_MAX)
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": shape %s overflows", file,
                             tname, st_shape_str(sbuf, sizeof sbuf, k, t->shape));
    }
    t->n_dims = k;
    t->n_elements = (int64_t)elems;

    if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": \"data_offsets\" is not an array [begin, end]", file, tname);
    if (!pio_fmt_json_is_int(offs->child, &v) || v < 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": \"data_offsets\" begin is not a non-negative integer", file,
                         tname);
    begin = (uint64_t)v;
    if (!pio_fmt_json_is_int(offs->child->next, &v) || v < 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": \"data_offsets\" end is not a non-negative integer", file,
                         tname);
    end = (uint64_t)v;
    if (begin > end)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": data_offsets [%llu, %llu] has begin > end",
                         file, tname, (unsigned long long)begin, (unsigned long long)end);
    if (end > data_len)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the data section (%llu bytes)",
                         file, tname, (unsigned long long)begin, (unsigned long long)end,
                         (unsigned long long)data_len);
    if (!st_mul_ok(elems, pio_dtype_size(t->dtype), &need))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\": shape %s of %s overflows the byte count",
                         file, tname, st_shape_str(sbuf, sizeof sbuf, t->n_dims, t->shape),
                         pio_dtype_name(t->dtype));
    if (need != end - begin)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": data_offsets [%llu, %llu] but shape %s of %s needs %llu bytes",
                         file, tname, (unsigned long long)begin, (unsigned long long)end,
                         st_shape_str(sbuf, sizeof sbuf, t->n_dims, t->shape),
                         pio_dtype_name(t->dtype), (unsigned long long)need);
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    /* Kernels read elements in place, so each tensor must be aligned to its element size. */
    if ((uintptr_t)t->data % pio_dtype_size(t->dtype) != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: tensor \"%s\": data at offset %llu of the data section is not aligned "
                         "to its %zu-byte %s elements",
                         file, tname, (unsigned long long)begin, pio_dtype_size(t->dtype),
                         pio_dtype_name(t->dtype));
    t->file = file;
    return PIO_STATUS_OK;
}

pio_status pio_safetensors_from_memory(const void *buf, size_t len, const char *name,
                                       pio_safetensors **out)
{
    pio_status st = PIO_STATUS_OK;
    const uint8_t *p = buf;
    pio_safetensors *s = NULL;
    char *hdr = NULL;
    cJSON *root = NULL;
    const cJSON *e;
    const pio_tensor **by_off = NULL;
    uint64_t hlen = 0, data_len;
    size_t names_len = 0, err_off = 0, o = 0;
    int n = 0, i = 0;

    *out = NULL;
    if (!name)
        name = "<memory>";
    if (len < 8)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: file is %zu bytes, shorter than the 8-byte header length", name, len);
    for (int b = 7; b >= 0; b--)
        hlen = hlen << 8 | p[b];
    if (hlen > PIO_ST_MAX_HEADER)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: header length %llu is absurd (limit %llu bytes); not a safetensors file?",
                         name, (unsigned long long)hlen, (unsigned long long)PIO_ST_MAX_HEADER);
    if (hlen > len - 8)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: header length %llu runs past the end of the file (%zu bytes); truncated?",
                         name, (unsigned long long)hlen, len);
    data_len = len - 8 - hlen;

    /* cJSON gets its own NUL-terminated copy of the header (small: KBs to MBs). */
    hdr = malloc((size_t)hlen + 1);
    if (!hdr)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory for a %llu-byte header", name,
                         (unsigned long long)hlen);
    memcpy(hdr, p + 8, (size_t)hlen);
    hdr[hlen] = '\0';
    if (!pio_fmt_json_parse(hdr, (size_t)hlen, &root, &err_off)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT,
                       "%s: header is not valid JSON (error near header byte %zu, file offset %zu)",
                       name, err_off, err_off + 8);
        goto free_hdr;
    }
    if (!cJSON_IsObject(root)) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: header is not a JSON object", name);
        goto free_json;
    }

    cJSON_ArrayForEach(e, root) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (!cJSON_IsObject(e)) {
                st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: \"__metadata__\" is not a JSON object", name);
                goto free_json;
            }
            continue;
        }
        n++;
        names_len += strlen(e->string) + 1;
    }

    s = calloc(1, sizeof *s);
    if (!s)
        goto nomem;
    s->name = strdup(name);
    s->tensors = calloc((size_t)n + 1, sizeof *s->tensors);
    s->by_name = calloc((size_t)n + 1, sizeof *s->by_name);
    s->names = malloc(names_len + 1);
    by_off = calloc((size_t)n + 1, sizeof *by_off);
    if (!s->name || !s->tensors || !s->by_name || !s->names || !by_off)
        goto nomem;

    cJSON_ArrayForEach(e, root) {
        pio_tensor *t = &s->tensors[i];
        size_t nl;
        if (strcmp(e->string, "__metadata__") == 0)
            continue;
        st = st_parse_entry(s->name, e->string, e, p + 8 + hlen, data_len, t);
        if (st != PIO_STATUS_OK)
            goto free_st;
        nl = strlen(e->string) + 1;
        memcpy(s->names + o, e->string, nl);
        t->name = s->names + o;
        o += nl;
        s->by_name[i] = t;
        by_off[i] = t;
        i++;
    }
    s->n = n;

    /* Names must be unique within the file. */
    qsort(s->by_name, (size_t)n, sizeof *s->by_name, st_cmp_name);
    for (i = 1; i < n; i++) {
        if (strcmp(s->by_name[i - 1]->name, s->by_name[i]->name) == 0) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", name,
                           s->by_name[i]->name);
            goto free_st;
        }
    }

    /* Non-empty tensors must not share bytes: sort by offset, compare neighbours. */
    qsort(by_off, (size_t)n, sizeof *by_off, st_cmp_offset);
    {
        const pio_tensor *prev = NULL;
        for (i = 0; i < n; i++) {
            const pio_tensor *t = by_off[i];
            if (t->nbytes == 0)
                continue;
            if (prev && (const char *)prev->data + prev->nbytes > (const char *)t->data) {
                const uint8_t *d0 = p + 8 + hlen;
                st = pio_error(PIO_STATUS_ERR_FORMAT,
                               "%s: tensor \"%s\" data_offsets [%zu, %zu] overlap tensor \"%s\" [%zu, %zu]",
                               name, t->name, (size_t)((const uint8_t *)t->data - d0),
                               (size_t)((const uint8_t *)t->data - d0) + t->nbytes, prev->name,
                               (size_t)((const uint8_t *)prev->data - d0),
                               (size_t)((const uint8_t *)prev->data - d0) + prev->nbytes);
                goto free_st;
            }
            prev = t;
        }
    }

    *out = s;
    s = NULL;
    goto free_json;

nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory for %d tensors", name, n);
free_st:
    pio_safetensors_free(s);
free_json:
    free(by_off);
    cJSON_Delete(root);
free_hdr:
    free(hdr);
    return st;
}

pio_status pio_safetensors_open(const char *path, pio_safetensors **out)
{
    pio_status st;
    struct stat sb;
    void *map;
    size_t len;
    int fd;

    *out = NULL;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return pio_error(errno == ENOENT ? PIO_STATUS_ERR_MISSING : PIO_STATUS_ERR_IO,
                         "%s: cannot open: %s", path, strerror(errno));
    if (fstat(fd, &sb) != 0) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: not a regular file", path);
        goto close_fd;
    }
    len = (size_t)sb.st_size;
    if (len < 8) {
        st = pio_error(PIO_STATUS_ERR_FORMAT,
                       "%s: file is %zu bytes, shorter than the 8-byte header length", path, len);
        goto close_fd;
    }
    /* Read-only private mapping: pages come from the page cache, never copied. */
    map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: mmap of %zu bytes failed: %s", path, len, strerror(errno));
        goto close_fd;
    }
    st = pio_safetensors_from_memory(map, len, path, out);
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

void pio_safetensors_free(pio_safetensors *st)
{
    if (!st)
        return;
    if (st->map)
        munmap(st->map, st->map_len);
    free(st->by_name);
    free(st->names);
    free(st->tensors);
    free(st->name);
    free(st);
}

int pio_safetensors_count(const pio_safetensors *st) { return st ? st->n : 0; }

const pio_tensor *pio_safetensors_at(const pio_safetensors *st, int i)
{
    return st && i >= 0 && i < st->n ? &st->tensors[i] : NULL;
}

static int st_cmp_key(const void *key, const void *elem)
{
    return strcmp((const char *)key, (*(const pio_tensor *const *)elem)->name);
}

/* Binary search over the name-sorted index: O(log n). */
const pio_tensor *pio_safetensors_find(const pio_safetensors *st, const char *name)
{
    const pio_tensor *const *hit;
    if (!st || !name || st->n == 0)
        return NULL;
    hit = bsearch(name, st->by_name, (size_t)st->n, sizeof *st->by_name, st_cmp_key);
    return hit ? *hit : NULL;
}
