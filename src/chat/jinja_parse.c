/*
 * jinja_parse.c - recursive-descent parser from tokens to the syntax tree,
 * following Jinja2's grammar and operator precedence (jinja2/parser.py):
 *   condexpr:  or ['if' or ['else' condexpr]]
 *   or / and / not / compare (== != < <= > >= in, not in)
 *   math1 (+ -)  >  concat (~)  >  math2 (* / // %)  >  pow (**)
 *   unary (- +)  >  primary + postfix (.name, [sub], (call))  >  filters (| f, is test)
 * Statements: if/elif/else, for (targets, `if` filter, else), set (plain,
 * ns.attr, block), macro, call, filter, break/continue, generation.
 * Unknown tags, filters and tests fail here with line and column.
 * Nesting is capped (JN_MAX_NEST) so hostile input cannot overflow the stack.
 */
#include "chat/jinja_int.h"

#include <stdio.h>
#include <string.h>

#define JN_MAX_NEST 100

typedef struct parser {
    jn_arena *ar;
    const jn_tok *t;
    size_t n, i;
    int nest;
} parser;

static const jn_tok *cur(parser *P) { return &P->t[P->i]; }
static const jn_tok *peek(parser *P, size_t k) { return &P->t[P->i + k < P->n ? P->i + k : P->n - 1]; }
static void advance(parser *P) { if (P->i + 1 < P->n) P->i++; }

_Noreturn static void perr(parser *P, const jn_tok *t, const char *fmt, const char *arg)
{
    jn_fail(P->ar->err, PIO_STATUS_ERR_FORMAT, t->line, t->col, fmt, arg);
}

static const char *tok_desc(const jn_tok *t)
{
    switch (t->type) {
    case JT_EOF: return "end of template";
    case JT_TEXT: return "text";
    case JT_VAR_BEGIN: return "'{{'";
    case JT_VAR_END: return "'}}'";
    case JT_BLOCK_BEGIN: return "'{%'";
    case JT_BLOCK_END: return "'%}'";
    case JT_NAME: return t->s;
    case JT_STRING: return "string literal";
    case JT_INT: case JT_FLOAT: return "number";
    case JT_OP: return t->n == 2 ? (t->s[0] == '/' ? "//" : t->s[0] == '*' ? "**" : t->s[0] == '=' ? "==" :
                                    t->s[0] == '!' ? "!=" : t->s[0] == '<' ? "<=" : ">=") : "operator";
    }
    return "token";
}

static bool is_op(const jn_tok *t, const char *op)
{
    size_t n = strlen(op);
    return t->type == JT_OP && t->n == n && memcmp(t->s, op, n) == 0;
}

static bool is_name(const jn_tok *t, const char *name)
{
    return t->type == JT_NAME && strcmp(t->s, name) == 0;
}

static void expect_op(parser *P, const char *op)
{
    if (!is_op(cur(P), op)) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected '%s', got %%s", op);
        perr(P, cur(P), msg, tok_desc(cur(P)));
    }
    advance(P);
}

static const char *expect_name(parser *P)
{
    if (cur(P)->type != JT_NAME) perr(P, cur(P), "expected a name, got %s", tok_desc(cur(P)));
    const char *s = cur(P)->s;
    advance(P);
    return s;
}

static jn_node *mk(parser *P, jn_kind kind, const jn_tok *at)
{
    jn_node *n = jn_alloc(P->ar, sizeof *n);
    n->kind = (uint8_t)kind;
    n->line = at->line;
    n->col = at->col;
    return n;
}

/* Growable node list (arena); names parallel when kw != NULL. */
typedef struct nlist { jn_node **v; const char **names; int n, cap; } nlist;

static void nl_push(parser *P, nlist *l, jn_node *x, const char *name)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 4;
        jn_node **v = jn_alloc(P->ar, (size_t)cap * sizeof *v);
        const char **nm = jn_alloc(P->ar, (size_t)cap * sizeof *nm);
        if (l->n) {
            memcpy(v, l->v, (size_t)l->n * sizeof *v);
            memcpy(nm, l->names, (size_t)l->n * sizeof *nm);
        }
        l->v = v;
        l->names = nm;
        l->cap = cap;
    }
    l->v[l->n] = x;
    l->names[l->n] = name;
    l->n++;
}

