/*
 * matmul.c - y = x·Wᵀ on top of the kernel table (dispatch.h).
 *
 * One call:
 *   1. activations are converted once to the format W's dtype pairs with
 *      (f32 as given; PIO_ACT_Q8 for Q8_0/Q4_0; Q8_K for Q4_K/Q6_K), split
 *      over the pool by token rows when the batch is large;
 *   2. output rows are split into tasks handed out by the pool's atomic
 *      counter. Decode (n <= GEMV_MAX_N): each task streams its rows of W
 *      once through a tile kernel over all tokens; task sizes shrink
 *      geometrically (guided scheduling: each takes 1/3 of what a thread has
 *      left, at least GEMV_MIN_ROWS), so the thread that finishes first waits
 *      for one small task, not 1/16 of the matmul as with equal tasks.
 *      Prefill: a task is a block of ROW_BLOCK rows (or the level's
 *      pack_rows for its packed path); k is cut into blocks of KC columns
 *      and tokens into blocks of TB, so a (rows x KC) panel of W stays in
 *      L1/L2 while every token block passes over it: W is read from
 *      memory once per call, activations once per row block from L2/L3.
 *      F16/BF16 panels are converted to f32 once per task and thread; a level
 *      may instead pack panels into its own layout (kernels->pack). The next
 *      panel is prefetched while the current one is computed.
 *   3. pio_matmul_multi: matrices of the same x (q/k/v, gate/up) share one
 *      activation conversion; in decode also one pool round planned over
 *      all their rows, while prefill runs them one after the other.
 * Scratch comes from a small process-wide cache (no malloc per call once
 * warm); it is reachable from a global at all times, so nothing leaks.
 */
#include "kernels/dispatch.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define GEMV_MAX_N 4         /* n up to this: decode path */
#define GEMV_SHARE 3         /* decode task = remaining rows / (GEMV_SHARE·threads) */
#define GEMV_MIN_ROWS 16     /* smallest decode task (two 8-row groups of an X8 layout) */
#define GEMV_MAX_TASKS 128
#define ROW_BLOCK 32         /* prefill rows per task (multiple of the 4-row micro-kernel) */
#define KC_QUANT 4096        /* at most this k block for quantized W (equal blocks, multiples of 256) */
#define KC_FLOAT 512         /* prefill k block for float W (f32 panel of 2 KiB per row) */
#define KC_FLOAT_PACKED 2048 /* at most this k block for packed float panels (equal blocks, multiples of 16) */
#define X_BLOCK_BYTES (96 * 1024)  /* token block: activations of one k block kept in L2 */
#define QUANT_ROWS_PER_TASK 8
#define PACK_MIN_N 16        /* packing a panel (~40 ops per row and block) pays from ~12 tokens */

/* ---- scratch cache ---------------------------------------------------------- */

#define SCRATCH_SLOTS 4
static pthread_mutex_t scratch_mu = PTHREAD_MUTEX_INITIALIZER;
static struct { void *p; size_t size; } scratch_slot[SCRATCH_SLOTS];

/* A 64-byte aligned buffer of at least `size` bytes; NULL when out of memory. */
static void *scratch_get(size_t size, size_t *got)
{
    void *p = NULL;
    int i, best = -1;
    size = (size + 63) & ~(size_t)63;
    pthread_mutex_lock(&scratch_mu);
    for (i = 0; i < SCRATCH_SLOTS; i++)
        if (scratch_slot[i].p && scratch_slot[i].size >= size &&
            (best < 0 || scratch_slot[i].size < scratch_slot[best].size))
            best = i;
    if (best >= 0) {
        p = scratch_slot[best].p;
        *got = scratch_slot[best].size;
        scratch_slot[best].p = NULL;
    }
    pthread_mutex_unlock(&scratch_mu);
    if (!p) {
        p = aligned_alloc(64, size);
        *got = size;
    }
    return p;
}

