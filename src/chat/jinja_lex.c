/*
 * jinja_lex.c - the Jinja lexer, configured as Hugging Face configures
 * Jinja2 for chat templates: trim_blocks=True (the first newline after a
 * block or comment tag is dropped), lstrip_blocks=True (spaces and tabs
 * from the start of a line up to a block or comment tag are dropped),
 * keep_trailing_newline=False (one final newline of the source is dropped).
 * "\r\n" and "\r" become "\n" first, as Jinja's lexer does.
 *
 * The token stream is TEXT runs (whitespace control already applied) and
 * tags: VAR_BEGIN expr-tokens VAR_END, BLOCK_BEGIN tokens BLOCK_END.
 * Comments produce nothing. Cost: O(len).
 */
#include "chat/jinja_int.h"

#include <stdlib.h>
#include <string.h>

typedef struct lexer {
    jn_arena *ar;
    const char *src;
    size_t len, pos;
    int line;
    size_t line_start;      /* offset of the current line's first byte */
    size_t lc_pos;          /* position line/line_start are valid for */
    jn_tok *toks;
    size_t n, cap;
} lexer;

/* Line and column (1-based, in bytes) of offset p; p never goes backwards by much. */
static void lex_linecol(lexer *L, size_t p, int *line, int *col)
{
    if (p < L->lc_pos) {
        L->lc_pos = 0;
        L->line = 1;
        L->line_start = 0;
    }
    for (size_t i = L->lc_pos; i < p && i < L->len; i++)
        if (L->src[i] == '\n') {
            L->line++;
            L->line_start = i + 1;
        }
    L->lc_pos = p;
    *line = L->line;
    *col = (int)(p - L->line_start) + 1;
}

_Noreturn static void lex_fail(lexer *L, size_t p, const char *msg)
{
    int line, col;
    lex_linecol(L, p, &line, &col);
    jn_fail(L->ar->err, PIO_STATUS_ERR_FORMAT, line, col, "%s", msg);
}

static jn_tok *lex_push(lexer *L, jn_tok_type type, size_t at)
{
    if (L->n == L->cap) {
        size_t cap = L->cap ? L->cap * 2 : 256;
        jn_tok *t = jn_alloc(L->ar, cap * sizeof *t);
        if (L->n) memcpy(t, L->toks, L->n * sizeof *t);
        L->toks = t;
        L->cap = cap;
    }
    jn_tok *t = &L->toks[L->n++];
    memset(t, 0, sizeof *t);
    t->type = type;
    lex_linecol(L, at, &t->line, &t->col);
    return t;
}

static bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static bool is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Append code point cp as UTF-8 (surrogates are written as is, as Python keeps them). */
static size_t put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80) { o[0] = (char)cp; return 1; }
    if (cp < 0x800) { o[0] = (char)(0xC0 | (cp >> 6)); o[1] = (char)(0x80 | (cp & 0x3F)); return 2; }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12)); o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18)); o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* A string literal at L->pos (quote char); Python escapes (\n \t \\ \' \"
 * \xNN \uNNNN \UNNNNNNNN \r \0 ...), unknown escapes kept with the backslash. */
static void lex_string(lexer *L)
{
    size_t start = L->pos;
    char q = L->src[L->pos++];
    size_t end = L->pos;      /* escapes never expand: the literal's length bounds the value */
    while (end < L->len && L->src[end] != q) end += L->src[end] == '\\' ? 2 : 1;
    char *out = jn_alloc(L->ar, (end < L->len ? end : L->len) - L->pos + 1);
    size_t o = 0;
    for (;;) {
        if (L->pos >= L->len) lex_fail(L, start, "unterminated string literal");
        char c = L->src[L->pos++];
        if (c == q) break;
        if (c != '\\') { out[o++] = c; continue; }
        if (L->pos >= L->len) lex_fail(L, start, "unterminated string literal");
        char e = L->src[L->pos++];
        int nhex = 0;
        switch (e) {
        case 'n': out[o++] = '\n'; break;
        case 't': out[o++] = '\t'; break;
        case 'r': out[o++] = '\r'; break;
        case '0': out[o++] = '\0'; break;
        case 'a': out[o++] = '\a'; break;
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'v': out[o++] = '\v'; break;
        case '\\': out[o++] = '\\'; break;
        case '\'': out[o++] = '\''; break;
        case '"': out[o++] = '"'; break;
        case '\n': break;                        /* line continuation */
        case 'x': nhex = 2; break;
        case 'u': nhex = 4; break;
        case 'U': nhex = 8; break;
        default: out[o++] = '\\'; out[o++] = e; break;
        }
        if (nhex) {
            unsigned cp = 0;
            for (int k = 0; k < nhex; k++) {
                int h = L->pos < L->len ? hexval(L->src[L->pos]) : -1;
                if (h < 0) lex_fail(L, L->pos, "truncated \\x/\\u escape in string literal");
                cp = cp * 16 + (unsigned)h;
                L->pos++;
            }
            if (cp > 0x10FFFF) lex_fail(L, start, "escape out of the Unicode range");
            o += put_utf8(out + o, cp);
        }
    }
    out[o] = '\0';
    jn_tok *t = lex_push(L, JT_STRING, start);
    t->s = out;
    t->n = o;
}

