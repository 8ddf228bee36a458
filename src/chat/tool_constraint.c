/*
 * tool_constraint.c - the tool-call byte automaton and token masks
 * (tool_constraint.h).
 *
 * Layout: grammar building (nodes, literals, Aho-Corasick tables, the
 * per-format graphs), then the byte step (ALT / TEXT / JSON), then the
 * token table and the mask.
 */
#include "chat/tool_constraint.h"

#include "chat/output_parse_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { TG_ALT = 0, TG_TEXT, TG_JSON };
enum { AC_NONE = 0, AC_TERM, AC_FORBID };

#define TG_INF (INT_MAX / 4)
#define TG_AC_MAX 255            /* Aho-Corasick states of one TEXT node (uint8_t) */
#define TG_NAME_MAX 256          /* the output parser's longest XML/GLM name */
#define TG_TEXT_COUNT_CAP (1 << 30)

/* One literal of an ALT node: bytes [off, off + len) of g->bytes. */
typedef struct tg_alt {
    uint32_t off, len;
    int32_t node;                /* owner (while building; alternatives are sorted by it) */
    int32_t next;                /* node entered after the last byte */
    int32_t total;               /* len + nodes[next].min: fewest bytes to the end through it */
} tg_alt;

typedef struct tg_node {
    uint8_t kind;                /* TG_ALT, TG_TEXT, TG_JSON */
    bool may_end;                /* ALT: the end may come before its first byte */
    bool name;                   /* TEXT: a name: at least one byte before the terminator, no
                                  * control characters */
    bool plain;                  /* TEXT: every pattern starts with '<', '>' or '\n' */
    int32_t alt0, n_alt;         /* ALT: alternatives [alt0, alt0 + n_alt), sorted by bytes */
    int32_t next;                /* TEXT, JSON: the node after */
    int32_t min;                 /* fewest bytes from the node's start to the end */
    int32_t tlen;                /* TEXT: terminator length */
    int n_ac;                    /* TEXT: Aho-Corasick states */
    uint8_t *go;                 /* TEXT: [n_ac * 256] transitions */
    uint8_t *out;                /* TEXT: [n_ac] AC_NONE / AC_TERM / AC_FORBID */
    uint8_t *dist;               /* TEXT: [n_ac] bytes that complete the terminator from the state */
} tg_node;

struct pio_tool_grammar {
    tg_node *nodes;
    int n_nodes, cap_nodes;
    tg_alt *alts;
    int n_alts, cap_alts;
    pio_sb bytes;                /* the literals */
    int32_t start;
    bool oom;                    /* an allocation failed while building */
};

/* ---- sorting with a context (qsort has none in C11) ---------------------- */

typedef int (*tg_cmp_fn)(const void *ctx, int32_t a, int32_t b);

/* Stable bottom-up merge sort of idx[0..n). False when out of memory. */
static bool sort_idx(int32_t *idx, int32_t n, tg_cmp_fn cmp, const void *ctx)
{
    int32_t *tmp = malloc((size_t)(n > 0 ? n : 1) * sizeof *tmp), *a = idx, *b = tmp, w, i;
    if (!tmp)
        return false;
    for (w = 1; w < n; w *= 2) {
        for (i = 0; i < n; i += 2 * w) {
            int32_t lo = i, mid = i + w < n ? i + w : n, hi = i + 2 * w < n ? i + 2 * w : n;
            int32_t p = lo, q = mid, k = lo;
            while (p < mid && q < hi)
                b[k++] = cmp(ctx, a[q], a[p]) < 0 ? a[q++] : a[p++];
            while (p < mid)
                b[k++] = a[p++];
            while (q < hi)
                b[k++] = a[q++];
        }
        { int32_t *t = a; a = b; b = t; }
    }
    if (a != idx)
        memcpy(idx, a, (size_t)n * sizeof *idx);
    free(tmp);
    return true;
}

/* memcmp order, a proper prefix first. */
static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    size_t n = an < bn ? an : bn;
    int c = n ? memcmp(a, b, n) : 0;
    return c ? c : an < bn ? -1 : an > bn ? 1 : 0;
}

/* ---- building ------------------------------------------------------------- */

/* A new node of `kind` (no alternatives, no next yet); its index, 0 with g->oom set when out of memory. */
static int node_add(pio_tool_grammar *g, int kind)
{
    tg_node *nd;
    if (g->n_nodes == g->cap_nodes) {
        int cap = g->cap_nodes ? 2 * g->cap_nodes : 16;
        tg_node *nn = realloc(g->nodes, (size_t)cap * sizeof *nn);
        if (!nn) {
            g->oom = true;
            return 0;
        }
        g->nodes = nn;
        g->cap_nodes = cap;
    }
    nd = &g->nodes[g->n_nodes];
    memset(nd, 0, sizeof *nd);
    nd->kind = (uint8_t)kind;
    nd->next = -1;
    nd->min = TG_INF;
    return g->n_nodes++;
}

/* Literal a + b + c (any may be NULL) of ALT node `node`, then `next`. */
static void alt_add(pio_tool_grammar *g, int node, const char *a, const char *b, const char *c, int next)
{
    const char *parts[3] = { a, b, c };
    size_t off = g->bytes.len;
    int i;
    if (g->oom)
        return;
    for (i = 0; i < 3; i++)
        if (parts[i] && !pio_sb_adds(&g->bytes, parts[i]))
            g->oom = true;
    if (g->n_alts == g->cap_alts) {
        int cap = g->cap_alts ? 2 * g->cap_alts : 32;
        tg_alt *na = realloc(g->alts, (size_t)cap * sizeof *na);
        if (!na)
            g->oom = true;
        else {
            g->alts = na;
            g->cap_alts = cap;
        }
    }
    if (g->oom || g->bytes.len == off)
        return;                  /* empty literals are never added */
    g->alts[g->n_alts].off = (uint32_t)off;
    g->alts[g->n_alts].len = (uint32_t)(g->bytes.len - off);
    g->alts[g->n_alts].node = node;
    g->alts[g->n_alts].next = next;
    g->alts[g->n_alts].total = TG_INF;
    g->n_alts++;
}

/*
 * TEXT node: free UTF-8 text ending with `term`; text that would contain one
 * of `forbid` is rejected (a forbidden pattern that ends where the
 * terminator ends counts as the terminator). An Aho-Corasick automaton over
 * {term} + forbid, as a full transition table.
 */
