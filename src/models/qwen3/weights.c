/*
 * weights.c - Qwen3 config mapping and weight binding.
 *
 * Tensor names and shapes are data (the tables below), not code: each entry
 * names the tensor, where it goes in qwen3_layer, and its shape in terms of
 * the hyperparameters. Binding checks dtype and shape and reports expected
 * vs actual with the tensor's name (pio_weights_get).
 */
#include "qwen3.h"

#include "layers/layers.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

pio_status qwen3_hparams_from_config(const pio_hf_config *cfg, qwen3_hparams *hp)
{
    memset(hp, 0, sizeof *hp);
    hp->n_vocab = (int)cfg->vocab_size;
    hp->n_embd = (int)cfg->hidden_size;
    hp->n_ff = (int)cfg->intermediate_size;
    hp->n_layers = (int)cfg->num_hidden_layers;
    hp->n_heads = (int)cfg->num_attention_heads;
    hp->n_kv_heads = (int)cfg->num_key_value_heads;
    hp->head_dim = (int)cfg->head_dim;
    hp->n_ctx_train = (int)cfg->max_position_embeddings;
    hp->eps = (float)cfg->rms_norm_eps;
    hp->rope_theta = cfg->rope_theta;
    hp->tied = cfg->tie_word_embeddings;

    if (hp->n_vocab <= 0 || hp->n_embd <= 0 || hp->n_ff <= 0 || hp->n_layers <= 0 ||
        hp->n_heads <= 0 || hp->n_kv_heads <= 0 || hp->head_dim <= 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: sizes must be positive (vocab_size %d, "
                         "hidden_size %d, intermediate_size %d, num_hidden_layers %d, "
                         "num_attention_heads %d, num_key_value_heads %d, head_dim %d)",
                         cfg->path, hp->n_vocab, hp->n_embd, hp->n_ff, hp->n_layers,
                         hp->n_heads, hp->n_kv_heads, hp->head_dim);
    if (hp->n_heads % hp->n_kv_heads != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                         cfg->path, hp->n_heads, hp->n_kv_heads);
    if (hp->head_dim % 2 != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: head_dim %d must be even for RoPE",
                         cfg->path, hp->head_dim);
    if (strcmp(cfg->rope_type, "default") != 0)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: rope_type \"%s\" is not supported by qwen3",
                         cfg->path, cfg->rope_type);
    if (cfg->attention_bias)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: attention_bias=true is not supported by qwen3",
                         cfg->path);
    if (cfg->hidden_act[0] && strcmp(cfg->hidden_act, "silu") != 0)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (silu)",
                         cfg->path, cfg->hidden_act);
    if (pio_hf_config_int(cfg, "use_sliding_window", 0))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: use_sliding_window=true is not supported by qwen3",
                         cfg->path);
    if (hp->rope_theta <= 0 || hp->eps <= 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: rope_theta and rms_norm_eps must be positive",
                         cfg->path);
    return PIO_STATUS_OK;
}

/* Dimension names used by the tables. */
enum qwen3_dim { D_NONE, D_VOCAB, D_EMBD, D_FF, D_Q, D_KV, D_HEAD };

static int64_t dim_value(const qwen3_hparams *hp, enum qwen3_dim d)
{
    switch (d) {
    case D_VOCAB: return hp->n_vocab;
    case D_EMBD: return hp->n_embd;
    case D_FF: return hp->n_ff;
    case D_Q: return (int64_t)hp->n_heads * hp->head_dim;
    case D_KV: return (int64_t)hp->n_kv_heads * hp->head_dim;
    case D_HEAD: return hp->head_dim;
    default: return 0;
    }
}

typedef struct tensor_spec {
    const char *name;       /* printf pattern with %d for the layer */
    size_t offset;          /* of the pio_wmat or float* field in qwen3_layer */
    bool is_norm;           /* 1-D, copied to f32 */
    enum qwen3_dim d0, d1;
} tensor_spec;

