/*
 * jinja_value.c - Jinja values with Python semantics: constructors,
 * truthiness, equality and ordering, str()/repr(), json.dumps, attribute
 * and item lookup, conversion from cJSON. All storage is the render arena.
 */
#include "chat/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

jv jv_undef(const char *hint) { jv v = { .t = JV_UNDEF }; v.u.s = hint; return v; }
jv jv_none(void) { jv v = { .t = JV_NONE }; return v; }
jv jv_bool(bool b) { jv v = { .t = JV_BOOL }; v.u.b = b; return v; }
jv jv_int(int64_t i) { jv v = { .t = JV_INT }; v.u.i = i; return v; }
jv jv_float(double f) { jv v = { .t = JV_FLOAT }; v.u.f = f; return v; }
jv jv_str(const char *s, size_t n) { jv v = { .t = JV_STR, .n = n }; v.u.s = s; return v; }
jv jv_cstr(const char *s) { return jv_str(s, strlen(s)); }

jv jv_list(jr *r, size_t cap)
{
    jv v = { .t = JV_LIST };
    v.u.l = jn_alloc(&r->ar, sizeof(jlist));
    if (cap) {
        v.u.l->v = jn_alloc(&r->ar, cap * sizeof(jv));
        v.u.l->cap = cap;
    }
    return v;
}

jv jv_dict(jr *r, size_t cap)
{
    jv v = { .t = JV_DICT };
    v.u.d = jn_alloc(&r->ar, sizeof(jdict));
    if (cap) {
        v.u.d->k = jn_alloc(&r->ar, cap * sizeof(jv));
        v.u.d->v = jn_alloc(&r->ar, cap * sizeof(jv));
        v.u.d->cap = cap;
    }
    return v;
}

void jv_list_push(jr *r, jlist *l, jv v)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        jv *nv = jn_alloc(&r->ar, cap * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = cap;
    }
    l->v[l->n++] = v;
}

static bool key_eq(const jv *a, const jv *b)
{
    if (a->t == JV_STR && b->t == JV_STR) return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
    return jv_equal(a, b);
}

jv *jv_dict_get(const jdict *d, const jv *k)
{
    for (size_t i = 0; i < d->n; i++)
        if (key_eq(&d->k[i], k)) return &d->v[i];
    return NULL;
}

jv *jv_dict_gets(const jdict *d, const char *k, size_t n)
{
    jv key = jv_str(k, n);
    return jv_dict_get(d, &key);
}

void jv_dict_set(jr *r, jdict *d, jv k, jv v)
{
    jv *old = jv_dict_get(d, &k);
    if (old) { *old = v; return; }
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 4;
        jv *nk = jn_alloc(&r->ar, cap * sizeof(jv)), *nv = jn_alloc(&r->ar, cap * sizeof(jv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = cap;
    }
    d->k[d->n] = k;
    d->v[d->n] = v;
    d->n++;
}

const char *jv_type_name(const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_UNDEF: return "Undefined";
    case JV_NONE: return "NoneType";
    case JV_BOOL: return "bool";
    case JV_INT: return "int";
    case JV_FLOAT: return "float";
    case JV_STR: return "str";
    case JV_LIST: return v->tuple ? "tuple" : "list";
    case JV_DICT: return "dict";
    case JV_NS: return "Namespace";
    case JV_LOOP: return "LoopContext";
    case JV_MACRO: return "Macro";
    case JV_FUNC: return "function";
    case JV_METHOD: return "method";
    }
    return "object";
}

bool jv_truthy(const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_UNDEF: case JV_NONE: return false;
    case JV_BOOL: return v->u.b;
    case JV_INT: return v->u.i != 0;
    case JV_FLOAT: return v->u.f != 0.0;
    case JV_STR: return v->n > 0;
    case JV_LIST: return v->u.l->n > 0;
    case JV_DICT: case JV_NS: return v->u.d->n > 0 || v->t == JV_NS;
    default: return true;
    }
}

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static double num_f(const jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : v->u.b; }
static int64_t num_i(const jv *v) { return v->t == JV_INT ? v->u.i : v->t == JV_BOOL ? v->u.b : 0; }

/* The render running on this thread: deep comparisons fail through it. */
_Thread_local jr *jv_current_render;

#define JV_MAX_COMPARE_DEPTH 500

static bool equal_depth(const jv *a, const jv *b, int depth);

bool jv_equal(const jv *a, const jv *b) { return equal_depth(a, b, 0); }