/* Return a buffer to the cache (the smallest cached one is dropped when full). */
static void scratch_put(void *p, size_t size)
{
    int i, victim = 0;
    void *drop = NULL;
    if (!p)
        return;
    pthread_mutex_lock(&scratch_mu);
    for (i = 0; i < SCRATCH_SLOTS; i++) {
        if (!scratch_slot[i].p) {
            victim = i;
            break;
        }
        if (scratch_slot[i].size < scratch_slot[victim].size)
            victim = i;
    }
    if (scratch_slot[victim].p && scratch_slot[victim].size >= size) {
        drop = p;                           /* every slot holds a bigger buffer */
    } else {
        drop = scratch_slot[victim].p;
        scratch_slot[victim].p = p;
        scratch_slot[victim].size = size;
    }
    pthread_mutex_unlock(&scratch_mu);
    free(drop);
}

/* Free the cached buffers when the library is unloaded. */
__attribute__((destructor)) static void scratch_release_all(void)
{
    int i;
    for (i = 0; i < SCRATCH_SLOTS; i++) {
        free(scratch_slot[i].p);
        scratch_slot[i].p = NULL;
    }
}

/* ---- activation conversion ------------------------------------------------- */

typedef struct quant_job {
    const pio_kernels *kt;
    int kind;                 /* pio_act_kind */
    const float *x;           /* [n][k] */
    uint8_t *xq;              /* [n][x_stride] */
    size_t x_stride;
    int64_t k;
    int n;
} quant_job;

/* Quantize activation rows [8·task, 8·task + 8) of the job (pool task). */
static void quant_task(void *p, int task, int thread)
{
    quant_job *job = p;
    int t0 = task * QUANT_ROWS_PER_TASK, t;
    int t1 = t0 + QUANT_ROWS_PER_TASK < job->n ? t0 + QUANT_ROWS_PER_TASK : job->n;
    (void)thread;
    for (t = t0; t < t1; t++) {
        const float *xt = job->x + (size_t)t * (size_t)job->k;
        void *out = job->xq + (size_t)t * job->x_stride;
        if (job->kind == PIO_ACT_Q8)
            job->kt->quantize_q8(xt, out, job->k);
        else
            job->kt->quantize_q8_K(xt, out, job->k);
    }
}

/* x[n][cols] (f32) -> out[n][x_stride] in activation format `kind`, on the
 * pool when there are more than QUANT_ROWS_PER_TASK rows. */
static void convert_x(const pio_kernels *kt, pio_threadpool *tp, int kind, const float *x, int n,
                      int64_t cols, size_t x_stride, uint8_t *out)
{
    quant_job qj = { kt, kind, x, out, x_stride, cols, n };
    pio_threadpool_run(n > QUANT_ROWS_PER_TASK ? tp : NULL,
                       (n + QUANT_ROWS_PER_TASK - 1) / QUANT_ROWS_PER_TASK, quant_task, &qj);
}

/* ---- the matmul tasks ------------------------------------------------------- */

typedef struct mm_job {
    const pio_kernels *kt;
    const pio_wmat *w;
    int kind;                 /* pio_act_kind */
    float *y;                 /* [n][rows] */
    int n;
    const uint8_t *x;         /* [n][x_stride] activations in `kind` format */
    size_t x_stride;
    size_t w_stride;          /* bytes per row of W */
    int64_t task_rows;
    int64_t *bounds;          /* decode: task i is rows [bounds[i], bounds[i+1]); or NULL */
    int64_t kc;               /* k block */
    int tb;                   /* token block */
    float *panel;             /* [threads][task_rows][kc] f32 panels, or NULL */
    uint8_t *packed;          /* [threads][pack_bytes] level-packed panels, or NULL */
    size_t pack_bytes;
    int n_tasks, n_threads;
} mm_job;

/* Bytes from the start of a row (X8 layouts: of an 8-row group) to column c
 * (c at a block/group boundary). */
static size_t w_offset(pio_dtype dt, int64_t c)
{
    if (pio_dtype_is_x8(dt))
        return PIO_X8_ROWS * pio_dtype_row_bytes(dt, c);
    return pio_dtype_is_quantized(dt) ? pio_dtype_row_bytes(dt, c) : (size_t)c * pio_dtype_size(dt);
}

