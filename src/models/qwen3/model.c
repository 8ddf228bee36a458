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

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-step scratch buffers, sized for n tokens. */
typedef struct qwen3_scratch {
    float *x;       /* (n, n_embd) residual stream */
    float *xn;      /* (n, n_embd) normalized */
    float *q;       /* (n, n_heads*head_dim) */
    float *k;       /* (n, n_kv_heads*head_dim) */
    float *v;       /* (n, n_kv_heads*head_dim) */
    float *att;     /* (n, n_heads*head_dim) attention output */
    float *gate;    /* (n, n_ff) */
    float *up;      /* (n, n_ff) */
    float *rope;    /* (n, head_dim) cos | sin per token */
} qwen3_scratch;

static void scratch_free(qwen3_scratch *s)
{
    free(s->x); free(s->xn); free(s->q); free(s->k); free(s->v);
    free(s->att); free(s->gate); free(s->up); free(s->rope);
}

static pio_status scratch_alloc(qwen3_scratch *s, const qwen3_hparams *hp, int n)
{
    size_t nq = (size_t)hp->n_heads * (size_t)hp->head_dim;
    size_t nkv = (size_t)hp->n_kv_heads * (size_t)hp->head_dim;
    memset(s, 0, sizeof *s);
    s->x = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->xn = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->q = malloc((size_t)n * nq * sizeof(float));
    s->k = malloc((size_t)n * nkv * sizeof(float));
    s->v = malloc((size_t)n * nkv * sizeof(float));
    s->att = malloc((size_t)n * nq * sizeof(float));
    s->gate = malloc((size_t)n * (size_t)hp->n_ff * sizeof(float));
    s->up = malloc((size_t)n * (size_t)hp->n_ff * sizeof(float));
    s->rope = malloc((size_t)n * (size_t)hp->head_dim * sizeof(float));
    if (!s->x || !s->xn || !s->q || !s->k || !s->v || !s->att || !s->gate || !s->up || !s->rope) {
        scratch_free(s);
        return pio_error(PIO_STATUS_ERR_NOMEM, "qwen3: out of memory for a batch of %d tokens", n);
    }
    return PIO_STATUS_OK;
}

/* Attention over the cache: one task per (token, query head). */
typedef struct attn_job {
    const qwen3_model *m;
    const pio_batch *b;
    pio_kv *kv;
    int layer;
    const float *q;
    float *out;
} attn_job;

static void attn_task(void *p, int task, int thread)
{
    attn_job *j = p;
    const qwen3_hparams *hp = &j->m->hp;
    int t = task / hp->n_heads, h = task % hp->n_heads;
    int group = hp->n_heads / hp->n_kv_heads;
    size_t qoff = ((size_t)t * (size_t)hp->n_heads + (size_t)h) * (size_t)hp->head_dim;
    pio_attention_head(j->out + qoff, j->q + qoff, j->kv, j->layer, j->b->seq_id[t],
                       j->b->pos[t] + 1, (h / group) * hp->head_dim, hp->head_dim,
                       1.0f / sqrtf((float)hp->head_dim));
}

/* Check the batch against the model and the cache; reserve cache rows. */
static pio_status check_batch(const qwen3_model *m, const pio_batch *b, pio_kv *kv)
{
    int i;
    pio_status st;
    if (b->n_tokens <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "qwen3: empty batch");
    if (kv->n_layers != m->hp.n_layers || kv->k_dim != m->hp.n_kv_heads * m->hp.head_dim ||
        kv->v_dim != kv->k_dim)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "qwen3: KV cache geometry does not match the model");
    for (i = 0; i < b->n_tokens; i++) {
        if (b->tokens[i] < 0 || b->tokens[i] >= m->hp.n_vocab)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                             "qwen3: token id %d at batch index %d is outside the vocabulary [0, %d)",
                             b->tokens[i], i, m->hp.n_vocab);
        if (b->pos[i] < 0)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "qwen3: negative position at batch index %d", i);
        st = kv->ops->reserve(kv, b->seq_id[i], b->pos[i] + 1);
        if (st)
            return st;
    }
    return PIO_STATUS_OK;
}

pio_status qwen3_forward(const qwen3_model *m, pio_threadpool *tp, const pio_batch *b,
                         pio_kv *kv, float *logits)
{
    const qwen3_hparams *hp = &m->hp;
    int n = b->n_tokens, E = hp->n_embd, HD = hp->head_dim;
    int nq = hp->n_heads * HD, nkv = hp->n_kv_heads * HD;
    qwen3_scratch s;
    pio_status st;
    int l, t, i, n_out;

    st = check_batch(m, b, kv);
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

        /* attention block */
        for (t = 0; t < n; t++)
            pio_rmsnorm(s.xn + (size_t)t * E, s.x + (size_t)t * E, L->attn_norm, E, hp->eps);
        if ((st = pio_matmul(tp, s.q, s.xn, n, &L->wq)) ||
            (st = pio_matmul(tp, s.k, s.xn, n, &L->wk)) ||
            (st = pio_matmul(tp, s.v, s.xn, n, &L->wv)))
            goto out;
        for (t = 0; t < n; t++) {
            float *qt = s.q + (size_t)t * nq, *kt = s.k + (size_t)t * nkv;
            const float *cs = s.rope + (size_t)t * HD;
            for (i = 0; i < hp->n_heads; i++)          /* QK-norm, then RoPE */
                pio_rmsnorm(qt + (size_t)i * HD, qt + (size_t)i * HD, L->q_norm, HD, hp->eps);
            for (i = 0; i < hp->n_kv_heads; i++)
                pio_rmsnorm(kt + (size_t)i * HD, kt + (size_t)i * HD, L->k_norm, HD, hp->eps);
            pio_rope_neox(qt, hp->n_heads, HD, cs);
            pio_rope_neox(kt, hp->n_kv_heads, HD, cs);
            memcpy(kv->ops->k_row(kv, l, b->seq_id[t], b->pos[t]), kt, (size_t)nkv * sizeof(float));
            memcpy(kv->ops->v_row(kv, l, b->seq_id[t], b->pos[t]), s.v + (size_t)t * nkv,
                   (size_t)nkv * sizeof(float));
        }
        {
            attn_job job = { m, b, kv, l, s.q, s.att };
            pio_threadpool_run(tp, n * hp->n_heads, attn_task, &job);
        }
        if ((st = pio_matmul(tp, s.xn, s.att, n, &L->wo)))
            goto out;
        for (i = 0; i < n * E; i++)
            s.x[i] += s.xn[i];

        /* MLP block */
        for (t = 0; t < n; t++)
            pio_rmsnorm(s.xn + (size_t)t * E, s.x + (size_t)t * E, L->ffn_norm, E, hp->eps);
        if ((st = pio_matmul(tp, s.gate, s.xn, n, &L->w_gate)) ||
            (st = pio_matmul(tp, s.up, s.xn, n, &L->w_up)))
            goto out;
        pio_silu_mul(s.gate, s.up, (int64_t)n * hp->n_ff);
        if ((st = pio_matmul(tp, s.xn, s.gate, n, &L->w_down)))
            goto out;
        for (i = 0; i < n * E; i++)
            s.x[i] += s.xn[i];
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
