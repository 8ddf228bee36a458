/*
 * moe.c - mixture-of-experts blocks (see layers.h): softmax top-k routing
 * and the routed SwiGLU experts, run grouped by expert.
 *
 * Reference: transformers' Qwen3MoeTopKRouter / Qwen3MoeExperts
 * (models/qwen3_moe/modeling_qwen3_moe.py) and MODELS.md §4.
 *
 * Experts are repacked into the kernels' layout lazily, the first time each
 * is routed to (pio_moe_repack), so that the resident set keeps following
 * the experts actually used: a matrix in the file's read-only private
 * mapping has its pages made writable around the rewrite (mprotect), and
 * the pages written become private copies in place of the file's pages
 * (RssFile -> RssAnon, never both); one in memory the weights own is
 * rewritten as it is.
 */
#include "layers/layers.h"
#include "kernels/dispatch.h"
#include "kernels/quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void pio_moe_route_softmax(const float *logits, int n, int n_experts, int k, bool renorm,
                           int32_t *idx, float *w)
{
    int t, e, j, i;

    for (t = 0; t < n; t++) {
        const float *l = logits + (size_t)t * (size_t)n_experts;
        int32_t *ti = idx + (size_t)t * (size_t)k;
        float *tw = w + (size_t)t * (size_t)k;
        float mx = l[0], sum = 0.0f, sel = 0.0f;

        for (e = 1; e < n_experts; e++)
            if (l[e] > mx)
                mx = l[e];
        for (e = 0; e < n_experts; e++)
            sum += expf(l[e] - mx);

        /* insertion into a k-long list kept in descending order; an equal
         * probability does not displace the earlier (lower) expert */
        for (j = 0; j < k; j++)
            ti[j] = -1;
        for (e = 0; e < n_experts; e++) {
            float p = expf(l[e] - mx) / sum;
            if (ti[k - 1] >= 0 && !(p > tw[k - 1]))
                continue;
            for (j = k - 1; j > 0 && (ti[j - 1] < 0 || p > tw[j - 1]); j--) {
                ti[j] = ti[j - 1];
                tw[j] = tw[j - 1];
            }
            ti[j] = e;
            tw[j] = p;
        }
        if (renorm) {
            for (i = 0; i < k; i++)
                sel += tw[i];
            for (i = 0; i < k; i++)
                tw[i] /= sel;
        }
    }
}

void pio_moe_scratch_free(pio_moe_scratch *s)
{
    free(s->count); free(s->rows); free(s->wts); free(s->xg); free(s->yg); free(s->dec);
    free(s->rp_list); free(s->rp_tmp);
    pio_mlp_scratch_free(&s->mlp);
    memset(s, 0, sizeof *s);
}

/* ---- lazy repack of the routed experts (pio_moe_repack) ------------------- */

#define MOE_RP_PENDING 0x80   /* flag bit: in this call's list */

static pio_wmat *moe_mat(pio_moe_expert *e, int m)
{
    return m == 0 ? &e->gate : m == 1 ? &e->up : &e->down;
}

/* mprotect the whole pages covering [p, p + len), a range of a file mapping
 * (the mapping itself is page-aligned, so the pages are all in it). */
static bool moe_protect(const void *p, size_t len, int prot)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t a = (uintptr_t)p & ~(page - 1), e = ((uintptr_t)p + len + page - 1) & ~(page - 1);
    return mprotect((void *)a, e - a, prot) == 0;
}

typedef struct moe_rp_job {
    pio_moe_expert *ex;
    const int32_t *list;      /* (n) e·3 + m of the matrices to repack */
    int slices;               /* tasks per matrix */
    uint8_t *tmp;             /* [threads][tmp_stride] */
    size_t tmp_stride;
} moe_rp_job;

/* Slice task % slices of matrix list[task / slices], Q8_0/Q4_0/Q4_K/Q6_K -> its X8
 * layout in place, one 8-row group at a time through the thread's copy. */