static bool equal_depth(const jv *a, const jv *b, int depth)
{
    if (depth > JV_MAX_COMPARE_DEPTH) {
        if (jv_current_render) jr_fail(jv_current_render, NULL, "values nested too deeply to compare");
        return a->u.l == b->u.l;
    }
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) return num_f(a) == num_f(b);
        return num_i(a) == num_i(b);
    }
    if (a->t != b->t) return false;
    switch ((jv_type)a->t) {
    case JV_UNDEF: case JV_NONE: return true;
    case JV_STR: return a->n == b->n && memcmp(a->u.s, b->u.s, a->n) == 0;
    case JV_LIST:
        if (a->u.l->n != b->u.l->n || a->tuple != b->tuple) return false;
        for (size_t i = 0; i < a->u.l->n; i++)
            if (!equal_depth(&a->u.l->v[i], &b->u.l->v[i], depth + 1)) return false;
        return true;
    case JV_DICT:
        if (a->u.d->n != b->u.d->n) return false;
        for (size_t i = 0; i < a->u.d->n; i++) {
            jv *o = jv_dict_get(b->u.d, &a->u.d->k[i]);
            if (!o || !equal_depth(&a->u.d->v[i], o, depth + 1)) return false;
        }
        return true;
    case JV_NS: return a->u.d == b->u.d;
    case JV_LOOP: return a->u.loop == b->u.loop;
    case JV_MACRO: return a->u.m == b->u.m;
    case JV_FUNC: return a->u.fn == b->u.fn;
    default: return false;
    }
}

static int compare_depth(jr *r, const jn_node *at, const jv *a, const jv *b, int depth);

int jv_compare(jr *r, const jn_node *at, const jv *a, const jv *b)
{
    jr_charge(r, at, a->t == JV_STR ? a->n / 64 + 1 : 1);
    return compare_depth(r, at, a, b, 0);
}

static int compare_depth(jr *r, const jn_node *at, const jv *a, const jv *b, int depth)
{
    if (depth > JV_MAX_COMPARE_DEPTH) jr_fail(r, at, "values nested too deeply to compare");
    if (is_num(a) && is_num(b)) {
        if (a->t == JV_FLOAT || b->t == JV_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        int64_t x = num_i(a), y = num_i(b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    if (a->t == JV_STR && b->t == JV_STR) {     /* UTF-8 byte order == code point order */
        size_t n = a->n < b->n ? a->n : b->n;
        int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
        if (c) return c < 0 ? -1 : 1;
        return a->n < b->n ? -1 : a->n > b->n ? 1 : 0;
    }
    if (a->t == JV_LIST && b->t == JV_LIST && a->tuple == b->tuple) {
        size_t n = a->u.l->n < b->u.l->n ? a->u.l->n : b->u.l->n;
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(&a->u.l->v[i], &b->u.l->v[i])) continue;
            return compare_depth(r, at, &a->u.l->v[i], &b->u.l->v[i], depth + 1);
        }
        return a->u.l->n < b->u.l->n ? -1 : a->u.l->n > b->u.l->n ? 1 : 0;
    }
    if (a->t == JV_UNDEF || b->t == JV_UNDEF) {
        const jv *u = a->t == JV_UNDEF ? a : b;
        jr_fail(r, at, "%s", u->u.s ? u->u.s : "undefined value in comparison");
    }
    jr_fail(r, at, "'<' not supported between instances of '%s' and '%s'", jv_type_name(a), jv_type_name(b));
}

/* Python float.__repr__: the shortest digits that read back exactly; fixed
 * notation for exponents -4..15, else d.ddde+XX. */
void jv_fmt_float(char *buf, size_t cap, double f)
{
    if (isnan(f)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(f)) { snprintf(buf, cap, f < 0 ? "-inf" : "inf"); return; }
    char e[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(e, sizeof e, "%.*e", prec - 1, f);
        if (strtod(e, NULL) == f) break;
    }
    /* e = [-]d[.ddd]e[+-]XX */
    const char *p = e;
    bool neg = *p == '-';
    if (neg) p++;
    char digits[32];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    char *o = buf;
    size_t left = cap;
#define PUT(...) do { \
        int w_ = snprintf(o, left, __VA_ARGS__); \
        if (w_ < 0 || (size_t)w_ >= left) return; \
        o += w_; \
        left -= (size_t)w_; \
    } while (0)
    if (neg) PUT("-");
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            PUT("0.");
            for (int k = 0; k < -exp - 1; k++) PUT("0");
            PUT("%s", digits);
        } else if (nd <= exp + 1) {
            PUT("%s", digits);
            for (int k = nd; k < exp + 1; k++) PUT("0");
            PUT(".0");
        } else {
            PUT("%.*s.%s", exp + 1, digits, digits + exp + 1);
        }
    } else {
        PUT("%c", digits[0]);
        if (nd > 1) PUT(".%s", digits + 1);
        PUT("e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
#undef PUT
}

static void repr_str(jn_buf *b, const char *s, size_t n)
{
    bool sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = sq && !dq ? '"' : '\'';
    jn_buf_putc(b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '\\') jn_buf_put(b, "\\\\", 2);
        else if (c == (unsigned char)q) { jn_buf_putc(b, '\\'); jn_buf_putc(b, q); }
        else if (c == '\n') jn_buf_put(b, "\\n", 2);
        else if (c == '\r') jn_buf_put(b, "\\r", 2);
        else if (c == '\t') jn_buf_put(b, "\\t", 2);
        else if (c < 0x20 || c == 0x7f) { snprintf(esc, sizeof esc, "\\x%02x", c); jn_buf_puts(b, esc); }
        else jn_buf_putc(b, (char)c);
    }
    jn_buf_putc(b, q);
}

