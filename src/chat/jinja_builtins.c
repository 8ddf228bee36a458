/*
 * jinja_builtins.c - the filters, tests and methods chat templates call,
 * with the behaviour of Jinja2 3.1 and of Python's str/dict methods, plus
 * transformers' tojson (json.dumps with ensure_ascii=False).
 * Filters and tests are looked up by name at parse time: an unknown one is
 * a parse error. Methods are resolved on attribute access like Python's
 * getattr: a name that exists on the type but is not implemented here (or
 * would mutate, which transformers' immutable sandbox forbids) fails when
 * called.
 */
#include "chat/jinja_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <utf8proc.h>

/* Argument `idx` (positional) or keyword `name`; NULL when not given. */
static const jv *arg(int nargs, const jv *args, const char *const *names, int idx, const char *name)
{
    int pos = 0;
    for (int i = 0; i < nargs; i++) {
        if (names && names[i]) {
            if (name && !strcmp(names[i], name)) return &args[i];
        } else if (pos++ == idx) {
            return &args[i];
        }
    }
    return NULL;
}

static void check_args(jr *r, const jn_node *at, const char *what, int nargs, const char *const *names,
                       int max_pos, const char *const *kw)
{
    int pos = 0;
    for (int i = 0; i < nargs; i++) {
        if (names && names[i]) {
            bool ok = false;
            for (int k = 0; kw && kw[k]; k++)
                if (!strcmp(kw[k], names[i])) ok = true;
            if (!ok) jr_fail(r, at, "%s got an unexpected keyword argument '%s'", what, names[i]);
        } else {
            pos++;
        }
    }
    if (pos > max_pos) jr_fail(r, at, "%s takes at most %d positional argument(s), got %d", what, max_pos, pos);
}

static const jv *need_str(jr *r, const jn_node *at, const jv *v, const char *what)
{
    if (!v || v->t != JV_STR) {
        if (v && v->t == JV_UNDEF && v->u.s) jr_fail(r, at, "%s", v->u.s);
        jr_fail(r, at, "%s expects a string, got %s", what, v ? jv_type_name(v) : "nothing");
    }
    return v;
}

static int64_t need_int(jr *r, const jn_node *at, const jv *v, const char *what)
{
    if (v->t == JV_INT) return v->u.i;
    if (v->t == JV_BOOL) return v->u.b;
    jr_fail(r, at, "%s expects an integer, got %s", what, jv_type_name(v));
}

/* ---- case mapping ------------------------------------------------------ */

enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE_JINJA, CASE_TITLE_PY };

static bool cp_cased(unsigned cp)
{
    utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
    return c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LL || c == UTF8PROC_CATEGORY_LT;
}

static jv case_map(jr *r, const jv *s, int mode)
{
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    bool first = true, prev_cased = false, word_start = true;
    for (size_t i = 0; i < s->n;) {
        unsigned cp;
        size_t k = jv_utf8_next(s->u.s + i, s->n - i, &cp);
        bool up;
        switch (mode) {
        case CASE_UPPER: up = true; break;
        case CASE_LOWER: up = false; break;
        case CASE_CAPITALIZE: up = first; break;
        case CASE_TITLE_JINJA: up = word_start; break;
        default: up = !prev_cased; break;
        }
        unsigned m = (unsigned)(up ? utf8proc_toupper((utf8proc_int32_t)cp) : utf8proc_tolower((utf8proc_int32_t)cp));
        if (cp == 0xFFFD && k == 1) {
            jn_buf_put(&b, s->u.s + i, 1);      /* keep invalid bytes as they are */
        } else {
            utf8proc_uint8_t enc[4];
            utf8proc_ssize_t w = utf8proc_encode_char((utf8proc_int32_t)m, enc);
            jn_buf_put(&b, (const char *)enc, (size_t)w);
        }
        first = false;
        prev_cased = cp_cased(cp);
        word_start = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || jv_is_space(cp);
        i += k;
    }
    return jv_str(b.p ? b.p : "", b.n);
}

/* ---- string helpers ---------------------------------------------------- */

static jv str_replace(jr *r, const jn_node *at, const jv *s, const jv *old, const jv *new_, int64_t count)
{
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    size_t i = 0;
    int64_t done = 0;
    if (old->n == 0) {      /* Python inserts `new` between all code points */
        for (;;) {
            if (count >= 0 && done >= count) break;
            jn_buf_put(&b, new_->u.s, new_->n);
            done++;
            if (i >= s->n) break;
            unsigned cp;
            size_t k = jv_utf8_next(s->u.s + i, s->n - i, &cp);
            jn_buf_put(&b, s->u.s + i, k);
            i += k;
            jr_step(r, at);
        }
        jn_buf_put(&b, s->u.s + i, s->n - i);
        return jv_str(b.p ? b.p : "", b.n);
    }
    while (i < s->n && (count < 0 || done < count)) {
        const char *p = memmem(s->u.s + i, s->n - i, old->u.s, old->n);
        if (!p) break;
        jn_buf_put(&b, s->u.s + i, (size_t)(p - (s->u.s + i)));
        jn_buf_put(&b, new_->u.s, new_->n);
        i = (size_t)(p - s->u.s) + old->n;
        done++;
        jr_step(r, at);
    }
    jn_buf_put(&b, s->u.s + i, s->n - i);
    return jv_str(b.p ? b.p : "", b.n);
}

