/*
 * json_util.c - file reading and typed JSON access for the format parsers.
 * Every failure names the file and the field, as the style guide asks.
 */
#include "formats_int.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Integers above 2^53 do not survive cJSON's double; treat them as invalid. */
#define PIO_FMT_MAX_EXACT 9007199254740992.0

/* Reads with fread (works for pipes and /proc too); cost O(file size). */
pio_status pio_fmt_read_file(const char *path, size_t max, char **out, size_t *len)
{
    pio_status st = PIO_STATUS_OK;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    FILE *f = fopen(path, "rb");

    *out = NULL;
    *len = 0;
    if (!f)
        return pio_error(PIO_STATUS_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    for (;;) {
        if (n + 1 >= cap) {
            size_t ncap = cap ? cap * 2 : 65536;
            char *nb;
            /* A full buffer of max + 2 bytes holds max + 1 bytes: too many. */
            if (cap >= max + 2) {
                st = pio_error(PIO_STATUS_ERR_LIMIT, "%s: larger than %zu bytes", path, max);
                goto free_buf;
            }
            if (ncap > max + 2)
                ncap = max + 2;
            nb = realloc(buf, ncap);
            if (!nb) {
                st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory reading the file", path);
                goto free_buf;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        st = pio_error(PIO_STATUS_ERR_IO, "%s: read error: %s", path, strerror(errno));
        goto free_buf;
    }
    if (n > max) {
        st = pio_error(PIO_STATUS_ERR_LIMIT, "%s: larger than %zu bytes", path, max);
        goto free_buf;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    buf = NULL;
free_buf:
    free(buf);
    fclose(f);
    return st;
}

char *pio_fmt_path_join(const char *dir, const char *name)
{
    size_t dl = strlen(dir), nl = strlen(name);
    bool slash = dl > 0 && dir[dl - 1] != '/';
    char *p = malloc(dl + slash + nl + 1);
    if (!p)
        return NULL;
    memcpy(p, dir, dl);
    if (slash)
        p[dl] = '/';
    memcpy(p + dl + slash, name, nl + 1);
    return p;
}

bool pio_fmt_json_parse(const char *text, size_t len, cJSON **out, size_t *err_off)
{
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);

    *out = NULL;
    if (!root) {
        *err_off = end && end >= text && end <= text + len ? (size_t)(end - text) : 0;
        return false;
    }
    /* cJSON stops after the first value; only whitespace may follow it. */
    for (size_t i = (size_t)(end - text); i < len; i++) {
        char c = text[i];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            cJSON_Delete(root);
            *err_off = i;
            return false;
        }
    }
    *out = root;
    return true;
}

pio_status pio_fmt_json_parse_named(const char *text, size_t len, const char *name, cJSON **out)
{
    size_t off = 0, line = 1, col = 1;

    if (pio_fmt_json_parse(text, len, out, &off))
        return PIO_STATUS_OK;
    for (size_t i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: invalid JSON near byte %zu (line %zu, column %zu)",
                     name, off, line, col);
}

const cJSON *pio_fmt_json_child(const cJSON *obj, const char *key)
{
    const cJSON *v;
    if (!cJSON_IsObject(obj))
        return NULL;
    v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

bool pio_fmt_json_is_int(const cJSON *v, int64_t *out)
{
    double d;
    if (!cJSON_IsNumber(v))
        return false;
    d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || fabs(d) > PIO_FMT_MAX_EXACT)
        return false;
    *out = (int64_t)d;
    return true;
}

/* A short description of `v` for "got ..." in messages. */
static const char *json_describe(const cJSON *v, char *buf, size_t cap)
{
    if (cJSON_IsNumber(v))
        snprintf(buf, cap, "%.17g", v->valuedouble);
    else if (cJSON_IsString(v))
        snprintf(buf, cap, "string \"%.40s\"", v->valuestring);
    else if (cJSON_IsBool(v))
        snprintf(buf, cap, "%s", cJSON_IsTrue(v) ? "true" : "false");
    else if (cJSON_IsArray(v))
        snprintf(buf, cap, "an array");
    else if (cJSON_IsObject(v))
        snprintf(buf, cap, "an object");
    else
        snprintf(buf, cap, "null");
    return buf;
}

pio_status pio_fmt_json_int(const cJSON *v, const char *file, const char *field, int64_t min,
                            int64_t *out)
{
    char got[80];
    int64_t x;
    if (pio_fmt_json_is_int(v, &x) && x >= min) {
        *out = x;
        return PIO_STATUS_OK;
    }
    json_describe(v, got, sizeof got);
    if (min == 1)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be a positive integer, got %s",
                         file, field, got);
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be an integer >= %lld, got %s",
                     file, field, (long long)min, got);
}

pio_status pio_fmt_json_double(const cJSON *v, const char *file, const char *field, double lo,
                               double hi, double *out)
{
    char got[80];
    if (cJSON_IsNumber(v) && isfinite(v->valuedouble) && v->valuedouble >= lo &&
        v->valuedouble <= hi) {
        *out = v->valuedouble;
        return PIO_STATUS_OK;
    }
    json_describe(v, got, sizeof got);
    if (lo == DBL_MIN && hi == DBL_MAX)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be a positive number, got %s",
                         file, field, got);
    if (hi == DBL_MAX)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be a number >= %g, got %s",
                         file, field, lo, got);
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be a number in [%g, %g], got %s",
                     file, field, lo, hi, got);
}

pio_status pio_fmt_json_bool(const cJSON *v, const char *file, const char *field, bool *out)
{
    char got[80];
    if (cJSON_IsBool(v)) {
        *out = cJSON_IsTrue(v);
        return PIO_STATUS_OK;
    }
    return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be true or false, got %s", file,
                     field, json_describe(v, got, sizeof got));
}

pio_status pio_fmt_json_str(const cJSON *v, const char *file, const char *field, char *buf,
                            size_t cap)
{
    char got[80];
    size_t n;
    if (!cJSON_IsString(v))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be a string, got %s", file,
                         field, json_describe(v, got, sizeof got));
    n = strlen(v->valuestring);
    if (n >= cap)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: field \"%s\" is %zu characters long, at most %zu are supported", file,
                         field, n, cap - 1);
    memcpy(buf, v->valuestring, n + 1);
    return PIO_STATUS_OK;
}

pio_status pio_fmt_json_ids(const cJSON *v, const char *file, const char *field, int64_t *ids,
                            int *n, int max)
{
    char got[80];
    const cJSON *e;
    int k = 0;

    if (cJSON_IsNumber(v)) {
        pio_status st = pio_fmt_json_int(v, file, field, 0, &ids[0]);
        *n = st == PIO_STATUS_OK ? 1 : 0;
        return st;
    }
    if (!cJSON_IsArray(v))
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: field \"%s\" must be a token id or a list of token ids, got %s", file,
                         field, json_describe(v, got, sizeof got));
    if (cJSON_GetArraySize(v) > max)
        return pio_error(PIO_STATUS_ERR_LIMIT, "%s: field \"%s\" lists %d token ids, at most %d are supported",
                         file, field, cJSON_GetArraySize(v), max);
    cJSON_ArrayForEach(e, v) {
        int64_t id;
        if (!pio_fmt_json_is_int(e, &id) || id < 0)
            return pio_error(PIO_STATUS_ERR_FORMAT,
                             "%s: field \"%s\" element %d must be a non-negative token id, got %s", file,
                             field, k, json_describe(e, got, sizeof got));
        ids[k++] = id;
    }
    *n = k;
    return PIO_STATUS_OK;
}