/* Bytes from the start of an activation row to column c (c at a group boundary). */
static size_t x_offset(int kind, int64_t c)
{
    return pio_act_row_bytes((pio_act_kind)kind, c);
}

/*
 * Prefill: prefetch part `part` of `parts` of the W panel rows [r0, r0 + nr)
 * x columns [c, c + kc) towards the cache. A panel's rows are short runs
 * (1 KiB of bf16, 544 bytes of Q8_0) a whole row apart, which the hardware
 * prefetchers barely follow: packing a panel straight from DRAM waited on
 * every line (12-17% of pp512 in pack_*). Spread over the token blocks of
 * the panel before it, the next panel arrives while this one is computed.
 */
static void prefetch_panel(const mm_job *job, int64_t r0, int nr, int64_t c, int64_t kc,
                           int part, int parts)
{
    const pio_wmat *w = job->w;
    int64_t unit = pio_dtype_is_x8(w->dtype) ? PIO_X8_ROWS : 1;  /* rows per run */
    int64_t runs = (nr + unit - 1) / unit, i;
    size_t off = w_offset(w->dtype, c), len = w_offset(w->dtype, c + kc) - off;
    const uint8_t *base = (const uint8_t *)w->data + (size_t)r0 * job->w_stride + off;

    for (i = runs * part / parts; i < runs * (part + 1) / parts; i++) {
        const uint8_t *p = base + (size_t)(i * unit) * job->w_stride;
        uintptr_t a = (uintptr_t)p & ~(uintptr_t)63, end = (uintptr_t)p + len;
        for (; a < end; a += 64)
            __builtin_prefetch((const void *)a, 0, 2);
    }
}

/*
 * The task's output rows (decode: from job->bounds; prefill: [task·task_rows,
 * +task_rows)) for all tokens: for each k block,
 * (pack or convert the panel, then) one tile call per token block; the first
 * k block stores into y, later ones add.
 */
static void mm_task(void *p, int task, int thread)
{
    mm_job *job = p;
    const pio_wmat *w = job->w;
    int64_t r0 = job->bounds ? job->bounds[task] : (int64_t)task * job->task_rows;
    int nr = job->bounds ? (int)(job->bounds[task + 1] - r0)
                         : (int)(r0 + job->task_rows < w->rows ? job->task_rows : w->rows - r0);
    const uint8_t *wrow = (const uint8_t *)w->data + (size_t)r0 * job->w_stride;
    pio_tile_fn tile = job->kt->tile[w->dtype];
    int64_t c0, pf_r0 = 0, pf_c = 0, pf_kc = 0;
    int t0, blk, pf_nr = 0, n_blk = (job->n + job->tb - 1) / job->tb;
    bool pf_next = false;

    for (c0 = 0; c0 < w->cols; c0 += job->kc) {
        int64_t kcur = w->cols - c0 < job->kc ? w->cols - c0 : job->kc;
        const void *wp = wrow + w_offset(w->dtype, c0);
        size_t ws = job->w_stride;
        const uint8_t *xb = job->x + x_offset(job->kind, c0);

        if (job->packed) {                  /* level-specific panel, once per k block */
            uint8_t *pk = job->packed + (size_t)thread * job->pack_bytes;
            job->kt->pack[w->dtype](pk, wp, job->w_stride, nr, kcur);
            wp = pk;
            ws = 0;
            tile = job->kt->tile_packed[w->dtype];
        } else if (job->panel) {            /* F16/BF16 -> f32 panel, once per k block */
            float *pan = job->panel + (size_t)thread * (size_t)job->task_rows * (size_t)job->kc;
            int r;
            for (r = 0; r < nr; r++)
                job->kt->to_f32(pan + (size_t)r * (size_t)kcur,
                                (const uint8_t *)wp + (size_t)r * job->w_stride, w->dtype, kcur);
            wp = pan;
            ws = (size_t)kcur * sizeof(float);
            tile = job->kt->tile[PIO_DTYPE_F32];
        }
        /* prefill: the panel after this one (next k block, else the first
         * of the task this thread most likely takes next) */
        if (!job->bounds) {
            int64_t nc = c0 + job->kc, pr0 = r0;
            int pnr = nr, next = task + job->n_threads;
            if (nc >= w->cols) {
                nc = 0;
                pr0 = (int64_t)next * job->task_rows;
                pnr = next < job->n_tasks ? (int)(pr0 + job->task_rows < w->rows ? job->task_rows
                                                                                  : w->rows - pr0) : 0;
            }
            pf_next = pnr > 0;
            pf_r0 = pr0;
            pf_nr = pnr;
            pf_c = nc;
            pf_kc = w->cols - nc < job->kc ? w->cols - nc : job->kc;
        }
        for (t0 = 0, blk = 0; t0 < job->n; t0 += job->tb, blk++) {
            int nt = job->n - t0 < job->tb ? job->n - t0 : job->tb;
            if (pf_next)
                prefetch_panel(job, pf_r0, pf_nr, pf_c, pf_kc, blk, n_blk);
            tile(kcur, nr, nt, wp, ws, xb + (size_t)t0 * job->x_stride, job->x_stride,
                 job->y + (size_t)t0 * (size_t)w->rows + (size_t)r0, (size_t)w->rows, c0 > 0);
        }
    }
}