/* Python str.split(sep=None, maxsplit=-1); rsplit when `right`. */
static jv str_split(jr *r, const jn_node *at, const jv *s, const jv *sep, int64_t maxsplit, bool right)
{
    jv out = jv_list(r, 0);
    if (sep && sep->t == JV_NONE) sep = NULL;
    if (sep) {
        need_str(r, at, sep, "split");
        if (sep->n == 0) jr_fail(r, at, "empty separator");
        if (!right) {
            size_t i = 0;
            int64_t done = 0;
            for (;;) {
                const char *p = maxsplit < 0 || done < maxsplit
                                    ? memmem(s->u.s + i, s->n - i, sep->u.s, sep->n) : NULL;
                if (!p) break;
                jv_list_push(r, out.u.l, jv_str(s->u.s + i, (size_t)(p - (s->u.s + i))));
                i = (size_t)(p - s->u.s) + sep->n;
                done++;
                jr_step(r, at);
            }
            jv_list_push(r, out.u.l, jv_str(s->u.s + i, s->n - i));
            return out;
        }
        /* rsplit: search the reversed string (memmem stays linear), then reverse */
        char *rs = jn_alloc(&r->ar, s->n + 1), *rsep = jn_alloc(&r->ar, sep->n + 1);
        for (size_t k = 0; k < s->n; k++) rs[k] = s->u.s[s->n - 1 - k];
        for (size_t k = 0; k < sep->n; k++) rsep[k] = sep->u.s[sep->n - 1 - k];
        size_t end = s->n;
        int64_t done = 0;
        while (maxsplit < 0 || done < maxsplit) {
            const char *p = memmem(rs + (s->n - end), end, rsep, sep->n);
            if (!p) break;
            size_t found = s->n - (size_t)(p - rs) - sep->n;
            jv_list_push(r, out.u.l, jv_str(s->u.s + found + sep->n, end - found - sep->n));
            end = found;
            done++;
            jr_step(r, at);
        }
        jv_list_push(r, out.u.l, jv_str(s->u.s, end));
        for (size_t a = 0, b = out.u.l->n - 1; a < b; a++, b--) {
            jv t = out.u.l->v[a];
            out.u.l->v[a] = out.u.l->v[b];
            out.u.l->v[b] = t;
        }
        return out;
    }
    /* whitespace runs; no empty strings */
    if (right) jr_fail(r, at, "unsupported: rsplit() without a separator");
    size_t i = 0;
    int64_t done = 0;
    for (;;) {
        unsigned cp;
        while (i < s->n) {
            size_t k = jv_utf8_next(s->u.s + i, s->n - i, &cp);
            if (!jv_is_space(cp)) break;
            i += k;
        }
        if (i >= s->n) break;
        if (maxsplit >= 0 && done >= maxsplit) {
            jv rest = jv_str(s->u.s + i, s->n - i);
            jv_list_push(r, out.u.l, jv_strip(r, &rest, NULL, false, true));
            break;
        }
        size_t st = i;
        while (i < s->n) {
            size_t k = jv_utf8_next(s->u.s + i, s->n - i, &cp);
            if (jv_is_space(cp)) break;
            i += k;
        }
        jv_list_push(r, out.u.l, jv_str(s->u.s + st, i - st));
        done++;
        jr_step(r, at);
    }
    return out;
}

static bool str_affix(jr *r, const jn_node *at, const jv *s, const jv *x, bool end)
{
    if (x->t == JV_LIST && x->tuple) {
        for (size_t i = 0; i < x->u.l->n; i++)
            if (str_affix(r, at, s, &x->u.l->v[i], end)) return true;
        return false;
    }
    need_str(r, at, x, end ? "endswith" : "startswith");
    if (x->n > s->n) return false;
    return !memcmp(s->u.s + (end ? s->n - x->n : 0), x->u.s, x->n);
}

/* ---- sorting ----------------------------------------------------------- */

typedef struct sort_ctx {
    jr *r;
    const jn_node *at;
    const jv *keys;
    bool reverse;
} sort_ctx;

static int sort_cmp(sort_ctx *c, size_t a, size_t b)
{
    int v = jv_compare(c->r, c->at, &c->keys[a], &c->keys[b]);
    return c->reverse ? -v : v;
}

/* Stable merge sort of an index array. */
static void merge_sort(sort_ctx *c, size_t *idx, size_t *tmp, size_t n)
{
    if (n < 2) return;
    size_t h = n / 2;
    merge_sort(c, idx, tmp, h);
    merge_sort(c, idx + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) tmp[k++] = sort_cmp(c, idx[j], idx[i]) < 0 ? idx[j++] : idx[i++];
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

/* `attribute` may be dotted ("a.b") or an integer index part, as Jinja's make_attrgetter. */
static jv get_attribute(jr *r, const jn_node *at, const jv *item, const jv *attr)
{
    if (attr->t == JV_INT) return jv_getitem(r, at, item, attr);
    need_str(r, at, attr, "attribute");
    jv cur = *item;
    size_t i = 0;
    while (i <= attr->n) {
        const char *dot = memchr(attr->u.s + i, '.', attr->n - i);
        size_t e = dot ? (size_t)(dot - attr->u.s) : attr->n;
        jv key = jv_str(attr->u.s + i, e - i);
        bool digits = e > i;
        for (size_t k = i; k < e; k++)
            if (attr->u.s[k] < '0' || attr->u.s[k] > '9') digits = false;
        if (digits) key = jv_int(strtoll(jn_strndup(&r->ar, attr->u.s + i, e - i), NULL, 10));
        cur = jv_getitem(r, at, &cur, &key);
        i = e + 1;
        if (!dot) break;
    }
    return cur;
}

static jv sort_key(jr *r, const jn_node *at, const jv *v, const jv *attr, bool case_sensitive)
{
    jv k = attr ? get_attribute(r, at, v, attr) : *v;
    if (!case_sensitive && k.t == JV_STR) k = case_map(r, &k, CASE_LOWER);
    return k;
}

static jv sorted(jr *r, const jn_node *at, const jlist *l, const jv *attr, bool case_sensitive, bool reverse)
{
    size_t n = l->n;
    size_t *idx = jn_alloc(&r->ar, (n + 1) * sizeof *idx), *tmp = jn_alloc(&r->ar, (n + 1) * sizeof *tmp);
    jv *keys = jn_alloc(&r->ar, (n + 1) * sizeof *keys);
    for (size_t i = 0; i < n; i++) {
        idx[i] = i;
        keys[i] = sort_key(r, at, &l->v[i], attr, case_sensitive);
    }
    sort_ctx c = { r, at, keys, reverse };
    merge_sort(&c, idx, tmp, n);
    jv out = jv_list(r, n);
    for (size_t i = 0; i < n; i++) jv_list_push(r, out.u.l, l->v[idx[i]]);
    return out;
}

/* ---- filters ----------------------------------------------------------- */

#define FILTER(name) static void f_##name(jr *r, const jn_node *at, jv *res, const jv *self, \
                                          int nargs, const jv *args, const char *const *names)

static bool opt_bool(const jv *v, bool dflt) { return v ? jv_truthy(v) : dflt; }

FILTER(safe) { (void)r; (void)at; (void)nargs; (void)args; (void)names; *res = *self; }

FILTER(string)
{
    check_args(r, at, "string", nargs, names, 0, NULL);
    (void)args;
    *res = self->t == JV_STR ? *self : jv_as_str(r, self);
}

FILTER(escape)
{
    check_args(r, at, "escape", nargs, names, 0, NULL);
    (void)args;
    jv s = jv_as_str(r, self);
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    for (size_t i = 0; i < s.n; i++) {
        switch (s.u.s[i]) {
        case '&': jn_buf_puts(&b, "&amp;"); break;
        case '<': jn_buf_puts(&b, "&lt;"); break;
        case '>': jn_buf_puts(&b, "&gt;"); break;
        case '"': jn_buf_puts(&b, "&#34;"); break;
        case '\'': jn_buf_puts(&b, "&#39;"); break;
        default: jn_buf_putc(&b, s.u.s[i]);
        }
    }
    *res = jv_str(b.p ? b.p : "", b.n);
}