static void moe_rp_task(void *p, int task, int thread)
{
    moe_rp_job *j = p;
    int32_t em = j->list[task / j->slices];
    const pio_wmat *w = moe_mat(&j->ex[em / 3], em % 3);
    pio_dtype layout = pio_wmat_layout_for(w->dtype, w->rows, w->cols);
    size_t rb = pio_dtype_row_bytes(w->dtype, w->cols), gb = PIO_X8_ROWS * rb;
    int64_t groups = w->rows / PIO_X8_ROWS, sl = task % j->slices;
    int64_t g0 = groups * sl / j->slices, g1 = groups * (sl + 1) / j->slices, g;
    uint8_t *tmp = j->tmp + (size_t)thread * j->tmp_stride;
    uint8_t *data = (uint8_t *)(uintptr_t)w->data;   /* marked writable (pio_moe_repack) */

    for (g = g0; g < g1; g++) {
        memcpy(tmp, data + (size_t)g * gb, gb);
        pio_x8_pack(layout, data + (size_t)g * gb, tmp, rb, w->cols);
    }
}

/*
 * Repack in place the marked matrices of the experts routed to in
 * idx[0..slots) that the active kernels run faster in another layout
 * (pio_wmat_layout_for: Q8_0 / Q4_0 / Q4_K / Q6_K -> their X8 layouts today), then
 * clear their marks; a marked matrix with nothing to do is unmarked too.
 * Indices out of range are skipped (the caller reports them). File-mapped
 * matrices are made writable first (one that cannot be is left as it is)
 * and read-only again after. The rewrite is one pool job that ends before
 * this returns, so no reader of these experts runs at the same time.
 * Cost: one check per slot once every routed expert is done; else a copy
 * of each pending matrix, and a copy-on-write fault per file-mapped page.
 */