static void put_num(jn_buf *b, const jv *v)
{
    char tmp[64];
    if (v->t == JV_INT) snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
    else jv_fmt_float(tmp, sizeof tmp, v->u.f);
    jn_buf_puts(b, tmp);
}

static void to_str_depth(jr *r, jn_buf *b, const jv *v, bool repr, int depth)
{
    if (depth > 200) jr_fail(r, NULL, "value nested too deeply to print");
    switch ((jv_type)v->t) {
    case JV_UNDEF: if (repr) jn_buf_puts(b, "Undefined"); break;
    case JV_NONE: jn_buf_puts(b, "None"); break;
    case JV_BOOL: jn_buf_puts(b, v->u.b ? "True" : "False"); break;
    case JV_INT: case JV_FLOAT: put_num(b, v); break;
    case JV_STR:
        if (repr) repr_str(b, v->u.s, v->n);
        else jn_buf_put(b, v->u.s, v->n);
        break;
    case JV_LIST:
        jn_buf_putc(b, v->tuple ? '(' : '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) jn_buf_put(b, ", ", 2);
            to_str_depth(r, b, &v->u.l->v[i], true, depth + 1);
        }
        if (v->tuple && v->u.l->n == 1) jn_buf_putc(b, ',');
        jn_buf_putc(b, v->tuple ? ')' : ']');
        break;
    case JV_DICT: case JV_NS:
        if (v->t == JV_NS) jn_buf_puts(b, "<Namespace ");
        jn_buf_putc(b, '{');
        for (size_t i = 0; i < v->u.d->n; i++) {
            if (i) jn_buf_put(b, ", ", 2);
            to_str_depth(r, b, &v->u.d->k[i], true, depth + 1);
            jn_buf_put(b, ": ", 2);
            to_str_depth(r, b, &v->u.d->v[i], true, depth + 1);
        }
        jn_buf_putc(b, '}');
        if (v->t == JV_NS) jn_buf_putc(b, '>');
        break;
    case JV_LOOP: jn_buf_puts(b, "<LoopContext>"); break;
    case JV_MACRO: jn_buf_puts(b, "<Macro>"); break;
    case JV_FUNC: jn_buf_puts(b, "<function>"); break;
    case JV_METHOD: jn_buf_puts(b, "<method>"); break;
    }
}

void jv_to_str(jr *r, jn_buf *b, const jv *v) { to_str_depth(r, b, v, false, 0); }
void jv_repr(jr *r, jn_buf *b, const jv *v) { to_str_depth(r, b, v, true, 0); }

jv jv_as_str(jr *r, const jv *v)
{
    if (v->t == JV_STR) return *v;
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    jv_to_str(r, &b, v);
    return jv_str(b.p ? b.p : "", b.n);
}

/* One UTF-8 sequence at s (n bytes left): its length and code point;
 * invalid bytes count as one code point each (U+FFFD). */