FILTER(tojson)
{
    static const char *const kw[] = { "indent", "ensure_ascii", "sort_keys", NULL };
    check_args(r, at, "tojson", nargs, names, 1, kw);
    const jv *ind = arg(nargs, args, names, 0, "indent");
    const jv *ea = arg(nargs, args, names, -1, "ensure_ascii");
    const jv *sk = arg(nargs, args, names, -1, "sort_keys");
    int indent = -1;
    if (ind && ind->t != JV_NONE) {
        int64_t v = need_int(r, at, ind, "tojson indent");
        indent = v < 0 ? 0 : v > 64 ? 64 : (int)v;
    }
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    jv_to_json(r, at, &b, self, opt_bool(ea, false), indent, opt_bool(sk, false), 0);
    *res = jv_str(b.p ? b.p : "", b.n);
}

FILTER(trim)
{
    static const char *const kw[] = { "chars", NULL };
    check_args(r, at, "trim", nargs, names, 1, kw);
    const jv *chars = arg(nargs, args, names, 0, "chars");
    jv s = jv_as_str(r, self);
    if (chars && chars->t == JV_NONE) chars = NULL;
    if (chars) need_str(r, at, chars, "trim");
    *res = jv_strip(r, &s, chars, true, true);
}

static void case_filter(jr *r, const jn_node *at, jv *res, const jv *self, int nargs, const char *const *names,
                        int mode, const char *what)
{
    check_args(r, at, what, nargs, names, 0, NULL);
    jv s = jv_as_str(r, self);
    *res = case_map(r, &s, mode);
}

FILTER(upper) { (void)args; case_filter(r, at, res, self, nargs, names, CASE_UPPER, "upper"); }
FILTER(lower) { (void)args; case_filter(r, at, res, self, nargs, names, CASE_LOWER, "lower"); }
FILTER(capitalize) { (void)args; case_filter(r, at, res, self, nargs, names, CASE_CAPITALIZE, "capitalize"); }
FILTER(title) { (void)args; case_filter(r, at, res, self, nargs, names, CASE_TITLE_JINJA, "title"); }

FILTER(replace)
{
    static const char *const kw[] = { "old", "new", "count", NULL };
    check_args(r, at, "replace", nargs, names, 3, kw);
    const jv *o = arg(nargs, args, names, 0, "old"), *nw = arg(nargs, args, names, 1, "new");
    const jv *cnt = arg(nargs, args, names, 2, "count");
    jv s = jv_as_str(r, self);
    if (!o || !nw) jr_fail(r, at, "replace needs old and new");
    jv so = jv_as_str(r, o), sn = jv_as_str(r, nw);
    *res = str_replace(r, at, &s, &so, &sn, cnt && cnt->t != JV_NONE ? need_int(r, at, cnt, "replace count") : -1);
}

static size_t length_of(jr *r, const jn_node *at, const jv *v)
{
    jr_charge(r, at, v->t == JV_STR ? v->n / 64 : 0);
    switch ((jv_type)v->t) {
    case JV_STR: return jv_utf8_len(v->u.s, v->n);
    case JV_LIST: return v->u.l->n;
    case JV_DICT: case JV_NS: return v->u.d->n;
    case JV_UNDEF: return 0;
    default: jr_fail(r, at, "object of type '%s' has no len()", jv_type_name(v));
    }
}

FILTER(length)
{
    check_args(r, at, "length", nargs, names, 0, NULL);
    (void)args;
    *res = jv_int((int64_t)length_of(r, at, self));
}

FILTER(items)
{
    check_args(r, at, "items", nargs, names, 0, NULL);
    (void)args;
    if (self->t == JV_UNDEF) { *res = jv_list(r, 0); return; }
    if (self->t != JV_DICT && self->t != JV_NS) jr_fail(r, at, "Can only get item pairs from a mapping.");
    *res = jv_list(r, self->u.d->n);
    for (size_t i = 0; i < self->u.d->n; i++) {
        jv pair = jv_list(r, 2);
        pair.tuple = 1;
        jv_list_push(r, pair.u.l, self->u.d->k[i]);
        jv_list_push(r, pair.u.l, self->u.d->v[i]);
        jv_list_push(r, res->u.l, pair);
    }
}

FILTER(list)
{
    check_args(r, at, "list", nargs, names, 0, NULL);
    (void)args;
    const jlist *l = jv_iter(r, at, self);
    *res = jv_list(r, l->n);
    for (size_t i = 0; i < l->n; i++) jv_list_push(r, res->u.l, l->v[i]);
}

FILTER(first)
{
    check_args(r, at, "first", nargs, names, 0, NULL);
    (void)args;
    const jlist *l = jv_iter(r, at, self);
    *res = l->n ? l->v[0] : jv_undef("No first item, sequence was empty.");
}

FILTER(last)
{
    check_args(r, at, "last", nargs, names, 0, NULL);
    (void)args;
    const jlist *l = jv_iter(r, at, self);
    *res = l->n ? l->v[l->n - 1] : jv_undef("No last item, sequence was empty.");
}

FILTER(reverse)
{
    check_args(r, at, "reverse", nargs, names, 0, NULL);
    (void)args;
    const jlist *l = jv_iter(r, at, self);
    if (self->t == JV_STR) {
        jn_buf b;
        jn_buf_init(&b, &r->ar, r->lim.max_output);
        for (size_t i = l->n; i-- > 0;) jn_buf_put(&b, l->v[i].u.s, l->v[i].n);
        *res = jv_str(b.p ? b.p : "", b.n);
        return;
    }
    *res = jv_list(r, l->n);
    for (size_t i = l->n; i-- > 0;) jv_list_push(r, res->u.l, l->v[i]);
}

FILTER(join)
{
    static const char *const kw[] = { "d", "attribute", NULL };
    check_args(r, at, "join", nargs, names, 2, kw);
    const jv *sep = arg(nargs, args, names, 0, "d"), *attr = arg(nargs, args, names, 1, "attribute");
    jv ssep = sep ? jv_as_str(r, sep) : jv_str("", 0);
    const jlist *l = jv_iter(r, at, self);
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    for (size_t i = 0; i < l->n; i++) {
        if (i) jn_buf_put(&b, ssep.u.s, ssep.n);
        jv item = attr ? get_attribute(r, at, &l->v[i], attr) : l->v[i];
        jv_to_str(r, &b, &item);
    }
    *res = jv_str(b.p ? b.p : "", b.n);
}

FILTER(default)
{
    static const char *const kw[] = { "default_value", "boolean", NULL };
    check_args(r, at, "default", nargs, names, 2, kw);
    const jv *d = arg(nargs, args, names, 0, "default_value"), *boolean = arg(nargs, args, names, 1, "boolean");
    bool use = self->t == JV_UNDEF || (opt_bool(boolean, false) && !jv_truthy(self));
    *res = use ? (d ? *d : jv_str("", 0)) : *self;
}

