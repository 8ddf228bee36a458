/*
 * parse_values.c - typing of tool-call argument values by the tool's JSON
 * schema, and the small string buffer the output parser builds on.
 *
 * The rules follow vLLM's qwen3_coder parser (`_convert_param_value`) and
 * glm4 parser: a string-typed parameter keeps its raw text; integer, number,
 * boolean, null, object and array values are parsed; a value that does not
 * fit its declared type stays a string and the caller is told why; a
 * parameter with no schema is JSON when it parses, else a string.
 */
#include "chat/output_parse_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- string buffer ------------------------------------------------------- */

bool pio_sb_add(pio_sb *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *nb;
        while (cap < b->len + n + 1)
            cap *= 2;
        nb = realloc(b->s, cap);
        if (!nb)
            return false;
        b->s = nb;
        b->cap = cap;
    }
    if (n)
        memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return true;
}

bool pio_sb_adds(pio_sb *b, const char *s)
{
    return pio_sb_add(b, s, strlen(s));
}

bool pio_sb_add_json_string(pio_sb *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    size_t i, run = 0;
    if (!pio_sb_add(b, "\"", 1))
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = { '\\', 0, 0, 0, 0, 0, 0 };
        size_t el = 2;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (!pio_sb_add(b, s + run, i - run))
            return false;
        run = i + 1;
        switch (c) {
        case '"': esc[1] = '"'; break;
        case '\\': esc[1] = '\\'; break;
        case '\n': esc[1] = 'n'; break;
        case '\r': esc[1] = 'r'; break;
        case '\t': esc[1] = 't'; break;
        case '\b': esc[1] = 'b'; break;
        case '\f': esc[1] = 'f'; break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            el = 6;
        }
        if (!pio_sb_add(b, esc, el))
            return false;
    }
    return pio_sb_add(b, s + run, n - run) && pio_sb_add(b, "\"", 1);
}

void pio_sb_clear(pio_sb *b)
{
    b->len = 0;
    if (b->s)
        b->s[0] = '\0';
}