size_t jv_utf8_next(const char *s, size_t n, unsigned *cp)
{
    const unsigned char *u = (const unsigned char *)s;
    if (u[0] < 0x80) { *cp = u[0]; return 1; }
    size_t len = (u[0] & 0xE0) == 0xC0 ? 2 : (u[0] & 0xF0) == 0xE0 ? 3 : (u[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (!len || len > n) { *cp = 0xFFFD; return 1; }
    unsigned c = u[0] & (0x7F >> len);
    for (size_t i = 1; i < len; i++) {
        if ((u[i] & 0xC0) != 0x80) { *cp = 0xFFFD; return 1; }
        c = (c << 6) | (u[i] & 0x3F);
    }
    *cp = c;
    return len;
}

size_t jv_utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    unsigned cp;
    for (size_t i = 0; i < n; k++) i += jv_utf8_next(s + i, n - i, &cp);
    return k;
}

size_t jv_utf8_offset(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    unsigned cp;
    while (k-- > 0 && i < n) i += jv_utf8_next(s + i, n - i, &cp);
    return i;
}

static void json_str(jn_buf *b, const char *s, size_t n, bool ensure_ascii)
{
    char esc[16];
    jn_buf_putc(b, '"');
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"') { jn_buf_put(b, "\\\"", 2); i++; }
        else if (c == '\\') { jn_buf_put(b, "\\\\", 2); i++; }
        else if (c == '\n') { jn_buf_put(b, "\\n", 2); i++; }
        else if (c == '\r') { jn_buf_put(b, "\\r", 2); i++; }
        else if (c == '\t') { jn_buf_put(b, "\\t", 2); i++; }
        else if (c == '\b') { jn_buf_put(b, "\\b", 2); i++; }
        else if (c == '\f') { jn_buf_put(b, "\\f", 2); i++; }
        else if (c < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", c); jn_buf_puts(b, esc); i++; }
        else if (c < 0x80 || !ensure_ascii) { jn_buf_putc(b, (char)c); i++; }
        else {
            unsigned cp;
            i += jv_utf8_next(s + i, n - i, &cp);
            if (cp >= 0x10000) {
                cp -= 0x10000;
                snprintf(esc, sizeof esc, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
            } else {
                snprintf(esc, sizeof esc, "\\u%04x", cp);
            }
            jn_buf_puts(b, esc);
        }
    }
    jn_buf_putc(b, '"');
}

static void json_indent(jn_buf *b, int indent, int level)
{
    jn_buf_putc(b, '\n');
    for (int k = 0; k < indent * level; k++) jn_buf_putc(b, ' ');
}

static int cmp_keys_idx(const void *x, const void *y, void *ctx)
{
    const jdict *d = ctx;
    const jv *a = &d->k[*(const size_t *)x], *b = &d->k[*(const size_t *)y];
    size_t n = a->n < b->n ? a->n : b->n;
    int c = n ? memcmp(a->u.s, b->u.s, n) : 0;
    return c ? c : (a->n > b->n) - (a->n < b->n);
}