FILTER(int)
{
    static const char *const kw[] = { "default", "base", NULL };
    check_args(r, at, "int", nargs, names, 2, kw);
    const jv *d = arg(nargs, args, names, 0, "default"), *base = arg(nargs, args, names, 1, "base");
    jv dflt = d ? *d : jv_int(0);
    int b = base ? (int)need_int(r, at, base, "int base") : 10;
    switch ((jv_type)self->t) {
    case JV_INT: *res = *self; return;
    case JV_BOOL: *res = jv_int(self->u.b); return;
    case JV_FLOAT:
        if (!isfinite(self->u.f) || fabs(self->u.f) >= 9.2e18) { *res = dflt; return; }
        *res = jv_int((int64_t)self->u.f);
        return;
    case JV_STR: {
        jv t = jv_strip(r, self, NULL, true, true);
        char *s = jn_strndup(&r->ar, t.u.s, t.n), *end;
        char *w = s;
        for (char *p = s; *p; p++) if (*p != '_') *w++ = *p;   /* Python allows 1_000 */
        *w = '\0';
        if (b < 2 || b > 36) jr_fail(r, at, "int() base must be >= 2 and <= 36");
        if (*s) {
            long long v = strtoll(s, &end, b);
            if (*end == '\0') { *res = jv_int(v); return; }
            double f = strtod(s, &end);
            if (*end == '\0' && isfinite(f) && fabs(f) < 9.2e18) { *res = jv_int((int64_t)f); return; }
        }
        *res = dflt;
        return;
    }
    default: *res = dflt; return;
    }
}

FILTER(float)
{
    static const char *const kw[] = { "default", NULL };
    check_args(r, at, "float", nargs, names, 1, kw);
    const jv *d = arg(nargs, args, names, 0, "default");
    jv dflt = d ? *d : jv_float(0.0);
    switch ((jv_type)self->t) {
    case JV_INT: *res = jv_float((double)self->u.i); return;
    case JV_BOOL: *res = jv_float(self->u.b); return;
    case JV_FLOAT: *res = *self; return;
    case JV_STR: {
        jv t = jv_strip(r, self, NULL, true, true);
        char *s = jn_strndup(&r->ar, t.u.s, t.n), *end;
        double f = strtod(s, &end);
        *res = *s && *end == '\0' ? jv_float(f) : dflt;
        return;
    }
    default: *res = dflt; return;
    }
}

FILTER(abs)
{
    check_args(r, at, "abs", nargs, names, 0, NULL);
    (void)args;
    if (self->t == JV_FLOAT) *res = jv_float(fabs(self->u.f));
    else if (self->t == JV_INT && self->u.i != INT64_MIN) *res = jv_int(self->u.i < 0 ? -self->u.i : self->u.i);
    else if (self->t == JV_BOOL) *res = jv_int(self->u.b);
    else jr_fail(r, at, "bad operand type for abs(): '%s'", jv_type_name(self));
}

FILTER(round)
{
    static const char *const kw[] = { "precision", "method", NULL };
    check_args(r, at, "round", nargs, names, 2, kw);
    const jv *p = arg(nargs, args, names, 0, "precision"), *m = arg(nargs, args, names, 1, "method");
    int64_t prec = p ? need_int(r, at, p, "round precision") : 0;
    if (prec < -20 || prec > 20) jr_fail(r, at, "round precision out of range");
    if (self->t != JV_INT && self->t != JV_FLOAT && self->t != JV_BOOL)
        jr_fail(r, at, "round expects a number, got %s", jv_type_name(self));
    double x = self->t == JV_FLOAT ? self->u.f : self->t == JV_INT ? (double)self->u.i : self->u.b;
    double s = pow(10.0, (double)prec), v;
    const char *method = "common";
    if (m) method = jn_strndup(&r->ar, need_str(r, at, m, "round method")->u.s, m->n);
    if (!strcmp(method, "common")) v = nearbyint(x * s) / s;
    else if (!strcmp(method, "ceil")) v = ceil(x * s) / s;
    else if (!strcmp(method, "floor")) v = floor(x * s) / s;
    else jr_fail(r, at, "method must be common, ceil or floor");
    *res = jv_float(v);
}

FILTER(indent)
{
    static const char *const kw[] = { "width", "first", "blank", NULL };
    check_args(r, at, "indent", nargs, names, 3, kw);
    const jv *w = arg(nargs, args, names, 0, "width");
    bool first = opt_bool(arg(nargs, args, names, 1, "first"), false);
    bool blank = opt_bool(arg(nargs, args, names, 2, "blank"), false);
    jv ind;
    if (w && w->t == JV_STR) {
        ind = *w;
    } else {
        int64_t n = w ? need_int(r, at, w, "indent width") : 4;
        if (n < 0) n = 0;
        if (n > 1024) jr_fail(r, at, "indent width too large");
        char *sp = jn_alloc(&r->ar, (size_t)n + 1);
        memset(sp, ' ', (size_t)n);
        ind = jv_str(sp, (size_t)n);
    }
    jv s = jv_as_str(r, self);
    jn_buf b;
    jn_buf_init(&b, &r->ar, r->lim.max_output);
    if (first) jn_buf_put(&b, ind.u.s, ind.n);
    /* lines of s + "\n" (splitlines: no empty last piece) */
    size_t i = 0;
    bool line0 = true;
    while (i <= s.n) {
        const char *nl = memchr(s.u.s + i, '\n', s.n - i);
        size_t e = nl ? (size_t)(nl - s.u.s) : s.n;
        if (!line0) {
            jn_buf_putc(&b, '\n');
            if (blank || e > i) jn_buf_put(&b, ind.u.s, ind.n);
        }
        jn_buf_put(&b, s.u.s + i, e - i);
        line0 = false;
        i = e + 1;
        if (!nl) break;
    }
    *res = jv_str(b.p ? b.p : "", b.n);
}

FILTER(attr)
{
    check_args(r, at, "attr", nargs, names, 1, NULL);
    const jv *a = arg(nargs, args, names, 0, NULL);
    if (!a) jr_fail(r, at, "attr needs a name");
    const char *name = jn_strndup(&r->ar, need_str(r, at, a, "attr")->u.s, a->n);
    if (self->t == JV_DICT && !jn_method_exists(self, name)) {   /* getattr only: keys are not attributes */
        *res = jv_undef("no such attribute");
        return;
    }
    *res = jv_getattr(r, at, self, name);
}