void pio_sb_free(pio_sb *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

/* ---- value typing -------------------------------------------------------- */

/* The declared type of a parameter schema, lower-cased into out[cap]:
 * "type" as a string, or the first non-"null" entry of a "type" list;
 * "" when the schema gives none. */
static void schema_type(const cJSON *schema, char *out, size_t cap)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(schema, "type"), *it;
    const char *name = NULL;
    size_t i;
    out[0] = '\0';
    if (cJSON_IsString(t)) {
        name = t->valuestring;
    } else if (cJSON_IsArray(t)) {
        cJSON_ArrayForEach(it, t)
            if (cJSON_IsString(it) && strcasecmp(it->valuestring, "null")) {
                name = it->valuestring;
                break;
            }
    }
    if (!name)
        return;
    for (i = 0; name[i] && i + 1 < cap; i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    out[i] = '\0';
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* True when s[0..n) is exactly a JSON number (RFC 8259 grammar);
 * integer_only also refuses a fraction or an exponent. */
static bool json_number_text(const char *s, size_t n, bool integer_only)
{
    size_t i = 0;
    if (i < n && s[i] == '-')
        i++;
    if (i >= n || !isdigit((unsigned char)s[i]))
        return false;
    if (s[i] == '0')
        i++;
    else
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    if (i < n && s[i] == '.') {
        if (integer_only || ++i >= n || !isdigit((unsigned char)s[i]))
            return false;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        if (integer_only)
            return false;
        i++;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !isdigit((unsigned char)s[i]))
            return false;
        while (i < n && isdigit((unsigned char)s[i]))
            i++;
    }
    return i == n;
}

/* Parse s[0..n) as one whole JSON value and append it compactly; false
 * (nothing appended) when it is not exactly one JSON value. */
static bool add_as_json(pio_sb *out, const char *s, size_t n, bool *oom)
{
    const char *end = NULL;
    cJSON *v;
    char *txt;
    bool ok;
    if (n == 0)
        return false;
    v = cJSON_ParseWithLengthOpts(s, n, &end, false);
    if (!v)
        return false;
    while (end && end < s + n && isspace((unsigned char)*end))
        end++;
    if (end != s + n) {
        cJSON_Delete(v);
        return false;
    }
    txt = cJSON_PrintUnformatted(v);
    cJSON_Delete(v);
    if (!txt) {
        *oom = true;
        return false;
    }
    ok = pio_sb_adds(out, txt);
    free(txt);
    if (!ok)
        *oom = true;
    return ok;
}

static bool string_type(const char *type)
{
    return !strcmp(type, "string") || !strcmp(type, "str") || !strcmp(type, "text") ||
           !strcmp(type, "varchar") || !strcmp(type, "char") || !strcmp(type, "enum");
}

bool pio_schema_is_string(const cJSON *props, const char *key)
{
    char type[32];
    schema_type(props ? cJSON_GetObjectItemCaseSensitive(props, key) : NULL, type, sizeof type);
    return string_type(type);
}

bool pio_value_to_json(const cJSON *props, const char *key, const char *val, size_t n,
                       pio_sb *out, char *why, size_t why_cap)
{
    const cJSON *schema = props ? cJSON_GetObjectItemCaseSensitive(props, key) : NULL;
    char type[32], num[64];
    const char *t = val;
    size_t tn = n;
    bool oom = false;

    why[0] = '\0';
    schema_type(schema, type, sizeof type);
    if (string_type(type))
        return pio_sb_add_json_string(out, val, n);

    while (tn > 0 && isspace((unsigned char)t[0]))
        t++, tn--;
    while (tn > 0 && isspace((unsigned char)t[tn - 1]))
        tn--;

    if (!type[0]) {
        /* no schema for this parameter: JSON when it parses, else a string */
        if (add_as_json(out, t, tn, &oom))
            return true;
        return !oom && pio_sb_add_json_string(out, val, n);
    }
    if (tn == 4 && !strncasecmp(t, "null", 4))
        return pio_sb_adds(out, "null");

    if (starts(type, "int") || starts(type, "uint") || starts(type, "long") ||
        starts(type, "short") || starts(type, "unsigned")) {
        if (json_number_text(t, tn, true))
            return pio_sb_add(out, t, tn);
        if (tn > 0 && tn < sizeof num) {
            char *end;
            long long v;
            memcpy(num, t, tn);
            num[tn] = '\0';
            errno = 0;
            v = strtoll(num, &end, 10);
            if (!errno && *end == '\0') {
                snprintf(num, sizeof num, "%lld", v);
                return pio_sb_adds(out, num);
            }
        }
        snprintf(why, why_cap, "is typed %s but is not an integer; kept as a string", type);
        return pio_sb_add_json_string(out, val, n);
    }
    if (starts(type, "num") || starts(type, "float") || starts(type, "double")) {
        if (json_number_text(t, tn, false))
            return pio_sb_add(out, t, tn);
        if (tn > 0 && tn < sizeof num) {
            char *end;
            double v;
            memcpy(num, t, tn);
            num[tn] = '\0';
            v = strtod(num, &end);
            if (*end == '\0' && isfinite(v)) {
                snprintf(num, sizeof num, "%.17g", v);
                return pio_sb_adds(out, num);
            }
        }
        snprintf(why, why_cap, "is typed %s but is not a number; kept as a string", type);
        return pio_sb_add_json_string(out, val, n);
    }
    if (!strcmp(type, "boolean") || !strcmp(type, "bool") || !strcmp(type, "binary")) {
        if (tn == 4 && !strncasecmp(t, "true", 4))
            return pio_sb_adds(out, "true");
        if (tn == 5 && !strncasecmp(t, "false", 5))
            return pio_sb_adds(out, "false");
        snprintf(why, why_cap, "is typed %s but is not true or false; kept as a string", type);
        return pio_sb_add_json_string(out, val, n);
    }
    if (!strcmp(type, "null")) {
        snprintf(why, why_cap, "is typed null but is not null; kept as a string");
        return pio_sb_add_json_string(out, val, n);
    }
    /* object, array and any other declared type: JSON when it parses */
    if (add_as_json(out, t, tn, &oom))
        return true;
    if (oom)
        return false;
    if (!strcmp(type, "object") || !strcmp(type, "array") || starts(type, "dict") ||
        starts(type, "list") || !strcmp(type, "arr"))
        snprintf(why, why_cap, "is typed %s but is not valid JSON; kept as a string", type);
    return pio_sb_add_json_string(out, val, n);
}