static int text_add(pio_tool_grammar *g, const char *term, const char *const *forbid, int n_forbid, bool name,
                    int next)
{
    const char *pat[8];
    int np = 0, i, n_states = 1, term_end = 0, head = 0, tail = 0, node;
    int16_t (*child)[256] = NULL;
    uint8_t fail[TG_AC_MAX + 1], queue[TG_AC_MAX + 1], is_forbid[TG_AC_MAX + 1] = { 0 };
    int16_t tpos[TG_AC_MAX + 1];
    size_t total = 1;
    tg_node *nd;

    node = node_add(g, TG_TEXT);
    if (g->oom)
        return node;
    pat[np++] = term;
    for (i = 0; i < n_forbid && np < 8; i++)
        pat[np++] = forbid[i];
    for (i = 0; i < np; i++)
        total += strlen(pat[i]);
    child = malloc(total * sizeof *child);
    nd = &g->nodes[node];
    nd->go = malloc(total * 256);
    nd->out = calloc(total, 1);
    nd->dist = malloc(total);
    if (total > TG_AC_MAX || !child || !nd->go || !nd->out || !nd->dist) {
        g->oom = true;           /* patterns are short constants: only memory fails here */
        free(child);
        return node;
    }
    memset(child, 0xff, total * sizeof *child);
    for (i = 0; i < (int)total; i++)
        tpos[i] = -1;
    tpos[0] = 0;
    /* the trie */
    for (i = 0; i < np; i++) {
        const uint8_t *p = (const uint8_t *)pat[i];
        int s = 0, k;
        for (k = 0; p[k]; k++) {
            if (child[s][p[k]] < 0)
                child[s][p[k]] = (int16_t)n_states++;
            s = child[s][p[k]];
            if (i == 0)
                tpos[s] = (int16_t)(k + 1);
        }
        if (i == 0)
            term_end = s;
        else
            is_forbid[s] = 1;
    }
    /* failure links and transitions, breadth first */
    fail[0] = 0;
    queue[tail++] = 0;
    while (head < tail) {
        int s = queue[head++], c;
        for (c = 0; c < 256; c++) {
            int u = child[s][c];
            if (u >= 0) {
                fail[u] = s == 0 ? 0 : nd->go[fail[s] * 256 + c];
                nd->go[s * 256 + c] = (uint8_t)u;
                queue[tail++] = (uint8_t)u;
            } else {
                nd->go[s * 256 + c] = s == 0 ? 0 : nd->go[fail[s] * 256 + c];
            }
        }
    }
    /* outputs and distances, in breadth-first order (a failure link is shallower) */
    for (i = 0; i < tail; i++) {
        int s = queue[i], f = fail[s], t = s;
        bool term_here = s == term_end || (s != 0 && nd->out[f] == AC_TERM);
        bool forbid_here = is_forbid[s] || (s != 0 && nd->out[f] == AC_FORBID);
        nd->out[s] = term_here ? AC_TERM : forbid_here ? AC_FORBID : AC_NONE;
        while (tpos[t] < 0)
            t = fail[t];
        nd->dist[s] = (uint8_t)(strlen(term) - (size_t)tpos[t]);
    }
    free(child);
    nd->n_ac = n_states;
    nd->tlen = (int32_t)strlen(term);
    nd->name = name;
    nd->next = next;
    nd->plain = true;
    for (i = 0; i < np; i++)
        if (pat[i][0] != '<' && pat[i][0] != '>' && pat[i][0] != '\n')
            nd->plain = false;
    return node;
}

typedef struct alt_sort_ctx {
    const pio_tool_grammar *g;
} alt_sort_ctx;

/* Alternatives by owner node, then by bytes. */
static int alt_cmp(const void *ctx, int32_t a, int32_t b)
{
    const pio_tool_grammar *g = ((const alt_sort_ctx *)ctx)->g;
    const tg_alt *x = &g->alts[a], *y = &g->alts[b];
    if (x->node != y->node)
        return x->node < y->node ? -1 : 1;
    return bytes_cmp((const uint8_t *)g->bytes.s + x->off, x->len, (const uint8_t *)g->bytes.s + y->off, y->len);
}

/*
 * Sort each ALT's literals, drop exact duplicates, check that no literal is
 * a prefix of another (the automaton decides deterministically), and
 * compute every node's shortest completion.
 */
static pio_status finalize(pio_tool_grammar *g)
{
    int32_t *idx = malloc((size_t)(g->n_alts > 0 ? g->n_alts : 1) * sizeof *idx), i, n = 0;
    tg_alt *sorted = malloc((size_t)(g->n_alts > 0 ? g->n_alts : 1) * sizeof *sorted);
    alt_sort_ctx ctx = { g };
    bool changed = true;
    int iter;
    for (i = 0; idx && i < g->n_alts; i++)
        idx[i] = i;
    if (!idx || !sorted || !sort_idx(idx, g->n_alts, alt_cmp, &ctx)) {
        free(idx);
        free(sorted);
        return pio_error(PIO_STATUS_ERR_NOMEM, "tool_choice: out of memory");
    }
    for (i = 0; i < g->n_alts; i++) {
        const tg_alt *a = &g->alts[idx[i]];
        if (n > 0 && sorted[n - 1].node == a->node) {
            const tg_alt *p = &sorted[n - 1];
            const char *ps = g->bytes.s + p->off, *as = g->bytes.s + a->off;
            if (p->len <= a->len && !memcmp(ps, as, p->len)) {
                if (p->len == a->len && p->next == a->next)
                    continue;    /* the same literal twice */
                pio_status st = pio_error(PIO_STATUS_ERR_INVALID_ARG,
                                          "tool_choice: ambiguous tool-call text (\"%.*s\" and \"%.*s\"): "
                                          "duplicate or clashing names", (int)p->len, ps, (int)a->len, as);
                free(idx);
                free(sorted);
                return st;
            }
        }
        sorted[n++] = *a;
    }
    free(idx);
    free(g->alts);
    g->alts = sorted;
    g->n_alts = g->cap_alts = n;
    for (i = 0; i < g->n_nodes; i++)
        g->nodes[i].alt0 = g->nodes[i].n_alt = 0;
    for (i = n - 1; i >= 0; i--) {
        g->nodes[g->alts[i].node].alt0 = i;
        g->nodes[g->alts[i].node].n_alt++;
    }
    /* shortest completions: relax until stable (every cycle has bytes) */
    for (iter = 0; changed && iter <= g->n_nodes + 1; iter++) {
        changed = false;
        for (i = 0; i < g->n_nodes; i++) {
            tg_node *nd = &g->nodes[i];
            int32_t m = TG_INF, k;
            if (nd->kind == TG_ALT) {
                if (nd->may_end)
                    m = 0;
                for (k = nd->alt0; k < nd->alt0 + nd->n_alt; k++) {
                    int32_t nm = g->nodes[g->alts[k].next].min;
                    if (nm < TG_INF && (int32_t)g->alts[k].len + nm < m)
                        m = (int32_t)g->alts[k].len + nm;
                }
            } else if (nd->next >= 0 && g->nodes[nd->next].min < TG_INF) {
                m = g->nodes[nd->next].min + (nd->kind == TG_JSON ? 2 : nd->tlen + (nd->name ? 1 : 0));
            }
            if (m < nd->min) {
                nd->min = m;
                changed = true;
            }
        }
    }
    for (i = 0; i < n; i++) {
        int32_t nm = g->nodes[g->alts[i].next].min;
        g->alts[i].total = nm < TG_INF ? (int32_t)g->alts[i].len + nm : TG_INF;
    }
    if (g->nodes[g->start].min >= TG_INF)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "tool_choice: the tool-call grammar cannot end");
    return PIO_STATUS_OK;
}