/* Bytes per row of W as the tile kernels step through it. */
static size_t w_stride_of(const pio_wmat *w, int kind)
{
    return kind == PIO_ACT_F32 ? (size_t)w->cols * pio_dtype_size(w->dtype)
                               : pio_dtype_row_bytes(w->dtype, w->cols);
}

/*
 * Prefill (n > GEMV_MAX_N): a task is a block of ROW_BLOCK (or pack_rows)
 * rows; k is cut into blocks and tokens into blocks (see the top of the file). xq: x
 * already converted to W's activation format, or NULL to convert it here.
 */
static pio_status matmul_prefill(const pio_kernels *kt, pio_threadpool *tp, float *y,
                                 const float *x, const uint8_t *xq, int n, const pio_wmat *w)
{
    int n_threads = pio_threadpool_size(tp);
    int kind = pio_act_kind_of(w->dtype);
    mm_job job;
    uint8_t *buf = NULL;
    size_t buf_size = 0, got = 0, x_bytes = 0, panel_bytes = 0, xb;
    int n_tasks;
    bool packed;

    memset(&job, 0, sizeof job);
    job.kt = kt;
    job.w = w;
    job.kind = kind;
    job.y = y;
    job.n = n;
    job.w_stride = w_stride_of(w, kind);
    job.x_stride = pio_act_row_bytes((pio_act_kind)kind, w->cols);
    job.task_rows = ROW_BLOCK;
    /* Below PACK_MIN_N tokens, k is not blocked: each row then sums in
     * the decode path's order, so a token's row is bit-identical whether
     * it runs alone or in a batch of up to PACK_MIN_N-1 (batch invariance
     * for the server; blocking k would cost decode ~20% instead). */
    /* A float matrix whose k fits one block keeps the f32 panel and
     * tile_f32, which sum in the decode path's order; the packed float
     * kernels change the order, so they run only where k blocking
     * already has (the server's recompute after preemption then stays
     * exact on small float models). */
    packed = kt->pack[w->dtype] && n >= PACK_MIN_N && (kind != PIO_ACT_F32 || w->cols > KC_FLOAT);
    /* k in equal blocks of at most KC_QUANT columns (whole 256-value
     * activation groups) for quantized W, and of at most KC_FLOAT_PACKED
     * (a multiple of 16) for packed float panels. Each block after the
     * first adds into y again, and fewer passes measured faster as long as
     * a 32-row panel stays well inside L2: on Qwen3-4B's GEMMs, KC_QUANT
     * 4096 against 1024 gave Q8_0 +7-14% and Q4_0/Q4_K up to +20% (k =
     * 9728: 3 passes instead of 10), KC_FLOAT_PACKED 2048 against 512
     * gave BF16 +3-10% (5 passes instead of 19; 256 KiB of f32 panel),
     * while larger float blocks lost again at k = 9728. */
    if (n < PACK_MIN_N) {
        job.kc = w->cols;
    } else if (kind != PIO_ACT_F32 || packed) {
        int64_t max = kind != PIO_ACT_F32 ? KC_QUANT : KC_FLOAT_PACKED;
        int64_t unit = kind != PIO_ACT_F32 ? PIO_ACT_Q8_GROUP : 16;
        int64_t nblk = (w->cols + max - 1) / max;
        job.kc = ((w->cols + nblk - 1) / nblk + unit - 1) / unit * unit;
    } else {
        job.kc = KC_FLOAT;
    }
    if (job.kc > w->cols)
        job.kc = w->cols;
    xb = pio_act_row_bytes((pio_act_kind)kind, job.kc);
    job.tb = (int)(X_BLOCK_BYTES / (xb ? xb : 1));
    job.tb = job.tb < 4 ? 4 : job.tb > 64 ? 64 : job.tb & ~1;
    if (packed && kind == PIO_ACT_F32)     /* whole micro-kernels: the packed float tiles (AVX2,
                                           * AVX512BF16) take 6 tokens at a time */
        job.tb = job.tb < 12 ? 12 : job.tb / 6 * 6;
    if (packed) {
        /* A level's packed path may ask for taller tasks: each task streams
         * the activations of its k block from L2/L3 once, so taller tasks cut
         * that traffic (BF16 on avx512bf16, Qwen3-4B GEMMs at n = 512: 128
         * rows gave 189-193 GMAC/s against 102-166 with 32). Halved while
         * there would be fewer than 4 tasks per thread. */
        int64_t want = kt->pack_rows[w->dtype];
        while (want > ROW_BLOCK && (w->rows + want - 1) / want < 4 * (int64_t)n_threads)
            want /= 2;
        if (want > ROW_BLOCK)
            job.task_rows = want;
        job.pack_bytes = (kt->pack_size[w->dtype]((int)job.task_rows, job.kc) + 63) & ~(size_t)63;
        panel_bytes = (size_t)n_threads * job.pack_bytes;
    } else if (w->dtype == PIO_DTYPE_F16 || w->dtype == PIO_DTYPE_BF16) {
        panel_bytes = (size_t)n_threads * ROW_BLOCK * (size_t)job.kc * sizeof(float);
    }
    if (kind != PIO_ACT_F32 && !xq)
        x_bytes = (size_t)n * job.x_stride;
    buf_size = ((x_bytes + 63) & ~(size_t)63) + panel_bytes;
    if (buf_size) {
        buf = scratch_get(buf_size, &got);
        if (!buf)
            return pio_error(PIO_STATUS_ERR_NOMEM, "matmul: out of memory for %zu bytes of scratch",
                             buf_size);
    }
    x_bytes = (x_bytes + 63) & ~(size_t)63;
    if (panel_bytes && job.pack_bytes)
        job.packed = buf + x_bytes;
    else if (panel_bytes)
        job.panel = (float *)(buf + x_bytes);

    if (kind == PIO_ACT_F32) {
        job.x = (const uint8_t *)x;
    } else if (xq) {
        job.x = xq;
    } else {
        convert_x(kt, tp, kind, x, n, w->cols, job.x_stride, buf);
        job.x = buf;
    }
    n_tasks = (int)((w->rows + job.task_rows - 1) / job.task_rows);
    job.n_tasks = n_tasks;
    job.n_threads = n_threads;
    pio_threadpool_run(tp, n_tasks, mm_task, &job);
    scratch_put(buf, got);
    return PIO_STATUS_OK;
}

