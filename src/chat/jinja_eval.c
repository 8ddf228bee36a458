/*
 * jinja_eval.c - rendering: statements, expressions, scopes, macros and the
 * entry points pio_jinja_parse / pio_jinja_render.
 *
 * Scopes follow Jinja2: the context is the outermost frame, the template's
 * top level sits above it; every for-loop iteration and every macro call
 * gets its own frame, so a `set` inside a loop does not leak out of it
 * (namespace() exists for that); `if` blocks do not open a scope. A macro
 * sees the frame it was defined in, live (a later top-level `set` is seen).
 */
#include "chat/jinja_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { FLOW_NORMAL = 0, FLOW_BREAK, FLOW_CONTINUE };

void pio_jinja_limits_default(pio_jinja_limits *lim)
{
    lim->max_steps = 50u * 1000 * 1000;
    lim->max_depth = 400;
    lim->max_output = (size_t)64 << 20;
    lim->max_memory = (size_t)512 << 20;
}

_Noreturn void jr_fail_st(jr *r, pio_status st, const jn_node *at, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jn_fail(r->err, st, at ? at->line : 0, at ? at->col : 0, "%s", msg);
}

_Noreturn void jr_fail(jr *r, const jn_node *at, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    jn_fail(r->err, PIO_STATUS_ERR_INVALID_ARG, at ? at->line : 0, at ? at->col : 0, "%s", msg);
}

void jr_step(jr *r, const jn_node *at)
{
    if (++r->steps > r->lim.max_steps)
        jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "template exceeded %llu evaluation steps",
                   (unsigned long long)r->lim.max_steps);
}

void jr_charge(jr *r, const jn_node *at, size_t work)
{
    r->steps += work;
    if (r->steps > r->lim.max_steps)
        jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "template exceeded %llu evaluation steps",
                   (unsigned long long)r->lim.max_steps);
}

static void depth_in(jr *r, const jn_node *at)
{
    if (++r->depth > r->lim.max_depth)
        jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "template recursion deeper than %d levels", r->lim.max_depth);
}

/* ---- frames ------------------------------------------------------------ */

static jframe *frame_new(jr *r, jframe *parent)
{
    jframe *f = jn_alloc(&r->ar, sizeof *f);
    f->parent = parent;
    return f;
}

static jv *frame_find(jframe *f, const char *name)
{
    for (; f; f = f->parent)
        for (size_t i = 0; i < f->n; i++)
            if (!strcmp(f->names[i], name)) return &f->vals[i];
    return NULL;
}

static void frame_set(jr *r, jframe *f, const char *name, jv v)
{
    for (size_t i = 0; i < f->n; i++)
        if (!strcmp(f->names[i], name)) { f->vals[i] = v; return; }
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 8;
        const char **nn = jn_alloc(&r->ar, cap * sizeof *nn);
        jv *nv = jn_alloc(&r->ar, cap * sizeof *nv);
        if (f->n) {
            memcpy(nn, f->names, f->n * sizeof *nn);
            memcpy(nv, f->vals, f->n * sizeof *nv);
        }
        f->names = nn;
        f->vals = nv;
        f->cap = cap;
    }
    f->names[f->n] = name;
    f->vals[f->n] = v;
    f->n++;
}

static const struct { const char *name; int fn; } jr_globals[] = {
    { "range", JFN_RANGE }, { "namespace", JFN_NAMESPACE }, { "raise_exception", JFN_RAISE },
    { "dict", JFN_DICT }, { "strftime_now", JFN_STRFTIME },
};

static jv lookup(jr *r, jframe *f, const char *name)
{
    jv *v = frame_find(f, name);
    if (v) return *v;
    for (size_t i = 0; i < sizeof jr_globals / sizeof jr_globals[0]; i++)
        if (!strcmp(jr_globals[i].name, name)) {
            jv g = { .t = JV_FUNC };
            g.u.fn = jr_globals[i].fn;
            return g;
        }
    char tmp[200];
    snprintf(tmp, sizeof tmp, "'%s' is undefined", name);
    return jv_undef(jn_strndup(&r->ar, tmp, strlen(tmp)));
}

/* ---- expressions ------------------------------------------------------- */

static jv eval(jr *r, jframe *f, const jn_node *n);
static int render(jr *r, jframe *f, jn_node *const *kids, int nkids, jn_buf *out);