/* A name the XML and GLM forms can carry: one line, no tag brackets, parser-sized. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    return n > 0 && n <= TG_NAME_MAX && !strpbrk(s, "<>\n");
}

/* The function's parameter names usable as literals ([n] pointers into props), or 0. */
static int param_names(const cJSON *props, const char **out, int cap)
{
    const cJSON *p;
    int n = 0;
    if (!cJSON_IsObject(props))
        return 0;
    cJSON_ArrayForEach(p, props)
        if (n < cap && p->string && name_ok(p->string))
            out[n++] = p->string;
    return n;
}

#define TG_MAX_PARAMS 256

/* Qwen3-Coder: the body after "<function=N>\n"; returns its first node. */
static int xml_function(pio_tool_grammar *g, const cJSON *props, int after)
{
    static const char *const val_forbid[] = { "</parameter>", "\n<parameter=", "\n</function>", "\n</tool_call>" };
    static const char *const name_forbid[] = { "<", "\n" };
    const char *keys[TG_MAX_PARAMS];
    int nk = param_names(props, keys, TG_MAX_PARAMS), p0 = node_add(g, TG_ALT), pn = node_add(g, TG_ALT), val, i;
    val = text_add(g, "\n</parameter>", val_forbid, 4, false, pn);
    for (i = 0; i < nk; i++) {
        alt_add(g, p0, "<parameter=", keys[i], ">\n", val);
        alt_add(g, pn, "\n<parameter=", keys[i], ">\n", val);
    }
    if (nk == 0) {
        int nl = node_add(g, TG_ALT), free_name = text_add(g, ">", name_forbid, 2, true, nl);
        alt_add(g, nl, "\n", NULL, NULL, val);
        alt_add(g, p0, "<parameter=", NULL, NULL, free_name);
        alt_add(g, pn, "\n<parameter=", NULL, NULL, free_name);
    }
    alt_add(g, p0, "</function>\n</tool_call>", NULL, NULL, after);
    alt_add(g, pn, "\n</function>\n</tool_call>", NULL, NULL, after);
    return p0;
}

/* GLM-4.7: the literals of function `name` into `names`. */
static void glm_function(pio_tool_grammar *g, const char *name, const cJSON *props, int names, int after)
{
    static const char *const val_forbid[] = { "<arg_key>", "</tool_call>" };
    static const char *const key_forbid[] = { "<arg_value>", "</tool_call>", "<arg_key>" };
    const char *keys[TG_MAX_PARAMS];
    int nk = param_names(props, keys, TG_MAX_PARAMS), next = node_add(g, TG_ALT), val, i;
    pio_sb s = { 0 };
    val = text_add(g, "</arg_value>", val_forbid, 2, false, next);
    for (i = 0; i < nk; i++) {
        pio_sb_clear(&s);
        if (!pio_sb_adds(&s, "<arg_key>") || !pio_sb_adds(&s, keys[i]) || !pio_sb_adds(&s, "</arg_key><arg_value>")) {
            g->oom = true;
            break;
        }
        alt_add(g, next, s.s, NULL, NULL, val);
        alt_add(g, names, name, s.s, NULL, val);
    }
    if (nk == 0) {
        int kv = node_add(g, TG_ALT), key = text_add(g, "</arg_key>", key_forbid, 3, true, kv);
        alt_add(g, kv, "<arg_value>", NULL, NULL, val);
        alt_add(g, next, "<arg_key>", NULL, NULL, key);
        alt_add(g, names, name, "<arg_key>", NULL, key);
    }
    alt_add(g, next, "</tool_call>", NULL, NULL, after);
    alt_add(g, names, name, "</tool_call>", NULL, after);
    pio_sb_free(&s);
}