static pio_status moe_repack_routed(pio_threadpool *tp, pio_moe_expert *ex, int n_experts, const int32_t *idx,
                                    int slots, pio_moe_scratch *s)
{
    int n_threads = pio_threadpool_size(tp), n = 0, i, m;
    size_t tmp = 0;
    moe_rp_job job;

    for (i = 0; i < slots; i++) {
        pio_moe_expert *e;
        if (idx[i] < 0 || idx[i] >= n_experts)
            continue;
        e = &ex[idx[i]];
        if (!(e->repack[0] | e->repack[1] | e->repack[2]))
            continue;
        for (m = 0; m < 3; m++) {
            const pio_wmat *w = moe_mat(e, m);
            if (e->repack[m] == PIO_MOE_REPACK_NONE || (e->repack[m] & MOE_RP_PENDING))
                continue;
            pio_dtype layout = pio_wmat_layout_for(w->dtype, w->rows, w->cols);
            if (!pio_dtype_is_x8(layout) || w->dtype != pio_x8_base(layout)) {
                e->repack[m] = PIO_MOE_REPACK_NONE;    /* this level runs it as it is */
                continue;
            }
            if (s->rp_cap < 3 * n_experts) {
                int32_t *l = realloc(s->rp_list, (size_t)3 * (size_t)n_experts * sizeof *l);
                if (!l)
                    goto nomem;
                s->rp_list = l;
                s->rp_cap = 3 * n_experts;
            }
            if (e->repack[m] == PIO_MOE_REPACK_FILE_MAP &&
                !moe_protect(w->data, (size_t)w->rows * pio_dtype_row_bytes(w->dtype, w->cols),
                             PROT_READ | PROT_WRITE)) {
                /* stays as it is (and runs). Its pages are left as they are: one
                 * may be shared with a pending neighbour's, now writable. */
                e->repack[m] = PIO_MOE_REPACK_NONE;
                continue;
            }
            e->repack[m] |= MOE_RP_PENDING;
            s->rp_list[n++] = idx[i] * 3 + m;
            if (PIO_X8_ROWS * pio_dtype_row_bytes(w->dtype, w->cols) > tmp)
                tmp = PIO_X8_ROWS * pio_dtype_row_bytes(w->dtype, w->cols);
        }
    }
    if (n == 0)
        return PIO_STATUS_OK;

    memset(&job, 0, sizeof job);
    job.ex = ex;
    job.list = s->rp_list;
    job.slices = (2 * n_threads + n - 1) / n;
    job.tmp_stride = (tmp + 63) & ~(size_t)63;
    if ((size_t)n_threads * job.tmp_stride > s->rp_tmp_cap) {
        free(s->rp_tmp);
        s->rp_tmp_cap = 0;
        if (posix_memalign((void **)&s->rp_tmp, 64, (size_t)n_threads * job.tmp_stride) != 0) {
            s->rp_tmp = NULL;
            goto nomem;
        }
        s->rp_tmp_cap = (size_t)n_threads * job.tmp_stride;
    }
    job.tmp = s->rp_tmp;
    pio_threadpool_run(tp, n * job.slices, moe_rp_task, &job);

    for (i = 0; i < n; i++) {
        pio_moe_expert *e = &ex[s->rp_list[i] / 3];
        pio_wmat *w = moe_mat(e, s->rp_list[i] % 3);
        if ((e->repack[s->rp_list[i] % 3] & ~MOE_RP_PENDING) == PIO_MOE_REPACK_FILE_MAP)
            moe_protect(w->data, (size_t)w->rows * pio_dtype_row_bytes(w->dtype, w->cols), PROT_READ);
        w->dtype = pio_wmat_layout_for(w->dtype, w->rows, w->cols);
        e->repack[s->rp_list[i] % 3] = PIO_MOE_REPACK_NONE;
    }
    return PIO_STATUS_OK;

nomem:
    /* nothing rewritten yet: restore the marks and the protection */
    for (i = 0; i < n; i++) {
        pio_moe_expert *e = &ex[s->rp_list[i] / 3];
        uint8_t *r = &e->repack[s->rp_list[i] % 3];
        const pio_wmat *w = moe_mat(e, s->rp_list[i] % 3);
        *r &= (uint8_t)~MOE_RP_PENDING;
        if (*r == PIO_MOE_REPACK_FILE_MAP)
            moe_protect(w->data, (size_t)w->rows * pio_dtype_row_bytes(w->dtype, w->cols), PROT_READ);
    }
    return pio_error(PIO_STATUS_ERR_NOMEM, "moe: out of memory repacking %d expert matrices", n);
}

/* Grow the buffers to n·k slots, n_experts counters and n rows of n_embd. */
static pio_status moe_reserve(pio_moe_scratch *s, int n, int k, int n_experts, int64_t n_embd)
{
    int slots = n * k;
    int64_t rows = (int64_t)n * n_embd;

    if (n_experts > s->cap_experts) {
        int32_t *c = realloc(s->count, 2 * ((size_t)n_experts + 1) * sizeof *c);
        if (!c)
            goto nomem;
        s->count = c;
        s->cap_experts = n_experts;
    }
    if (slots > s->cap_slots) {
        int32_t *r = realloc(s->rows, (size_t)slots * sizeof *r);
        if (!r)
            goto nomem;
        s->rows = r;
        float *wt = realloc(s->wts, (size_t)slots * sizeof *wt);
        if (!wt)
            goto nomem;
        s->wts = wt;
        s->cap_slots = slots;
    }
    if (rows > s->cap_rows) {
        free(s->xg);
        free(s->yg);
        s->xg = malloc((size_t)rows * sizeof(float));
        s->yg = malloc((size_t)rows * sizeof(float));
        s->cap_rows = 0;
        if (!s->xg || !s->yg)
            goto nomem;
        s->cap_rows = rows;
    }
    return PIO_STATUS_OK;
nomem:
    return pio_error(PIO_STATUS_ERR_NOMEM, "moe: out of memory for %d tokens x %d experts", n, k);
}

