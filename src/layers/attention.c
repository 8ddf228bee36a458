/*
 * attention.c - grouped-query self-attention over the KV cache (see layers.h).
 */
#include "layers/layers.h"

#include "kernels/attn.h"
#include "pio/kv.h"

#include <stdlib.h>
#include <string.h>

void pio_attn_scratch_free(pio_attn_scratch *s)
{
    free(s->q); free(s->k); free(s->v); free(s->att);
    memset(s, 0, sizeof *s);
}

static pio_status scratch_reserve(pio_attn_scratch *s, const pio_gqa_attn *a, int n)
{
    size_t nq = (size_t)a->n_heads * (size_t)a->head_dim;
    size_t nkv = (size_t)a->n_kv_heads * (size_t)a->head_dim;
    if (n <= s->cap)
        return PIO_STATUS_OK;
    pio_attn_scratch_free(s);
    s->q = malloc((size_t)n * nq * sizeof(float));
    s->k = malloc((size_t)n * nkv * sizeof(float));
    s->v = malloc((size_t)n * nkv * sizeof(float));
    s->att = malloc((size_t)n * nq * sizeof(float));
    if (!s->q || !s->k || !s->v || !s->att) {
        pio_attn_scratch_free(s);
        return pio_error(PIO_STATUS_ERR_NOMEM, "attention: out of memory for a batch of %d tokens", n);
    }
    s->cap = n;
    return PIO_STATUS_OK;
}

/* The tiled, split-K kernels of kernels/attn.h at the active CPU level. */
pio_status pio_attention_batch(pio_threadpool *tp, float *out, const float *q, const pio_batch *b,
                               pio_kv *kv, int layer, int n_heads, int n_kv_heads, int head_dim,
                               float scale)
{
    return pio_attention_run(pio_attn_kernels_get(), tp, out, q, b, kv, layer, n_heads,
                             n_kv_heads, head_dim, scale, 0);
}

pio_status pio_gqa_attention(pio_threadpool *tp, const pio_gqa_attn *a, const pio_batch *b,
                             pio_kv *kv, int layer, const float *rope_cs, const float *xn,
                             float *out, pio_attn_scratch *s)
{
    int n = b->n_tokens, HD = a->head_dim, t, i;
    int nq = a->n_heads * HD, nkv = a->n_kv_heads * HD;
    pio_status st;

    if ((st = scratch_reserve(s, a, n)))
        return st;
    {
        float *ys[3] = { s->q, s->k, s->v };
        const pio_wmat *ws[3] = { a->wq, a->wk, a->wv };
        if ((st = pio_matmul_multi(tp, 3, ys, xn, n, ws)))
            return st;
    }
    for (t = 0; t < n; t++) {
        float *qt = s->q + (size_t)t * nq, *kt = s->k + (size_t)t * nkv;
        const float *cs = rope_cs + (size_t)t * HD;
        if (a->q_norm)
            for (i = 0; i < a->n_heads; i++)
                pio_rmsnorm(qt + (size_t)i * HD, qt + (size_t)i * HD, a->q_norm, HD, a->eps);
        if (a->k_norm)
            for (i = 0; i < a->n_kv_heads; i++)
                pio_rmsnorm(kt + (size_t)i * HD, kt + (size_t)i * HD, a->k_norm, HD, a->eps);
        pio_rope_neox(qt, a->n_heads, HD, cs);
        pio_rope_neox(kt, a->n_kv_heads, HD, cs);
        pio_kv_store(kv, layer, b->seq_id[t], b->pos[t], kt, s->v + (size_t)t * nkv);
    }
    if ((st = pio_attention_batch(tp, s->att, s->q, b, kv, layer, a->n_heads, a->n_kv_heads, HD,
                                  a->scale)))
        return st;
    return pio_matmul(tp, out, s->att, n, a->wo);
}