/* See tool_constraint.h. Cost: linear in the tools and their parameters. */
pio_status pio_tool_grammar_new(const pio_tool_grammar_params *p, pio_tool_grammar **out)
{
    pio_tool_grammar *g = NULL;
    cJSON *tools = NULL;
    const cJSON *t;
    const char *open;
    int names, after, think, post, args, close, n_fn = 0;
    pio_sb s = { 0 };
    pio_status st = PIO_STATUS_OK;

    *out = NULL;
    if (p->format != PIO_TOOL_FORMAT_QWEN3_JSON && p->format != PIO_TOOL_FORMAT_QWEN3_XML &&
        p->format != PIO_TOOL_FORMAT_GLM47)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "tool_choice: the model's tool-call format (%s) "
                         "cannot be enforced", pio_tool_format_name(p->format));
    tools = p->tools_json ? cJSON_Parse(p->tools_json) : NULL;
    if (!cJSON_IsArray(tools)) {
        cJSON_Delete(tools);
        return pio_error(PIO_STATUS_ERR_FORMAT, "tool_choice: 'tools' is not a JSON array");
    }
    g = calloc(1, sizeof *g);
    if (!g) {
        cJSON_Delete(tools);
        return pio_error(PIO_STATUS_ERR_NOMEM, "tool_choice: out of memory");
    }
    open = p->format == PIO_TOOL_FORMAT_QWEN3_JSON ? "<tool_call>\n{\"name\": "
         : p->format == PIO_TOOL_FORMAT_QWEN3_XML ? "<tool_call>\n<function=" : "<tool_call>";
    names = node_add(g, TG_ALT);
    after = node_add(g, TG_ALT);
    think = text_add(g, "</think>", NULL, 0, false, -1);
    post = node_add(g, TG_ALT);
    if (g->oom)
        goto nomem;
    g->nodes[after].may_end = true;
    if (p->parallel) {
        alt_add(g, after, "\n", open, NULL, names);
        if (p->format == PIO_TOOL_FORMAT_GLM47)
            alt_add(g, after, open, NULL, NULL, names);
    }
    g->nodes[think].next = post;
    alt_add(g, post, open, NULL, NULL, names);
    alt_add(g, post, "\n", open, NULL, names);
    alt_add(g, post, "\n\n", open, NULL, names);
    if (p->start_in_reasoning) {
        g->start = think;
    } else {
        g->start = node_add(g, TG_ALT);
        alt_add(g, g->start, "<think>", NULL, NULL, think);
        alt_add(g, g->start, open, NULL, NULL, names);
    }
    args = close = -1;
    if (p->format == PIO_TOOL_FORMAT_QWEN3_JSON) {
        args = node_add(g, TG_JSON);
        close = node_add(g, TG_ALT);
        if (g->oom)
            goto nomem;
        g->nodes[args].next = close;
        alt_add(g, close, "}\n</tool_call>", NULL, NULL, after);
    }
    cJSON_ArrayForEach(t, tools) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(t, "function");
        const cJSON *nm = cJSON_GetObjectItemCaseSensitive(fn, "name");
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(params, "properties");
        const char *name;
        if (!cJSON_IsString(nm) || !nm->valuestring[0])
            continue;
        name = nm->valuestring;
        if (p->name && strcmp(name, p->name) != 0)
            continue;
        if (strlen(name) > TG_NAME_MAX || (p->format != PIO_TOOL_FORMAT_QWEN3_JSON && !name_ok(name)))
            continue;            /* the parser could not read it back */
        {
            const cJSON *u;      /* a name given twice: the first tool wins */
            bool seen = false;
            cJSON_ArrayForEach(u, tools) {
                const cJSON *un;
                if (u == t)
                    break;
                un = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(u, "function"), "name");
                if (cJSON_IsString(un) && !strcmp(un->valuestring, name))
                    seen = true;
            }
            if (seen)
                continue;
        }
        n_fn++;
        if (p->format == PIO_TOOL_FORMAT_QWEN3_JSON) {
            pio_sb_clear(&s);
            if (!pio_sb_add_json_string(&s, name, strlen(name)) || !pio_sb_adds(&s, ", \"arguments\": "))
                goto nomem;
            alt_add(g, names, s.s, NULL, NULL, args);
        } else if (p->format == PIO_TOOL_FORMAT_QWEN3_XML) {
            int body = xml_function(g, props, after);
            alt_add(g, names, name, ">\n", NULL, body);
        } else {
            glm_function(g, name, props, names, after);
        }
        if (g->oom)
            goto nomem;
    }
    if (n_fn == 0) {
        st = p->name ? pio_error(PIO_STATUS_ERR_INVALID_ARG, "tool_choice: function '%.200s' is not among the "
                                 "tools%s", p->name, !name_ok(p->name)
                                 ? " (or its name cannot be written in this model's tool-call format)" : "")
                     : pio_error(PIO_STATUS_ERR_INVALID_ARG, "tool_choice: 'tools' has no function this model "
                                 "can call by name");
        goto fail;
    }
    if (g->oom)
        goto nomem;
    if ((st = finalize(g)))
        goto fail;
    pio_sb_free(&s);
    cJSON_Delete(tools);
    *out = g;
    return PIO_STATUS_OK;
nomem:
    st = pio_error(PIO_STATUS_ERR_NOMEM, "tool_choice: out of memory");
fail:
    pio_sb_free(&s);
    cJSON_Delete(tools);
    pio_tool_grammar_free(g);
    return st;
}

/* Frees the nodes' tables, the literals and g (NULL is fine). */
void pio_tool_grammar_free(pio_tool_grammar *g)
{
    int i;
    if (!g)
        return;
    for (i = 0; i < g->n_nodes; i++) {
        free(g->nodes[i].go);
        free(g->nodes[i].out);
        free(g->nodes[i].dist);
    }
    free(g->nodes);
    free(g->alts);
    pio_sb_free(&g->bytes);
    free(g);
}

/* ---- the byte automaton ----------------------------------------------------- */

/* JSON modes: what the next byte may be. */
enum {
    J_TOP = 0,    /* '{' of the arguments object */
    J_OBJ_OPEN,   /* after '{': a key or '}' */
    J_OBJ_KEY,    /* after ',' in an object: a key */
    J_KEY,        /* inside a key string */
    J_COLON,      /* after a key */
    J_VALUE,      /* after ':' or ',' in an array */
    J_ARR_OPEN,   /* after '[': a value or ']' */
    J_STR,        /* inside a string value */
    J_AFTER,      /* after a value: ',' or the closer */
    J_MINUS, J_ZERO, J_INT, J_DOT, J_FRAC, J_E, J_ESIGN, J_EXP,   /* numbers */
    J_LIT,        /* true / false / null: sub = which, hexn = bytes read */
};

/* String sub-states (sub). */
enum { S_NORMAL = 0, S_ESC, S_HEX, S_NEED_BS, S_NEED_U, S_LOWHEX };

static const char *const json_lit[3] = { "true", "false", "null" };
static const char tag_open[] = "<tool_call>", tag_close[] = "</tool_call>";
#define TAG_CLOSE_BIT 0x40

/* Put st at the start of `node` (every field reset). */
static void enter(const pio_tool_grammar *g, pio_tool_state *st, int32_t node)
{
    const tg_node *nd = &g->nodes[node];
    memset(st, 0, sizeof *st);
    st->node = node;
    if (nd->kind == TG_ALT) {
        st->lo = nd->alt0;
        st->hi = nd->alt0 + nd->n_alt;
    }
}

void pio_tool_state_init(const pio_tool_grammar *g, pio_tool_state *st)
{
    enter(g, st, g->start);
}

/* Start a UTF-8 character with lead byte c; false if c cannot lead one
 * (continuation bytes, overlong leads C0/C1, F5..FF). */
static bool u8_lead(pio_tool_state *st, uint8_t c)
{
    uint8_t need, lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        if (c == 0xE0)
            lo = 0xA0;           /* no overlongs */
        else if (c == 0xED)
            hi = 0x9F;           /* no UTF-16 surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;           /* at most U+10FFFF */
    } else
        return false;
    st->u8_need = need;
    st->u8_lo = lo;
    st->u8_hi = hi;
    return true;
}

