/*
 * repack.c - weight matrices rearranged at load for the CPU kernels.
 *
 * Some kernel levels run a dtype faster in another layout of the same bytes
 * (pio_wmat_layout_for): AVX2 runs Q8_0, Q4_0, Q4_K and Q6_K as Q8_0_X8,
 * Q4_0_X8, Q4_K_X8 and Q6_K_X8, 8 rows interleaved so one load feeds 8 rows' dot products
 * (layout in src/kernels/quant.h). This
 * converts each selected matrix once, after quantize-on-load and before the
 * plugin binds the weights, so the plugins and the files never see it:
 *
 *   - a matrix in a buffer the pio_weights owns (quantized on load) is
 *     repacked in place, one 8-row group at a time through a scratch copy;
 *   - a matrix in the file's mapping is copied into a new buffer in the new
 *     layout; each task drops the file pages it has consumed (MADV_DONTNEED
 *     on the read-only MAP_PRIVATE range), so the resident set holds one
 *     copy plus a few MiB in flight, not both;
 *   - MoE expert tensors (HF ".experts.", GGUF "_exps", 2-D or 3-D) are
 *     left as stored by default: experts are paged in lazily when first
 *     routed to, and a copy at load would make every expert resident
 *     (benchmarks/results/2026-11-27-qwen3-moe-rss.md). The MoE layer
 *     repacks each expert in place the first time it is routed to instead
 *     (pio_moe_repack in src/layers/layers.h), where pio_weights_mem_of
 *     says it may write. With PIO_REPACK_EXPERTS (pio --preload) they are
 *     converted here like the rest, a 3-D [experts, rows, cols] tensor as
 *     one matrix of experts·rows rows (its 8-row groups never straddle two
 *     experts, nor the gate and up halves of a fused gate_up tensor), into
 *     huge-page memory with the file's pages dropped as they are consumed.
 *
 * The token embedding of a tied model is the lm_head matrix too: it is
 * repacked like any matrix, and row lookups go through pio_wmat_row_f32,
 * which reads the interleaved layout.
 */
#include "formats_int.h"
#include "common/threadpool.h"
#include "kernels/kernels.h"
#include "kernels/quant.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define RP_TASK_BYTES ((size_t)4 << 20)   /* source bytes per task: pages dropped per 4 MiB */

typedef struct rp_job {
    pio_dtype layout;         /* the X8 layout written */
    const uint8_t *src;       /* (rows) rows of rb bytes in its plain format */
    uint8_t *dst;             /* the same size; == src when in place */
    bool in_place;
    bool drop;                /* src is a file mapping: drop its pages when consumed */
    int64_t cols;
    size_t rb;                /* bytes per row */
    int64_t groups;           /* rows / 8 */
    int64_t groups_per_task;
    uint8_t *scratch;         /* [threads][8·rb] copies of a group, in place only */
} rp_job;

/* Groups [task·groups_per_task, +groups_per_task) of the matrix. */
static void rp_task(void *ctx, int task, int thread)
{
    rp_job *j = ctx;
    const size_t gb = PIO_X8_ROWS * j->rb;
    int64_t g0 = (int64_t)task * j->groups_per_task;
    int64_t g1 = g0 + j->groups_per_task < j->groups ? g0 + j->groups_per_task : j->groups;

    for (int64_t g = g0; g < g1; g++) {
        const uint8_t *s = j->src + (size_t)g * gb;
        if (j->in_place) {
            uint8_t *tmp = j->scratch + (size_t)thread * gb;
            memcpy(tmp, s, gb);
            s = tmp;
        }
        pio_x8_pack(j->layout, j->dst + (size_t)g * gb, s, j->rb, j->cols);
    }
    if (j->drop)
        pio_weights_drop_pages(j->src + (size_t)g0 * gb, (size_t)(g1 - g0) * gb);
}

/* Rows of t as one matrix: the product of all but the last dimension. */
static int64_t rp_rows(const pio_tensor *t)
{
    int64_t r = 1;
    for (int d = 0; d + 1 < t->n_dims; d++)
        r *= t->shape[d];
    return r;
}

/* Repack tensor i (a Q8_0 / Q4_0 / Q4_K / Q6_K matrix, rows % 8 == 0) to its X8
 * layout on the pool. */
