/*
 * jinja_int.h - private types of the Jinja engine: arena, error sink,
 * tokens, syntax tree, values.
 *
 * Memory: the parser allocates the tree in the template's arena; a render
 * allocates every value, frame and buffer in its own arena, freed as a whole
 * when the render ends. Values are never freed one by one, so they carry no
 * reference counts; the arena's byte cap bounds what a render can allocate.
 *
 * Errors: parser and evaluator report through jn_fail(), which formats the
 * message and longjmp()s to the entry point (pio_jinja_parse/render); since
 * everything lives in an arena, unwinding needs no cleanup on the way.
 */
#ifndef PIO_CHAT_JINJA_INT_H
#define PIO_CHAT_JINJA_INT_H

#include "chat/jinja.h"

#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- error sink and arena ---------------------------------------------- */

typedef struct jn_err {
    jmp_buf jb;
    pio_status st;
    const char *name;       /* template name for messages */
    char msg[1024];
} jn_err;

/* Format "name:line:col: message" into err, then longjmp to err->jb. */
_Noreturn void jn_fail(jn_err *err, pio_status st, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 5, 6)))
#endif
    ;

typedef struct jn_chunk jn_chunk;
typedef struct jn_arena {
    jn_chunk *head;
    size_t total;           /* bytes malloc'ed so far */
    size_t cap;             /* fail with PIO_STATUS_ERR_LIMIT above this */
    jn_err *err;
} jn_arena;

void jn_arena_init(jn_arena *a, size_t cap, jn_err *err);
void jn_arena_free(jn_arena *a);
/* Zeroed, 16-byte aligned; never returns NULL (fails through a->err). */
void *jn_alloc(jn_arena *a, size_t n);
char *jn_strndup(jn_arena *a, const char *s, size_t n);

/* Growable byte buffer in an arena, capped at `max` bytes. */
typedef struct jn_buf {
    char *p;
    size_t n, cap, max;
    jn_arena *ar;
} jn_buf;

void jn_buf_init(jn_buf *b, jn_arena *ar, size_t max);
void jn_buf_put(jn_buf *b, const char *s, size_t n);
void jn_buf_puts(jn_buf *b, const char *s);
void jn_buf_putc(jn_buf *b, char c);

/* ---- tokens ------------------------------------------------------------ */

typedef enum jn_tok_type {
    JT_EOF = 0, JT_TEXT, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP,
} jn_tok_type;

typedef struct jn_tok {
    jn_tok_type type;
    int line, col;
    const char *s;          /* text, name, string value (arena, NUL-ended) or operator */
    size_t n;
    int64_t i;
    double f;
} jn_tok;

/* Tokenize src (after newline normalisation) with trim/lstrip_blocks. */
void jn_lex(jn_arena *ar, const char *src, size_t len, jn_tok **toks, size_t *ntoks);

/* ---- syntax tree ------------------------------------------------------- */

typedef enum jn_kind {
    /* expressions */
    JN_CONST, JN_NAME, JN_LIST, JN_TUPLE, JN_DICT, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL,
    JN_FILTER, JN_TEST, JN_BINOP, JN_NEG, JN_POS, JN_NOT, JN_AND, JN_OR, JN_COND, JN_CONCAT,
    /* statements */
    JN_TEXT, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_BLOCK, JN_MACRO, JN_CALL_BLOCK,
    JN_FILTER_BLOCK, JN_BREAK, JN_CONTINUE, JN_BODY,
} jn_kind;

typedef enum jn_op {
    JOP_ADD = 1, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW,
    JOP_EQ, JOP_NE, JOP_LT, JOP_LE, JOP_GT, JOP_GE, JOP_IN, JOP_NOTIN,
} jn_op;

typedef struct jv jv;
typedef struct jn_node jn_node;

/* Builtin filters and tests are resolved at parse time to a function. */
typedef struct jr jr;
typedef void (*jn_filter_fn)(jr *r, const jn_node *at, jv *res, const jv *self,
                             int nargs, const jv *args, const char *const *names);
typedef bool (*jn_test_fn)(jr *r, const jn_node *at, const jv *v, int nargs, const jv *args);

/* ---- values ------------------------------------------------------------ */

typedef enum jv_type {
    JV_UNDEF = 0, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS,          /* namespace(): a mutable dict */
    JV_LOOP,        /* the `loop` object of a for */
    JV_MACRO,       /* a user macro (or a call block's caller) */
    JV_FUNC,        /* a builtin global function */
    JV_METHOD,      /* a bound method: receiver + name */
} jv_type;

typedef struct jlist { size_t n, cap; jv *v; } jlist;
typedef struct jdict { size_t n, cap; jv *k; jv *v; } jdict;   /* insertion-ordered */
typedef struct jloop jloop;
typedef struct jmacro jmacro;
typedef struct jmethod jmethod;

struct jv {
    uint8_t t;              /* jv_type */
    uint8_t tuple;          /* JV_LIST: a Python tuple (repr with parentheses) */
    size_t n;               /* JV_STR: byte length */
    union {
        bool b;
        int64_t i;
        double f;
        const char *s;      /* JV_STR (not NUL-terminated in general); JV_UNDEF: hint or NULL */
        jlist *l;
        jdict *d;
        jloop *loop;
        jmacro *m;
        int fn;
        jmethod *meth;
    } u;
};

struct jmethod { jv self; const char *name; };

