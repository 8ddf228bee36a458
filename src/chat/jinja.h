/*
 * jinja.h - a Jinja2 template engine for chat templates (libpio-internal).
 *
 * Parses the subset of Jinja2 that Hugging Face chat templates use and
 * renders it with the semantics of Python Jinja2 as transformers configures
 * it: trim_blocks and lstrip_blocks on, keep_trailing_newline off, Python
 * string forms (True/False/None), Python truthiness, the default Undefined
 * (prints as "", errors on attribute access or arithmetic), `tojson` as
 * json.dumps(ensure_ascii=False) and the globals raise_exception,
 * strftime_now, namespace, range and dict.
 *
 * A construct the engine does not know (an unknown tag, filter or test) is
 * a parse error with line and column; a runtime error (an undefined used in
 * arithmetic, a template's raise_exception, a limit) fails the render with
 * line and column. Nothing is ever rendered half-way silently.
 *
 * Hostile templates are bounded by pio_jinja_limits: evaluation steps (loop
 * iterations and node evaluations), recursion depth, output size and the
 * memory one render may allocate.
 */
#ifndef PIO_CHAT_JINJA_H
#define PIO_CHAT_JINJA_H

#include "pio/pio.h"

#include <cjson/cJSON.h>

typedef struct pio_jinja pio_jinja;

typedef struct pio_jinja_limits {
    uint64_t max_steps;    /* node evaluations + loop iterations per render */
    int max_depth;         /* nested evaluation depth (macro recursion, nesting) */
    size_t max_output;     /* bytes of any rendered or captured text */
    size_t max_memory;     /* bytes the render may allocate in all */
} pio_jinja_limits;

/* Defaults: 50M steps, depth 400, 64 MiB output, 512 MiB memory. */
void pio_jinja_limits_default(pio_jinja_limits *lim);

/*
 * Parse template text src[0..len) (need not be NUL-terminated); `name` is
 * used in error messages ("name:line:col: ..."). Cost: O(len).
 */
pio_status pio_jinja_parse(const char *src, size_t len, const char *name, pio_jinja **out);

/*
 * Render with the variables of the JSON object `ctx` (NULL: none).
 * *out is malloc'ed, NUL-terminated, *out_len bytes (out_len may be NULL).
 * lim NULL: the defaults. On failure *out is NULL and the message says
 * where and why. The template is not modified: renders may run in parallel.
 */
pio_status pio_jinja_render(const pio_jinja *t, const cJSON *ctx, const pio_jinja_limits *lim,
                            char **out, size_t *out_len);

void pio_jinja_free(pio_jinja *t);

#endif /* PIO_CHAT_JINJA_H */
