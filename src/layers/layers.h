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
 *                      body of every MoE expert;
 *   pio_moe_*          mixture of experts (moe.c): softmax top-k routing, and
 *                      the routed SwiGLU experts run grouped by expert.
 *
 * All activations are f32, row-major, one row per batch token.
 */
#ifndef PIO_LAYERS_H
#define PIO_LAYERS_H

#include "pio/plugin.h"
#include "kernels/kernels.h"

/*
 * Check a batch against a model before its forward pass, then reserve its
 * cache rows: token ids in [0, n_vocab), positions >= 0, a cache with
 * n_layers layers of kv_dim-wide key and value rows. `who` (the plugin name)
 * starts each error message.
 */
pio_status pio_batch_prepare(const char *who, const pio_batch *b, int n_vocab, int n_layers,
                             int kv_dim, pio_kv *kv);

/* Weight binding helpers for the plugins' loaders. */

/* *out = malloc'ed f32 copy of tensor t (norm weights are kept in f32). */
pio_status pio_tensor_f32_copy(const pio_tensor *t, float **out);

/* "BF16 x 398, F32 x 1" from per-dtype tensor counts[PIO_DTYPE_COUNT] into buf
 * (the X8 layouts, Q8_0 / Q4_0 / Q4_K / Q6_K repacked for the kernels at load,
 * are counted as their plain format). */
void pio_dtype_counts_format(char *buf, size_t size, const int *counts);

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
 * position <= pos[t] already stored, in the cache's dtype). Query head h
 * reads KV head h / (n_heads / n_kv_heads). Tiled flash attention with
 * split-K for long decode contexts (kernels/attn.h); fails only on bad
 * geometry or out of memory.
 */
pio_status pio_attention_batch(pio_threadpool *tp, float *out, const float *q, const pio_batch *b,
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

/* ---- mixture of experts (moe.c) ------------------------------------------ */

/*
 * Whether, and how, a matrix of an expert may be rewritten in place into the
 * layout the active kernels run fastest (pio_wmat_layout_for: Q8_0 / Q4_0 /
 * Q4_K / Q6_K -> their X8 layouts at AVX2) the first time the expert is routed to. Experts are not
 * repacked at load (pio_weights_repack skips them) so that experts never
 * selected are never read; pio_moe_forward repacks each one lazily instead.
 */
typedef enum pio_moe_repack {
    PIO_MOE_REPACK_NONE = 0,   /* leave as it is (the caller's memory, or done) */
    PIO_MOE_REPACK_IN_PLACE,   /* writable memory the weights own (quantized on load) */
    PIO_MOE_REPACK_FILE_MAP,   /* a read-only MAP_PRIVATE file mapping: its pages are made
                                  writable (mprotect) around the write, and each page
                                  written becomes a private copy that takes the file
                                  page's place in the resident set (never both) */
} pio_moe_repack;

/* One routed expert: a SwiGLU MLP whose matrices are views into the
 * checkpoint (any pio_wmat dtype; never copied, so an expert that is never
 * selected is never read). Each matrix carries its own dtype: after a lazy
 * repack some experts of a tensor are Q4_0_X8 and the others still Q4_0
 * (likewise Q8_0). */
typedef struct pio_moe_expert {
    pio_wmat gate;       /* (n_ff_exp, n_embd) */
    pio_wmat up;         /* (n_ff_exp, n_embd) */
    pio_wmat down;       /* (n_embd, n_ff_exp) */
    uint8_t repack[3];   /* pio_moe_repack of gate, up, down: set at bind (0 = never),
                            NONE once the matrix is repacked (or has nothing to do) */
} pio_moe_expert;

/*
 * Softmax top-k routing (Qwen3-MoE, Qwen2-MoE, Mixtral), per token t < n:
 * p = softmax(logits[t][0..n_experts)) in f32 over ALL experts, then the k
 * largest p (ties: the lower expert index first) into idx[t][0..k) in
 * descending order with their weights w[t][0..k); when `renorm`
 * (norm_topk_prob) the k weights are divided by their sum. Cost:
 * O(n·n_experts·k). 1 <= k <= n_experts.
 */
void pio_moe_route_softmax(const float *logits, int n, int n_experts, int k, bool renorm,
                           int32_t *idx, float *w);

/* Scratch for pio_moe_forward, grown on demand, freed with _free. */
typedef struct pio_moe_scratch {
    int cap_slots;       /* n·k (token, expert) pairs the lists hold */
    int cap_experts;
    int64_t cap_rows;    /* floats in xg / yg */
    int32_t *count;      /* (2, n_experts + 1) slot offsets of each expert, fill cursors */
    int32_t *rows;       /* (n·k) token index of each slot, grouped by expert */
    float *wts;          /* (n·k) router weight of each slot */
    float *xg;           /* (n, n_embd) gathered inputs of one expert */
    float *yg;           /* (n, n_embd) its outputs */
    pio_mlp_scratch mlp;
    void *dec;           /* decode path: activations, gate/up/down rows of the k experts */
    size_t dec_cap;      /* bytes of dec */
    int32_t *rp_list;    /* (rp_cap) lazy repack: e·3 + matrix of the pending matrices */
    int rp_cap;
    uint8_t *rp_tmp;     /* [threads][8·row bytes] copies of an 8-row group */
    size_t rp_tmp_cap;   /* bytes of rp_tmp */
} pio_moe_scratch;

void pio_moe_scratch_free(pio_moe_scratch *s);

/*
 * out[n][n_embd] = Σ_j w[t][j] · Expert_{idx[t][j]}(x[t]) for x[n][n_embd],
 * with idx/w [n][k] from a router. Tokens are grouped by expert (a counting
 * sort); each expert that has tokens gathers its rows, runs one
 * pio_swiglu_mlp over all of them (one read of its weights per call), and
 * its outputs are scatter-added with the router weights, experts in
 * ascending index order (as transformers' Qwen3MoeExperts). Experts with no
 * token are not touched: in decode only the k selected experts' weights are
 * read. A single token (decode) takes a fused path: the token's activation
 * is quantized once, the gate and up rows of all k experts run as one pool
 * job and their down rows as a second (2 dispatches instead of 3·k).
 * Lazy repack: before any expert matrix is read, the routed experts whose
 * matrices are marked (repack[m] != NONE) and not yet in the active
 * kernels' layout are rewritten in place into it, on the pool, and their
 * dtype changed (Q4_0 -> Q4_0_X8, Q8_0 -> Q8_0_X8); the marks are then cleared. This is the
 * only write to `experts` and to their weights; it happens on the calling
 * thread's pool job before the experts' matmuls are dispatched, so the
 * caller must not run two pio_moe_forward on the same experts at once (one
 * inference thread). A matrix whose pages cannot be made writable stays as
 * it is (and still runs).
 * Cost: k·n·3·n_embd·n_ff_exp multiply-adds; the first routing of an expert
 * also copies its bytes once.
 * Errors: ERR_INVALID_ARG for an expert index outside [0, n_experts),
 * ERR_NOMEM.
 */
pio_status pio_moe_forward(pio_threadpool *tp, pio_moe_expert *experts, int n_experts, int k,
                           const int32_t *idx, const float *w, const float *x, int n, int64_t n_embd,
                           float *out, pio_moe_scratch *s);

#endif