/* map(attribute=..., default=...) or map('filter', args...) */
FILTER(map)
{
    const jlist *l = jv_iter(r, at, self);
    const jv *attr = arg(nargs, args, names, -1, "attribute");
    const jv *dflt = arg(nargs, args, names, -1, "default");
    *res = jv_list(r, l->n);
    if (attr) {
        for (size_t i = 0; i < l->n; i++) {
            jv v = get_attribute(r, at, &l->v[i], attr);
            if (v.t == JV_UNDEF && dflt) v = *dflt;
            jv_list_push(r, res->u.l, v);
        }
        return;
    }
    const jv *fname = arg(nargs, args, names, 0, NULL);
    if (!fname) jr_fail(r, at, "map needs a filter name or attribute=");
    for (int i = 0; i < nargs; i++)
        if (names && names[i]) jr_fail(r, at, "map: keyword arguments to the filter are not supported");
    const char *fn = jn_strndup(&r->ar, need_str(r, at, fname, "map")->u.s, fname->n);
    for (size_t i = 0; i < l->n; i++)
        jv_list_push(r, res->u.l, jr_apply_filter_name(r, at, fn, &l->v[i], nargs - 1, args + 1));
}

static void select_common(jr *r, const jn_node *at, jv *res, const jv *self, int nargs, const jv *args,
                          const char *const *names, bool by_attr, bool keep_true)
{
    for (int i = 0; i < nargs; i++)
        if (names && names[i]) jr_fail(r, at, "select/reject: keyword arguments are not supported");
    const jlist *l = jv_iter(r, at, self);
    int k = 0;
    const jv *attr = NULL;
    if (by_attr) {
        if (nargs < 1) jr_fail(r, at, "selectattr/rejectattr need an attribute");
        attr = &args[k++];
    }
    const char *test = NULL;
    if (nargs > k) test = jn_strndup(&r->ar, need_str(r, at, &args[k], "test name")->u.s, args[k].n), k++;
    *res = jv_list(r, 0);
    for (size_t i = 0; i < l->n; i++) {
        jv v = attr ? get_attribute(r, at, &l->v[i], attr) : l->v[i];
        bool t = test ? jr_apply_test_name(r, at, test, &v, nargs - k, args + k) : jv_truthy(&v);
        if (t == keep_true) jv_list_push(r, res->u.l, l->v[i]);
        jr_step(r, at);
    }
}

FILTER(select) { select_common(r, at, res, self, nargs, args, names, false, true); }
FILTER(reject) { select_common(r, at, res, self, nargs, args, names, false, false); }
FILTER(selectattr) { select_common(r, at, res, self, nargs, args, names, true, true); }
FILTER(rejectattr) { select_common(r, at, res, self, nargs, args, names, true, false); }

FILTER(unique)
{
    static const char *const kw[] = { "case_sensitive", "attribute", NULL };
    check_args(r, at, "unique", nargs, names, 2, kw);
    bool cs = opt_bool(arg(nargs, args, names, 0, "case_sensitive"), false);
    const jv *attr = arg(nargs, args, names, 1, "attribute");
    const jlist *l = jv_iter(r, at, self);
    jv seen = jv_list(r, 0);
    *res = jv_list(r, 0);
    for (size_t i = 0; i < l->n; i++) {
        jv k = sort_key(r, at, &l->v[i], attr, cs);
        bool dup = false;
        for (size_t j = 0; j < seen.u.l->n && !dup; j++) dup = jv_equal(&k, &seen.u.l->v[j]);
        jr_charge(r, at, seen.u.l->n + 1);
        if (dup) continue;
        jv_list_push(r, seen.u.l, k);
        jv_list_push(r, res->u.l, l->v[i]);
    }
}

FILTER(sort)
{
    static const char *const kw[] = { "reverse", "case_sensitive", "attribute", NULL };
    check_args(r, at, "sort", nargs, names, 3, kw);
    bool rev = opt_bool(arg(nargs, args, names, 0, "reverse"), false);
    bool cs = opt_bool(arg(nargs, args, names, 1, "case_sensitive"), false);
    const jv *attr = arg(nargs, args, names, 2, "attribute");
    *res = sorted(r, at, jv_iter(r, at, self), attr, cs, rev);
}

FILTER(dictsort)
{
    static const char *const kw[] = { "case_sensitive", "by", "reverse", NULL };
    check_args(r, at, "dictsort", nargs, names, 3, kw);
    bool cs = opt_bool(arg(nargs, args, names, 0, "case_sensitive"), false);
    const jv *by = arg(nargs, args, names, 1, "by");
    bool rev = opt_bool(arg(nargs, args, names, 2, "reverse"), false);
    jv pairs;
    f_items(r, at, &pairs, self, 0, NULL, NULL);
    jv pos = jv_int(by && by->t == JV_STR && by->n == 5 && !memcmp(by->u.s, "value", 5) ? 1 : 0);
    *res = sorted(r, at, pairs.u.l, &pos, cs, rev);
}

static void minmax(jr *r, const jn_node *at, jv *res, const jv *self, int nargs, const jv *args,
                   const char *const *names, bool max)
{
    static const char *const kw[] = { "case_sensitive", "attribute", NULL };
    check_args(r, at, max ? "max" : "min", nargs, names, 2, kw);
    bool cs = opt_bool(arg(nargs, args, names, 0, "case_sensitive"), false);
    const jv *attr = arg(nargs, args, names, 1, "attribute");
    const jlist *l = jv_iter(r, at, self);
    if (!l->n) { *res = jv_undef("No aggregated item, sequence was empty."); return; }
    size_t best = 0;
    jv bk = sort_key(r, at, &l->v[0], attr, cs);
    for (size_t i = 1; i < l->n; i++) {
        jv k = sort_key(r, at, &l->v[i], attr, cs);
        int c = jv_compare(r, at, &k, &bk);
        if (max ? c > 0 : c < 0) { best = i; bk = k; }
    }
    *res = l->v[best];
}

FILTER(min) { minmax(r, at, res, self, nargs, args, names, false); }
FILTER(max) { minmax(r, at, res, self, nargs, args, names, true); }

FILTER(sum)
{
    static const char *const kw[] = { "attribute", "start", NULL };
    check_args(r, at, "sum", nargs, names, 2, kw);
    const jv *attr = arg(nargs, args, names, 0, "attribute"), *start = arg(nargs, args, names, 1, "start");
    const jlist *l = jv_iter(r, at, self);
    jv acc = start ? *start : jv_int(0);
    for (size_t i = 0; i < l->n; i++) {
        jv v = attr ? get_attribute(r, at, &l->v[i], attr) : l->v[i];
        bool fl = acc.t == JV_FLOAT || v.t == JV_FLOAT;
        if ((acc.t != JV_INT && acc.t != JV_FLOAT && acc.t != JV_BOOL) ||
            (v.t != JV_INT && v.t != JV_FLOAT && v.t != JV_BOOL))
            jr_fail(r, at, "sum: unsupported operand types '%s' and '%s'", jv_type_name(&acc), jv_type_name(&v));
        if (fl) {
            double a = acc.t == JV_FLOAT ? acc.u.f : acc.t == JV_INT ? (double)acc.u.i : acc.u.b;
            double b = v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b;
            acc = jv_float(a + b);
        } else {
            int64_t a = acc.t == JV_INT ? acc.u.i : acc.u.b, b = v.t == JV_INT ? v.u.i : v.u.b, z;
            if (__builtin_add_overflow(a, b, &z)) jr_fail(r, at, "integer overflow in sum");
            acc = jv_int(z);
        }
    }
    *res = acc;
}