static void lex_number(lexer *L)
{
    size_t start = L->pos;
    char buf[128];
    size_t b = 0;
    bool is_float = false;
    while (L->pos < L->len && (is_digit(L->src[L->pos]) || L->src[L->pos] == '_')) {
        if (L->src[L->pos] != '_' && b < sizeof buf - 1) buf[b++] = L->src[L->pos];
        L->pos++;
    }
    if (L->pos + 1 < L->len && L->src[L->pos] == '.' && is_digit(L->src[L->pos + 1])) {
        is_float = true;
        buf[b < sizeof buf - 1 ? b++ : b] = '.';
        L->pos++;
        while (L->pos < L->len && (is_digit(L->src[L->pos]) || L->src[L->pos] == '_')) {
            if (L->src[L->pos] != '_' && b < sizeof buf - 1) buf[b++] = L->src[L->pos];
            L->pos++;
        }
    }
    if (L->pos < L->len && (L->src[L->pos] == 'e' || L->src[L->pos] == 'E')) {
        size_t p = L->pos + 1;
        if (p < L->len && (L->src[p] == '+' || L->src[p] == '-')) p++;
        if (p < L->len && is_digit(L->src[p])) {
            is_float = true;
            while (L->pos < p) { if (b < sizeof buf - 1) buf[b++] = L->src[L->pos]; L->pos++; }
            while (L->pos < L->len && is_digit(L->src[L->pos])) {
                if (b < sizeof buf - 1) buf[b++] = L->src[L->pos];
                L->pos++;
            }
        }
    }
    buf[b] = '\0';
    if (b >= sizeof buf - 2) lex_fail(L, start, "number literal too long");
    jn_tok *t = lex_push(L, is_float ? JT_FLOAT : JT_INT, start);
    if (is_float) {
        t->f = strtod(buf, NULL);
    } else {
        char *end;
        unsigned long long v = strtoull(buf, &end, 10);
        if (v > (unsigned long long)INT64_MAX || b > 19) lex_fail(L, start, "integer literal too large");
        t->i = (int64_t)v;
    }
}

static const char *const lex_ops2[] = { "//", "**", "==", "!=", "<=", ">=" };
static const char lex_ops1[] = "+-*/%~<>=()[]{},.:|";

/*
 * Tokens of one tag body up to its end marker (`}}` for a variable tag,
 * `%}` for a block). Returns the position just after the marker and
 * whether it had a `-` (strip following whitespace) or `+` (keep the newline).
 */
static size_t lex_tag(lexer *L, bool is_block, char *mod)
{
    const char close = is_block ? '%' : '}';
    int paren = 0;
    *mod = 0;
    for (;;) {
        while (L->pos < L->len && is_ws(L->src[L->pos])) L->pos++;
        if (L->pos >= L->len)
            lex_fail(L, L->pos, is_block ? "unclosed block tag: missing '%}'" : "unclosed variable tag: missing '}}'");
        const char *p = L->src + L->pos;
        size_t left = L->len - L->pos;
        /* end marker, optionally with - or + */
        if ((p[0] == '-' || p[0] == '+') && left >= 3 && p[1] == close && p[2] == '}' && (paren == 0 || is_block)) {
            *mod = p[0];
            lex_push(L, is_block ? JT_BLOCK_END : JT_VAR_END, L->pos);
            return L->pos + 3;
        }
        if (left >= 2 && p[0] == close && p[1] == '}' && (paren == 0 || is_block)) {
            lex_push(L, is_block ? JT_BLOCK_END : JT_VAR_END, L->pos);
            return L->pos + 2;
        }
        char c = p[0];
        if (c == '\'' || c == '"') { lex_string(L); continue; }
        if (is_digit(c)) { lex_number(L); continue; }
        if (is_name0(c)) {
            size_t s = L->pos;
            while (L->pos < L->len && (is_name0(L->src[L->pos]) || is_digit(L->src[L->pos]))) L->pos++;
            jn_tok *t = lex_push(L, JT_NAME, s);
            t->s = jn_strndup(L->ar, L->src + s, L->pos - s);
            t->n = L->pos - s;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof lex_ops2 / sizeof lex_ops2[0]; k++)
            if (left >= 2 && p[0] == lex_ops2[k][0] && p[1] == lex_ops2[k][1]) break;
        if (k < sizeof lex_ops2 / sizeof lex_ops2[0]) {
            jn_tok *t = lex_push(L, JT_OP, L->pos);
            t->s = lex_ops2[k];
            t->n = 2;
            L->pos += 2;
            continue;
        }
        const char *o = c ? strchr(lex_ops1, c) : NULL;
        if (!o) lex_fail(L, L->pos, "unexpected character in tag");
        if (c == '(' || c == '[' || c == '{') paren++;
        if ((c == ')' || c == ']' || c == '}') && paren > 0) paren--;
        jn_tok *t = lex_push(L, JT_OP, L->pos);
        t->s = o;       /* points into lex_ops1: compare with t->s[0] only */
        t->n = 1;
        L->pos++;
    }
}

