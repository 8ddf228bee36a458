/*
 * model.c - the Qwen3 forward pass over a batch of tokens from several
 * sequences (f32 compute, weights straight from the mmap).
 *
 * All tokens of the batch go through each matmul together (one read of W per
 * layer per step). Keys and values of every batch token are written to the
 * KV cache before attention, so a token at position p attends to positions
 * [0, p] of its sequence whether they came from earlier steps or this batch.
 */
#include "qwen3.h"

#include "layers/layers.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-step scratch buffers, sized for n tokens. */
typedef struct qwen3_scratch {
    float *x;       /* (n, n_embd) residual stream */
    float *xn;      /* (n, n_embd) normalized */
    float *y;       /* (n, n_embd) block output */
    float *rope;    /* (n, head_dim) cos | sin per token */
    pio_attn_scratch attn;
    pio_mlp_scratch mlp;
} qwen3_scratch;

static void scratch_free(qwen3_scratch *s)
{
    free(s->x); free(s->xn); free(s->y); free(s->rope);
    pio_attn_scratch_free(&s->attn);
    pio_mlp_scratch_free(&s->mlp);
}

static pio_status scratch_alloc(qwen3_scratch *s, const qwen3_hparams *hp, int n)
{
    memset(s, 0, sizeof *s);
    s->x = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->xn = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->y = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->rope = malloc((size_t)n * (size_t)hp->head_dim * sizeof(float));
    if (!s->x || !s->xn || !s->y || !s->rope) {
        scratch_free(s);
        return pio_error(PIO_STATUS_ERR_NOMEM, "qwen3: out of memory for a batch of %d tokens", n);
    }
    return PIO_STATUS_OK;
}

pio_status qwen3_forward(const qwen3_model *m, pio_threadpool *tp, const pio_batch *b,
                         pio_kv *kv, float *logits)
{
    const qwen3_hparams *hp = &m->hp;
    int n = b->n_tokens, E = hp->n_embd, HD = hp->head_dim;
    qwen3_scratch s;
    pio_status st;
    int l, t, i, n_out;

    st = pio_batch_prepare("qwen3", b, hp->n_vocab, hp->n_layers, hp->n_kv_heads * HD, kv);
    if (st)
        return st;
    st = scratch_alloc(&s, hp, n);
    if (st)
        return st;

    for (t = 0; t < n; t++) {
        pio_wmat_row_f32(&m->tok_embd, b->tokens[t], s.x + (size_t)t * E);
        pio_rope_cos_sin(s.rope + (size_t)t * HD, m->inv_freq, HD / 2, (float)b->pos[t]);
    }

    for (l = 0; l < hp->n_layers; l++) {
        const qwen3_layer *L = &m->layers[l];
        pio_gqa_attn attn = { hp->n_heads, hp->n_kv_heads, HD, hp->eps, 1.0f / sqrtf((float)HD),
                              &L->wq, &L->wk, &L->wv, &L->wo, L->q_norm, L->k_norm };

        for (t = 0; t < n; t++)
            pio_rmsnorm(s.xn + (size_t)t * E, s.x + (size_t)t * E, L->attn_norm, E, hp->eps);
        if ((st = pio_gqa_attention(tp, &attn, b, kv, l, s.rope, s.xn, s.y, &s.attn)))
            goto out;
        for (i = 0; i < n * E; i++)
            s.x[i] += s.y[i];

        for (t = 0; t < n; t++)
            pio_rmsnorm(s.xn + (size_t)t * E, s.x + (size_t)t * E, L->ffn_norm, E, hp->eps);
        if ((st = pio_swiglu_mlp(tp, &L->w_gate, &L->w_up, &L->w_down, s.xn, n, s.y, &s.mlp)))
            goto out;
        for (i = 0; i < n * E; i++)
            s.x[i] += s.y[i];
    }

    /* final norm and lm_head, only for the rows that want logits */
    n_out = 0;
    for (t = 0; t < n; t++) {
        if (!b->want_logits || !b->want_logits[t])
            continue;
        pio_rmsnorm(s.xn + (size_t)n_out * E, s.x + (size_t)t * E, m->out_norm, E, hp->eps);
        n_out++;
    }
    if (n_out > 0)
        st = pio_matmul(tp, logits, s.xn, n_out, &m->lm_head);

out:
    scratch_free(&s);
    return st;
}