static const struct { const char *name; jn_filter_fn fn; } filters[] = {
    { "abs", f_abs }, { "attr", f_attr }, { "capitalize", f_capitalize }, { "count", f_length },
    { "d", f_default }, { "default", f_default }, { "dictsort", f_dictsort }, { "e", f_escape },
    { "escape", f_escape }, { "first", f_first }, { "float", f_float }, { "indent", f_indent },
    { "int", f_int }, { "items", f_items }, { "join", f_join }, { "last", f_last },
    { "length", f_length }, { "list", f_list }, { "lower", f_lower }, { "map", f_map },
    { "max", f_max }, { "min", f_min }, { "reject", f_reject }, { "rejectattr", f_rejectattr },
    { "replace", f_replace }, { "reverse", f_reverse }, { "round", f_round }, { "safe", f_safe },
    { "select", f_select }, { "selectattr", f_selectattr }, { "sort", f_sort }, { "string", f_string },
    { "sum", f_sum }, { "title", f_title }, { "tojson", f_tojson }, { "trim", f_trim },
    { "unique", f_unique }, { "upper", f_upper },
};

jn_filter_fn jn_filter_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
        if (!strcmp(filters[i].name, name)) return filters[i].fn;
    return NULL;
}

/* ---- tests ------------------------------------------------------------- */

#define TEST(name) static bool t_##name(jr *r, const jn_node *at, const jv *v, int nargs, const jv *args)
#define UNUSED_TEST_ARGS (void)r; (void)at; (void)nargs; (void)args

static const jv *test_arg(jr *r, const jn_node *at, int nargs, const jv *args, const char *what)
{
    if (nargs < 1) jr_fail(r, at, "test '%s' needs an argument", what);
    return &args[0];
}

TEST(defined) { UNUSED_TEST_ARGS; return v->t != JV_UNDEF; }
TEST(undefined) { UNUSED_TEST_ARGS; return v->t == JV_UNDEF; }
TEST(none) { UNUSED_TEST_ARGS; return v->t == JV_NONE; }
TEST(boolean) { UNUSED_TEST_ARGS; return v->t == JV_BOOL; }
TEST(true) { UNUSED_TEST_ARGS; return v->t == JV_BOOL && v->u.b; }
TEST(false) { UNUSED_TEST_ARGS; return v->t == JV_BOOL && !v->u.b; }
TEST(integer) { UNUSED_TEST_ARGS; return v->t == JV_INT; }
TEST(float) { UNUSED_TEST_ARGS; return v->t == JV_FLOAT; }
TEST(number) { UNUSED_TEST_ARGS; return v->t == JV_INT || v->t == JV_FLOAT || v->t == JV_BOOL; }
TEST(string) { UNUSED_TEST_ARGS; return v->t == JV_STR; }
TEST(mapping) { UNUSED_TEST_ARGS; return v->t == JV_DICT; }
TEST(iterable) { UNUSED_TEST_ARGS; return v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT || v->t == JV_UNDEF; }
TEST(sequence) { UNUSED_TEST_ARGS; return v->t == JV_STR || v->t == JV_LIST || v->t == JV_DICT || v->t == JV_UNDEF; }
TEST(callable) { UNUSED_TEST_ARGS; return v->t == JV_MACRO || v->t == JV_FUNC || v->t == JV_METHOD; }
TEST(escaped) { UNUSED_TEST_ARGS; (void)v; return false; }
TEST(odd) { UNUSED_TEST_ARGS; return (need_int(r, at, v, "odd") & 1) != 0; }
TEST(even) { UNUSED_TEST_ARGS; return (need_int(r, at, v, "even") & 1) == 0; }
TEST(divisibleby)
{
    int64_t d = need_int(r, at, test_arg(r, at, nargs, args, "divisibleby"), "divisibleby");
    if (d == 0) jr_fail(r, at, "integer division or modulo by zero");
    if (d == -1) return true;
    return need_int(r, at, v, "divisibleby") % d == 0;
}
TEST(eq) { return jv_equal(v, test_arg(r, at, nargs, args, "eq")); }
TEST(ne) { return !jv_equal(v, test_arg(r, at, nargs, args, "ne")); }
TEST(lt) { return jv_compare(r, at, v, test_arg(r, at, nargs, args, "lt")) < 0; }
TEST(le) { return jv_compare(r, at, v, test_arg(r, at, nargs, args, "le")) <= 0; }
TEST(gt) { return jv_compare(r, at, v, test_arg(r, at, nargs, args, "gt")) > 0; }
TEST(ge) { return jv_compare(r, at, v, test_arg(r, at, nargs, args, "ge")) >= 0; }
TEST(sameas)
{
    const jv *o = test_arg(r, at, nargs, args, "sameas");
    if (v->t != o->t) return false;
    if (v->t == JV_NONE || v->t == JV_UNDEF) return true;
    if (v->t == JV_BOOL) return v->u.b == o->u.b;
    if (v->t == JV_INT) return v->u.i == o->u.i;     /* CPython caches small ints; close enough */
    if (v->t == JV_STR) return v->u.s == o->u.s && v->n == o->n;
    return v->u.l == o->u.l;
}
TEST(in)
{
    const jv *h = test_arg(r, at, nargs, args, "in");
    jr_charge(r, at, h->t == JV_STR ? h->n / 64 : h->t == JV_LIST ? h->u.l->n : 0);
    switch ((jv_type)h->t) {
    case JV_STR:
        if (v->t != JV_STR) jr_fail(r, at, "'in <string>' requires string as left operand");
        return v->n == 0 || (h->n >= v->n && memmem(h->u.s, h->n, v->u.s, v->n));
    case JV_LIST:
        for (size_t i = 0; i < h->u.l->n; i++)
            if (jv_equal(v, &h->u.l->v[i])) return true;
        return false;
    case JV_DICT: return jv_dict_get(h->u.d, v) != NULL;
    case JV_UNDEF: return false;
    default: jr_fail(r, at, "argument of type '%s' is not iterable", jv_type_name(h));
    }
}
static bool str_cased_all(const jv *v, bool upper)
{
    bool any = false;
    for (size_t i = 0; i < v->n;) {
        unsigned cp;
        i += jv_utf8_next(v->u.s + i, v->n - i, &cp);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        if (c == UTF8PROC_CATEGORY_LU || c == UTF8PROC_CATEGORY_LT) { if (!upper) return false; any = true; }
        else if (c == UTF8PROC_CATEGORY_LL) { if (upper) return false; any = true; }
    }
    return any;
}
TEST(lower) { UNUSED_TEST_ARGS; return v->t == JV_STR && str_cased_all(v, false); }
TEST(upper) { UNUSED_TEST_ARGS; return v->t == JV_STR && str_cased_all(v, true); }