static pio_status rp_x8(pio_weights *w, int i, pio_dtype layout, pio_threadpool *tp)
{
    const pio_tensor *src = pio_weights_at(w, i);
    pio_tensor t = *src;
    int n_threads = pio_threadpool_size(tp);
    uint8_t *owned = pio_weights_owned_data(w, i);
    rp_job job;
    pio_status st;

    memset(&job, 0, sizeof job);
    job.cols = src->shape[src->n_dims - 1];
    job.layout = layout;
    job.rb = pio_dtype_row_bytes(src->dtype, job.cols);
    job.groups = rp_rows(src) / PIO_X8_ROWS;
    job.src = src->data;
    job.in_place = owned != NULL;
    job.drop = !owned && pio_weights_is_file_data(w, i);
    if (owned) {
        job.dst = owned;
        job.scratch = malloc((size_t)n_threads * PIO_X8_ROWS * job.rb);
        if (!job.scratch)
            return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory repacking tensor \"%s\"", src->file,
                             src->name);
    } else {
        size_t alloc = (src->nbytes + 63) & ~(size_t)63;
        job.dst = aligned_alloc(alloc >= PIO_FMT_HUGE_PAGE ? PIO_FMT_HUGE_PAGE : 64, alloc ? alloc : 64);
        if (job.dst)
            madvise(job.dst, alloc, MADV_HUGEPAGE);
        if (!job.dst)
            return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory repacking tensor \"%s\" (%zu bytes)",
                             src->file, src->name, src->nbytes);
    }
    job.groups_per_task = (int64_t)(RP_TASK_BYTES / (PIO_X8_ROWS * job.rb));
    if (job.groups_per_task > job.groups / ((int64_t)n_threads * 4))
        job.groups_per_task = job.groups / ((int64_t)n_threads * 4);
    if (job.groups_per_task < 1)
        job.groups_per_task = 1;
    pio_threadpool_run(tp, (int)((job.groups + job.groups_per_task - 1) / job.groups_per_task), rp_task,
                       &job);
    free(job.scratch);

    t.dtype = layout;
    t.data = job.dst;
    st = pio_weights_replace(w, i, &t, job.dst);
    return st;
}

bool pio_tensor_is_expert(const pio_tensor *t)
{
    return t->name && (strstr(t->name, ".experts.") || strstr(t->name, "_exps"));
}

/* A matrix the repack may touch: 2-D and not an expert's, or with
 * PIO_REPACK_EXPERTS an expert tensor, 2-D or 3-D [experts, rows, cols]
 * with rows % 16 == 0 (views of one expert, or of half of a fused gate_up
 * expert, then start on an 8-row group). */
static bool rp_candidate(const pio_tensor *t, unsigned flags)
{
    if (t->n_dims < 2 || t->n_dims > 3 || t->shape[0] <= 0 || t->shape[1] <= 0)
        return false;
    if (!pio_tensor_is_expert(t))
        return t->n_dims == 2;
    if (!(flags & PIO_REPACK_EXPERTS))
        return false;
    return t->n_dims == 2 || (t->shape[2] > 0 && t->shape[1] % 16 == 0);
}

pio_status pio_weights_repack(pio_weights *w, int n_threads, unsigned flags, int *n_repacked)
{
    pio_threadpool *tp = NULL;
    pio_status st = PIO_STATUS_OK;
    int n = pio_weights_count(w), done = 0;

    if (n_repacked)
        *n_repacked = 0;
    for (int i = 0; i < n; i++) {
        const pio_tensor *t = pio_weights_at(w, i);
        pio_dtype layout;
        if (!rp_candidate(t, flags))
            continue;
        layout = pio_wmat_layout_for(t->dtype, rp_rows(t), t->shape[t->n_dims - 1]);
        if (!pio_dtype_is_x8(layout) || t->dtype != pio_x8_base(layout))
            continue;
        if (!tp && (st = pio_threadpool_new(n_threads, &tp)))
            return st;
        if ((st = rp_x8(w, i, layout, tp)))
            break;
        done++;
    }
    pio_threadpool_free(tp);
    if (n_repacked)
        *n_repacked = done;
    return st;
}

pio_weights_mem pio_weights_mem_of(const pio_weights *w, const pio_tensor *t)
{
    int i = w && t && t->name ? pio_weights_index(w, t->name) : -1;
    if (i < 0 || pio_weights_at(w, i) != t)
        return PIO_WEIGHTS_MEM_FOREIGN;
    if (pio_weights_owned_data(w, i))
        return PIO_WEIGHTS_MEM_OWNED;
    return pio_weights_is_file_data(w, i) ? PIO_WEIGHTS_MEM_FILE_MAP : PIO_WEIGHTS_MEM_FOREIGN;
}