struct jn_node {
    uint8_t kind;           /* jn_kind */
    uint8_t op;             /* jn_op, or negation flag of JN_TEST */
    int line, col;
    const char *name;       /* NAME, ATTR, FILTER/TEST name, SET target, MACRO name */
    const char *attr;       /* SET ns.attr: the attribute */
    jv cval;                /* CONST */
    jn_node *a, *b, *c;     /* operands / condition / iterable / slice parts */
    jn_node **kids;         /* args, list items, body */
    const char **names;     /* parallel to kids: keyword names (NULL: positional) */
    int nkids;
    jn_node **kids2;        /* dict values, else-body, macro defaults */
    int nkids2;
    const char **targets;   /* FOR targets, MACRO / CALL_BLOCK params */
    int ntargets;
    jn_filter_fn filter;    /* FILTER, FILTER_BLOCK */
    jn_test_fn test;        /* TEST */
};

struct pio_jinja {
    jn_arena ar;
    jn_err err;
    jn_node *root;          /* JN_BODY */
    char name[128];
};

jn_node *jn_parse(jn_arena *ar, const jn_tok *toks, size_t ntoks);

/* Lookup tables of builtins (jinja_builtins.c); NULL when unknown. */
jn_filter_fn jn_filter_lookup(const char *name);
jn_test_fn jn_test_lookup(const char *name);

/* ---- rendering --------------------------------------------------------- */

typedef struct jframe jframe;
struct jframe {
    jframe *parent;
    size_t n, cap;
    const char **names;
    jv *vals;
};

struct jloop {
    const jlist *items;
    size_t i;
    int depth;
};

struct jmacro {
    const jn_node *def;     /* JN_MACRO or JN_CALL_BLOCK */
    jframe *scope;          /* where it was defined */
    const jmacro *caller;   /* the call block a macro was called with, or NULL */
};

enum { JFN_RANGE = 1, JFN_NAMESPACE, JFN_RAISE, JFN_DICT, JFN_STRFTIME };

struct jr {
    jn_err *err;
    jn_arena ar;
    pio_jinja_limits lim;
    uint64_t steps;
    int depth;
    jframe *top;            /* the template's top-level frame */
};

_Noreturn void jr_fail(jr *r, const jn_node *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
_Noreturn void jr_fail_st(jr *r, pio_status st, const jn_node *at, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* jinja_value.c: constructors, conversions, comparisons */
jv jv_undef(const char *hint);
jv jv_none(void);
jv jv_bool(bool b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const char *s, size_t n);
jv jv_cstr(const char *s);
jv jv_list(jr *r, size_t cap);
jv jv_dict(jr *r, size_t cap);
void jv_list_push(jr *r, jlist *l, jv v);
/* Set key k (insert or replace). */
void jv_dict_set(jr *r, jdict *d, jv k, jv v);
/* Value of key k, or NULL. */
jv *jv_dict_get(const jdict *d, const jv *k);
jv *jv_dict_gets(const jdict *d, const char *k, size_t n);
const char *jv_type_name(const jv *v);
bool jv_truthy(const jv *v);
bool jv_equal(const jv *a, const jv *b);
/* Set by pio_jinja_render for its duration (jv_equal fails through it). */
extern _Thread_local jr *jv_current_render;
/* <0, 0, >0; fails for types Python cannot order. */
int jv_compare(jr *r, const jn_node *at, const jv *a, const jv *b);
/* Python str(v) / repr(v) appended to b. */
void jv_to_str(jr *r, jn_buf *b, const jv *v);
void jv_repr(jr *r, jn_buf *b, const jv *v);
/* str(v) as a value (strings are returned as is). */
jv jv_as_str(jr *r, const jv *v);
/* json.dumps(v, ensure_ascii, indent (<0: none), sort_keys). */
void jv_to_json(jr *r, const jn_node *at, jn_buf *b, const jv *v, bool ensure_ascii, int indent,
                bool sort_keys, int level);
void jv_fmt_float(char *buf, size_t cap, double f);
jv jv_from_cjson(jr *r, const cJSON *j, int depth);
/* Number of code points of a UTF-8 string; byte offset of code point k. */
size_t jv_utf8_len(const char *s, size_t n);
size_t jv_utf8_offset(const char *s, size_t n, size_t k);
/* Decode one code point at s (n bytes left); returns its byte length (>= 1). */
size_t jv_utf8_next(const char *s, size_t n, unsigned *cp);
/* Python str.isspace() for one code point. */
bool jv_is_space(unsigned cp);
/* Iteration view: lists as is, dict keys, string code points, undefined = []. */
const jlist *jv_iter(jr *r, const jn_node *at, const jv *v);
/* Python-like getattr-then-getitem (obj.name) and getitem-then-getattr (obj[k]). */
jv jv_getattr(jr *r, const jn_node *at, const jv *obj, const char *name);
jv jv_getitem(jr *r, const jn_node *at, const jv *obj, const jv *key);
/* Python's str.strip family with chars==NULL meaning Unicode whitespace. */
jv jv_strip(jr *r, const jv *s, const jv *chars, bool left, bool right);

/* jinja_eval.c: calling a callable (macro, builtin, method) */
jv jr_call(jr *r, const jn_node *at, const jv *fn, int nargs, const jv *args, const char *const *names);
void jr_step(jr *r, const jn_node *at);
/* Charge work that allocates nothing (scans, comparisons) to the step budget:
 * one step per 64 bytes or per element, so it is bounded like loops are. */
void jr_charge(jr *r, const jn_node *at, size_t work);
/* Apply a named filter / test at run time (map, select, reject). */
jv jr_apply_filter_name(jr *r, const jn_node *at, const char *name, const jv *self, int nargs,
                        const jv *args);
bool jr_apply_test_name(jr *r, const jn_node *at, const char *name, const jv *v, int nargs,
                        const jv *args);

/* jinja_builtins.c: methods of str, dict, list, loop */
bool jn_method_exists(const jv *self, const char *name);
jv jn_method_call(jr *r, const jn_node *at, const jmethod *m, int nargs, const jv *args,
                  const char *const *names);

#endif /* PIO_CHAT_JINJA_INT_H */