static const struct { const char *name; jn_test_fn fn; } tests[] = {
    { "defined", t_defined }, { "undefined", t_undefined }, { "none", t_none }, { "boolean", t_boolean },
    { "true", t_true }, { "false", t_false }, { "integer", t_integer }, { "float", t_float },
    { "number", t_number }, { "string", t_string }, { "mapping", t_mapping }, { "iterable", t_iterable },
    { "sequence", t_sequence }, { "callable", t_callable }, { "escaped", t_escaped }, { "odd", t_odd },
    { "even", t_even }, { "divisibleby", t_divisibleby }, { "eq", t_eq }, { "equalto", t_eq },
    { "==", t_eq }, { "ne", t_ne }, { "!=", t_ne }, { "lt", t_lt }, { "lessthan", t_lt }, { "<", t_lt },
    { "le", t_le }, { "<=", t_le }, { "gt", t_gt }, { "greaterthan", t_gt }, { ">", t_gt },
    { "ge", t_ge }, { ">=", t_ge }, { "in", t_in }, { "sameas", t_sameas }, { "lower", t_lower },
    { "upper", t_upper },
};

jn_test_fn jn_test_lookup(const char *name)
{
    for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
        if (!strcmp(tests[i].name, name)) return tests[i].fn;
    return NULL;
}

/* ---- methods ----------------------------------------------------------- */

static const char *const str_methods[] = {
    "startswith", "endswith", "split", "rsplit", "strip", "lstrip", "rstrip", "replace", "upper",
    "lower", "title", "capitalize", "find", "rfind", "count", "join", "splitlines", "isdigit",
    "isalpha", "isalnum", "isspace", "islower", "isupper", "removeprefix", "removesuffix",
    /* exist in Python, not implemented: calling them fails */
    "format", "format_map", "center", "ljust", "rjust", "zfill", "swapcase", "casefold", "partition",
    "rpartition", "encode", "expandtabs", "index", "rindex", "isdecimal", "isnumeric", "isidentifier",
    "isprintable", "istitle", "isascii", "translate", "maketrans", NULL,
};
static const char *const dict_methods[] = {
    "items", "keys", "values", "get", "copy",
    "pop", "popitem", "update", "setdefault", "clear", "fromkeys", NULL,
};
static const char *const list_methods[] = {
    "index", "count", "copy",
    "append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear", NULL,
};

static bool in_names(const char *const *list, const char *name)
{
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], name)) return true;
    return false;
}

bool jn_method_exists(const jv *self, const char *name)
{
    switch ((jv_type)self->t) {
    case JV_STR: return in_names(str_methods, name);
    case JV_DICT: return in_names(dict_methods, name);
    case JV_LIST: return in_names(list_methods, name);
    default: return false;
    }
}

static int64_t str_find(const jv *s, const jv *sub, bool rev)
{
    if (sub->n > s->n) return -1;
    size_t hit = (size_t)-1;
    for (size_t i = 0; i + sub->n <= s->n;) {       /* memmem is linear (two-way) */
        const char *p = memmem(s->u.s + i, s->n - i, sub->u.s, sub->n);
        if (!p) break;
        hit = (size_t)(p - s->u.s);
        if (!rev) break;
        i = hit + 1;
    }
    if (hit == (size_t)-1) return -1;
    return (int64_t)jv_utf8_len(s->u.s, hit);      /* Python counts code points */
}

static bool str_all(const jv *s, int kind)
{
    if (s->n == 0) return false;
    for (size_t i = 0; i < s->n;) {
        unsigned cp;
        i += jv_utf8_next(s->u.s + i, s->n - i, &cp);
        utf8proc_category_t c = utf8proc_category((utf8proc_int32_t)cp);
        bool letter = c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_LO;
        bool digit = c == UTF8PROC_CATEGORY_ND;
        bool ok = kind == 0 ? digit : kind == 1 ? letter : kind == 2 ? letter || digit : jv_is_space(cp);
        if (!ok) return false;
    }
    return true;
}