static bool is_num(const jv *v) { return v->t == JV_BOOL || v->t == JV_INT || v->t == JV_FLOAT; }
static double num_f(const jv *v) { return v->t == JV_FLOAT ? v->u.f : v->t == JV_INT ? (double)v->u.i : v->u.b; }
static int64_t num_i(const jv *v) { return v->t == JV_INT ? v->u.i : v->t == JV_BOOL ? v->u.b : 0; }

_Noreturn static void fail_undef_or_type(jr *r, const jn_node *at, const char *op, const jv *a, const jv *b)
{
    if (a->t == JV_UNDEF) jr_fail(r, at, "%s", a->u.s ? a->u.s : "undefined value in arithmetic");
    if (b && b->t == JV_UNDEF) jr_fail(r, at, "%s", b->u.s ? b->u.s : "undefined value in arithmetic");
    if (b)
        jr_fail(r, at, "unsupported operand type(s) for %s: '%s' and '%s'", op, jv_type_name(a), jv_type_name(b));
    jr_fail(r, at, "bad operand type for unary %s: '%s'", op, jv_type_name(a));
}

static jv concat_str(jr *r, const jn_node *at, const char *a, size_t na, const char *b, size_t nb)
{
    if (na + nb > r->lim.max_output)
        jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "string longer than the output limit (%zu bytes)", r->lim.max_output);
    char *s = jn_alloc(&r->ar, na + nb + 1);
    if (na) memcpy(s, a, na);
    if (nb) memcpy(s + na, b, nb);
    s[na + nb] = '\0';
    return jv_str(s, na + nb);
}

static jv repeat(jr *r, const jn_node *at, const jv *seq, int64_t k)
{
    if (k < 0) k = 0;
    size_t unit = seq->t == JV_STR ? seq->n : seq->u.l->n * sizeof(jv);
    if (unit && (uint64_t)k > r->lim.max_output / unit)
        jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "repetition larger than the output limit");
    if (seq->t == JV_STR) {
        char *s = jn_alloc(&r->ar, seq->n * (size_t)k + 1);
        for (int64_t i = 0; i < k; i++) memcpy(s + seq->n * (size_t)i, seq->u.s, seq->n);
        return jv_str(s, seq->n * (size_t)k);
    }
    jv l = jv_list(r, seq->u.l->n * (size_t)k);
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq->u.l->n; j++) jv_list_push(r, l.u.l, seq->u.l->v[j]);
    l.tuple = seq->tuple;
    return l;
}

static jv arith(jr *r, const jn_node *at, jn_op op, const jv *a, const jv *b)
{
    static const char *const opname[] = { "", "+", "-", "*", "/", "//", "%", "**" };
    if (is_num(a) && is_num(b)) {
        bool fl = a->t == JV_FLOAT || b->t == JV_FLOAT;
        int64_t x = num_i(a), y = num_i(b), z;
        double fx = num_f(a), fy = num_f(b);
        switch (op) {
        case JOP_ADD:
            if (fl) return jv_float(fx + fy);
            if (__builtin_add_overflow(x, y, &z)) break;
            return jv_int(z);
        case JOP_SUB:
            if (fl) return jv_float(fx - fy);
            if (__builtin_sub_overflow(x, y, &z)) break;
            return jv_int(z);
        case JOP_MUL:
            if (fl) return jv_float(fx * fy);
            if (__builtin_mul_overflow(x, y, &z)) break;
            return jv_int(z);
        case JOP_DIV:
            if (fy == 0.0) jr_fail(r, at, "division by zero");
            return jv_float(fx / fy);
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (fl) {
                if (fy == 0.0) jr_fail(r, at, "float division by zero");
                double m = fmod(fx, fy);
                if (m != 0.0 && ((m < 0) != (fy < 0))) m += fy;
                if (op == JOP_MOD) return jv_float(m);
                return jv_float(floor(fx / fy));
            }
            if (y == 0) jr_fail(r, at, "integer division or modulo by zero");
            if (x == INT64_MIN && y == -1) break;
            {
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) { q--; m += y; }
                return jv_int(op == JOP_MOD ? m : q);
            }
        case JOP_POW:
            if (fl || y < 0) return jv_float(pow(fx, fy));
            {
                int64_t res = 1, base = x;
                for (int64_t e = y; e > 0; e >>= 1) {
                    if ((e & 1) && __builtin_mul_overflow(res, base, &res)) goto overflow;
                    if (e > 1 && __builtin_mul_overflow(base, base, &base)) goto overflow;
                }
                return jv_int(res);
            }
        default:
            break;
        }
    overflow:
        jr_fail(r, at, "integer overflow in '%s' (Python's big integers are not supported)", opname[op]);
    }
    if (op == JOP_ADD && a->t == JV_STR && b->t == JV_STR) return concat_str(r, at, a->u.s, a->n, b->u.s, b->n);
    if (op == JOP_ADD && a->t == JV_LIST && b->t == JV_LIST) {
        if (a->u.l->n + b->u.l->n > r->lim.max_output)
            jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "list longer than the output limit");
        jv l = jv_list(r, a->u.l->n + b->u.l->n);
        for (size_t i = 0; i < a->u.l->n; i++) jv_list_push(r, l.u.l, a->u.l->v[i]);
        for (size_t i = 0; i < b->u.l->n; i++) jv_list_push(r, l.u.l, b->u.l->v[i]);
        return l;
    }
    if (op == JOP_MUL && (a->t == JV_STR || a->t == JV_LIST) && (b->t == JV_INT || b->t == JV_BOOL))
        return repeat(r, at, a, num_i(b));
    if (op == JOP_MUL && (b->t == JV_STR || b->t == JV_LIST) && (a->t == JV_INT || a->t == JV_BOOL))
        return repeat(r, at, b, num_i(a));
    if (op == JOP_MOD && a->t == JV_STR) jr_fail(r, at, "unsupported: %%-formatting of strings");
    fail_undef_or_type(r, at, opname[op], a, b);
}

