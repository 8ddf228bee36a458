/*
 * model.c - the Qwen3-MoE forward pass over a batch of tokens from several
 * sequences (f32 compute, weights straight from the mmap).
 *
 * Attention is the shared pio_gqa_attention (Qwen3's, QK-norm included).
 * The FFN of a MoE layer routes every token (pio_moe_route_softmax), then
 * runs each selected expert once over all the tokens routed to it
 * (pio_moe_forward): in prefill one matmul per active expert, in decode
 * only the k selected experts' weights are read, so experts that are never
 * selected are never paged in from the mmap. The first time an expert is
 * selected, pio_moe_forward repacks it in place into the kernels' layout
 * (Q8_0/Q4_0 -> Q8_0_X8/Q4_0_X8 at AVX2): this writes into the experts' views, so one
 * forward pass at a time per model (the engine's inference thread).
 */
#include "qwen3_moe.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Per-step scratch buffers, sized for n tokens. */
typedef struct moe_scratch {
    float *x;       /* (n, n_embd) residual stream */
    float *xn;      /* (n, n_embd) normalized */
    float *y;       /* (n, n_embd) block output */
    float *rope;    /* (n, head_dim) cos | sin per token */
    float *router;  /* (n, n_experts) router logits */
    int32_t *sel;   /* (n, k) selected experts */
    float *sel_w;   /* (n, k) their weights */
    pio_attn_scratch attn;
    pio_mlp_scratch mlp;
    pio_moe_scratch moe;
} moe_scratch;

static void scratch_free(moe_scratch *s)
{
    free(s->x); free(s->xn); free(s->y); free(s->rope);
    free(s->router); free(s->sel); free(s->sel_w);
    pio_attn_scratch_free(&s->attn);
    pio_mlp_scratch_free(&s->mlp);
    pio_moe_scratch_free(&s->moe);
}

static pio_status scratch_alloc(moe_scratch *s, const qwen3_moe_hparams *hp, int n)
{
    size_t ne = hp->n_experts > 0 ? (size_t)hp->n_experts : 1, k = hp->n_experts_used > 0 ? (size_t)hp->n_experts_used : 1;
    memset(s, 0, sizeof *s);
    s->x = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->xn = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->y = malloc((size_t)n * (size_t)hp->n_embd * sizeof(float));
    s->rope = malloc((size_t)n * (size_t)hp->head_dim * sizeof(float));
    s->router = malloc((size_t)n * ne * sizeof(float));
    s->sel = malloc((size_t)n * k * sizeof(int32_t));
    s->sel_w = malloc((size_t)n * k * sizeof(float));
    if (!s->x || !s->xn || !s->y || !s->rope || !s->router || !s->sel || !s->sel_w) {
        scratch_free(s);
        return pio_error(PIO_STATUS_ERR_NOMEM, "qwen3_moe: out of memory for a batch of %d tokens", n);
    }
    return PIO_STATUS_OK;
}

/* y[n][n_embd] = the sparse MoE block on xn[n][n_embd]. */
static pio_status moe_block(const qwen3_moe_model *m, const qwen3_moe_layer *L, pio_threadpool *tp,
                            int n, moe_scratch *s)
{
    const qwen3_moe_hparams *hp = &m->hp;
    pio_status st = pio_matmul(tp, s->router, s->xn, n, &L->router);
    if (st)
        return st;
    pio_moe_route_softmax(s->router, n, hp->n_experts, hp->n_experts_used, hp->norm_topk_prob, s->sel, s->sel_w);
    return pio_moe_forward(tp, L->experts, hp->n_experts, hp->n_experts_used, s->sel, s->sel_w, s->xn, n,
                           hp->n_embd, s->y, &s->moe);
}

pio_status qwen3_moe_forward(const qwen3_moe_model *m, pio_threadpool *tp, const pio_batch *b,
                             pio_kv *kv, float *logits)
{
    const qwen3_moe_hparams *hp = &m->hp;
    int n = b->n_tokens, E = hp->n_embd, HD = hp->head_dim;
    moe_scratch s;
    pio_status st;
    int l, t, i, n_out;

    st = pio_batch_prepare("qwen3_moe", b, hp->n_vocab, hp->n_layers, hp->n_kv_heads * HD, kv);
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
        const qwen3_moe_layer *L = &m->layers[l];
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
        if (hp->layer_moe[l])
            st = moe_block(m, L, tp, n, &s);
        else
            st = pio_swiglu_mlp(tp, &L->w_gate, &L->w_up, &L->w_down, s.xn, n, s.y, &s.mlp);
        if (st)
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