static void enter(parser *P)
{
    if (++P->nest > JN_MAX_NEST)
        jn_fail(P->ar->err, PIO_STATUS_ERR_LIMIT, cur(P)->line, cur(P)->col,
                "nesting deeper than %d levels", JN_MAX_NEST);
}

static jn_node *parse_expr(parser *P);
static jn_node *parse_or(parser *P);
static jn_node *parse_unary(parser *P, bool with_filter);
static jn_node *parse_primary(parser *P);
static jn_node *parse_postfix(parser *P, jn_node *n);

/* Arguments of a call `(a, b, k=v)`; the '(' is current. */
static void parse_args(parser *P, jn_node *n)
{
    nlist l = { 0 };
    expect_op(P, "(");
    while (!is_op(cur(P), ")")) {
        if (l.n) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;      /* trailing comma */
        if (is_op(cur(P), "*") || is_op(cur(P), "**"))
            perr(P, cur(P), "unsupported: %s arguments", "*args/**kwargs");
        const char *kw = NULL;
        if (cur(P)->type == JT_NAME && is_op(peek(P, 1), "=")) {
            kw = cur(P)->s;
            advance(P);
            advance(P);
        } else if (l.n && l.names[l.n - 1]) {
            perr(P, cur(P), "positional argument after keyword argument%s", "");
        }
        nl_push(P, &l, parse_expr(P), kw);
    }
    advance(P);
    n->kids = l.v;
    n->names = l.names;
    n->nkids = l.n;
}

/* `expr` or a bare tuple `a, b` (set values, for iterables, print). */
static jn_node *parse_tuple(parser *P, bool with_cond)
{
    const jn_tok *at = cur(P);
    jn_node *first = with_cond ? parse_expr(P) : parse_or(P);
    if (!is_op(cur(P), ",")) return first;
    nlist l = { 0 };
    nl_push(P, &l, first, NULL);
    while (is_op(cur(P), ",")) {
        advance(P);
        if (cur(P)->type == JT_BLOCK_END || cur(P)->type == JT_VAR_END || is_name(cur(P), "if")) break;
        nl_push(P, &l, with_cond ? parse_expr(P) : parse_or(P), NULL);
    }
    jn_node *t = mk(P, JN_TUPLE, at);
    t->kids = l.v;
    t->nkids = l.n;
    return t;
}

static jn_node *parse_primary(parser *P)
{
    const jn_tok *t = cur(P);
    jn_node *n;
    enter(P);
    switch (t->type) {
    case JT_NAME:
        n = mk(P, JN_CONST, t);
        if (!strcmp(t->s, "true") || !strcmp(t->s, "True")) n->cval = jv_bool(true);
        else if (!strcmp(t->s, "false") || !strcmp(t->s, "False")) n->cval = jv_bool(false);
        else if (!strcmp(t->s, "none") || !strcmp(t->s, "None")) n->cval = jv_none();
        else { n->kind = JN_NAME; n->name = t->s; }
        advance(P);
        break;
    case JT_STRING: {
        /* adjacent literals concatenate */
        size_t total = 0, k = 0;
        while (peek(P, k)->type == JT_STRING) total += peek(P, k++)->n;
        char *s = jn_alloc(P->ar, total + 1);
        size_t o = 0;
        while (cur(P)->type == JT_STRING) {
            memcpy(s + o, cur(P)->s, cur(P)->n);
            o += cur(P)->n;
            advance(P);
        }
        n = mk(P, JN_CONST, t);
        n->cval = jv_str(s, total);
        break;
    }
    case JT_INT:
        n = mk(P, JN_CONST, t);
        n->cval = jv_int(t->i);
        advance(P);
        break;
    case JT_FLOAT:
        n = mk(P, JN_CONST, t);
        n->cval = jv_float(t->f);
        advance(P);
        break;
    case JT_OP:
        if (is_op(t, "(")) {
            advance(P);
            if (is_op(cur(P), ")")) {          /* () is the empty tuple */
                advance(P);
                n = mk(P, JN_TUPLE, t);
                break;
            }
            n = parse_expr(P);
            if (is_op(cur(P), ",")) {
                nlist l = { 0 };
                nl_push(P, &l, n, NULL);
                while (is_op(cur(P), ",")) {
                    advance(P);
                    if (is_op(cur(P), ")")) break;
                    nl_push(P, &l, parse_expr(P), NULL);
                }
                n = mk(P, JN_TUPLE, t);
                n->kids = l.v;
                n->nkids = l.n;
            }
            expect_op(P, ")");
            break;
        }
        if (is_op(t, "[")) {
            nlist l = { 0 };
            advance(P);
            while (!is_op(cur(P), "]")) {
                if (l.n) expect_op(P, ",");
                if (is_op(cur(P), "]")) break;
                nl_push(P, &l, parse_expr(P), NULL);
            }
            advance(P);
            n = mk(P, JN_LIST, t);
            n->kids = l.v;
            n->nkids = l.n;
            break;
        }
        if (is_op(t, "{")) {
            nlist k = { 0 }, v = { 0 };
            advance(P);
            while (!is_op(cur(P), "}")) {
                if (k.n) expect_op(P, ",");
                if (is_op(cur(P), "}")) break;
                nl_push(P, &k, parse_expr(P), NULL);
                expect_op(P, ":");
                nl_push(P, &v, parse_expr(P), NULL);
            }
            advance(P);
            n = mk(P, JN_DICT, t);
            n->kids = k.v;
            n->nkids = k.n;
            n->kids2 = v.v;
            n->nkids2 = v.n;
            break;
        }
        /* fall through */
    default:
        perr(P, t, "unexpected %s in expression", tok_desc(t));
    }
    P->nest--;
    return n;
}