/* A continuation byte of the current character: false when out of its range. */
static bool u8_cont(pio_tool_state *st, uint8_t c)
{
    if (c < st->u8_lo || c > st->u8_hi)
        return false;
    st->u8_need--;
    st->u8_lo = 0x80;
    st->u8_hi = 0xBF;
    return true;
}

/* 0..15 for a hex digit, else -1. */
static int hex_val(uint8_t c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Track "<tool_call>" / "</tool_call>" in raw string bytes; false when one
 * would be complete. '<' occurs only first in both, so a mismatch restarts. */
static bool tag_byte(pio_tool_state *st, uint8_t c)
{
    uint8_t t = st->tag;
    if (c == '<') {
        st->tag = 1;
    } else if (t == 1) {
        st->tag = c == 't' ? 2 : c == '/' ? (TAG_CLOSE_BIT | 2) : 0;
    } else if (t & TAG_CLOSE_BIT) {
        int k = t & ~TAG_CLOSE_BIT;
        if ((uint8_t)tag_close[k] != c)
            st->tag = 0;
        else if (k + 1 == (int)sizeof tag_close - 1)
            return false;
        else
            st->tag = (uint8_t)(TAG_CLOSE_BIT | (k + 1));
    } else if (t) {
        if ((uint8_t)tag_open[t] != c)
            st->tag = 0;
        else if (t + 1 == (int)sizeof tag_open - 1)
            return false;
        else
            st->tag = (uint8_t)(t + 1);
    }
    return true;
}

/* One byte inside a JSON string: 0 consumed, 1 the closing quote, -1 rejected.
 * \u escapes must name a character (no lone surrogates, no U+0000: cJSON,
 * which reads the calls back, rejects or truncates those). */
static int str_byte(pio_tool_state *st, uint8_t c)
{
    int h;
    if (st->u8_need)
        return u8_cont(st, c) ? 0 : -1;
    switch (st->sub) {
    case S_ESC:
        switch (c) {
        case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            st->sub = S_NORMAL;
            return 0;
        case 'u':
            st->sub = S_HEX;
            st->hexn = 0;
            st->hexv = 0;
            return 0;
        default:
            return -1;
        }
    case S_HEX:
    case S_LOWHEX:
        if ((h = hex_val(c)) < 0)
            return -1;
        if (st->sub == S_LOWHEX && ((st->hexn == 0 && h != 0xD) || (st->hexn == 1 && h < 0xC)))
            return -1;           /* the low half of a pair: DC00..DFFF */
        st->hexv = (uint16_t)(st->hexv << 4 | h);
        st->hexn++;
        if (st->sub == S_HEX && st->hexn == 2 && st->hexv >= 0xDC && st->hexv <= 0xDF)
            return -1;           /* a low surrogate alone */
        if (st->hexn == 4) {
            if (st->sub == S_LOWHEX)
                st->sub = S_NORMAL;
            else if (st->hexv == 0)
                return -1;
            else
                st->sub = st->hexv >= 0xD800 && st->hexv <= 0xDBFF ? S_NEED_BS : S_NORMAL;
        }
        return 0;
    case S_NEED_BS:
        if (c != '\\')
            return -1;
        st->sub = S_NEED_U;
        return 0;
    case S_NEED_U:
        if (c != 'u')
            return -1;
        st->sub = S_LOWHEX;
        st->hexn = 0;
        st->hexv = 0;
        return 0;
    default:
        break;
    }
    if (c == '"') {
        st->tag = 0;
        return 1;
    }
    if (c < 0x20)
        return -1;
    if (c == '\\') {
        st->sub = S_ESC;
        st->tag = 0;
        return 0;
    }
    if (c >= 0x80) {
        st->tag = 0;
        return u8_lead(st, c) ? 0 : -1;
    }
    return tag_byte(st, c) ? 0 : -1;
}

/* Bytes a string needs before its closing quote can come. */
static int str_pending(const pio_tool_state *st)
{
    int n = st->u8_need;
    switch (st->sub) {
    case S_ESC: return n + 1;
    case S_HEX:
        n += 4 - st->hexn;
        if (st->hexn >= 2) {
            unsigned top = (unsigned)st->hexv >> (4 * (st->hexn - 2));
            if (top >= 0xD8 && top <= 0xDB)
                n += 6;          /* "\uDC00" must follow */
        }
        return n;
    case S_NEED_BS: return n + 6;
    case S_NEED_U: return n + 5;
    case S_LOWHEX: return n + 4 - st->hexn;
    default: return n;
    }
}

/* JSON whitespace. */
static bool is_ws(uint8_t c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The innermost open container is an array (not an object). */
static bool top_is_array(const pio_tool_state *st)
{
    return st->depth > 0 && ((st->arrays >> (st->depth - 1)) & 1);
}

/* A value starting with c: 1 consumed, -1 rejected. */
static int value_start(pio_tool_state *st, uint8_t c)
{
    switch (c) {
    case '{':
    case '[':
        if (st->depth >= PIO_TOOL_JSON_MAX_DEPTH)
            return -1;
        if (c == '[')
            st->arrays |= 1ull << st->depth;
        else
            st->arrays &= ~(1ull << st->depth);
        st->depth++;
        st->mode = c == '[' ? J_ARR_OPEN : J_OBJ_OPEN;
        return 1;
    case '"':
        st->mode = J_STR;
        st->sub = S_NORMAL;
        st->tag = 0;
        return 1;
    case '-': st->mode = J_MINUS; return 1;
    case '0': st->mode = J_ZERO; return 1;
    case 't': case 'f': case 'n':
        st->mode = J_LIT;
        st->sub = c == 't' ? 0 : c == 'f' ? 1 : 2;
        st->hexn = 1;
        return 1;
    default:
        if (c >= '1' && c <= '9') {
            st->mode = J_INT;
            return 1;
        }
        return -1;
    }
}

/* '}' or ']': 1 closed, 2 closed the arguments object, -1 the wrong closer. */
static int close_container(pio_tool_state *st, uint8_t c)
{
    if (c != (top_is_array(st) ? ']' : '}'))
        return -1;
    st->depth--;
    st->mode = J_AFTER;
    return st->depth == 0 ? 2 : 1;
}

/* One byte of the arguments object: 1 consumed, 2 consumed and the object
 * is complete, -1 rejected. A number ends at the byte after it, which is
 * then read again as what follows the value. */
static int json_byte(pio_tool_state *st, uint8_t c)
{
    int r;
    bool digit = c >= '0' && c <= '9';
    for (;;) {
        switch (st->mode) {
        case J_TOP:
            if (c != '{')
                return -1;
            st->arrays = 0;
            st->depth = 1;
            st->mode = J_OBJ_OPEN;
            return 1;
        case J_OBJ_OPEN:
        case J_OBJ_KEY:
            if (is_ws(c))
                return 1;
            if (c == '"') {
                st->mode = J_KEY;
                st->sub = S_NORMAL;
                st->tag = 0;
                return 1;
            }
            if (c == '}' && st->mode == J_OBJ_OPEN)
                return close_container(st, c);
            return -1;
        case J_KEY:
        case J_STR:
            if ((r = str_byte(st, c)) < 0)
                return -1;
            if (r == 1)
                st->mode = st->mode == J_KEY ? J_COLON : J_AFTER;
            return 1;
        case J_COLON:
            if (is_ws(c))
                return 1;
            if (c != ':')
                return -1;
            st->mode = J_VALUE;
            return 1;
        case J_VALUE:
            return is_ws(c) ? 1 : value_start(st, c);
        case J_ARR_OPEN:
            if (is_ws(c))
                return 1;
            return c == ']' ? close_container(st, c) : value_start(st, c);
        case J_AFTER:
            if (is_ws(c))
                return 1;
            if (c == ',') {
                st->mode = top_is_array(st) ? J_VALUE : J_OBJ_KEY;
                return 1;
            }
            return c == '}' || c == ']' ? close_container(st, c) : -1;
        case J_MINUS:
            if (!digit)
                return -1;
            st->mode = c == '0' ? J_ZERO : J_INT;
            return 1;
        case J_ZERO:
        case J_INT:
        case J_FRAC:
            if (digit && st->mode != J_ZERO)
                return 1;
            if (c == '.' && st->mode != J_FRAC) {
                st->mode = J_DOT;
                return 1;
            }
            if (c == 'e' || c == 'E') {
                st->mode = J_E;
                return 1;
            }
            st->mode = J_AFTER;
            continue;
        case J_DOT:
            if (!digit)
                return -1;
            st->mode = J_FRAC;
            return 1;
        case J_E:
            if (c == '+' || c == '-') {
                st->mode = J_ESIGN;
                return 1;
            }
            /* fall through */
        case J_ESIGN:
            if (!digit)
                return -1;
            st->mode = J_EXP;
            return 1;
        case J_EXP:
            if (digit)
                return 1;
            st->mode = J_AFTER;
            continue;
        case J_LIT:
            if ((uint8_t)json_lit[st->sub][st->hexn] != c)
                return -1;
            if (!json_lit[st->sub][++st->hexn])
                st->mode = J_AFTER;
            return 1;
        default:
            return -1;
        }
    }
}

/* Fewest bytes that close the arguments object from st. */
static int json_min(const pio_tool_state *st)
{
    int m = st->depth;
    switch (st->mode) {
    case J_TOP: return 2;
    case J_OBJ_KEY: return m + 4;                            /* "":0 */
    case J_KEY: return m + str_pending(st) + 1 + 2;          /* " :0 */
    case J_COLON: return m + 2;
    case J_VALUE: return m + 1;
    case J_STR: return m + str_pending(st) + 1;
    case J_MINUS: case J_DOT: case J_E: case J_ESIGN: return m + 1;
    case J_LIT: return m + (int)strlen(json_lit[st->sub]) - st->hexn;
    default: return m;
    }
}

/* One byte; false (st->node = -1) when it cannot extend the text. */
static bool step(const pio_tool_grammar *g, pio_tool_state *st, uint8_t c)
{
    const tg_node *nd;
    if (st->node < 0)
        return false;
    nd = &g->nodes[st->node];
    switch (nd->kind) {
    case TG_ALT: {
        /* alternatives in [lo, hi) share st->pos bytes and all go on; their
         * bytes at pos are sorted: narrow to those equal to c */
        int32_t a = st->lo, b = st->hi, lo, pos = st->pos;
        const uint8_t *base = (const uint8_t *)g->bytes.s;
        while (a < b) {
            int32_t mid = a + (b - a) / 2;
            if (base[g->alts[mid].off + (uint32_t)pos] < c)
                a = mid + 1;
            else
                b = mid;
        }
        lo = a;
        b = st->hi;
        while (a < b) {
            int32_t mid = a + (b - a) / 2;
            if (base[g->alts[mid].off + (uint32_t)pos] <= c)
                a = mid + 1;
            else
                b = mid;
        }
        if (lo == a)
            break;
        st->lo = lo;
        st->hi = a;
        st->pos = (uint16_t)(pos + 1);
        if (a - lo == 1 && g->alts[lo].len == (uint32_t)pos + 1)
            enter(g, st, g->alts[lo].next);
        return true;
    }
    case TG_TEXT: {
        uint8_t s2;
        if (st->u8_need) {
            if (!u8_cont(st, c))
                break;
        } else if (c >= 0x80) {
            if (!u8_lead(st, c))
                break;
        } else if (c == 0 || (nd->name && (c < 0x20 || c == 0x7f))) {
            break;
        }
        s2 = nd->go[st->pos * 256 + c];
        if (nd->out[s2] == AC_TERM) {
            if (nd->name && st->lo < nd->tlen)
                break;           /* nothing before the terminator */
            enter(g, st, nd->next);
            return true;
        }
        if (nd->out[s2] == AC_FORBID)
            break;
        st->pos = s2;
        if (st->lo < TG_TEXT_COUNT_CAP)
            st->lo++;
        return true;
    }
    default: {
        int r = json_byte(st, c);
        if (r < 0)
            break;
        if (r == 2)
            enter(g, st, nd->next);
        return true;
    }
    }
    st->node = -1;
    return false;
}

/* See tool_constraint.h. O(n). */
bool pio_tool_state_feed(const pio_tool_grammar *g, pio_tool_state *st, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!step(g, st, (uint8_t)s[i]))
            return false;
    return st->node >= 0;
}

/* See tool_constraint.h: at the start of an ALT that allows the end. */
bool pio_tool_state_can_end(const pio_tool_grammar *g, const pio_tool_state *st)
{
    const tg_node *nd;
    if (st->node < 0)
        return false;
    nd = &g->nodes[st->node];
    return nd->kind == TG_ALT && nd->may_end && st->pos == 0;
}

/* See tool_constraint.h. O(1), except inside an ALT: O(alternatives left). */
int pio_tool_state_min_bytes(const pio_tool_grammar *g, const pio_tool_state *st)
{
    const tg_node *nd;
    int32_t m, i;
    if (st->node < 0)
        return -1;
    nd = &g->nodes[st->node];
    switch (nd->kind) {
    case TG_ALT:
        if (st->pos == 0)
            return nd->min;
        m = TG_INF;
        for (i = st->lo; i < st->hi; i++)
            if (g->alts[i].total < m)
                m = g->alts[i].total;
        return m - st->pos;
    case TG_TEXT:
        /* a name whose bytes so far are all a partial terminator is still
         * empty: one byte outside every pattern, then the whole terminator */
        m = nd->dist[st->pos];
        if (nd->name && st->lo + m <= nd->tlen)
            m = nd->tlen + 1;
        return st->u8_need + m + g->nodes[nd->next].min;
    default:
        return json_min(st) + g->nodes[nd->next].min;
    }
}

/* ---- token table and masks -------------------------------------------------- */

enum {
    TOKC_STR = 1,    /* plain JSON string bytes: printable, whole UTF-8, no '"', '\\', '<' */
    TOKC_TEXT = 2,   /* plain free text: whole UTF-8, no NUL, '<', '>', '\n' */
};

struct pio_tool_vocab {
    int32_t n_vocab;             /* logits row width */
    int32_t n;                   /* tokens that may be allowed, in byte order */
    int32_t *ids;                /* [n] */
    uint32_t *off;               /* [n] into bytes */
    uint16_t *len;               /* [n] */
    uint16_t *lcp;               /* [n] bytes shared with the previous token */
    uint8_t *cls;                /* [n] TOKC_* */
    char *bytes;
    int32_t *id_pos;             /* [n_vocab] index into the sorted order, -1 = never allowed */
    int32_t *end_ids;            /* [n_end] */
    int n_end;
    int max_len;
    pio_tool_state *scratch;     /* [max_len + 1] state after each byte of the token being walked */
    uint8_t *allowed;            /* [n_vocab] */
};

/* TOKC_* flags of a token's bytes. */
static uint8_t token_class(const uint8_t *b, size_t n)
{
    bool str = true, text = true;
    size_t i = 0;
    while (i < n && (str || text)) {
        uint8_t c = b[i];
        if (c < 0x80) {
            if (c < 0x20 || c == '"' || c == '\\' || c == '<')
                str = false;
            if (c == 0 || c == '<' || c == '>' || c == '\n')
                text = false;
            i++;
        } else {
            pio_tool_state u;
            memset(&u, 0, sizeof u);
            if (!u8_lead(&u, c))
                return 0;
            for (i++; u.u8_need; i++)
                if (i >= n || !u8_cont(&u, b[i]))
                    return 0;    /* part of a character */
        }
    }
    return (uint8_t)((str ? TOKC_STR : 0) | (text ? TOKC_TEXT : 0));
}

typedef struct vocab_sort_ctx {
    const char *const *bytes;
    const size_t *lens;
} vocab_sort_ctx;

/* Token ids by their bytes. */
static int vocab_cmp(const void *ctx, int32_t a, int32_t b)
{
    const vocab_sort_ctx *c = ctx;
    return bytes_cmp((const uint8_t *)c->bytes[a], c->lens[a], (const uint8_t *)c->bytes[b], c->lens[b]);
}

/* id is one of ends[0..n_end). */
static bool is_end_id(const int32_t *ends, int n_end, int32_t id)
{
    int i;
    for (i = 0; i < n_end; i++)
        if (ends[i] == id)
            return true;
    return false;
}

/* See tool_constraint.h. */
pio_status pio_tool_vocab_new(const char *const *bytes, const size_t *lens, int32_t n_tokens,
                              int32_t n_vocab, const int32_t *end_ids, int n_end, pio_tool_vocab **out)
{
    pio_tool_vocab *v;
    int32_t *order = NULL, i, n = 0;
    size_t total = 0;
    vocab_sort_ctx ctx = { bytes, lens };

    *out = NULL;
    if (n_tokens < 0 || n_vocab < n_tokens || n_end < 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "tool vocab: %d tokens for rows of %d", (int)n_tokens,
                         (int)n_vocab);
    v = calloc(1, sizeof *v);
    if (!v)
        return pio_error(PIO_STATUS_ERR_NOMEM, "tool vocab: out of memory");
    v->n_vocab = n_vocab;
    order = malloc((size_t)(n_tokens > 0 ? n_tokens : 1) * sizeof *order);
    v->id_pos = malloc((size_t)(n_vocab > 0 ? n_vocab : 1) * sizeof *v->id_pos);
    v->allowed = malloc((size_t)(n_vocab > 0 ? n_vocab : 1));
    v->end_ids = malloc((size_t)(n_end > 0 ? n_end : 1) * sizeof *v->end_ids);
    if (!order || !v->id_pos || !v->allowed || !v->end_ids)
        goto nomem;
    for (i = 0; i < n_end; i++)
        if (end_ids[i] >= 0 && end_ids[i] < n_vocab && !is_end_id(v->end_ids, v->n_end, end_ids[i]))
            v->end_ids[v->n_end++] = end_ids[i];
    for (i = 0; i < n_vocab; i++)
        v->id_pos[i] = -1;
    for (i = 0; i < n_tokens; i++)
        if (bytes[i] && lens[i] > 0 && lens[i] <= UINT16_MAX && !is_end_id(v->end_ids, v->n_end, i)) {
            order[n++] = i;
            total += lens[i];
        }
    if (!sort_idx(order, n, vocab_cmp, &ctx))
        goto nomem;
    v->n = n;
    v->ids = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->ids);
    v->off = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->off);
    v->len = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->len);
    v->lcp = malloc((size_t)(n > 0 ? n : 1) * sizeof *v->lcp);
    v->cls = malloc((size_t)(n > 0 ? n : 1));
    v->bytes = malloc(total > 0 ? total : 1);
    if (!v->ids || !v->off || !v->len || !v->lcp || !v->cls || !v->bytes)
        goto nomem;
    total = 0;
    for (i = 0; i < n; i++) {
        int32_t id = order[i];
        size_t l = lens[id], k = 0;
        v->ids[i] = id;
        v->off[i] = (uint32_t)total;
        v->len[i] = (uint16_t)l;
        memcpy(v->bytes + total, bytes[id], l);
        if (i > 0) {
            size_t pl = v->len[i - 1];
            const char *pb = v->bytes + v->off[i - 1];
            while (k < l && k < pl && pb[k] == bytes[id][k])
                k++;
        }
        v->lcp[i] = (uint16_t)k;
        v->cls[i] = token_class((const uint8_t *)bytes[id], l);
        v->id_pos[id] = i;
        if ((int)l > v->max_len)
            v->max_len = (int)l;
        total += l;
    }
    v->scratch = malloc((size_t)(v->max_len + 1) * sizeof *v->scratch);
    if (!v->scratch)
        goto nomem;
    free(order);
    *out = v;
    return PIO_STATUS_OK;