/* Rejects a weight the kernels cannot run (its dtype or shape) with a clear error. */
static pio_status check_weight(const pio_kernels *kt, const pio_wmat *w, int n)
{
    int be = pio_dtype_block_elems(w->dtype);
    if (pio_act_kind_of(w->dtype) < 0 || !kt || !kt->tile[w->dtype])
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "matmul: weight dtype %s has no kernel",
                         pio_dtype_name(w->dtype));
    if (be <= 0 || w->cols % be != 0 || w->rows < 0 || n < 0)
        return pio_error(PIO_STATUS_ERR_SHAPE, "matmul: %s weight of %lld x %lld (cols must be "
                         "a multiple of %d), batch %d", pio_dtype_name(w->dtype),
                         (long long)w->rows, (long long)w->cols, be, n);
    if (pio_dtype_is_x8(w->dtype) && w->rows % PIO_X8_ROWS != 0)
        return pio_error(PIO_STATUS_ERR_SHAPE, "matmul: %s weight of %lld rows (must be a "
                         "multiple of %d)", pio_dtype_name(w->dtype), (long long)w->rows,
                         PIO_X8_ROWS);
    return PIO_STATUS_OK;
}

/* The matrices of one decode call and the range of tasks each one owns. */
typedef struct mm_multi {
    mm_job *jobs;
    int first[PIO_MATMUL_MULTI_MAX + 1];   /* matrix j: tasks [first[j], first[j+1]) */
} mm_multi;

