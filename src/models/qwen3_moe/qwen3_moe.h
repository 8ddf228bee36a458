/*
 * qwen3_moe.h - the Qwen3 mixture-of-experts family (Qwen3MoeForCausalLM,
 * e.g. Qwen3-30B-A3B / Qwen3-Coder-30B-A3B): hyperparameters, weights and
 * forward pass. See ../shared/reference/MODELS.md §4.
 *
 * Decoder layer (pre-norm), attention as Qwen3 dense (QK-norm, GQA, NeoX RoPE):
 *   h   = x + o_proj(Attn(RoPE(q_norm(q)), RoPE(k_norm(k)), v))   on RMSNorm(x)
 *   out = h + FFN(n),  n = RMSNorm(h)
 * FFN is the sparse MoE block on layer l when l is not in mlp_only_layers and
 * (l + 1) % decoder_sparse_step == 0 (and num_experts > 0), else a dense
 * SwiGLU of intermediate_size. MoE block: p = softmax(router · n) over all
 * experts (f32), top num_experts_per_tok, renormalized when norm_topk_prob;
 * FFN(n) = Σ_k p_k · SwiGLU_expert_k(n). No shared expert, no router bias.
 * Logits = lm_head · RMSNorm_final(h).
 */
#ifndef PIO_MODELS_QWEN3_MOE_H
#define PIO_MODELS_QWEN3_MOE_H

#include "pio/plugin.h"
#include "kernels/kernels.h"
#include "layers/layers.h"

typedef struct qwen3_moe_hparams {
    int n_vocab;        /* embedding rows (incl. padding) */
    int n_embd;         /* hidden_size */
    int n_ff;           /* intermediate_size: dense layers only (0 when none) */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;       /* explicit in config.json: not n_embd / n_heads */
    int n_ctx_train;    /* max_position_embeddings */
    float eps;          /* rms_norm_eps */
    double rope_theta;
    bool tied;          /* tie_word_embeddings */
    int n_experts;      /* num_experts (num_local_experts in transformers 5 files) */
    int n_experts_used; /* num_experts_per_tok (top-k) */
    int n_ff_exp;       /* moe_intermediate_size */
    bool norm_topk_prob;
    int sparse_step;    /* decoder_sparse_step (1 when absent) */
    int n_moe_layers;   /* layers whose FFN is the MoE block */
    bool *layer_moe;    /* [n_layers] true: MoE block, false: dense MLP; owned */
} qwen3_moe_hparams;

/* How a layer's experts are stored (the tensors are only viewed). */
typedef enum qwen3_moe_layout {
    QWEN3_MOE_LAYOUT_NONE = 0,      /* dense layer */
    QWEN3_MOE_LAYOUT_PER_EXPERT,    /* experts.E.{gate,up,down}_proj.weight, as published */
    QWEN3_MOE_LAYOUT_FUSED_GATE_UP, /* experts.gate_up_proj [E, 2ff, H] + down_proj [E, H, ff] */
    QWEN3_MOE_LAYOUT_STACKED,       /* experts.{gate,up,down}_proj.weight [E, ...] (GGUF) */
} qwen3_moe_layout;

typedef struct qwen3_moe_layer {
    float *attn_norm;   /* (n_embd) f32 copy of input_layernorm */
    float *ffn_norm;    /* (n_embd) post_attention_layernorm */
    float *q_norm;      /* (head_dim) */
    float *k_norm;      /* (head_dim) */
    pio_wmat wq;        /* (n_heads*head_dim, n_embd) */
    pio_wmat wk;        /* (n_kv_heads*head_dim, n_embd) */
    pio_wmat wv;        /* (n_kv_heads*head_dim, n_embd) */
    pio_wmat wo;        /* (n_embd, n_heads*head_dim) */
    /* dense layers */
    pio_wmat w_gate;    /* (n_ff, n_embd) */
    pio_wmat w_up;      /* (n_ff, n_embd) */
    pio_wmat w_down;    /* (n_embd, n_ff) */
    /* MoE layers */
    qwen3_moe_layout layout;
    pio_wmat router;          /* (n_experts, n_embd) mlp.gate.weight */
    pio_moe_expert *experts;  /* [n_experts] views into the checkpoint; owned array. The
                                 forward pass repacks an expert's views in place the
                                 first time it is routed to (pio_moe_repack) */
} qwen3_moe_layer;

typedef struct qwen3_moe_model {
    qwen3_moe_hparams hp;
    pio_wmat tok_embd;  /* (n_vocab, n_embd) */
    pio_wmat lm_head;   /* (n_vocab, n_embd), == tok_embd when tied */
    float *out_norm;    /* (n_embd) */
    qwen3_moe_layer *layers; /* [n_layers] */
    float *inv_freq;    /* (head_dim/2) RoPE frequencies */
    int64_t n_params;
    int64_t n_params_active;  /* per token: all but the unselected experts and the embedding */
    int64_t weight_bytes;
    char dtypes[64];
} qwen3_moe_model;

/* config.json -> hyperparameters, with the checks the forward pass relies on;
 * fields this plugin does not handle fail with a message naming them.
 * Free hp->layer_moe with qwen3_moe_hparams_free. */
pio_status qwen3_moe_hparams_from_config(const pio_hf_config *cfg, qwen3_moe_hparams *hp);
void qwen3_moe_hparams_free(qwen3_moe_hparams *hp);

/* Bind every tensor by name (checking dtype and shape), build per-expert
 * views for whichever expert layout the checkpoint has, copy norms to f32. */
pio_status qwen3_moe_model_load(qwen3_moe_model *m, const pio_hf_config *cfg, const pio_weights *w);
void qwen3_moe_model_free(qwen3_moe_model *m);

/* One forward step (see pio_batch); logits for rows with want_logits. */
pio_status qwen3_moe_forward(const qwen3_moe_model *m, pio_threadpool *tp, const pio_batch *batch,
                             pio_kv *kv, float *logits);

#endif