void jn_lex(jn_arena *ar, const char *raw, size_t rawlen, jn_tok **toks, size_t *ntoks)
{
    lexer L = { .ar = ar, .line = 1 };
    /* newline normalisation; drop one trailing newline */
    char *src = jn_alloc(ar, rawlen + 1);
    size_t len = 0;
    for (size_t i = 0; i < rawlen; i++) {
        if (raw[i] == '\r') {
            src[len++] = '\n';
            if (i + 1 < rawlen && raw[i + 1] == '\n') i++;
        } else {
            src[len++] = raw[i];
        }
    }
    if (len && src[len - 1] == '\n') len--;
    src[len] = '\0';
    L.src = src;
    L.len = len;

    bool line_starting = true;
    while (L.pos < L.len) {
        /* next tag opener */
        size_t tag = L.pos;
        int kind = 0;   /* '{', '%', '#' */
        while (tag + 1 < L.len) {
            if (L.src[tag] == '{' && (L.src[tag + 1] == '{' || L.src[tag + 1] == '%' || L.src[tag + 1] == '#')) {
                kind = L.src[tag + 1];
                break;
            }
            tag++;
        }
        if (!kind) tag = L.len;
        size_t tstart = L.pos, tend = tag;
        char mod = kind && tag + 2 < L.len ? L.src[tag + 2] : 0;
        if (kind && mod == '-') {
            while (tend > tstart && is_ws(L.src[tend - 1])) tend--;
        } else if (kind && mod != '+' && (kind == '%' || kind == '#')) {
            size_t l = tend;
            while (l > tstart && L.src[l - 1] != '\n') l--;
            bool at_line_start = l > tstart || line_starting;
            bool blank = true;
            for (size_t i = l; i < tend; i++)
                if (L.src[i] != ' ' && L.src[i] != '\t') { blank = false; break; }
            if (at_line_start && blank) tend = l;
        }
        if (tend > tstart) {
            jn_tok *t = lex_push(&L, JT_TEXT, tstart);
            t->s = L.src + tstart;
            t->n = tend - tstart;
        }
        if (!kind) break;
        L.pos = tag + 2;
        if (mod == '-' || mod == '+') L.pos++;
        size_t after;
        char endmod;
        if (kind == '#') {
            const char *e = NULL;
            for (size_t i = L.pos; i + 1 < L.len; i++)
                if (L.src[i] == '#' && L.src[i + 1] == '}') { e = L.src + i; break; }
            if (!e) lex_fail(&L, tag, "unclosed comment: missing '#}'");
            size_t epos = (size_t)(e - L.src);
            endmod = epos > L.pos && (e[-1] == '-' || e[-1] == '+') ? e[-1] : 0;
            after = epos + 2;
        } else {
            lex_push(&L, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, tag);
            after = lex_tag(&L, kind == '%', &endmod);
        }
        L.pos = after;
        line_starting = false;
        if (endmod == '-') {
            while (L.pos < L.len && is_ws(L.src[L.pos])) L.pos++;
            line_starting = L.pos > after && L.src[L.pos - 1] == '\n';
        } else if (endmod != '+' && kind != '{' && L.pos < L.len && L.src[L.pos] == '\n') {
            L.pos++;
            line_starting = true;
        }
    }
    jn_tok *t = lex_push(&L, JT_EOF, L.len);
    (void)t;
    *toks = L.toks;
    *ntoks = L.n;
}
