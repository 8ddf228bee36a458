/*
 * matmul.c - y = x·Wᵀ for F32/F16/BF16 weights with f32 activations.
 *
 * Work is split into tasks of ROWS_PER_TASK output rows. A task converts its
 * rows of W to f32 once (into the thread's scratch) and reuses them for every
 * token of the batch, so W is read once per call whatever the batch size.
 */
#include "kernels/kernels.h"

#include <stdlib.h>

#define ROWS_PER_TASK 16

typedef struct matmul_job {
    float *y;
    const float *x;
    int n;
    const pio_wmat *w;
    float *scratch;      /* [n_threads][ROWS_PER_TASK][cols] */
} matmul_job;

static void matmul_task(void *p, int task, int thread)
{
    matmul_job *job = p;
    const pio_wmat *w = job->w;
    int64_t cols = w->cols;
    int64_t r0 = (int64_t)task * ROWS_PER_TASK;
    int64_t r1 = r0 + ROWS_PER_TASK < w->rows ? r0 + ROWS_PER_TASK : w->rows;
    float *buf = job->scratch + (size_t)thread * ROWS_PER_TASK * (size_t)cols;
    const float *rows;
    int64_t r;
    int t;

    if (w->dtype == PIO_DTYPE_F32) {
        rows = (const float *)w->data + (size_t)r0 * (size_t)cols;
    } else {
        for (r = r0; r < r1; r++)
            pio_wmat_row_f32(w, r, buf + (size_t)(r - r0) * (size_t)cols);
        rows = buf;
    }
    for (t = 0; t < job->n; t++) {
        const float *xt = job->x + (size_t)t * (size_t)cols;
        float *yt = job->y + (size_t)t * (size_t)w->rows;
        for (r = r0; r < r1; r++)
            yt[r] = pio_dot_f32(xt, rows + (size_t)(r - r0) * (size_t)cols, cols);
    }
}

pio_status pio_matmul(pio_threadpool *tp, float *y, const float *x, int n, const pio_wmat *w)
{
    matmul_job job = { y, x, n, w, NULL };
    int n_tasks = (int)((w->rows + ROWS_PER_TASK - 1) / ROWS_PER_TASK);

    if (w->dtype != PIO_DTYPE_F32) {
        size_t nf = (size_t)pio_threadpool_size(tp) * ROWS_PER_TASK * (size_t)w->cols;
        job.scratch = malloc(nf * sizeof(float));
        if (!job.scratch)
            return pio_error(PIO_STATUS_ERR_NOMEM, "matmul: out of memory for %zu floats", nf);
    }
    pio_threadpool_run(tp, n_tasks, matmul_task, &job);
    free(job.scratch);
    return PIO_STATUS_OK;
}