/* Task `task` of the whole call, run on the matrix whose range holds it. */
static void multi_task(void *p, int task, int thread)
{
    mm_multi *m = p;
    int j = 0;
    while (task >= m->first[j + 1])
        j++;
    mm_task(&m->jobs[j], task - m->first[j], thread);
}

/*
 * Decode: `count` matrices that multiply the same x in one pool round (one
 * activation conversion, no barrier between them). Guided task sizes: each
 * task takes 1/(GEMV_SHARE·threads) of the rows left in the whole call, in
 * whole micro-kernels (4 rows, or two 8-row groups of an X8 layout), at least
 * GEMV_MIN_ROWS, and never crosses a matrix; a matrix's last task takes its
 * rest. Every row is summed by one task over all of k, so the results equal
 * separate calls bit for bit.
 */
static pio_status matmul_decode(const pio_kernels *kt, pio_threadpool *tp, int count,
                                float *const *ys, const float *x, int n, const pio_wmat *const *ws)
{
    int n_threads = pio_threadpool_size(tp), kind = pio_act_kind_of(ws[0]->dtype), j;
    int64_t bounds[GEMV_MAX_TASKS + PIO_MATMUL_MULTI_MAX + 1], left = 0;
    int64_t *bj = bounds;
    int n_tasks = 0;
    size_t x_stride = pio_act_row_bytes((pio_act_kind)kind, ws[0]->cols), got = 0;
    uint8_t *buf = NULL;
    mm_job jobs[PIO_MATMUL_MULTI_MAX];
    mm_multi multi;

    memset(jobs, 0, sizeof jobs);
    memset(&multi, 0, sizeof multi);
    for (j = 0; j < count; j++)
        left += ws[j]->rows;
    if (kind != PIO_ACT_F32) {
        buf = scratch_get((size_t)n * x_stride, &got);
        if (!buf)
            return pio_error(PIO_STATUS_ERR_NOMEM, "matmul: out of memory for %zu bytes of scratch",
                             (size_t)n * x_stride);
        convert_x(kt, tp, kind, x, n, ws[0]->cols, x_stride, buf);
    }
    for (j = 0; j < count; j++) {
        const pio_wmat *w = ws[j];
        int64_t align = pio_dtype_is_x8(w->dtype) ? 16 : 4, r = 0;
        int local = 0;
        mm_job *job = &jobs[j];

        job->kt = kt;
        job->w = w;
        job->kind = kind;
        job->y = ys[j];
        job->n = n;
        job->x = kind == PIO_ACT_F32 ? (const uint8_t *)x : buf;
        job->x_stride = x_stride;
        job->w_stride = w_stride_of(w, kind);
        job->kc = w->cols;
        job->tb = n;
        job->bounds = bj;
        multi.first[j] = n_tasks;
        while (r < w->rows) {
            int64_t per = left / ((int64_t)GEMV_SHARE * n_threads);
            per = (per + align - 1) / align * align;
            if (per < GEMV_MIN_ROWS)
                per = GEMV_MIN_ROWS;
            if (n_tasks + local >= GEMV_MAX_TASKS - (count - j) || r + per > w->rows)
                per = w->rows - r;
            bj[local++] = r;
            r += per;
            left -= per;
        }
        bj[local] = w->rows;
        bj += local + 1;
        n_tasks += local;
    }
    multi.first[count] = n_tasks;
    multi.jobs = jobs;
    pio_threadpool_run(tp, n_tasks, multi_task, &multi);
    scratch_put(buf, got);
    return PIO_STATUS_OK;
}