static bool contains(jr *r, const jn_node *at, const jv *needle, const jv *hay)
{
    jr_charge(r, at, hay->t == JV_STR ? hay->n / 64 : hay->t == JV_LIST ? hay->u.l->n : 0);
    switch ((jv_type)hay->t) {
    case JV_STR:
        if (needle->t != JV_STR)
            jr_fail(r, at, "'in <string>' requires string as left operand, not %s", jv_type_name(needle));
        if (needle->n == 0) return true;
        return hay->n >= needle->n && memmem(hay->u.s, hay->n, needle->u.s, needle->n) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < hay->u.l->n; i++)
            if (jv_equal(needle, &hay->u.l->v[i])) return true;
        return false;
    case JV_DICT: case JV_NS:
        return jv_dict_get(hay->u.d, needle) != NULL;
    case JV_UNDEF:
        return false;
    default:
        jr_fail(r, at, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static jv binop(jr *r, const jn_node *n, const jv *a, const jv *b)
{
    if (n->op >= JOP_EQ && n->op <= JOP_GE)
        jr_charge(r, n, a->t == JV_STR ? a->n / 64 : a->t == JV_LIST ? a->u.l->n : a->t == JV_DICT ? a->u.d->n : 0);
    switch ((jn_op)n->op) {
    case JOP_EQ: return jv_bool(jv_equal(a, b));
    case JOP_NE: return jv_bool(!jv_equal(a, b));
    case JOP_LT: return jv_bool(jv_compare(r, n, a, b) < 0);
    case JOP_LE: return jv_bool(jv_compare(r, n, a, b) <= 0);
    case JOP_GT: return jv_bool(jv_compare(r, n, a, b) > 0);
    case JOP_GE: return jv_bool(jv_compare(r, n, a, b) >= 0);
    case JOP_IN: return jv_bool(contains(r, n, a, b));
    case JOP_NOTIN: return jv_bool(!contains(r, n, a, b));
    default: return arith(r, n, (jn_op)n->op, a, b);
    }
}

/* Python slice bounds for length n, step != 0. */
static void slice_bounds(int64_t n, const jv *a, const jv *b, int64_t step, int64_t *start, int64_t *stop)
{
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    *start = step < 0 ? hi : lo;
    *stop = step < 0 ? lo : hi;
    if (a) {
        int64_t s = num_i(a);
        if (s < 0) { s += n; if (s < lo) s = lo; } else if (s > hi) s = hi;
        *start = s;
    }
    if (b) {
        int64_t s = num_i(b);
        if (s < 0) { s += n; if (s < lo) s = lo; } else if (s > hi) s = hi;
        *stop = s;
    }
}

static jv eval_slice(jr *r, jframe *f, const jn_node *n)
{
    jv obj = eval(r, f, n->a);
    jv parts[3];
    const jv *pp[3] = { NULL, NULL, NULL };
    const jn_node *pn[3] = { n->b, n->c, n->kids[0] };
    for (int k = 0; k < 3; k++) {
        if (!pn[k]) continue;
        parts[k] = eval(r, f, pn[k]);
        if (parts[k].t == JV_NONE) continue;
        if (parts[k].t != JV_INT && parts[k].t != JV_BOOL)
            jr_fail(r, pn[k], "slice indices must be integers or None, not %s", jv_type_name(&parts[k]));
        pp[k] = &parts[k];
    }
    int64_t step = pp[2] ? num_i(pp[2]) : 1;
    if (step == 0) jr_fail(r, n, "slice step cannot be zero");
    if (obj.t == JV_UNDEF) jr_fail(r, n, "%s", obj.u.s ? obj.u.s : "undefined value is not subscriptable");
    const jlist *items;
    if (obj.t == JV_LIST) items = obj.u.l;
    else if (obj.t == JV_STR) items = jv_iter(r, n, &obj);
    else jr_fail(r, n, "'%s' object is not subscriptable with a slice", jv_type_name(&obj));
    int64_t start, stop, len = (int64_t)items->n;
    slice_bounds(len, pp[0], pp[1], step, &start, &stop);
    jv res = jv_list(r, 0);
    jn_buf sb;
    jn_buf_init(&sb, &r->ar, r->lim.max_output);
    for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) {
        if (obj.t == JV_LIST) jv_list_push(r, res.u.l, items->v[i]);
        else jn_buf_put(&sb, items->v[i].u.s, items->v[i].n);
        jr_step(r, n);
    }
    if (obj.t == JV_STR) return jv_str(sb.p ? sb.p : "", sb.n);
    res.tuple = obj.tuple;
    return res;
}

/* Evaluate call arguments into arrays (kw names parallel). */
static jv *eval_args(jr *r, jframe *f, const jn_node *n)
{
    jv *args = jn_alloc(&r->ar, (size_t)(n->nkids ? n->nkids : 1) * sizeof(jv));
    for (int i = 0; i < n->nkids; i++) args[i] = eval(r, f, n->kids[i]);
    return args;
}

static jv call_macro(jr *r, const jn_node *at, const jmacro *m, int nargs, const jv *args,
                     const char *const *names)
{
    const jn_node *def = m->def;
    jframe *fr = frame_new(r, m->scope);
    bool *given = jn_alloc(&r->ar, (size_t)(def->ntargets + 1) * sizeof(bool));
    int npos = 0;
    const char *mname = def->kind == JN_MACRO ? def->name : "caller";
    for (int i = 0; i < nargs; i++) {
        if (!names || !names[i]) {
            if (npos >= def->ntargets)
                jr_fail(r, at, "macro '%s' takes not more than %d argument(s)", mname, def->ntargets);
            frame_set(r, fr, def->targets[npos], args[i]);
            given[npos++] = true;
            continue;
        }
        int k;
        for (k = 0; k < def->ntargets; k++)
            if (!strcmp(def->targets[k], names[i])) break;
        if (k == def->ntargets)
            jr_fail(r, at, "macro '%s' takes no keyword argument '%s'", mname, names[i]);
        frame_set(r, fr, def->targets[k], args[i]);
        given[k] = true;
    }
    for (int k = 0; k < def->ntargets; k++) {
        if (given[k]) continue;
        if (k < def->nkids2 && def->kids2[k]) {
            frame_set(r, fr, def->targets[k], eval(r, fr, def->kids2[k]));
        } else {
            char tmp[200];
            snprintf(tmp, sizeof tmp, "parameter '%s' was not provided", def->targets[k]);
            frame_set(r, fr, def->targets[k], jv_undef(jn_strndup(&r->ar, tmp, strlen(tmp))));
        }
    }
    if (m->caller) {
        jv c = { .t = JV_MACRO };
        c.u.m = (jmacro *)m->caller;
        frame_set(r, fr, "caller", c);
    }
    jn_buf out;
    jn_buf_init(&out, &r->ar, r->lim.max_output);
    depth_in(r, at);
    render(r, fr, def->kids, def->nkids, &out);
    r->depth--;
    return jv_str(out.p ? out.p : "", out.n);
}

static jv call_builtin(jr *r, const jn_node *at, int fn, int nargs, const jv *args, const char *const *names)
{
    switch (fn) {
    case JFN_RANGE: {
        int64_t a = 0, b, step = 1;
        for (int i = 0; i < nargs; i++)
            if ((names && names[i]) || (args[i].t != JV_INT && args[i].t != JV_BOOL))
                jr_fail(r, at, "range() takes integer positional arguments");
        if (nargs == 1) b = num_i(&args[0]);
        else if (nargs == 2 || nargs == 3) {
            a = num_i(&args[0]);
            b = num_i(&args[1]);
            if (nargs == 3) step = num_i(&args[2]);
        } else jr_fail(r, at, "range expected 1 to 3 arguments, got %d", nargs);
        if (step == 0) jr_fail(r, at, "range() arg 3 must not be zero");
        double count = step > 0 ? ceil(((double)b - (double)a) / (double)step)
                                : ceil(((double)a - (double)b) / (double)-step);
        if (count < 0) count = 0;
        if (count > (double)r->lim.max_steps)
            jr_fail_st(r, PIO_STATUS_ERR_LIMIT, at, "range() of %.0f items exceeds the step limit", count);
        jv l = jv_list(r, (size_t)count);
        for (int64_t i = 0, v = a; i < (int64_t)count; i++, v += step) {
            jv_list_push(r, l.u.l, jv_int(v));
            jr_step(r, at);
        }
        return l;
    }
    case JFN_NAMESPACE:
    case JFN_DICT: {
        jv d = jv_dict(r, (size_t)nargs);
        for (int i = 0; i < nargs; i++) {
            if (names && names[i]) {
                jv_dict_set(r, d.u.d, jv_cstr(names[i]), args[i]);
            } else if (args[i].t == JV_DICT || args[i].t == JV_NS) {
                for (size_t k = 0; k < args[i].u.d->n; k++)
                    jv_dict_set(r, d.u.d, args[i].u.d->k[k], args[i].u.d->v[k]);
            } else {
                jr_fail(r, at, "%s() takes a mapping or keyword arguments", fn == JFN_DICT ? "dict" : "namespace");
            }
        }
        if (fn == JFN_NAMESPACE) d.t = JV_NS;
        return d;
    }
    case JFN_RAISE: {
        jn_buf b;
        jn_buf_init(&b, &r->ar, 4096);
        if (nargs > 0) jv_to_str(r, &b, &args[0]);
        jr_fail(r, at, "template raised an exception: %s", b.p ? b.p : "");
    }
    case JFN_STRFTIME: {
        if (nargs != 1 || args[0].t != JV_STR) jr_fail(r, at, "strftime_now(format) takes one string");
        char fmt[256], out[512];
        snprintf(fmt, sizeof fmt, "%.*s", (int)(args[0].n < 255 ? args[0].n : 255), args[0].u.s);
        time_t now = time(NULL);
        struct tm tm;
        localtime_r(&now, &tm);
        size_t k = strftime(out, sizeof out, fmt, &tm);
        return jv_str(jn_strndup(&r->ar, out, k), k);
    }
    }
    jr_fail(r, at, "unknown builtin");
}

jv jr_call(jr *r, const jn_node *at, const jv *fn, int nargs, const jv *args, const char *const *names)
{
    switch ((jv_type)fn->t) {
    case JV_MACRO: return call_macro(r, at, fn->u.m, nargs, args, names);
    case JV_FUNC: return call_builtin(r, at, fn->u.fn, nargs, args, names);
    case JV_METHOD: return jn_method_call(r, at, fn->u.meth, nargs, args, names);
    case JV_UNDEF: jr_fail(r, at, "%s", fn->u.s ? fn->u.s : "undefined value is not callable");
    default: jr_fail(r, at, "'%s' object is not callable", jv_type_name(fn));
    }
}

/* Apply the filter node chain `n` (its innermost operand replaced by `base`). */
static jv apply_filter_chain(jr *r, jframe *f, const jn_node *n, const jv *base)
{
    jv self = n->a ? apply_filter_chain(r, f, n->a, base) : *base;
    jv *args = eval_args(r, f, n);
    jv res;
    n->filter(r, n, &res, &self, n->nkids, args, n->names);
    return res;
}

static jv eval(jr *r, jframe *f, const jn_node *n)
{
    jv res, a, b;
    jr_step(r, n);
    depth_in(r, n);
    switch ((jn_kind)n->kind) {
    case JN_CONST: res = n->cval; break;
    case JN_NAME: res = lookup(r, f, n->name); break;
    case JN_LIST:
    case JN_TUPLE:
        res = jv_list(r, (size_t)n->nkids);
        for (int i = 0; i < n->nkids; i++) jv_list_push(r, res.u.l, eval(r, f, n->kids[i]));
        res.tuple = n->kind == JN_TUPLE;
        break;
    case JN_DICT:
        res = jv_dict(r, (size_t)n->nkids);
        for (int i = 0; i < n->nkids; i++) {
            a = eval(r, f, n->kids[i]);
            if (a.t != JV_STR && !is_num(&a) && a.t != JV_NONE && !(a.t == JV_LIST && a.tuple))
                jr_fail(r, n->kids[i], "unhashable type: '%s'", jv_type_name(&a));
            jv_dict_set(r, res.u.d, a, eval(r, f, n->kids2[i]));
        }
        break;
    case JN_ATTR:
        a = eval(r, f, n->a);
        res = jv_getattr(r, n, &a, n->name);
        break;
    case JN_ITEM:
        a = eval(r, f, n->a);
        b = eval(r, f, n->b);
        res = jv_getitem(r, n, &a, &b);
        break;
    case JN_SLICE: res = eval_slice(r, f, n); break;
    case JN_CALL: {
        jv fn = eval(r, f, n->a);
        jv *args = eval_args(r, f, n);
        res = jr_call(r, n, &fn, n->nkids, args, n->names);
        break;
    }
    case JN_FILTER: {
        a = eval(r, f, n->a);
        jv *args = eval_args(r, f, n);
        n->filter(r, n, &res, &a, n->nkids, args, n->names);
        break;
    }
    case JN_TEST: {
        a = eval(r, f, n->a);
        jv *args = eval_args(r, f, n);
        bool t = n->test(r, n, &a, n->nkids, args);
        res = jv_bool(n->op ? !t : t);
        break;
    }
    case JN_BINOP:
        a = eval(r, f, n->a);
        b = eval(r, f, n->b);
        res = binop(r, n, &a, &b);
        break;
    case JN_NEG:
    case JN_POS:
        a = eval(r, f, n->a);
        if (!is_num(&a)) fail_undef_or_type(r, n, n->kind == JN_NEG ? "-" : "+", &a, NULL);
        if (n->kind == JN_POS) res = a.t == JV_BOOL ? jv_int(a.u.b) : a;
        else if (a.t == JV_FLOAT) res = jv_float(-a.u.f);
        else if (num_i(&a) == INT64_MIN) jr_fail(r, n, "integer overflow in unary '-'");
        else res = jv_int(-num_i(&a));
        break;
    case JN_NOT:
        a = eval(r, f, n->a);
        res = jv_bool(!jv_truthy(&a));
        break;
    case JN_AND:
        a = eval(r, f, n->a);
        res = jv_truthy(&a) ? eval(r, f, n->b) : a;
        break;
    case JN_OR:
        a = eval(r, f, n->a);
        res = jv_truthy(&a) ? a : eval(r, f, n->b);
        break;
    case JN_COND:
        a = eval(r, f, n->a);
        if (jv_truthy(&a)) res = eval(r, f, n->b);
        else if (n->c) res = eval(r, f, n->c);
        else res = jv_undef("the inline if expression was false and has no else section");
        break;
    case JN_CONCAT: {
        a = eval(r, f, n->a);
        b = eval(r, f, n->b);
        jv sa = jv_as_str(r, &a), sb = jv_as_str(r, &b);
        res = concat_str(r, n, sa.u.s, sa.n, sb.u.s, sb.n);
        break;
    }
    default:
        jr_fail(r, n, "statement used as an expression");
    }
    r->depth--;
    return res;
}

/* ---- statements -------------------------------------------------------- */

static void bind_targets(jr *r, jframe *f, const jn_node *n, const jv *item)
{
    if (n->ntargets == 1) {
        frame_set(r, f, n->targets[0], *item);
        return;
    }
    if (item->t != JV_LIST)
        jr_fail(r, n, "cannot unpack a '%s' into %d loop variables", jv_type_name(item), n->ntargets);
    if (item->u.l->n != (size_t)n->ntargets)
        jr_fail(r, n, "expected %d values to unpack, got %zu", n->ntargets, item->u.l->n);
    for (int k = 0; k < n->ntargets; k++) frame_set(r, f, n->targets[k], item->u.l->v[k]);
}

static void render_for(jr *r, jframe *f, const jn_node *n, jn_buf *out)
{
    jv seq = eval(r, f, n->a);
    const jlist *items = jv_iter(r, n->a, &seq);
    if (n->b) {          /* `for x in xs if cond`: filter first, loop.* counts the kept items */
        jv kept = jv_list(r, 0);
        for (size_t i = 0; i < items->n; i++) {
            jframe *fr = frame_new(r, f);
            bind_targets(r, fr, n, &items->v[i]);
            jv c = eval(r, fr, n->b);
            if (jv_truthy(&c)) jv_list_push(r, kept.u.l, items->v[i]);
        }
        items = kept.u.l;
    }
    if (items->n == 0) {
        render(r, f, n->kids2, n->nkids2, out);
        return;
    }
    jloop *L = jn_alloc(&r->ar, sizeof *L);
    L->items = items;
    L->depth = 1;       /* depth counts recursive-loop levels only; those are refused */
    jv lv = { .t = JV_LOOP };
    lv.u.loop = L;
    for (size_t i = 0; i < items->n; i++) {
        jr_step(r, n);
        L->i = i;
        jframe *fr = frame_new(r, f);
        bind_targets(r, fr, n, &items->v[i]);
        frame_set(r, fr, "loop", lv);
        if (render(r, fr, n->kids, n->nkids, out) == FLOW_BREAK) break;
    }
}

static int render_node(jr *r, jframe *f, const jn_node *n, jn_buf *out)
{
    jv v;
    switch ((jn_kind)n->kind) {
    case JN_TEXT:
        jn_buf_put(out, n->cval.u.s, n->cval.n);
        return FLOW_NORMAL;
    case JN_OUTPUT:
        v = eval(r, f, n->a);
        jv_to_str(r, out, &v);
        return FLOW_NORMAL;
    case JN_IF:
        v = eval(r, f, n->a);
        if (jv_truthy(&v)) return render(r, f, n->kids, n->nkids, out);
        return render(r, f, n->kids2, n->nkids2, out);
    case JN_FOR:
        render_for(r, f, n, out);
        return FLOW_NORMAL;
    case JN_SET:
    case JN_SET_BLOCK:
        if (n->kind == JN_SET) {
            v = eval(r, f, n->b);
        } else {
            jn_buf cap;
            jn_buf_init(&cap, &r->ar, r->lim.max_output);
            render(r, f, n->kids, n->nkids, &cap);
            v = jv_str(cap.p ? cap.p : "", cap.n);
            if (n->b) v = apply_filter_chain(r, f, n->b, &v);
        }
        if (n->attr) {
            jv *ns = frame_find(f, n->name);
            if (!ns || ns->t != JV_NS)
                jr_fail(r, n, "cannot assign attribute '%s' on '%s': not a namespace", n->attr, n->name);
            jv_dict_set(r, ns->u.d, jv_cstr(n->attr), v);
        } else {
            frame_set(r, f, n->name, v);
        }
        return FLOW_NORMAL;
    case JN_MACRO: {
        jmacro *m = jn_alloc(&r->ar, sizeof *m);
        m->def = n;
        m->scope = f;
        v.t = JV_MACRO;
        v.u.m = m;
        frame_set(r, f, n->name, v);
        return FLOW_NORMAL;
    }
    case JN_CALL_BLOCK: {
        const jn_node *call = n->a;
        jv fn = eval(r, f, call->a);
        if (fn.t != JV_MACRO) jr_fail(r, n, "{%% call %%} needs a macro, got '%s'", jv_type_name(&fn));
        jmacro *caller = jn_alloc(&r->ar, sizeof *caller), *m = jn_alloc(&r->ar, sizeof *m);
        caller->def = n;
        caller->scope = f;
        *m = *fn.u.m;
        m->caller = caller;
        jv *args = eval_args(r, f, call);
        v = call_macro(r, n, m, call->nkids, args, call->names);
        jn_buf_put(out, v.u.s, v.n);
        return FLOW_NORMAL;
    }
    case JN_FILTER_BLOCK: {
        jn_buf cap;
        jn_buf_init(&cap, &r->ar, r->lim.max_output);
        render(r, f, n->kids, n->nkids, &cap);
        v = jv_str(cap.p ? cap.p : "", cap.n);
        v = apply_filter_chain(r, f, n->b, &v);
        jv_to_str(r, out, &v);
        return FLOW_NORMAL;
    }
    case JN_BREAK: return FLOW_BREAK;
    case JN_CONTINUE: return FLOW_CONTINUE;
    case JN_BODY: return render(r, f, n->kids, n->nkids, out);
    default:
        jr_fail(r, n, "expression used as a statement");
    }
}

static int render(jr *r, jframe *f, jn_node *const *kids, int nkids, jn_buf *out)
{
    int flow = FLOW_NORMAL;
    depth_in(r, nkids ? kids[0] : NULL);
    for (int i = 0; i < nkids && flow == FLOW_NORMAL; i++) {
        jr_step(r, kids[i]);
        flow = render_node(r, f, kids[i], out);
    }
    r->depth--;
    return flow;
}

/* ---- runtime filter/test by name (map, select, ...) --------------------- */

jv jr_apply_filter_name(jr *r, const jn_node *at, const char *name, const jv *self, int nargs, const jv *args)
{
    jn_filter_fn fn = jn_filter_lookup(name);
    if (!fn) jr_fail(r, at, "no filter named '%s'", name);
    jv res;
    fn(r, at, &res, self, nargs, args, NULL);
    return res;
}

bool jr_apply_test_name(jr *r, const jn_node *at, const char *name, const jv *v, int nargs, const jv *args)
{
    jn_test_fn fn = jn_test_lookup(name);
    if (!fn) jr_fail(r, at, "no test named '%s'", name);
    return fn(r, at, v, nargs, args);
}

/* ---- entry points ------------------------------------------------------ */

pio_status pio_jinja_parse(const char *src, size_t len, const char *name, pio_jinja **out)
{
    pio_jinja *t = calloc(1, sizeof *t);
    *out = NULL;
    if (!t) return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    snprintf(t->name, sizeof t->name, "%s", name ? name : "template");
    t->err.name = t->name;
    jn_arena_init(&t->ar, (size_t)256 << 20, &t->err);
    if (setjmp(t->err.jb)) {
        pio_status st = t->err.st;
        pio_error(st, "%s", t->err.msg);
        jn_arena_free(&t->ar);
        free(t);
        return st;
    }
    jn_tok *toks;
    size_t ntoks;
    jn_lex(&t->ar, src, len, &toks, &ntoks);
    t->root = jn_parse(&t->ar, toks, ntoks);
    *out = t;
    return PIO_STATUS_OK;
}

pio_status pio_jinja_render(const pio_jinja *t, const cJSON *ctx, const pio_jinja_limits *lim,
                            char **out, size_t *out_len)
{
    /* on the heap: the state must survive longjmp with defined values */
    struct { jn_err err; jr r; } *s;
    pio_status st;
    *out = NULL;
    if (out_len) *out_len = 0;
    if (ctx && !cJSON_IsObject(ctx))
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "%s: the render context must be a JSON object", t->name);
    s = calloc(1, sizeof *s);
    if (!s) return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
    s->err.name = t->name;
    s->r.err = &s->err;
    if (lim) s->r.lim = *lim;
    else pio_jinja_limits_default(&s->r.lim);
    jn_arena_init(&s->r.ar, s->r.lim.max_memory, &s->err);
    if (setjmp(s->err.jb)) {
        st = pio_error(s->err.st, "%s", s->err.msg);
        goto free_state;
    }
    jv_current_render = &s->r;
    st = PIO_STATUS_OK;
    jr *r = &s->r;
    jframe *globals = frame_new(r, NULL);
    for (const cJSON *c = ctx ? ctx->child : NULL; c; c = c->next) {
        const char *k = c->string ? c->string : "";
        frame_set(r, globals, jn_strndup(&r->ar, k, strlen(k)), jv_from_cjson(r, c, 0));
    }
    r->top = frame_new(r, globals);
    jn_buf buf;
    jn_buf_init(&buf, &r->ar, r->lim.max_output);
    render(r, r->top, t->root->kids, t->root->nkids, &buf);
    *out = malloc(buf.n + 1);
    if (!*out) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
        goto free_state;
    }
    if (buf.n) memcpy(*out, buf.p, buf.n);
    (*out)[buf.n] = '\0';
    if (out_len) *out_len = buf.n;
free_state:
    jv_current_render = NULL;
    jn_arena_free(&s->r.ar);
    free(s);
    return st;
}

void pio_jinja_free(pio_jinja *t)
{
    if (!t) return;
    jn_arena_free(&t->ar);
    free(t);
}