/* `[` subscript: an index or a slice a:b:c (any part may be missing). */
static jn_node *parse_subscript(parser *P, jn_node *obj)
{
    const jn_tok *at = cur(P);
    jn_node *parts[3] = { NULL, NULL, NULL };
    int np = 0;
    bool slice = false;
    advance(P);
    for (;;) {
        if (is_op(cur(P), ":")) {
            slice = true;
            if (++np > 2) perr(P, cur(P), "too many ':' in slice%s", "");
            advance(P);
            continue;
        }
        if (is_op(cur(P), "]")) break;
        if (parts[np]) perr(P, cur(P), "expected ']' or ':', got %s", tok_desc(cur(P)));
        parts[np] = parse_expr(P);
    }
    advance(P);
    jn_node *n = mk(P, slice ? JN_SLICE : JN_ITEM, at);
    n->a = obj;
    if (slice) {
        n->b = parts[0];
        n->c = parts[1];
        n->kids = jn_alloc(P->ar, sizeof(jn_node *));
        n->kids[0] = parts[2];
        n->nkids = 1;
    } else {
        if (!parts[0]) perr(P, at, "empty subscript%s", "");
        n->b = parts[0];
    }
    return n;
}

static jn_node *parse_postfix(parser *P, jn_node *n)
{
    for (;;) {
        const jn_tok *t = cur(P);
        if (is_op(t, ".")) {
            advance(P);
            jn_node *a;
            if (cur(P)->type == JT_NAME) {
                a = mk(P, JN_ATTR, t);
                a->name = cur(P)->s;
            } else if (cur(P)->type == JT_INT) {
                a = mk(P, JN_ITEM, t);
                a->b = mk(P, JN_CONST, cur(P));
                a->b->cval = jv_int(cur(P)->i);
            } else {
                perr(P, cur(P), "expected an attribute name after '.', got %s", tok_desc(cur(P)));
            }
            advance(P);
            a->a = n;
            n = a;
        } else if (is_op(t, "[")) {
            n = parse_subscript(P, n);
        } else if (is_op(t, "(")) {
            jn_node *c = mk(P, JN_CALL, t);
            c->a = n;
            parse_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jn_node *parse_filter(parser *P, jn_node *n)
{
    const jn_tok *t = cur(P);
    const char *name = expect_name(P);
    jn_node *f = mk(P, JN_FILTER, t);
    f->name = name;
    f->a = n;
    f->filter = jn_filter_lookup(name);
    if (!f->filter) perr(P, t, "unsupported filter '%s'", name);
    if (is_op(cur(P), "(")) parse_args(P, f);
    return f;
}

static jn_node *parse_filter_expr(parser *P, jn_node *n)
{
    for (;;) {
        const jn_tok *t = cur(P);
        if (is_op(t, "|")) {
            advance(P);
            n = parse_filter(P, n);
        } else if (is_name(t, "is")) {
            advance(P);
            jn_node *x = mk(P, JN_TEST, t);
            if (is_name(cur(P), "not")) {
                x->op = 1;
                advance(P);
            }
            const jn_tok *nt = cur(P);
            x->name = expect_name(P);
            /* `none`, `true`, `false` are names here */
            x->test = jn_test_lookup(x->name);
            if (!x->test) perr(P, nt, "unsupported test '%s'", x->name);
            x->a = n;
            const jn_tok *c = cur(P);
            if (is_op(c, "(")) {
                parse_args(P, x);
            } else if ((c->type == JT_NAME || c->type == JT_STRING || c->type == JT_INT || c->type == JT_FLOAT ||
                        is_op(c, "[") || is_op(c, "{")) &&
                       !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
                jn_node *arg = parse_postfix(P, parse_primary(P));
                x->kids = jn_alloc(P->ar, sizeof(jn_node *));
                x->names = jn_alloc(P->ar, sizeof(const char *));
                x->kids[0] = arg;
                x->nkids = 1;
            }
            n = x;
        } else if (is_op(t, "(")) {
            jn_node *c = mk(P, JN_CALL, t);
            c->a = n;
            parse_args(P, c);
            n = c;
        } else {
            return n;
        }
    }
}

static jn_node *parse_unary(parser *P, bool with_filter)
{
    const jn_tok *t = cur(P);
    jn_node *n;
    enter(P);
    if (is_op(t, "-") || is_op(t, "+")) {
        advance(P);
        n = mk(P, t->s[0] == '-' ? JN_NEG : JN_POS, t);
        n->a = parse_unary(P, false);
    } else {
        n = parse_postfix(P, parse_primary(P));
    }
    if (with_filter) n = parse_filter_expr(P, n);
    P->nest--;
    return n;
}

static jn_node *binop(parser *P, const jn_tok *at, jn_op op, jn_node *a, jn_node *b)
{
    jn_node *n = mk(P, JN_BINOP, at);
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static jn_node *parse_pow(parser *P)
{
    jn_node *n = parse_unary(P, true);
    while (is_op(cur(P), "**")) {
        const jn_tok *t = cur(P);
        advance(P);
        n = binop(P, t, JOP_POW, n, parse_unary(P, true));
    }
    return n;
}

static jn_node *parse_math2(parser *P)
{
    jn_node *n = parse_pow(P);
    for (;;) {
        const jn_tok *t = cur(P);
        jn_op op = is_op(t, "*") ? JOP_MUL : is_op(t, "/") ? JOP_DIV : is_op(t, "//") ? JOP_FLOORDIV :
                   is_op(t, "%") ? JOP_MOD : 0;
        if (!op) return n;
        advance(P);
        n = binop(P, t, op, n, parse_pow(P));
    }
}

static jn_node *parse_concat(parser *P)
{
    jn_node *n = parse_math2(P);
    while (is_op(cur(P), "~")) {
        const jn_tok *t = cur(P);
        advance(P);
        jn_node *c = mk(P, JN_CONCAT, t);
        c->a = n;
        c->b = parse_math2(P);
        n = c;
    }
    return n;
}

static jn_node *parse_math1(parser *P)
{
    jn_node *n = parse_concat(P);
    for (;;) {
        const jn_tok *t = cur(P);
        jn_op op = is_op(t, "+") ? JOP_ADD : is_op(t, "-") ? JOP_SUB : 0;
        if (!op) return n;
        advance(P);
        n = binop(P, t, op, n, parse_concat(P));
    }
}

/* Chains `a < b < c` become `a < b and b < c` (b is evaluated twice). */
static jn_node *parse_compare(parser *P)
{
    jn_node *n = parse_math1(P), *chain = NULL, *prev = n;
    for (;;) {
        const jn_tok *t = cur(P);
        jn_op op = is_op(t, "==") ? JOP_EQ : is_op(t, "!=") ? JOP_NE : is_op(t, "<") ? JOP_LT :
                   is_op(t, "<=") ? JOP_LE : is_op(t, ">") ? JOP_GT : is_op(t, ">=") ? JOP_GE :
                   is_name(t, "in") ? JOP_IN : 0;
        if (!op && is_name(t, "not") && is_name(peek(P, 1), "in")) {
            op = JOP_NOTIN;
            advance(P);
        }
        if (!op) break;
        advance(P);
        jn_node *rhs = parse_math1(P);
        jn_node *cmp = binop(P, t, op, prev, rhs);
        if (!chain) {
            chain = cmp;
        } else {
            jn_node *a = mk(P, JN_AND, t);
            a->a = chain;
            a->b = cmp;
            chain = a;
        }
        prev = rhs;
    }
    return chain ? chain : n;
}

static jn_node *parse_not(parser *P)
{
    if (is_name(cur(P), "not")) {
        const jn_tok *t = cur(P);
        advance(P);
        enter(P);
        jn_node *n = mk(P, JN_NOT, t);
        n->a = parse_not(P);
        P->nest--;
        return n;
    }
    return parse_compare(P);
}

static jn_node *parse_and(parser *P)
{
    jn_node *n = parse_not(P);
    while (is_name(cur(P), "and")) {
        const jn_tok *t = cur(P);
        advance(P);
        jn_node *a = mk(P, JN_AND, t);
        a->a = n;
        a->b = parse_not(P);
        n = a;
    }
    return n;
}

static jn_node *parse_or(parser *P)
{
    jn_node *n = parse_and(P);
    while (is_name(cur(P), "or")) {
        const jn_tok *t = cur(P);
        advance(P);
        jn_node *o = mk(P, JN_OR, t);
        o->a = n;
        o->b = parse_and(P);
        n = o;
    }
    return n;
}

static jn_node *parse_expr(parser *P)
{
    enter(P);
    jn_node *n = parse_or(P);
    while (is_name(cur(P), "if")) {
        const jn_tok *t = cur(P);
        advance(P);
        jn_node *c = mk(P, JN_COND, t);
        c->b = n;
        c->a = parse_or(P);
        if (is_name(cur(P), "else")) {
            advance(P);
            c->c = parse_expr(P);
        }
        n = c;
    }
    P->nest--;
    return n;
}

/* ---- statements -------------------------------------------------------- */

static void expect_block_end(parser *P)
{
    if (cur(P)->type != JT_BLOCK_END) perr(P, cur(P), "expected '%%}', got %s", tok_desc(cur(P)));
    advance(P);
}

/*
 * Parse statements until a `{% name %}` whose name is in `ends` (a
 * NULL-terminated list); leaves the parser on that name and returns it.
 * ends == NULL: parse to the end of the template.
 */
static const char *parse_body(parser *P, jn_node *body, const char *const *ends, const jn_tok *opener);

static void parse_body_into(parser *P, jn_node ***kids, int *nkids, const char *const *ends,
                            const char **ended, const jn_tok *opener)
{
    jn_node tmp = { 0 };
    *ended = parse_body(P, &tmp, ends, opener);
    *kids = tmp.kids;
    *nkids = tmp.nkids;
}

static const char *const end_if[] = { "elif", "else", "endif", NULL };
static const char *const end_for[] = { "else", "endfor", NULL };
static const char *const end_endfor[] = { "endfor", NULL };

static jn_node *parse_if(parser *P, const jn_tok *at)
{
    jn_node *n = mk(P, JN_IF, at);
    const char *ended;
    n->a = parse_tuple(P, true);
    expect_block_end(P);
    parse_body_into(P, &n->kids, &n->nkids, end_if, &ended, at);
    const jn_tok *t = cur(P);
    advance(P);
    if (!strcmp(ended, "elif")) {
        jn_node *e = parse_if(P, t);     /* consumes up to and including endif */
        n->kids2 = jn_alloc(P->ar, sizeof(jn_node *));
        n->kids2[0] = e;
        n->nkids2 = 1;
        return n;
    }
    if (!strcmp(ended, "else")) {
        static const char *const end_else[] = { "endif", NULL };
        expect_block_end(P);
        parse_body_into(P, &n->kids2, &n->nkids2, end_else, &ended, at);
        advance(P);
    }
    expect_block_end(P);
    return n;
}

static jn_node *parse_for(parser *P, const jn_tok *at)
{
    jn_node *n = mk(P, JN_FOR, at);
    const char *ended;
    const char **targets = jn_alloc(P->ar, 8 * sizeof *targets);
    bool paren = false;
    if (is_op(cur(P), "(")) { paren = true; advance(P); }
    for (;;) {
        if (n->ntargets == 8) perr(P, cur(P), "too many loop targets%s", "");
        targets[n->ntargets++] = expect_name(P);
        if (!is_op(cur(P), ",")) break;
        advance(P);
        if (paren && is_op(cur(P), ")")) break;
    }
    if (paren) expect_op(P, ")");
    n->targets = targets;
    if (!is_name(cur(P), "in")) perr(P, cur(P), "expected 'in' in for loop, got %s", tok_desc(cur(P)));
    advance(P);
    n->a = parse_tuple(P, false);
    if (is_name(cur(P), "if")) {
        advance(P);
        n->b = parse_expr(P);
    }
    if (is_name(cur(P), "recursive")) perr(P, cur(P), "unsupported: %s loops", "recursive");
    expect_block_end(P);
    parse_body_into(P, &n->kids, &n->nkids, end_for, &ended, at);
    advance(P);
    if (!strcmp(ended, "else")) {
        expect_block_end(P);
        parse_body_into(P, &n->kids2, &n->nkids2, end_endfor, &ended, at);
        advance(P);
    }
    expect_block_end(P);
    return n;
}

static jn_node *parse_set(parser *P, const jn_tok *at)
{
    const char *name = expect_name(P);
    const char *attr = NULL;
    if (is_op(cur(P), ".")) {
        advance(P);
        attr = expect_name(P);
    }
    if (is_op(cur(P), ",")) perr(P, cur(P), "unsupported: %s", "tuple assignment in set");
    if (is_op(cur(P), "=")) {
        advance(P);
        jn_node *n = mk(P, JN_SET, at);
        n->name = name;
        n->attr = attr;
        n->b = parse_tuple(P, true);
        expect_block_end(P);
        return n;
    }
    static const char *const end_set[] = { "endset", NULL };
    jn_node *n = mk(P, JN_SET_BLOCK, at);
    const char *ended;
    n->name = name;
    n->attr = attr;
    if (is_op(cur(P), "|")) {                 /* {% set x | filter %} */
        advance(P);
        n->b = parse_filter(P, NULL);
    }
    expect_block_end(P);
    parse_body_into(P, &n->kids, &n->nkids, end_set, &ended, at);
    advance(P);
    expect_block_end(P);
    return n;
}

/* `(a, b=default, ...)` of a macro or call block. */
static void parse_params(parser *P, jn_node *n)
{
    nlist defs = { 0 };
    const char **names = NULL;
    int cap = 0;
    expect_op(P, "(");
    while (!is_op(cur(P), ")")) {
        if (n->ntargets) expect_op(P, ",");
        if (is_op(cur(P), ")")) break;
        if (n->ntargets == cap) {
            cap = cap ? cap * 2 : 4;
            const char **nn = jn_alloc(P->ar, (size_t)cap * sizeof *nn);
            if (n->ntargets) memcpy(nn, names, (size_t)n->ntargets * sizeof *nn);
            names = nn;
        }
        names[n->ntargets++] = expect_name(P);
        jn_node *d = NULL;
        if (is_op(cur(P), "=")) {
            advance(P);
            d = parse_expr(P);
        }
        nl_push(P, &defs, d, NULL);
    }
    advance(P);
    n->targets = names;
    n->kids2 = defs.v;
    n->nkids2 = defs.n;
}

static jn_node *parse_statement(parser *P)
{
    const jn_tok *at = cur(P);      /* BLOCK_BEGIN */
    advance(P);
    const jn_tok *t = cur(P);
    if (t->type != JT_NAME) perr(P, t, "expected a statement name, got %s", tok_desc(t));
    const char *kw = t->s;
    advance(P);
    (void)at;
    if (!strcmp(kw, "if")) return parse_if(P, t);
    if (!strcmp(kw, "for")) return parse_for(P, t);
    if (!strcmp(kw, "set")) return parse_set(P, t);
    if (!strcmp(kw, "break") || !strcmp(kw, "continue")) {
        jn_node *n = mk(P, kw[0] == 'b' ? JN_BREAK : JN_CONTINUE, t);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "macro")) {
        static const char *const end_macro[] = { "endmacro", NULL };
        jn_node *n = mk(P, JN_MACRO, t);
        const char *ended;
        n->name = expect_name(P);
        parse_params(P, n);
        expect_block_end(P);
        parse_body_into(P, &n->kids, &n->nkids, end_macro, &ended, t);
        advance(P);
        if (cur(P)->type == JT_NAME) advance(P);   /* {% endmacro name %} */
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "call")) {
        static const char *const end_call[] = { "endcall", NULL };
        jn_node *n = mk(P, JN_CALL_BLOCK, t);
        const char *ended;
        if (is_op(cur(P), "(")) parse_params(P, n);
        n->a = parse_expr(P);
        if (n->a->kind != JN_CALL) perr(P, t, "expected a call in %s", "{% call %}");
        expect_block_end(P);
        parse_body_into(P, &n->kids, &n->nkids, end_call, &ended, t);
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "filter")) {
        static const char *const end_filter[] = { "endfilter", NULL };
        jn_node *n = mk(P, JN_FILTER_BLOCK, t);
        const char *ended;
        n->b = parse_filter(P, NULL);
        while (is_op(cur(P), "|")) {
            advance(P);
            n->b = parse_filter(P, n->b);
        }
        expect_block_end(P);
        parse_body_into(P, &n->kids, &n->nkids, end_filter, &ended, t);
        advance(P);
        expect_block_end(P);
        return n;
    }
    if (!strcmp(kw, "generation")) {        /* transformers' AssistantTracker: renders its body */
        static const char *const end_gen[] = { "endgeneration", NULL };
        jn_node *n = mk(P, JN_BODY, t);
        const char *ended;
        expect_block_end(P);
        parse_body_into(P, &n->kids, &n->nkids, end_gen, &ended, t);
        advance(P);
        expect_block_end(P);
        return n;
    }
    perr(P, t, "unsupported or unexpected tag '%s'", kw);
}

static const char *parse_body(parser *P, jn_node *body, const char *const *ends, const jn_tok *opener)
{
    nlist l = { 0 };
    const char *ended = NULL;
    enter(P);
    for (;;) {
        const jn_tok *t = cur(P);
        if (t->type == JT_EOF) {
            if (ends) {
                char msg[96];
                snprintf(msg, sizeof msg, "unexpected end of template: '%s' opened here is not closed", opener->s);
                jn_fail(P->ar->err, PIO_STATUS_ERR_FORMAT, opener->line, opener->col, "%s", msg);
            }
            break;
        }
        if (t->type == JT_TEXT) {
            jn_node *n = mk(P, JN_TEXT, t);
            n->cval = jv_str(t->s, t->n);
            nl_push(P, &l, n, NULL);
            advance(P);
            continue;
        }
        if (t->type == JT_VAR_BEGIN) {
            advance(P);
            jn_node *n = mk(P, JN_OUTPUT, t);
            n->a = parse_tuple(P, true);
            if (cur(P)->type != JT_VAR_END) perr(P, cur(P), "expected '}}', got %s", tok_desc(cur(P)));
            advance(P);
            nl_push(P, &l, n, NULL);
            continue;
        }
        if (t->type == JT_BLOCK_BEGIN) {
            const jn_tok *kw = peek(P, 1);
            if (ends && kw->type == JT_NAME) {
                for (int k = 0; ends[k]; k++)
                    if (!strcmp(kw->s, ends[k])) ended = ends[k];
                if (ended) {
                    advance(P);     /* leave the parser on the end name */
                    break;
                }
            }
            nl_push(P, &l, parse_statement(P), NULL);
            continue;
        }
        perr(P, t, "unexpected %s", tok_desc(t));
    }
    body->kids = l.v;
    body->nkids = l.n;
    P->nest--;
    return ended;
}

jn_node *jn_parse(jn_arena *ar, const jn_tok *toks, size_t ntoks)
{
    parser P = { .ar = ar, .t = toks, .n = ntoks };
    jn_node *root = mk(&P, JN_BODY, &toks[0]);
    parse_body(&P, root, NULL, NULL);
    return root;
}