/* ---- decode: one token through its k experts in two pool jobs ------------- */

#define MOE_DECODE_MAX_K 64
#define MOE_TASKS_PER_THREAD 8

/* One pool job over several matrices, each times one activation row:
 * task t covers rows [r0, r0 + task_rows) of matrix t / tasks_per_mat. */
typedef struct moe_gemv_job {
    const pio_kernels *kt;
    int tasks_per_mat;
    int64_t task_rows;
    const pio_wmat *mat[2 * MOE_DECODE_MAX_K];
    const void *x[2 * MOE_DECODE_MAX_K];     /* activation row in the dtype's format */
    float *y[2 * MOE_DECODE_MAX_K];          /* (rows) */
} moe_gemv_job;

/* Bytes per row of W as the tile kernels step through it (as pio_matmul). */
static size_t moe_w_stride(const pio_wmat *w)
{
    return pio_dtype_is_quantized(w->dtype) ? pio_dtype_row_bytes(w->dtype, w->cols)
                                            : (size_t)w->cols * pio_dtype_size(w->dtype);
}

static void moe_gemv_task(void *p, int task, int thread)
{
    moe_gemv_job *j = p;
    int m = task / j->tasks_per_mat;
    const pio_wmat *w = j->mat[m];
    int64_t r0 = (int64_t)(task % j->tasks_per_mat) * j->task_rows;
    int nr;
    size_t ws = moe_w_stride(w);
    (void)thread;
    if (r0 >= w->rows)
        return;
    nr = (int)(w->rows - r0 < j->task_rows ? w->rows - r0 : j->task_rows);
    j->kt->tile[w->dtype](w->cols, nr, 1, (const uint8_t *)w->data + (size_t)r0 * ws, ws, j->x[m],
                          pio_act_row_bytes((pio_act_kind)pio_act_kind_of(w->dtype), w->cols),
                          j->y[m] + r0, (size_t)w->rows, false);
}

/* Run job j over n_mats matrices of `rows` rows each on the pool. */
static void moe_gemv_run(pio_threadpool *tp, moe_gemv_job *j, int n_mats, int64_t rows)
{
    int n_threads = pio_threadpool_size(tp);
    int want = (n_threads * MOE_TASKS_PER_THREAD + n_mats - 1) / n_mats;
    int64_t per = (rows + want - 1) / want;
    /* whole micro-kernels: 4 rows, or two 8-row groups of an X8 layout
     * (every matrix of a job has the first's dtype: moe_decode_ok) */
    per = pio_dtype_is_x8(j->mat[0]->dtype) ? (per + 15) & ~(int64_t)15 : (per + 3) & ~(int64_t)3;
    j->task_rows = per < 16 ? 16 : per;
    j->tasks_per_mat = (int)((rows + j->task_rows - 1) / j->task_rows);
    pio_threadpool_run(tp, n_mats * j->tasks_per_mat, moe_gemv_task, j);
}

/* x[k] in the activation format of weights of dtype dt, into dst. */
static const void *moe_act(const pio_kernels *kt, pio_dtype dt, const float *x, int64_t k, void *dst)
{
    switch (pio_act_kind_of(dt)) {
    case PIO_ACT_Q8:
        kt->quantize_q8(x, dst, k);
        return dst;
    case PIO_ACT_Q8_K:
        kt->quantize_q8_K(x, dst, k);
        return dst;
    default:
        return x;
    }
}

/* Can the k experts of a token take the decode path? (one dtype for all
 * gate/up matrices, one for all down matrices, each with a tile kernel) */
