/*
 * layers.h - transformer blocks that several model families share, built
 * from the kernels in kernels/. A plugin keeps its own weight binding and
 * layer loop and calls these for the parts that are the same everywhere:
 *
 *   pio_gqa_attention  grouped-query self-attention over the KV cache, with
 *                      optional per-head RMSNorm of q and k (Qwen3 QK-norm)
 *                      and rotate-half RoPE from per-token cos/sin tables;
 *   pio_attention_batch the cache-attention step alone (q already projected);
 *   pio_swiglu_mlp     down(silu(gate(x)) ⊙ up(x)), the dense FFN and the
 *                      body of every MoE expert.
 *
 * All activations are f32, row-major, one row per batch token.
 */
#ifndef PIO_LAYERS_H
#define PIO_LAYERS_H

#include "pio/plugin.h"
#include "kernels/kernels.h"

/* Weights and geometry of one grouped-query attention layer. */
typedef struct pio_gqa_attn {
    int n_heads;
    int n_kv_heads;      /* divides n_heads */
    int head_dim;
    float eps;           /* epsilon of the q/k RMSNorm */
    float scale;         /* softmax scale, usually 1/sqrt(head_dim) */
    const pio_wmat *wq;  /* (n_heads*head_dim, n_embd) */
    const pio_wmat *wk;  /* (n_kv_heads*head_dim, n_embd) */
    const pio_wmat *wv;  /* (n_kv_heads*head_dim, n_embd) */
    const pio_wmat *wo;  /* (n_embd, n_heads*head_dim) */
    const float *q_norm; /* (head_dim) or NULL: no QK-norm */
    const float *k_norm; /* (head_dim) or NULL */
} pio_gqa_attn;

/* Scratch for a batch of n tokens; grown on demand, freed with _free. */
typedef struct pio_attn_scratch {
    int cap;             /* tokens the buffers hold */
    float *q, *k, *v, *att;
} pio_attn_scratch;

void pio_attn_scratch_free(pio_attn_scratch *s);

/*
 * out[n][n_embd] = o_proj(attention) for the batch's tokens, given their
 * normalized inputs xn[n][n_embd] and RoPE tables rope_cs[n][head_dim]
 * (cos | sin, see pio_rope_cos_sin). Each token's key and value are written
 * to the cache at (layer, seq_id, pos) first, so a token attends to every
 * position <= its own of its sequence, from earlier steps or this batch.
 * The positions must have been reserved in the cache.
 */
pio_status pio_gqa_attention(pio_threadpool *tp, const pio_gqa_attn *a, const pio_batch *b,
                             pio_kv *kv, int layer, const float *rope_cs, const float *xn,
                             float *out, pio_attn_scratch *s);

/*
 * The attention step alone: out[n][n_heads*head_dim] from the rotated
 * queries q[n][n_heads*head_dim] and the cache (keys/values of every
 * position <= pos[t] already stored). Query head h reads KV head
 * h / (n_heads / n_kv_heads).
 */
void pio_attention_batch(pio_threadpool *tp, float *out, const float *q, const pio_batch *b,
                         pio_kv *kv, int layer, int n_heads, int n_kv_heads, int head_dim,
                         float scale);

/* Scratch for pio_swiglu_mlp: gate and up rows for `cap` tokens of n_ff. */
typedef struct pio_mlp_scratch {
    int cap;
    int64_t n_ff;
    float *gate, *up;
} pio_mlp_scratch;

void pio_mlp_scratch_free(pio_mlp_scratch *s);

/* out[n][n_embd] = w_down · (silu(w_gate · x) ⊙ (w_up · x)) for x[n][n_embd]. */
pio_status pio_swiglu_mlp(pio_threadpool *tp, const pio_wmat *w_gate, const pio_wmat *w_up,
                          const pio_wmat *w_down, const float *x, int n, float *out,
                          pio_mlp_scratch *s);

#endif
