/*
 * qwen3.h - the Qwen3 dense family (Qwen3ForCausalLM): hyperparameters,
 * weights and forward pass. See ../shared/reference/MODELS.md §3.
 *
 * Decoder layer (pre-norm):
 *   h   = x + o_proj(Attn(RoPE(q_norm(q)), RoPE(k_norm(k)), v))   on RMSNorm(x)
 *   out = h + down(silu(gate(n)) ⊙ up(n)),  n = RMSNorm(h)
 * Logits = lm_head · RMSNorm_final(h) (lm_head tied to embed_tokens when
 * tie_word_embeddings).
 */
#ifndef PIO_MODELS_QWEN3_H
#define PIO_MODELS_QWEN3_H

#include "pio/plugin.h"
#include "kernels/kernels.h"

typedef struct qwen3_hparams {
    int n_vocab;        /* embedding rows (incl. padding) */
    int n_embd;         /* hidden_size */
    int n_ff;           /* intermediate_size */
    int n_layers;
    int n_heads;
    int n_kv_heads;
    int head_dim;       /* explicit in config.json: not n_embd / n_heads */
    int n_ctx_train;    /* max_position_embeddings */
    float eps;          /* rms_norm_eps */
    double rope_theta;
    bool tied;          /* tie_word_embeddings */
} qwen3_hparams;

typedef struct qwen3_layer {
    float *attn_norm;   /* (n_embd) f32 copy of input_layernorm */
    float *ffn_norm;    /* (n_embd) post_attention_layernorm */
    float *q_norm;      /* (head_dim) */
    float *k_norm;      /* (head_dim) */
    pio_wmat wq;        /* (n_heads*head_dim, n_embd) */
    pio_wmat wk;        /* (n_kv_heads*head_dim, n_embd) */
    pio_wmat wv;        /* (n_kv_heads*head_dim, n_embd) */
    pio_wmat wo;        /* (n_embd, n_heads*head_dim) */
    pio_wmat w_gate;    /* (n_ff, n_embd) */
    pio_wmat w_up;      /* (n_ff, n_embd) */
    pio_wmat w_down;    /* (n_embd, n_ff) */
} qwen3_layer;

typedef struct qwen3_model {
    qwen3_hparams hp;
    pio_wmat tok_embd;  /* (n_vocab, n_embd) */
    pio_wmat lm_head;   /* (n_vocab, n_embd), == tok_embd when tied */
    float *out_norm;    /* (n_embd) */
    qwen3_layer *layers;/* [n_layers] */
    float *inv_freq;    /* (head_dim/2) RoPE frequencies */
    int64_t n_params;
    int64_t weight_bytes;
    char dtypes[64];
} qwen3_model;

/* config.json -> hyperparameters, with the checks the forward pass relies on. */
pio_status qwen3_hparams_from_config(const pio_hf_config *cfg, qwen3_hparams *hp);

/* Bind every tensor by name (checking dtype and shape) and copy the norms to f32. */
pio_status qwen3_model_load(qwen3_model *m, const pio_hf_config *cfg, const pio_weights *w);
void qwen3_model_free(qwen3_model *m);

/* One forward step (see pio_batch); logits for rows with want_logits. */
pio_status qwen3_forward(const qwen3_model *m, pio_threadpool *tp, const pio_batch *batch,
                         pio_kv *kv, float *logits);

#endif