pio_status pio_matmul_multi_kernels(const pio_kernels *kt, pio_threadpool *tp, int count,
                                    float *const *ys, const float *x, int n,
                                    const pio_wmat *const *ws)
{
    int j, live = 0;
    pio_status st;
    const pio_wmat *wl[PIO_MATMUL_MULTI_MAX];
    float *yl[PIO_MATMUL_MULTI_MAX];

    if (count < 1 || count > PIO_MATMUL_MULTI_MAX)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "matmul: %d matrices in one call (1..%d)", count,
                         PIO_MATMUL_MULTI_MAX);
    for (j = 0; j < count; j++) {
        if ((st = check_weight(kt, ws[j], n)))
            return st;
        if (ws[j]->rows > 0) {
            wl[live] = ws[j];
            yl[live++] = ys[j];
        }
    }
    if (n == 0 || live == 0)
        return PIO_STATUS_OK;
    for (j = 1; j < live; j++)
        if (wl[j]->cols != wl[0]->cols || pio_act_kind_of(wl[j]->dtype) != pio_act_kind_of(wl[0]->dtype))
            break;
    if (n <= GEMV_MAX_N && j == live)
        return matmul_decode(kt, tp, live, yl, x, n, wl);
    if (n > GEMV_MAX_N && j == live && live > 1 && pio_act_kind_of(wl[0]->dtype) != PIO_ACT_F32) {
        /* prefill of matrices of one activation format: convert x once */
        int kind = pio_act_kind_of(wl[0]->dtype);
        size_t x_stride = pio_act_row_bytes((pio_act_kind)kind, wl[0]->cols), got = 0;
        uint8_t *xq = scratch_get((size_t)n * x_stride, &got);
        if (!xq)
            return pio_error(PIO_STATUS_ERR_NOMEM, "matmul: out of memory for %zu bytes of scratch",
                             (size_t)n * x_stride);
        convert_x(kt, tp, kind, x, n, wl[0]->cols, x_stride, xq);
        for (j = 0, st = PIO_STATUS_OK; j < live && !st; j++)
            st = matmul_prefill(kt, tp, yl[j], x, xq, n, wl[j]);
        scratch_put(xq, got);
        return st;
    }
    for (j = 0; j < live; j++)                  /* one matrix, or x in different formats */
        if ((st = n <= GEMV_MAX_N ? matmul_decode(kt, tp, 1, &yl[j], x, n, &wl[j])
                                  : matmul_prefill(kt, tp, yl[j], x, NULL, n, wl[j])))
            return st;
    return PIO_STATUS_OK;
}

pio_status pio_matmul_kernels(const pio_kernels *kt, pio_threadpool *tp, float *y,
                              const float *x, int n, const pio_wmat *w)
{
    return pio_matmul_multi_kernels(kt, tp, 1, &y, x, n, &w);
}

pio_status pio_matmul(pio_threadpool *tp, float *y, const float *x, int n, const pio_wmat *w)
{
    return pio_matmul_kernels(pio_kernels_get(), tp, y, x, n, w);
}

pio_status pio_matmul_multi(pio_threadpool *tp, int count, float *const *ys, const float *x, int n,
                            const pio_wmat *const *ws)
{
    return pio_matmul_multi_kernels(pio_kernels_get(), tp, count, ys, x, n, ws);
}
