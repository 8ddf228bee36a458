/*
 * requantize.c - convert a model's weight matrices in memory at load time
 * ("quantize on load", `--dtype`).
 *
 * A spec names the dtype for the 2-D ".weight" tensors (and 3-D stacks of
 * MoE expert matrices, converted as one matrix of n_expert·rows rows) and per-tensor
 * overrides by fnmatch pattern; each selected matrix is converted row by row
 * on a thread pool into a buffer the pio_weights owns, and lookups return
 * the converted tensor from then on (pio_weights_replace). Norms and other
 * 1-D tensors are never touched: the model code copies them to f32.
 */
#include "formats_int.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Target of a spec item: a dtype, or keep the tensor as stored. */
#define RQ_KEEP (-2)
#define RQ_NONE (-1)

typedef struct rq_rule {
    char *pattern;      /* fnmatch pattern; NULL for the default item */
    int dtype;          /* pio_dtype, or RQ_KEEP */
} rq_rule;

typedef struct rq_spec {
    int dflt;           /* for 2-D ".weight" tensors: pio_dtype, RQ_KEEP or RQ_NONE */
    int n_rules;
    rq_rule *rules;     /* (n_rules) overrides, applied in order: the last match wins */
    char *buf;          /* the spec's copy the patterns point into */
} rq_spec;

static void rq_spec_free(rq_spec *sp)
{
    free(sp->rules);
    free(sp->buf);
    memset(sp, 0, sizeof *sp);
}

/* The dtypes a spec may ask for, by their lower-case name; "keep" = as stored. */
static int rq_parse_type(const char *s)
{
    static const pio_dtype ok[] = { PIO_DTYPE_F32, PIO_DTYPE_F16, PIO_DTYPE_BF16, PIO_DTYPE_Q8_0,
                                    PIO_DTYPE_Q4_0, PIO_DTYPE_Q4_K, PIO_DTYPE_Q6_K };
    int dt;
    if (!strcasecmp(s, "keep"))
        return RQ_KEEP;
    dt = pio_dtype_from_name(s);
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (dt == (int)ok[i])
            return dt;
    return RQ_NONE;
}

static char *rq_trim(char *s)
{
    char *e;
    while (*s == ' ' || *s == '\t')
        s++;
    e = s + strlen(s);
    while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
        *--e = '\0';
    return s;
}

/*
 * Parse "TYPE[,PATTERN=TYPE]..." (items in any order; a later default
 * replaces an earlier one). Errors are ERR_INVALID_ARG naming the item.
 */
static pio_status rq_spec_parse(const char *spec, rq_spec *sp)
{
    pio_status st = PIO_STATUS_OK;
    char *save = NULL, *item;
    int n_items = 1;

    memset(sp, 0, sizeof *sp);
    sp->dflt = RQ_NONE;
    if (!spec || !*spec)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "dtype spec is empty");
    for (const char *p = spec; *p; p++)
        n_items += *p == ',';
    sp->buf = strdup(spec);
    sp->rules = calloc((size_t)n_items, sizeof *sp->rules);
    if (!sp->buf || !sp->rules) {
        rq_spec_free(sp);
        return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory parsing dtype spec");
    }
    /* strtok_r would merge empty items, which should be errors */
    for (item = sp->buf; item; item = save) {
        char *eq, *type;
        int dt;
        save = strchr(item, ',');
        if (save)
            *save++ = '\0';
        item = rq_trim(item);
        if (!*item) {
            st = pio_error(PIO_STATUS_ERR_INVALID_ARG, "dtype spec \"%s\": empty item", spec);
            goto fail;
        }
        eq = strrchr(item, '=');
        type = eq ? rq_trim(eq + 1) : item;
        if (eq) {
            *eq = '\0';
            item = rq_trim(item);
            if (!*item) {
                st = pio_error(PIO_STATUS_ERR_INVALID_ARG,
                               "dtype spec \"%s\": \"=%s\" has no tensor name pattern", spec, type);
                goto fail;
            }
        }
        dt = rq_parse_type(type);
        if (dt == RQ_NONE) {
            st = pio_error(PIO_STATUS_ERR_INVALID_ARG,
                           "dtype spec \"%s\": unknown type \"%s\" (expected f32, f16, bf16, q8_0, "
                           "q4_0, q4_k, q6_k or keep)", spec, type);
            goto fail;
        }
        if (eq) {
            sp->rules[sp->n_rules].pattern = item;
            sp->rules[sp->n_rules++].dtype = dt;
        } else {
            sp->dflt = dt;
        }
    }
    return PIO_STATUS_OK;