static bool moe_decode_ok(const pio_kernels *kt, const pio_moe_expert *ex, const int32_t *idx, int k,
                          int n_experts, int64_t n_embd)
{
    const pio_moe_expert *e0;
    int j, be_gu, be_d;
    if (k > MOE_DECODE_MAX_K || idx[0] < 0 || idx[0] >= n_experts)
        return false;
    e0 = &ex[idx[0]];
    if (!kt->tile[e0->gate.dtype] || !kt->tile[e0->down.dtype] || pio_act_kind_of(e0->gate.dtype) < 0 ||
        pio_act_kind_of(e0->down.dtype) < 0)
        return false;
    be_gu = pio_dtype_block_elems(e0->gate.dtype);
    be_d = pio_dtype_block_elems(e0->down.dtype);
    if (be_gu <= 0 || be_d <= 0 || n_embd % be_gu != 0 || e0->gate.rows % be_d != 0)
        return false;
    for (j = 0; j < k; j++) {
        const pio_moe_expert *e;
        if (idx[j] < 0 || idx[j] >= n_experts)
            return false;
        e = &ex[idx[j]];
        if (e->gate.dtype != e0->gate.dtype || e->up.dtype != e0->gate.dtype || e->down.dtype != e0->down.dtype ||
            e->gate.cols != n_embd || e->up.cols != n_embd || e->gate.rows != e0->gate.rows ||
            e->up.rows != e0->gate.rows || e->down.rows != n_embd || e->down.cols != e0->gate.rows)
            return false;
    }
    return true;
}

/*
 * out[n_embd] = Σ_j w[j] · Expert_idx[j](x) for one token: x quantized once
 * for the gate/up dtype; gate and up of the k experts in one pool job;
 * silu(g)·u; each expert's row quantized for the down dtype; the k down
 * matrices in a second job; the weighted sum in ascending expert order (as
 * the grouped path, so both give the same sums).
 */
static pio_status moe_decode(pio_threadpool *tp, const pio_kernels *kt, const pio_moe_expert *ex, int k,
                             const int32_t *idx, const float *w, const float *x, int64_t n_embd, float *out,
                             pio_moe_scratch *s)
{
    int64_t ff = ex[idx[0]].gate.rows;
    pio_dtype dgu = ex[idx[0]].gate.dtype, dd = ex[idx[0]].down.dtype;
    size_t xq_bytes = (pio_act_row_bytes((pio_act_kind)pio_act_kind_of(dgu), n_embd) + 63) & ~(size_t)63;
    size_t hq_row = (pio_act_row_bytes((pio_act_kind)pio_act_kind_of(dd), ff) + 63) & ~(size_t)63;
    size_t need = xq_bytes + (size_t)k * hq_row + ((size_t)2 * k * ff + (size_t)k * n_embd) * sizeof(float);
    int order[MOE_DECODE_MAX_K];
    moe_gemv_job job;
    uint8_t *buf;
    float *g, *u, *yd;
    const void *xq;
    int j, i;
    int64_t c;

    if (need > s->dec_cap) {
        void *nb = NULL;
        size_t cap = (need + 4095) & ~(size_t)4095;
        if (posix_memalign(&nb, 64, cap) != 0)
            return pio_error(PIO_STATUS_ERR_NOMEM, "moe: out of memory for %zu bytes of decode scratch", need);
        free(s->dec);
        s->dec = nb;
        s->dec_cap = cap;
    }
    buf = s->dec;
    g = (float *)(void *)(buf + xq_bytes + (size_t)k * hq_row);
    u = g + (size_t)k * ff;
    yd = u + (size_t)k * ff;

    memset(&job, 0, sizeof job);
    job.kt = kt;
    xq = moe_act(kt, dgu, x, n_embd, buf);
    for (j = 0; j < k; j++) {
        job.mat[2 * j] = &ex[idx[j]].gate;
        job.mat[2 * j + 1] = &ex[idx[j]].up;
        job.x[2 * j] = job.x[2 * j + 1] = xq;
        job.y[2 * j] = g + (size_t)j * ff;
        job.y[2 * j + 1] = u + (size_t)j * ff;
    }
    moe_gemv_run(tp, &job, 2 * k, ff);
    pio_silu_mul(tp, g, u, (int64_t)k * ff);
    for (j = 0; j < k; j++) {
        job.mat[j] = &ex[idx[j]].down;
        job.x[j] = moe_act(kt, dd, g + (size_t)j * ff, ff, buf + xq_bytes + (size_t)j * hq_row);
        job.y[j] = yd + (size_t)j * n_embd;
    }
    moe_gemv_run(tp, &job, k, n_embd);

    /* weighted sum, experts in ascending index order */
    for (j = 0; j < k; j++) {
        for (i = j; i > 0 && idx[order[i - 1]] > idx[j]; i--)
            order[i] = order[i - 1];
        order[i] = j;
    }
    memset(out, 0, (size_t)n_embd * sizeof(float));
    for (i = 0; i < k; i++) {
        const float *y = yd + (size_t)order[i] * n_embd;
        float wt = w[order[i]];
        for (c = 0; c < n_embd; c++)
            out[c] += y[c] * wt;
    }
    return PIO_STATUS_OK;
}