void jv_to_json(jr *r, const jn_node *at, jn_buf *b, const jv *v, bool ensure_ascii, int indent,
                bool sort_keys, int level)
{
    if (level > 200) jr_fail(r, at, "tojson: value nested too deeply");
    switch ((jv_type)v->t) {
    case JV_NONE: jn_buf_puts(b, "null"); break;
    case JV_BOOL: jn_buf_puts(b, v->u.b ? "true" : "false"); break;
    case JV_INT: put_num(b, v); break;
    case JV_FLOAT:
        if (isnan(v->u.f)) jn_buf_puts(b, "NaN");
        else if (isinf(v->u.f)) jn_buf_puts(b, v->u.f < 0 ? "-Infinity" : "Infinity");
        else put_num(b, v);
        break;
    case JV_STR: json_str(b, v->u.s, v->n, ensure_ascii); break;
    case JV_LIST:
        if (v->u.l->n == 0) { jn_buf_puts(b, "[]"); break; }
        jn_buf_putc(b, '[');
        for (size_t i = 0; i < v->u.l->n; i++) {
            if (i) jn_buf_puts(b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_indent(b, indent, level + 1);
            jv_to_json(r, at, b, &v->u.l->v[i], ensure_ascii, indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_indent(b, indent, level);
        jn_buf_putc(b, ']');
        break;
    case JV_DICT: {
        const jdict *d = v->u.d;
        if (d->n == 0) { jn_buf_puts(b, "{}"); break; }
        size_t *order = jn_alloc(&r->ar, d->n * sizeof *order);
        for (size_t i = 0; i < d->n; i++) {
            order[i] = i;
            if (d->k[i].t != JV_STR) jr_fail(r, at, "tojson: only string keys are supported");
        }
        if (sort_keys) qsort_r(order, d->n, sizeof *order, cmp_keys_idx, (void *)d);
        jn_buf_putc(b, '{');
        for (size_t i = 0; i < d->n; i++) {
            if (i) jn_buf_puts(b, indent >= 0 ? "," : ", ");
            if (indent >= 0) json_indent(b, indent, level + 1);
            json_str(b, d->k[order[i]].u.s, d->k[order[i]].n, ensure_ascii);
            jn_buf_put(b, ": ", 2);
            jv_to_json(r, at, b, &d->v[order[i]], ensure_ascii, indent, sort_keys, level + 1);
        }
        if (indent >= 0) json_indent(b, indent, level);
        jn_buf_putc(b, '}');
        break;
    }
    default:
        jr_fail(r, at, "Object of type %s is not JSON serializable", jv_type_name(v));
    }
}

jv jv_from_cjson(jr *r, const cJSON *j, int depth)
{
    if (depth > 200) jr_fail(r, NULL, "context JSON nested too deeply");
    if (cJSON_IsNull(j)) return jv_none();
    if (cJSON_IsBool(j)) return jv_bool(cJSON_IsTrue(j));
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        /* JSON integers become ints (cJSON keeps only the double) */
        if (d == floor(d) && fabs(d) < 9007199254740992.0) return jv_int((int64_t)d);
        return jv_float(d);
    }
    if (cJSON_IsString(j)) {
        const char *s = j->valuestring ? j->valuestring : "";
        return jv_str(jn_strndup(&r->ar, s, strlen(s)), strlen(s));
    }
    if (cJSON_IsArray(j)) {
        jv l = jv_list(r, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) jv_list_push(r, l.u.l, jv_from_cjson(r, c, depth + 1));
        return l;
    }
    if (cJSON_IsObject(j)) {
        jv d = jv_dict(r, (size_t)cJSON_GetArraySize(j));
        for (const cJSON *c = j->child; c; c = c->next) {
            const char *k = c->string ? c->string : "";
            jv_dict_set(r, d.u.d, jv_str(jn_strndup(&r->ar, k, strlen(k)), strlen(k)), jv_from_cjson(r, c, depth + 1));
        }
        return d;
    }
    return jv_none();
}

const jlist *jv_iter(jr *r, const jn_node *at, const jv *v)
{
    switch ((jv_type)v->t) {
    case JV_LIST: return v->u.l;
    case JV_UNDEF: return jv_list(r, 0).u.l;
    case JV_DICT: {
        jv l = jv_list(r, v->u.d->n);
        for (size_t i = 0; i < v->u.d->n; i++) jv_list_push(r, l.u.l, v->u.d->k[i]);
        return l.u.l;
    }
    case JV_STR: {
        jv l = jv_list(r, v->n);
        unsigned cp;
        for (size_t i = 0; i < v->n;) {
            size_t k = jv_utf8_next(v->u.s + i, v->n - i, &cp);
            jv_list_push(r, l.u.l, jv_str(v->u.s + i, k));
            i += k;
        }
        return l.u.l;
    }
    default:
        jr_fail(r, at, "'%s' object is not iterable", jv_type_name(v));
    }
}

static const char *undef_attr_hint(jr *r, const jv *obj, const char *name)
{
    char tmp[256];
    snprintf(tmp, sizeof tmp, "'%s object' has no attribute '%s'", jv_type_name(obj), name);
    return jn_strndup(&r->ar, tmp, strlen(tmp));
}

static jv loop_attr(jr *r, const jv *obj, const char *name)
{
    const jloop *L = obj->u.loop;
    int64_t n = (int64_t)L->items->n, i = (int64_t)L->i;
    if (!strcmp(name, "index")) return jv_int(i + 1);
    if (!strcmp(name, "index0")) return jv_int(i);
    if (!strcmp(name, "revindex")) return jv_int(n - i);
    if (!strcmp(name, "revindex0")) return jv_int(n - i - 1);
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i == n - 1);
    if (!strcmp(name, "length")) return jv_int(n);
    if (!strcmp(name, "depth")) return jv_int(L->depth);
    if (!strcmp(name, "depth0")) return jv_int(L->depth - 1);
    if (!strcmp(name, "previtem"))
        return i > 0 ? L->items->v[i - 1] : jv_undef("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? L->items->v[i + 1] : jv_undef("there is no next item");
    if (!strcmp(name, "cycle")) {
        jv m = { .t = JV_METHOD };
        m.u.meth = jn_alloc(&r->ar, sizeof(jmethod));
        m.u.meth->self = *obj;
        m.u.meth->name = "cycle";
        return m;
    }
    return jv_undef(undef_attr_hint(r, obj, name));
}

jv jv_getattr(jr *r, const jn_node *at, const jv *obj, const char *name)
{
    if (obj->t == JV_UNDEF)
        jr_fail(r, at, "%s", obj->u.s ? obj->u.s : "undefined value has no attributes");
    if (obj->t == JV_LOOP) return loop_attr(r, obj, name);
    if (jn_method_exists(obj, name)) {
        jv m = { .t = JV_METHOD };
        m.u.meth = jn_alloc(&r->ar, sizeof(jmethod));
        m.u.meth->self = *obj;
        m.u.meth->name = name;
        return m;
    }
    if (obj->t == JV_DICT || obj->t == JV_NS) {
        jv *v = jv_dict_gets(obj->u.d, name, strlen(name));
        if (v) return *v;
    }
    return jv_undef(undef_attr_hint(r, obj, name));
}

jv jv_getitem(jr *r, const jn_node *at, const jv *obj, const jv *key)
{
    if (obj->t == JV_UNDEF)
        jr_fail(r, at, "%s", obj->u.s ? obj->u.s : "undefined value is not subscriptable");
    if (obj->t == JV_DICT) {
        jv *v = jv_dict_get(obj->u.d, key);
        if (v) return *v;
    } else if ((obj->t == JV_LIST || obj->t == JV_STR) && (key->t == JV_INT || key->t == JV_BOOL)) {
        int64_t i = num_i(key);
        if (obj->t == JV_LIST) {
            int64_t n = (int64_t)obj->u.l->n;
            if (i < 0) i += n;
            if (i >= 0 && i < n) return obj->u.l->v[i];
            return jv_undef("list index out of range");
        }
        jr_charge(r, at, obj->n / 64);
        int64_t n = (int64_t)jv_utf8_len(obj->u.s, obj->n);
        if (i < 0) i += n;
        if (i >= 0 && i < n) {
            size_t a = jv_utf8_offset(obj->u.s, obj->n, (size_t)i);
            size_t b = a + jv_utf8_offset(obj->u.s + a, obj->n - a, 1);
            return jv_str(obj->u.s + a, b - a);
        }
        return jv_undef("string index out of range");
    }
    if (key->t == JV_STR) {
        char *name = jn_strndup(&r->ar, key->u.s, key->n);
        return jv_getattr(r, at, obj, name);
    }
    char tmp[160];
    snprintf(tmp, sizeof tmp, "'%s object' has no item of that key", jv_type_name(obj));
    return jv_undef(jn_strndup(&r->ar, tmp, strlen(tmp)));
}

/* Python's str.isspace() code points (for strip/split without arguments). */
bool jv_is_space(unsigned cp)
{
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
           cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int cmp_cp(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return (x > y) - (x < y);
}

/* cp in the sorted set (NULL set: Python whitespace). */
static bool in_chars(unsigned cp, const unsigned *set, size_t n)
{
    if (!set) return jv_is_space(cp);
    return bsearch(&cp, set, n, sizeof *set, cmp_cp) != NULL;
}

jv jv_strip(jr *r, const jv *s, const jv *chars, bool left, bool right)
{
    size_t a = 0, b = s->n, nset = 0;
    unsigned cp, *set = NULL;
    if (chars) {        /* a sorted code point set: O((n + m) log m) */
        set = jn_alloc(&r->ar, (chars->n + 1) * sizeof *set);
        for (size_t i = 0; i < chars->n;) i += jv_utf8_next(chars->u.s + i, chars->n - i, &set[nset++]);
        qsort(set, nset, sizeof *set, cmp_cp);
    }
    jr_charge(r, NULL, s->n / 64);
    if (left)
        while (a < b) {
            size_t k = jv_utf8_next(s->u.s + a, b - a, &cp);
            if (!in_chars(cp, set, nset)) break;
            a += k;
        }
    if (right)
        while (b > a) {
            size_t st = b - 1;
            while (st > a && ((unsigned char)s->u.s[st] & 0xC0) == 0x80 && b - st < 4) st--;
            size_t k = jv_utf8_next(s->u.s + st, b - st, &cp);
            if (st + k != b) { st = b - 1; cp = 0xFFFD; }
            if (!in_chars(cp, set, nset)) break;
            b = st;
        }
    return jv_str(s->u.s + a, b - a);
}