static jv str_method(jr *r, const jn_node *at, const jv *s, const char *m, int nargs, const jv *args,
                     const char *const *names)
{
    jr_charge(r, at, s->n / 64);
    const jv *a0 = arg(nargs, args, names, 0, NULL), *a1 = arg(nargs, args, names, 1, NULL);
    if (!strcmp(m, "startswith") || !strcmp(m, "endswith")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        if (!a0) jr_fail(r, at, "%s() takes one argument", m);
        return jv_bool(str_affix(r, at, s, a0, m[0] == 'e'));
    }
    if (!strcmp(m, "split") || !strcmp(m, "rsplit")) {
        static const char *const kw[] = { "sep", "maxsplit", NULL };
        check_args(r, at, m, nargs, names, 2, kw);
        const jv *sep = arg(nargs, args, names, 0, "sep"), *mx = arg(nargs, args, names, 1, "maxsplit");
        return str_split(r, at, s, sep, mx ? need_int(r, at, mx, "maxsplit") : -1, m[0] == 'r');
    }
    if (!strcmp(m, "strip") || !strcmp(m, "lstrip") || !strcmp(m, "rstrip")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        const jv *chars = a0 && a0->t != JV_NONE ? need_str(r, at, a0, m) : NULL;
        return jv_strip(r, s, chars, m[0] != 'r', m[0] != 'l');
    }
    if (!strcmp(m, "replace")) {
        check_args(r, at, m, nargs, names, 3, NULL);
        const jv *a2 = arg(nargs, args, names, 2, NULL);
        if (!a0 || !a1) jr_fail(r, at, "replace() needs old and new");
        return str_replace(r, at, s, need_str(r, at, a0, m), need_str(r, at, a1, m),
                           a2 ? need_int(r, at, a2, "replace count") : -1);
    }
    if (!strcmp(m, "upper") || !strcmp(m, "lower") || !strcmp(m, "title") || !strcmp(m, "capitalize")) {
        check_args(r, at, m, nargs, names, 0, NULL);
        return case_map(r, s, m[0] == 'u' ? CASE_UPPER : m[0] == 'l' ? CASE_LOWER : m[0] == 't' ? CASE_TITLE_PY
                                                                                              : CASE_CAPITALIZE);
    }
    if (!strcmp(m, "find") || !strcmp(m, "rfind")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        if (!a0) jr_fail(r, at, "%s() takes one argument", m);
        return jv_int(str_find(s, need_str(r, at, a0, m), m[0] == 'r'));
    }
    if (!strcmp(m, "count")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        if (!a0) jr_fail(r, at, "count() takes one argument");
        need_str(r, at, a0, m);
        if (a0->n == 0) return jv_int((int64_t)jv_utf8_len(s->u.s, s->n) + 1);
        int64_t c = 0;
        for (size_t i = 0; i + a0->n <= s->n;) {
            const char *p = memmem(s->u.s + i, s->n - i, a0->u.s, a0->n);
            if (!p) break;
            c++;
            i = (size_t)(p - s->u.s) + a0->n;
        }
        return jv_int(c);
    }
    if (!strcmp(m, "join")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        if (!a0) jr_fail(r, at, "join() takes one argument");
        const jlist *l = jv_iter(r, at, a0);
        jn_buf b;
        jn_buf_init(&b, &r->ar, r->lim.max_output);
        for (size_t i = 0; i < l->n; i++) {
            if (i) jn_buf_put(&b, s->u.s, s->n);
            need_str(r, at, &l->v[i], "join");
            jn_buf_put(&b, l->v[i].u.s, l->v[i].n);
        }
        return jv_str(b.p ? b.p : "", b.n);
    }
    if (!strcmp(m, "splitlines")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        bool keep = opt_bool(a0, false);
        jv out = jv_list(r, 0);
        size_t i = 0;
        while (i < s->n) {
            size_t e = i;
            while (e < s->n && s->u.s[e] != '\n' && s->u.s[e] != '\r') e++;
            size_t next = e;
            if (e < s->n) next = (s->u.s[e] == '\r' && e + 1 < s->n && s->u.s[e + 1] == '\n') ? e + 2 : e + 1;
            jv_list_push(r, out.u.l, jv_str(s->u.s + i, (keep ? next : e) - i));
            i = next;
        }
        return out;
    }
    if (!strcmp(m, "isdigit") || !strcmp(m, "isalpha") || !strcmp(m, "isalnum") || !strcmp(m, "isspace")) {
        check_args(r, at, m, nargs, names, 0, NULL);
        return jv_bool(str_all(s, m[2] == 'd' ? 0 : m[3] == 'l' && m[4] == 'p' ? 1 : m[2] == 'a' ? 2 : 3));
    }
    if (!strcmp(m, "islower") || !strcmp(m, "isupper")) {
        check_args(r, at, m, nargs, names, 0, NULL);
        return jv_bool(str_cased_all(s, m[2] == 'u'));
    }
    if (!strcmp(m, "removeprefix") || !strcmp(m, "removesuffix")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        if (!a0) jr_fail(r, at, "%s() takes one argument", m);
        bool suffix = m[6] == 's';
        if (str_affix(r, at, s, need_str(r, at, a0, m), suffix))
            return suffix ? jv_str(s->u.s, s->n - a0->n) : jv_str(s->u.s + a0->n, s->n - a0->n);
        return *s;
    }
    jr_fail(r, at, "unsupported: str.%s()", m);
}

static jv dict_method(jr *r, const jn_node *at, const jv *d, const char *m, int nargs, const jv *args,
                      const char *const *names)
{
    if (!strcmp(m, "items")) {
        jv res;
        check_args(r, at, m, nargs, names, 0, NULL);
        f_items(r, at, &res, d, 0, NULL, NULL);
        return res;
    }
    if (!strcmp(m, "keys") || !strcmp(m, "values")) {
        check_args(r, at, m, nargs, names, 0, NULL);
        jv res = jv_list(r, d->u.d->n);
        for (size_t i = 0; i < d->u.d->n; i++) jv_list_push(r, res.u.l, m[0] == 'k' ? d->u.d->k[i] : d->u.d->v[i]);
        return res;
    }
    if (!strcmp(m, "get")) {
        check_args(r, at, m, nargs, names, 2, NULL);
        const jv *k = arg(nargs, args, names, 0, NULL), *dflt = arg(nargs, args, names, 1, NULL);
        if (!k) jr_fail(r, at, "get() takes at least one argument");
        jv *v = jv_dict_get(d->u.d, k);
        return v ? *v : dflt ? *dflt : jv_none();
    }
    if (!strcmp(m, "copy")) {
        jv res = jv_dict(r, d->u.d->n);
        for (size_t i = 0; i < d->u.d->n; i++) jv_dict_set(r, res.u.d, d->u.d->k[i], d->u.d->v[i]);
        return res;
    }
    jr_fail(r, at, "unsafe: dict.%s() would modify an immutable value", m);
}

static jv list_method(jr *r, const jn_node *at, const jv *l, const char *m, int nargs, const jv *args,
                      const char *const *names)
{
    const jv *a0 = arg(nargs, args, names, 0, NULL);
    if (!strcmp(m, "index") || !strcmp(m, "count")) {
        check_args(r, at, m, nargs, names, 1, NULL);
        if (!a0) jr_fail(r, at, "%s() takes one argument", m);
        int64_t c = 0;
        for (size_t i = 0; i < l->u.l->n; i++)
            if (jv_equal(a0, &l->u.l->v[i])) {
                if (m[0] == 'i') return jv_int((int64_t)i);
                c++;
            }
        if (m[0] == 'i') jr_fail(r, at, "list.index(x): x not in list");
        return jv_int(c);
    }
    if (!strcmp(m, "copy")) {
        jv res = jv_list(r, l->u.l->n);
        for (size_t i = 0; i < l->u.l->n; i++) jv_list_push(r, res.u.l, l->u.l->v[i]);
        return res;
    }
    jr_fail(r, at, "unsafe: list.%s() would modify an immutable value", m);
}

jv jn_method_call(jr *r, const jn_node *at, const jmethod *m, int nargs, const jv *args, const char *const *names)
{
    switch ((jv_type)m->self.t) {
    case JV_STR: return str_method(r, at, &m->self, m->name, nargs, args, names);
    case JV_DICT: return dict_method(r, at, &m->self, m->name, nargs, args, names);
    case JV_LIST: return list_method(r, at, &m->self, m->name, nargs, args, names);
    case JV_LOOP:
        if (!strcmp(m->name, "cycle")) {
            if (nargs < 1) jr_fail(r, at, "no items for cycling given");
            return args[m->self.u.loop->i % (size_t)nargs];
        }
        break;
    default:
        break;
    }
    jr_fail(r, at, "unsupported method '%s'", m->name);
}