pio_status pio_moe_forward(pio_threadpool *tp, pio_moe_expert *experts, int n_experts, int k,
                           const int32_t *idx, const float *w, const float *x, int n, int64_t n_embd,
                           float *out, pio_moe_scratch *s)
{
    int32_t *count, *fill;
    pio_status st;
    int t, j, e, i, slots = n * k;

    if (n <= 0 || k <= 0 || n_experts <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "moe: %d tokens, %d of %d experts", n, k, n_experts);
    if ((st = moe_repack_routed(tp, experts, n_experts, idx, slots, s)))
        return st;
    if (n == 1 && moe_decode_ok(pio_kernels_get(), experts, idx, k, n_experts, n_embd))
        return moe_decode(tp, pio_kernels_get(), experts, k, idx, w, x, n_embd, out, s);
    if ((st = moe_reserve(s, n, k, n_experts, n_embd)))
        return st;
    count = s->count;

    /* counting sort of the (token, expert) slots by expert: count[e] tokens,
     * then offsets; tokens stay in ascending order within an expert */
    memset(count, 0, ((size_t)n_experts + 1) * sizeof *count);
    for (i = 0; i < slots; i++) {
        if (idx[i] < 0 || idx[i] >= n_experts)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "moe: token %d routed to expert %d of %d", i / k,
                             (int)idx[i], n_experts);
        count[idx[i] + 1]++;
    }
    for (e = 0; e < n_experts; e++)
        count[e + 1] += count[e];
    fill = count + n_experts + 1;      /* next free slot of each expert */
    memcpy(fill, count, (size_t)n_experts * sizeof *fill);
    for (t = 0; t < n; t++) {
        for (j = 0; j < k; j++) {
            int32_t slot = fill[idx[(size_t)t * k + j]]++;
            s->rows[slot] = t;
            s->wts[slot] = w[(size_t)t * k + j];
        }
    }

    memset(out, 0, (size_t)n * (size_t)n_embd * sizeof(float));
    for (e = 0; e < n_experts; e++) {
        int lo = count[e], m = count[e + 1] - count[e];
        if (m == 0)
            continue;
        for (i = 0; i < m; i++)
            memcpy(s->xg + (size_t)i * n_embd, x + (size_t)s->rows[lo + i] * n_embd,
                   (size_t)n_embd * sizeof(float));
        if ((st = pio_swiglu_mlp(tp, &experts[e].gate, &experts[e].up, &experts[e].down, s->xg, m, s->yg,
                                 &s->mlp)))
            return st;
        for (i = 0; i < m; i++) {
            float *o = out + (size_t)s->rows[lo + i] * n_embd;
            const float *y = s->yg + (size_t)i * n_embd;
            float wt = s->wts[lo + i];
            int64_t c;
            for (c = 0; c < n_embd; c++)
                o[c] += y[c] * wt;
        }
    }
    return PIO_STATUS_OK;
}