fail:
    rq_spec_free(sp);
    return st;
}

pio_status pio_requant_spec_check(const char *spec)
{
    rq_spec sp;
    pio_status st = rq_spec_parse(spec, &sp);
    if (st == PIO_STATUS_OK)
        rq_spec_free(&sp);
    return st;
}

static bool rq_ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* A 3-D stack of MoE expert matrices [n_expert, rows, cols]: transformers'
 * fused "...mlp.experts.gate_up_proj" / "down_proj", GGUF's ffn_*_exps. */
static bool rq_expert_stack(const pio_tensor *t)
{
    return t->n_dims == 3 && strstr(t->name, ".experts.") != NULL;
}

/* t as a matrix of rows x cols (an expert stack as n_expert·rows rows). */
static void rq_matrix_shape(const pio_tensor *t, int64_t *rows, int64_t *cols)
{
    *rows = t->n_dims == 3 ? t->shape[0] * t->shape[1] : t->shape[0];
    *cols = t->shape[t->n_dims - 1];
}

/* What the spec asks for tensor t: a dtype, RQ_KEEP, or RQ_NONE (not selected). */
static int rq_target(const rq_spec *sp, const pio_tensor *t)
{
    int dt = RQ_NONE;
    if (t->n_dims != 2 && !rq_expert_stack(t))
        return RQ_NONE;
    if (rq_ends_with(t->name, ".weight") || rq_expert_stack(t))
        dt = sp->dflt;
    for (int i = 0; i < sp->n_rules; i++)
        if (fnmatch(sp->rules[i].pattern, t->name, 0) == 0)
            dt = sp->rules[i].dtype;
    return dt;
}

/*
 * A type whose blocks fit rows of `cols` when `dt`'s do not: the K-quants
 * fall back to the 32-wide format of about the same size (Q4_K -> Q4_0,
 * Q6_K -> Q8_0), as llama.cpp falls back for such tensors. RQ_KEEP if none.
 */
static int rq_fit(int dt, int64_t cols)
{
    if (cols % pio_dtype_block_elems((pio_dtype)dt) == 0)
        return dt;
    if (dt == PIO_DTYPE_Q4_K && cols % PIO_QK4_0 == 0)
        return PIO_DTYPE_Q4_0;
    if (dt == PIO_DTYPE_Q6_K && cols % PIO_QK8_0 == 0)
        return PIO_DTYPE_Q8_0;
    return RQ_KEEP;
}

/* One tensor's conversion, split over the pool by row ranges. */
typedef struct rq_job {
    const pio_tensor *src;
    pio_dtype dst_dtype;
    void *dst;
    int64_t rows, cols;
    int64_t rows_per_task;
    size_t src_row_bytes, dst_row_bytes;
    float *scratch;     /* [n_threads][cols] f32 rows for non-f32 sources */
} rq_job;

static void rq_task(void *ctx, int task, int thread)
{
    rq_job *j = ctx;
    int64_t r0 = (int64_t)task * j->rows_per_task;
    int64_t r1 = r0 + j->rows_per_task < j->rows ? r0 + j->rows_per_task : j->rows;
    float *row = j->scratch + (size_t)thread * (size_t)j->cols;

    for (int64_t r = r0; r < r1; r++) {
        const char *s = (const char *)j->src->data + (size_t)r * j->src_row_bytes;
        char *d = (char *)j->dst + (size_t)r * j->dst_row_bytes;
        const float *x = (const float *)(const void *)s;
        if (j->src->dtype != PIO_DTYPE_F32) {
            pio_convert_to_f32(row, s, j->src->dtype, j->cols);
            x = row;
        }
        pio_quantize_row(j->dst_dtype, x, d, j->cols);
    }
}