nomem:
    free(order);
    pio_tool_vocab_free(v);
    return pio_error(PIO_STATUS_ERR_NOMEM, "tool vocab: out of memory");
}

/* See tool_constraint.h. */
pio_status pio_tool_vocab_from_tokenizer(const pio_tokenizer *tok, int32_t n_vocab, int32_t n_valid,
                                         const int32_t *end_ids, int n_end, pio_tool_vocab **out)
{
    const char **bytes;
    size_t *lens;
    int32_t i, n = n_valid < pio_tokenizer_n_vocab(tok) ? n_valid : pio_tokenizer_n_vocab(tok);
    pio_status st;
    if (n < 0 || n > n_vocab)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "tool vocab: %d ids for rows of %d", (int)n, (int)n_vocab);
    bytes = malloc((size_t)(n > 0 ? n : 1) * sizeof *bytes);
    lens = malloc((size_t)(n > 0 ? n : 1) * sizeof *lens);
    if (!bytes || !lens) {
        free(bytes);
        free(lens);
        return pio_error(PIO_STATUS_ERR_NOMEM, "tool vocab: out of memory");
    }
    for (i = 0; i < n; i++) {
        bytes[i] = pio_tokenizer_is_special(tok, i) ? NULL : pio_tokenizer_token_bytes(tok, i, &lens[i]);
        if (!bytes[i])
            lens[i] = 0;
    }
    st = pio_tool_vocab_new(bytes, lens, n, n_vocab, end_ids, n_end, out);
    free(bytes);
    free(lens);
    return st;
}