static const tensor_spec layer_specs[] = {
    { "model.layers.%d.input_layernorm.weight", offsetof(qwen3_layer, attn_norm), true, D_EMBD, D_NONE },
    { "model.layers.%d.post_attention_layernorm.weight", offsetof(qwen3_layer, ffn_norm), true, D_EMBD, D_NONE },
    { "model.layers.%d.self_attn.q_norm.weight", offsetof(qwen3_layer, q_norm), true, D_HEAD, D_NONE },
    { "model.layers.%d.self_attn.k_norm.weight", offsetof(qwen3_layer, k_norm), true, D_HEAD, D_NONE },
    { "model.layers.%d.self_attn.q_proj.weight", offsetof(qwen3_layer, wq), false, D_Q, D_EMBD },
    { "model.layers.%d.self_attn.k_proj.weight", offsetof(qwen3_layer, wk), false, D_KV, D_EMBD },
    { "model.layers.%d.self_attn.v_proj.weight", offsetof(qwen3_layer, wv), false, D_KV, D_EMBD },
    { "model.layers.%d.self_attn.o_proj.weight", offsetof(qwen3_layer, wo), false, D_EMBD, D_Q },
    { "model.layers.%d.mlp.gate_proj.weight", offsetof(qwen3_layer, w_gate), false, D_FF, D_EMBD },
    { "model.layers.%d.mlp.up_proj.weight", offsetof(qwen3_layer, w_up), false, D_FF, D_EMBD },
    { "model.layers.%d.mlp.down_proj.weight", offsetof(qwen3_layer, w_down), false, D_EMBD, D_FF },
};

/* Count a bound tensor's parameters, bytes and dtype. */
static void account(qwen3_model *m, const pio_tensor *t, int *dtype_counts)
{
    m->n_params += t->n_elements;
    m->weight_bytes += (int64_t)t->nbytes;
    dtype_counts[t->dtype]++;
}

static pio_status bind(const pio_weights *w, const qwen3_hparams *hp, const char *name,
                       enum qwen3_dim d0, enum qwen3_dim d1, const pio_tensor **out)
{
    int64_t shape[2] = { dim_value(hp, d0), dim_value(hp, d1) };
    return pio_weights_get(w, name, d1 == D_NONE ? 1 : 2, shape, out);
}

pio_status qwen3_model_load(qwen3_model *m, const pio_hf_config *cfg, const pio_weights *w)
{
    const pio_tensor *t;
    int dtype_counts[PIO_DTYPE_COUNT] = { 0 };
    char name[256];
    pio_status st;
    int l, i;

    memset(m, 0, sizeof *m);
    st = qwen3_hparams_from_config(cfg, &m->hp);
    if (st)
        return st;
    const qwen3_hparams *hp = &m->hp;

    st = bind(w, hp, "model.embed_tokens.weight", D_VOCAB, D_EMBD, &t);
    if (st)
        goto fail;
    m->tok_embd = pio_wmat_from_tensor(t);
    account(m, t, dtype_counts);
    if (hp->tied) {
        m->lm_head = m->tok_embd;
    } else {
        st = bind(w, hp, "lm_head.weight", D_VOCAB, D_EMBD, &t);
        if (st)
            goto fail;
        m->lm_head = pio_wmat_from_tensor(t);
        account(m, t, dtype_counts);
    }
    st = bind(w, hp, "model.norm.weight", D_EMBD, D_NONE, &t);
    if (st)
        goto fail;
    account(m, t, dtype_counts);
    st = pio_tensor_f32_copy(t, &m->out_norm);
    if (st)
        goto fail;

    m->layers = calloc((size_t)hp->n_layers, sizeof *m->layers);
    if (!m->layers) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory for %d layers", hp->n_layers);
        goto fail;
    }
    for (l = 0; l < hp->n_layers; l++) {
        for (i = 0; i < (int)(sizeof layer_specs / sizeof layer_specs[0]); i++) {
            const tensor_spec *s = &layer_specs[i];
            char *field = (char *)&m->layers[l] + s->offset;
            snprintf(name, sizeof name, s->name, l);
            st = bind(w, hp, name, s->d0, s->d1, &t);
            if (st)
                goto fail;
            account(m, t, dtype_counts);
            if (s->is_norm) {
                st = pio_tensor_f32_copy(t, (float **)(void *)field);
                if (st)
                    goto fail;
            } else {
                *(pio_wmat *)(void *)field = pio_wmat_from_tensor(t);
            }
        }
    }

    m->inv_freq = malloc((size_t)(hp->head_dim / 2) * sizeof(float));
    if (!m->inv_freq) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    pio_rope_inv_freq(m->inv_freq, hp->head_dim, hp->rope_theta);

    pio_dtype_counts_format(m->dtypes, sizeof m->dtypes, dtype_counts);
    return PIO_STATUS_OK;

fail:
    qwen3_model_free(m);
    return st;
}

void qwen3_model_free(qwen3_model *m)
{
    int l;
    if (m->layers) {
        for (l = 0; l < m->hp.n_layers; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
            free(m->layers[l].q_norm);
            free(m->layers[l].k_norm);
        }
    }
    free(m->layers);
    free(m->out_norm);
    free(m->inv_freq);
    memset(m, 0, sizeof *m);
}