/* Convert tensor index i of w to dt on the pool; replaces it in w. */
static pio_status rq_convert(pio_weights *w, int i, pio_dtype dt, pio_threadpool *tp, float *scratch)
{
    const pio_tensor *src = pio_weights_at(w, i);
    pio_tensor t = *src;
    rq_job job;
    size_t nbytes, alloc;
    void *dst;
    int n_threads = pio_threadpool_size(tp), n_tasks;

    job.src = src;
    job.dst_dtype = dt;
    rq_matrix_shape(src, &job.rows, &job.cols);
    job.src_row_bytes = pio_dtype_row_bytes(src->dtype, job.cols);
    job.dst_row_bytes = pio_dtype_row_bytes(dt, job.cols);
    job.scratch = scratch;
    nbytes = (size_t)job.rows * job.dst_row_bytes;
    alloc = (nbytes + 63) & ~(size_t)63;
    dst = aligned_alloc(64, alloc ? alloc : 64);
    if (!dst)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory converting tensor \"%s\" to %s (%zu bytes)",
                         src->file, src->name, pio_dtype_name(dt), nbytes);
    job.dst = dst;
    /* about 8 tasks per thread balance uneven threads without tiny tasks */
    job.rows_per_task = job.rows / ((int64_t)n_threads * 8);
    if (job.rows_per_task < 1)
        job.rows_per_task = 1;
    n_tasks = (int)((job.rows + job.rows_per_task - 1) / job.rows_per_task);
    pio_threadpool_run(tp, n_tasks, rq_task, &job);

    t.dtype = dt;
    t.data = dst;
    t.nbytes = nbytes;
    return pio_weights_replace(w, i, &t, dst);
}

static bool rq_source_ok(pio_dtype dt)
{
    return dt == PIO_DTYPE_F32 || dt == PIO_DTYPE_F16 || dt == PIO_DTYPE_BF16 || pio_dtype_is_quantized(dt);
}

pio_status pio_weights_requantize(pio_weights *w, const char *spec, int n_threads, pio_requant_stats *stats)
{
    pio_requant_stats local;
    pio_threadpool *tp = NULL;
    float *scratch = NULL;
    int64_t max_cols = 0;
    rq_spec sp;
    pio_status st;
    int n = pio_weights_count(w), *plan = NULL;

    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    if (!w)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "requantize: no weights");
    st = rq_spec_parse(spec, &sp);
    if (st)
        return st;

    /* Decide every tensor's dtype first (the plan), then convert. A failure
     * midway (out of memory) leaves the tensors done so far converted: each
     * lookup still sees one complete tensor. */
    plan = malloc(((size_t)n + 1) * sizeof *plan);
    if (!plan) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "requantize: out of memory");
        goto free_spec;
    }
    for (int i = 0; i < n; i++) {
        const pio_tensor *t = pio_weights_at(w, i);
        int dt = rq_target(&sp, t);
        int64_t rows, cols;
        plan[i] = RQ_NONE;
        if (dt == RQ_NONE)
            continue;
        rq_matrix_shape(t, &rows, &cols);
        if (dt != RQ_KEEP && rq_source_ok(t->dtype) && rows >= 0 && cols > 0 &&
            cols % pio_dtype_block_elems(t->dtype) == 0) {
            int fit = rq_fit(dt, cols);
            if (fit != dt && fit != RQ_KEEP)
                stats->n_fallback++;
            dt = fit;
        } else {
            dt = RQ_KEEP;
        }
        if (dt == RQ_KEEP || dt == (int)t->dtype) {
            stats->n_kept++;
            continue;
        }
        plan[i] = dt;
        if (cols > max_cols)
            max_cols = cols;
    }

    st = pio_threadpool_new(n_threads, &tp);
    if (st)
        goto free_plan;
    scratch = malloc((size_t)pio_threadpool_size(tp) * (size_t)(max_cols ? max_cols : 1) * sizeof(float));
    if (!scratch) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "requantize: out of memory for %lld-float rows",
                       (long long)max_cols);
        goto free_pool;
    }
    for (int i = 0; i < n; i++) {
        int64_t before;
        if (plan[i] == RQ_NONE)
            continue;
        before = (int64_t)pio_weights_at(w, i)->nbytes;
        st = rq_convert(w, i, (pio_dtype)plan[i], tp, scratch);
        if (st)
            goto free_scratch;
        stats->n_converted++;
        stats->bytes_before += before;
        stats->bytes_after += (int64_t)pio_weights_at(w, i)->nbytes;
    }

free_scratch:
    free(scratch);
free_pool:
    pio_threadpool_free(tp);
free_plan:
    free(plan);
free_spec:
    rq_spec_free(&sp);
    return st;
}