/* Frees every table and v (NULL is fine). */
void pio_tool_vocab_free(pio_tool_vocab *v)
{
    if (!v)
        return;
    free(v->ids);
    free(v->off);
    free(v->len);
    free(v->lcp);
    free(v->cls);
    free(v->bytes);
    free(v->id_pos);
    free(v->end_ids);
    free(v->scratch);
    free(v->allowed);
    free(v);
}

/* The class of tokens that leave st exactly as it is (0: none): plain
 * string bytes inside a JSON string, plain text inside free text. */
static uint8_t plain_class(const pio_tool_grammar *g, const pio_tool_state *st)
{
    const tg_node *nd = &g->nodes[st->node];
    if (st->u8_need)
        return 0;
    if (nd->kind == TG_JSON && (st->mode == J_STR || st->mode == J_KEY) && st->sub == S_NORMAL && st->tag == 0)
        return TOKC_STR;
    if (nd->kind == TG_TEXT && nd->plain && !nd->name && st->pos == 0)
        return TOKC_TEXT;
    return 0;
}

/*
 * v->allowed for the tokens after st whose shortest completion is at most
 * `limit` bytes; returns their count. Tokens are walked in byte order:
 * v->scratch[d] is the state after the first d bytes of the current token,
 * valid up to `valid`; a token resumes at its common prefix with the
 * previous one, and when a byte f was rejected every following token that
 * shares bytes [0, f] is skipped without a look at its bytes.
 */
