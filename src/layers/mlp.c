/*
 * mlp.c - the SwiGLU feed-forward block (see layers.h).
 */
#include "layers/layers.h"

#include <stdlib.h>
#include <string.h>

void pio_mlp_scratch_free(pio_mlp_scratch *s)
{
    free(s->gate); free(s->up);
    memset(s, 0, sizeof *s);
}

pio_status pio_swiglu_mlp(pio_threadpool *tp, const pio_wmat *w_gate, const pio_wmat *w_up,
                          const pio_wmat *w_down, const float *x, int n, float *out,
                          pio_mlp_scratch *s)
{
    int64_t n_ff = w_gate->rows;
    pio_status st;

    if (n > s->cap || n_ff > s->n_ff) {
        int cap = n > s->cap ? n : s->cap;
        int64_t ff = n_ff > s->n_ff ? n_ff : s->n_ff;
        pio_mlp_scratch_free(s);
        s->gate = malloc((size_t)cap * (size_t)ff * sizeof(float));
        s->up = malloc((size_t)cap * (size_t)ff * sizeof(float));
        if (!s->gate || !s->up) {
            pio_mlp_scratch_free(s);
            return pio_error(PIO_STATUS_ERR_NOMEM, "mlp: out of memory for %d tokens x %lld",
                             n, (long long)ff);
        }
        s->cap = cap;
        s->n_ff = ff;
    }
    {
        float *ys[2] = { s->gate, s->up };
        const pio_wmat *ws[2] = { w_gate, w_up };
        if ((st = pio_matmul_multi(tp, 2, ys, x, n, ws)))
            return st;
    }
    pio_silu_mul(tp, s->gate, s->up, (int64_t)n * n_ff);
    return pio_matmul(tp, out, s->gate, n, w_down);
}