static int mask_pass(const pio_tool_grammar *g, const pio_tool_state *st, pio_tool_vocab *v, int limit)
{
    pio_tool_state *S = v->scratch;
    uint8_t plain = plain_class(g, st);
    bool plain_ok = pio_tool_state_min_bytes(g, st) <= limit;
    int32_t i, count = 0, valid = 0, fail = -1;
    memset(v->allowed, 0, (size_t)v->n_vocab);
    if (pio_tool_state_can_end(g, st))
        for (i = 0; i < v->n_end; i++) {
            v->allowed[v->end_ids[i]] = 1;
            count++;
        }
    S[0] = *st;
    for (i = 0; i < v->n; i++) {
        int32_t l = v->lcp[i], n = v->len[i], d;
        const uint8_t *b;
        if (fail >= 0 && l > fail)
            continue;            /* extends the rejected prefix */
        if (plain & v->cls[i]) {
            if (plain_ok) {
                v->allowed[v->ids[i]] = 1;
                count++;
            }
            valid = 0;           /* its states were not computed */
            fail = -1;
            continue;
        }
        b = (const uint8_t *)v->bytes + v->off[i];
        for (d = l < valid ? l : valid; d < n; d++) {
            S[d + 1] = S[d];
            if (!step(g, &S[d + 1], b[d]))
                break;
        }
        if (d < n) {
            fail = valid = d;
            continue;
        }
        fail = -1;
        valid = n;
        if (pio_tool_state_min_bytes(g, &S[n]) <= limit) {
            v->allowed[v->ids[i]] = 1;
            count++;
        }
    }
    return count;
}

/* See tool_constraint.h. */
int pio_tool_mask(const pio_tool_grammar *g, const pio_tool_state *st, pio_tool_vocab *v, int budget,
                  float *logits)
{
    int m0 = pio_tool_state_min_bytes(g, st), count, limit;
    int32_t i;
    if (m0 < 0)
        return 0;
    limit = budget > 0 && m0 + 1 <= budget ? budget - 2 : INT_MAX;
    count = mask_pass(g, st, v, limit);
    if (count == 0 && limit != INT_MAX)
        count = mask_pass(g, st, v, INT_MAX);
    if (count == 0)
        return 0;
    for (i = 0; i < v->n_vocab; i++)
        if (!v->allowed[i])
            logits[i] = -INFINITY;
    return count;
}

/* See tool_constraint.h. O(bytes of the token). */
bool pio_tool_state_feed_token(const pio_tool_grammar *g, pio_tool_state *st, const pio_tool_vocab *v,
                               int32_t id)
{
    int32_t k;
    if (id < 0 || id >= v->n_vocab || st->node < 0) {
        st->node = -1;
        return false;
    }
    if (is_end_id(v->end_ids, v->n_end, id)) {
        if (pio_tool_state_can_end(g, st))
            return true;
        st->node = -1;
        return false;
    }
    if ((k = v->id_pos[id]) < 0) {
        st->node = -1;
        return false;
    }
    return pio_tool_state_feed(g, st, v->bytes + v->off[k], v->len[k]);
}
