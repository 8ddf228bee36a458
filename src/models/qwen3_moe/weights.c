/*
 * weights.c - Qwen3-MoE config mapping and weight binding.
 *
 * Tensor names and shapes are data (the tables below). Experts come in
 * three layouts, all bound as per-expert pio_wmat views into the mapped
 * tensors (no copies):
 *   - per expert, as the published checkpoints (and transformers'
 *     save_pretrained) store them: mlp.experts.E.{gate,up,down}_proj.weight;
 *   - fused as transformers >= 5 holds them in memory (Qwen3MoeExperts):
 *     mlp.experts.gate_up_proj [E, 2·ff, H] (gate rows first, then up) and
 *     mlp.experts.down_proj [E, H, ff];
 *   - stacked per projection, as GGUF files hold them (ffn_*_exps, mapped
 *     by gguf_names.c): mlp.experts.{gate,up,down}_proj.weight [E, ...],
 *     or a fused ffn_gate_up_exps.
 * Each view is marked with how it may be rewritten in place (pio_moe_repack)
 * when the kernels run its dtype faster in another layout: pio_moe_forward
 * repacks an expert the first time it is routed to (Q8_0/Q4_0 -> the X8
 * layouts at AVX2).
 */
#include "qwen3_moe.h"

#include "layers/layers.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Config keys of related families that change the block in ways this
 * forward pass does not implement: a positive value is refused. */
static const char *const unsupported_positive_keys[] = {
    "shared_expert_intermediate_size",   /* Qwen2-MoE's shared expert */
    "n_shared_experts",                  /* DeepSeek/GLM shared experts */
    "num_shared_experts",
};

/* Layers listed in config's mlp_only_layers (an array of layer indices;
 * indices outside [0, n_layers) are ignored, as transformers does). */
static pio_status mlp_only_layers(const pio_hf_config *cfg, int n_layers, bool *dense)
{
    const cJSON *arr = cfg->json_text ? cJSON_GetObjectItemCaseSensitive(cfg->json_text, "mlp_only_layers") : NULL;
    const cJSON *it;
    if (!arr || cJSON_IsNull(arr))
        return PIO_STATUS_OK;
    if (!cJSON_IsArray(arr))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"mlp_only_layers\" must be an array of layer indices",
                         cfg->path);
    cJSON_ArrayForEach(it, arr) {
        if (!cJSON_IsNumber(it) || it->valuedouble != (double)(int)it->valuedouble)
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"mlp_only_layers\" must hold integers",
                             cfg->path);
        if (it->valueint >= 0 && it->valueint < n_layers)
            dense[it->valueint] = true;
    }
    return PIO_STATUS_OK;
}

void qwen3_moe_hparams_free(qwen3_moe_hparams *hp)
{
    free(hp->layer_moe);
    hp->layer_moe = NULL;
}

pio_status qwen3_moe_hparams_from_config(const pio_hf_config *cfg, qwen3_moe_hparams *hp)
{
    bool *dense = NULL;
    pio_status st = PIO_STATUS_OK;
    int l;
    size_t i;

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
    hp->n_experts = (int)cfg->num_experts;
    hp->n_experts_used = (int)cfg->num_experts_per_tok;
    hp->n_ff_exp = (int)cfg->moe_intermediate_size;
    hp->norm_topk_prob = cfg->norm_topk_prob;
    hp->sparse_step = cfg->decoder_sparse_step ? (int)cfg->decoder_sparse_step : 1;   /* transformers' default */

    if (hp->n_vocab <= 0 || hp->n_embd <= 0 || hp->n_layers <= 0 || hp->n_heads <= 0 ||
        hp->n_kv_heads <= 0 || hp->head_dim <= 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: sizes must be positive (vocab_size %d, hidden_size %d, "
                         "num_hidden_layers %d, num_attention_heads %d, num_key_value_heads %d, head_dim %d)",
                         cfg->path, hp->n_vocab, hp->n_embd, hp->n_layers, hp->n_heads, hp->n_kv_heads,
                         hp->head_dim);
    if (hp->n_heads % hp->n_kv_heads != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: num_attention_heads %d is not a multiple of num_key_value_heads %d",
                         cfg->path, hp->n_heads, hp->n_kv_heads);
    if (hp->head_dim % 2 != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: head_dim %d must be even for RoPE", cfg->path, hp->head_dim);
    if (strcmp(cfg->rope_type, "default") != 0)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: rope_type \"%s\" is not supported by qwen3_moe",
                         cfg->path, cfg->rope_type);
    if (cfg->attention_bias)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: attention_bias=true is not supported by qwen3_moe",
                         cfg->path);
    if (cfg->hidden_act[0] && strcmp(cfg->hidden_act, "silu") != 0)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: hidden_act \"%s\" is not supported (silu)",
                         cfg->path, cfg->hidden_act);
    if (pio_hf_config_int(cfg, "use_sliding_window", 0))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: use_sliding_window=true is not supported by qwen3_moe",
                         cfg->path);
    for (i = 0; i < sizeof unsupported_positive_keys / sizeof unsupported_positive_keys[0]; i++)
        if (pio_hf_config_int(cfg, unsupported_positive_keys[i], 0) > 0)
            return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: field \"%s\" (a shared expert) is not supported "
                             "by qwen3_moe (Qwen3-MoE has none)", cfg->path, unsupported_positive_keys[i]);
    if (hp->rope_theta <= 0 || hp->eps <= 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: rope_theta and rms_norm_eps must be positive", cfg->path);
    if (hp->sparse_step < 1)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"decoder_sparse_step\" (%d) must be >= 1", cfg->path,
                         hp->sparse_step);
    if (hp->n_experts < 0 || hp->n_experts_used < 0 || hp->n_ff_exp < 0)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: num_experts, num_experts_per_tok and moe_intermediate_size "
                         "must not be negative", cfg->path);

    /* Which layers are sparse (transformers' Qwen3MoeDecoderLayer). */
    dense = calloc((size_t)hp->n_layers, sizeof *dense);
    hp->layer_moe = calloc((size_t)hp->n_layers, sizeof *hp->layer_moe);
    if (!dense || !hp->layer_moe) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", cfg->path);
        goto fail;
    }
    if ((st = mlp_only_layers(cfg, hp->n_layers, dense)))
        goto fail;
    for (l = 0; l < hp->n_layers; l++) {
        hp->layer_moe[l] = !dense[l] && hp->n_experts > 0 && (l + 1) % hp->sparse_step == 0;
        hp->n_moe_layers += hp->layer_moe[l];
    }
    if (hp->n_moe_layers > 0) {
        if (hp->n_experts_used < 1 || hp->n_experts_used > hp->n_experts) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"num_experts_per_tok\" (%d) must be in [1, "
                           "num_experts = %d]", cfg->path, hp->n_experts_used, hp->n_experts);
            goto fail;
        }
        if (hp->n_ff_exp < 1) {
            st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"moe_intermediate_size\" is missing or not positive",
                           cfg->path);
            goto fail;
        }
    }
    if (hp->n_moe_layers < hp->n_layers && hp->n_ff < 1) {
        st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"intermediate_size\" is missing or not positive, and "
                       "%d layers are dense (mlp_only_layers / decoder_sparse_step)",
                       cfg->path, hp->n_layers - hp->n_moe_layers);
        goto fail;
    }
    free(dense);
    return PIO_STATUS_OK;

fail:
    free(dense);
    qwen3_moe_hparams_free(hp);
    return st;
}

/* Dimension names used by the tables. */
enum moe_dim { D_NONE, D_VOCAB, D_EMBD, D_FF, D_Q, D_KV, D_HEAD, D_EXPERTS, D_FF_EXP, D_FF_EXP2 };

static int64_t dim_value(const qwen3_moe_hparams *hp, enum moe_dim d)
{
    switch (d) {
    case D_VOCAB: return hp->n_vocab;
    case D_EMBD: return hp->n_embd;
    case D_FF: return hp->n_ff;
    case D_Q: return (int64_t)hp->n_heads * hp->head_dim;
    case D_KV: return (int64_t)hp->n_kv_heads * hp->head_dim;
    case D_HEAD: return hp->head_dim;
    case D_EXPERTS: return hp->n_experts;
    case D_FF_EXP: return hp->n_ff_exp;
    case D_FF_EXP2: return 2 * (int64_t)hp->n_ff_exp;
    default: return 0;
    }
}

typedef struct tensor_spec {
    const char *name;       /* printf pattern with %d for the layer */
    size_t offset;          /* of the pio_wmat or float* field in qwen3_moe_layer */
    bool is_norm;           /* 1-D, copied to f32 */
    enum moe_dim d0, d1;
} tensor_spec;

/* Every layer. */
static const tensor_spec attn_specs[] = {
    { "model.layers.%d.input_layernorm.weight", offsetof(qwen3_moe_layer, attn_norm), true, D_EMBD, D_NONE },
    { "model.layers.%d.post_attention_layernorm.weight", offsetof(qwen3_moe_layer, ffn_norm), true, D_EMBD, D_NONE },
    { "model.layers.%d.self_attn.q_norm.weight", offsetof(qwen3_moe_layer, q_norm), true, D_HEAD, D_NONE },
    { "model.layers.%d.self_attn.k_norm.weight", offsetof(qwen3_moe_layer, k_norm), true, D_HEAD, D_NONE },
    { "model.layers.%d.self_attn.q_proj.weight", offsetof(qwen3_moe_layer, wq), false, D_Q, D_EMBD },
    { "model.layers.%d.self_attn.k_proj.weight", offsetof(qwen3_moe_layer, wk), false, D_KV, D_EMBD },
    { "model.layers.%d.self_attn.v_proj.weight", offsetof(qwen3_moe_layer, wv), false, D_KV, D_EMBD },
    { "model.layers.%d.self_attn.o_proj.weight", offsetof(qwen3_moe_layer, wo), false, D_EMBD, D_Q },
};

/* Dense layers (mlp_only_layers, decoder_sparse_step). */
static const tensor_spec dense_specs[] = {
    { "model.layers.%d.mlp.gate_proj.weight", offsetof(qwen3_moe_layer, w_gate), false, D_FF, D_EMBD },
    { "model.layers.%d.mlp.up_proj.weight", offsetof(qwen3_moe_layer, w_up), false, D_FF, D_EMBD },
    { "model.layers.%d.mlp.down_proj.weight", offsetof(qwen3_moe_layer, w_down), false, D_EMBD, D_FF },
};

/* MoE layers: the router. */
static const tensor_spec router_spec = {
    "model.layers.%d.mlp.gate.weight", offsetof(qwen3_moe_layer, router), false, D_EXPERTS, D_EMBD,
};

/*
 * Expert layouts, tried in order; the first whose gate tensor exists is the
 * layer's. Patterns take the layer, then (per expert) the expert index.
 * `gate` of FUSED_GATE_UP holds gate rows then up rows per expert.
 */
typedef struct expert_layout {
    qwen3_moe_layout layout;
    const char *gate, *up, *down;
} expert_layout;

static const expert_layout expert_layouts[] = {
    { QWEN3_MOE_LAYOUT_PER_EXPERT, "model.layers.%d.mlp.experts.%d.gate_proj.weight",
      "model.layers.%d.mlp.experts.%d.up_proj.weight", "model.layers.%d.mlp.experts.%d.down_proj.weight" },
    { QWEN3_MOE_LAYOUT_FUSED_GATE_UP, "model.layers.%d.mlp.experts.gate_up_proj", NULL,
      "model.layers.%d.mlp.experts.down_proj" },
    { QWEN3_MOE_LAYOUT_STACKED, "model.layers.%d.mlp.experts.gate_proj.weight",
      "model.layers.%d.mlp.experts.up_proj.weight", "model.layers.%d.mlp.experts.down_proj.weight" },
    { QWEN3_MOE_LAYOUT_FUSED_GATE_UP, "model.layers.%d.mlp.experts.gate_up_proj.weight", NULL,
      "model.layers.%d.mlp.experts.down_proj.weight" },
};

/* Count a bound tensor's parameters, bytes and dtype. */
static void account(qwen3_moe_model *m, const pio_tensor *t, int *dtype_counts)
{
    m->n_params += t->n_elements;
    m->weight_bytes += (int64_t)t->nbytes;
    dtype_counts[t->dtype]++;
}

static pio_status bind(const pio_weights *w, const qwen3_moe_hparams *hp, const char *name,
                       enum moe_dim d0, enum moe_dim d1, const pio_tensor **out)
{
    int64_t shape[2] = { dim_value(hp, d0), dim_value(hp, d1) };
    return pio_weights_get(w, name, d1 == D_NONE ? 1 : 2, shape, out);
}

/* Bind the specs of layer l into L. */
static pio_status bind_specs(qwen3_moe_model *m, const pio_weights *w, const tensor_spec *specs, int n,
                             int l, qwen3_moe_layer *L, int *dtype_counts)
{
    const pio_tensor *t;
    char name[256];
    pio_status st;
    int i;
    for (i = 0; i < n; i++) {
        const tensor_spec *s = &specs[i];
        char *field = (char *)L + s->offset;
        snprintf(name, sizeof name, s->name, l);
        if ((st = bind(w, &m->hp, name, s->d0, s->d1, &t)))
            return st;
        account(m, t, dtype_counts);
        if (s->is_norm) {
            if ((st = pio_tensor_f32_copy(t, (float **)(void *)field)))
                return st;
        } else {
            *(pio_wmat *)(void *)field = pio_wmat_from_tensor(t);
        }
    }
    return PIO_STATUS_OK;
}

/* Rows [row0, row0 + rows) of a tensor whose last dimension is the input
 * (a 3-D [E, out, in] tensor seen as E·out rows): a view, no copy. */
static pio_wmat wmat_rows(const pio_tensor *t, int64_t row0, int64_t rows)
{
    int64_t cols = t->shape[t->n_dims - 1];
    pio_wmat v = { t->dtype, (const char *)t->data + (size_t)row0 * pio_dtype_row_bytes(t->dtype, cols),
                   rows, cols };
    return v;
}

/* A 3-D expert tensor [n_experts, d1, d2]. */
static pio_status bind3(const pio_weights *w, const qwen3_moe_hparams *hp, const char *name, enum moe_dim d1,
                        enum moe_dim d2, const pio_tensor **out)
{
    int64_t shape[3] = { hp->n_experts, dim_value(hp, d1), dim_value(hp, d2) };
    return pio_weights_get(w, name, 3, shape, out);
}

/* How views into tensor t may be repacked in place (pio_moe_repack). */
static uint8_t repack_mode(const pio_weights *w, const pio_tensor *t)
{
    switch (pio_weights_mem_of(w, t)) {
    case PIO_WEIGHTS_MEM_OWNED: return PIO_MOE_REPACK_IN_PLACE;
    case PIO_WEIGHTS_MEM_FILE_MAP: return PIO_MOE_REPACK_FILE_MAP;
    default: return PIO_MOE_REPACK_NONE;
    }
}

/* Bind layer l's experts in whichever layout the checkpoint has. */
static pio_status bind_experts(qwen3_moe_model *m, const pio_weights *w, int l, qwen3_moe_layer *L,
                               int *dtype_counts)
{
    const qwen3_moe_hparams *hp = &m->hp;
    const expert_layout *lay = NULL;
    const pio_tensor *tg, *tu, *td;
    char name[256];
    pio_status st;
    int64_t ff = hp->n_ff_exp;
    size_t i;
    int e;

    for (i = 0; i < sizeof expert_layouts / sizeof expert_layouts[0] && !lay; i++) {
        snprintf(name, sizeof name, expert_layouts[i].gate, l, 0);
        if (pio_weights_find(w, name))
            lay = &expert_layouts[i];
    }
    if (!lay)
        return pio_error(PIO_STATUS_ERR_MISSING, "layer %d: no expert tensors found (looked for "
                         "\"model.layers.%d.mlp.experts.0.gate_proj.weight\" (per expert), "
                         "\"model.layers.%d.mlp.experts.gate_up_proj\" (transformers fused) and "
                         "\"model.layers.%d.mlp.experts.gate_proj.weight\" (stacked))", l, l, l, l);
    L->layout = lay->layout;
    L->experts = calloc((size_t)hp->n_experts, sizeof *L->experts);
    if (!L->experts)
        return pio_error(PIO_STATUS_ERR_NOMEM, "out of memory for %d experts", hp->n_experts);

    switch (lay->layout) {
    case QWEN3_MOE_LAYOUT_PER_EXPERT:
        for (e = 0; e < hp->n_experts; e++) {
            snprintf(name, sizeof name, lay->gate, l, e);
            if ((st = bind(w, hp, name, D_FF_EXP, D_EMBD, &tg)))
                return st;
            snprintf(name, sizeof name, lay->up, l, e);
            if ((st = bind(w, hp, name, D_FF_EXP, D_EMBD, &tu)))
                return st;
            snprintf(name, sizeof name, lay->down, l, e);
            if ((st = bind(w, hp, name, D_EMBD, D_FF_EXP, &td)))
                return st;
            account(m, tg, dtype_counts);
            account(m, tu, dtype_counts);
            account(m, td, dtype_counts);
            L->experts[e].gate = pio_wmat_from_tensor(tg);
            L->experts[e].up = pio_wmat_from_tensor(tu);
            L->experts[e].down = pio_wmat_from_tensor(td);
            L->experts[e].repack[0] = repack_mode(w, tg);
            L->experts[e].repack[1] = repack_mode(w, tu);
            L->experts[e].repack[2] = repack_mode(w, td);
        }
        break;
    case QWEN3_MOE_LAYOUT_FUSED_GATE_UP:
        snprintf(name, sizeof name, lay->gate, l);
        if ((st = bind3(w, hp, name, D_FF_EXP2, D_EMBD, &tg)))
            return st;
        snprintf(name, sizeof name, lay->down, l);
        if ((st = bind3(w, hp, name, D_EMBD, D_FF_EXP, &td)))
            return st;
        account(m, tg, dtype_counts);
        account(m, td, dtype_counts);
        for (e = 0; e < hp->n_experts; e++) {
            L->experts[e].gate = wmat_rows(tg, 2 * ff * e, ff);
            L->experts[e].up = wmat_rows(tg, 2 * ff * e + ff, ff);
            L->experts[e].down = wmat_rows(td, (int64_t)hp->n_embd * e, hp->n_embd);
            L->experts[e].repack[0] = L->experts[e].repack[1] = repack_mode(w, tg);
            L->experts[e].repack[2] = repack_mode(w, td);
        }
        break;
    case QWEN3_MOE_LAYOUT_STACKED:
        snprintf(name, sizeof name, lay->gate, l);
        if ((st = bind3(w, hp, name, D_FF_EXP, D_EMBD, &tg)))
            return st;
        snprintf(name, sizeof name, lay->up, l);
        if ((st = bind3(w, hp, name, D_FF_EXP, D_EMBD, &tu)))
            return st;
        snprintf(name, sizeof name, lay->down, l);
        if ((st = bind3(w, hp, name, D_EMBD, D_FF_EXP, &td)))
            return st;
        account(m, tg, dtype_counts);
        account(m, tu, dtype_counts);
        account(m, td, dtype_counts);
        for (e = 0; e < hp->n_experts; e++) {
            L->experts[e].gate = wmat_rows(tg, ff * e, ff);
            L->experts[e].up = wmat_rows(tu, ff * e, ff);
            L->experts[e].down = wmat_rows(td, (int64_t)hp->n_embd * e, hp->n_embd);
            L->experts[e].repack[0] = repack_mode(w, tg);
            L->experts[e].repack[1] = repack_mode(w, tu);
            L->experts[e].repack[2] = repack_mode(w, td);
        }
        break;
    default:
        break;
    }
    return PIO_STATUS_OK;
}

pio_status qwen3_moe_model_load(qwen3_moe_model *m, const pio_hf_config *cfg, const pio_weights *w)
{
    const pio_tensor *t;
    int dtype_counts[PIO_DTYPE_COUNT] = { 0 };
    int64_t embd_params;
    pio_status st;
    int l;

    memset(m, 0, sizeof *m);
    st = qwen3_moe_hparams_from_config(cfg, &m->hp);
    if (st)
        return st;
    const qwen3_moe_hparams *hp = &m->hp;

    st = bind(w, hp, "model.embed_tokens.weight", D_VOCAB, D_EMBD, &t);
    if (st)
        goto fail;
    m->tok_embd = pio_wmat_from_tensor(t);
    account(m, t, dtype_counts);
    embd_params = t->n_elements;
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
        qwen3_moe_layer *L = &m->layers[l];
        st = bind_specs(m, w, attn_specs, (int)(sizeof attn_specs / sizeof attn_specs[0]), l, L, dtype_counts);
        if (st)
            goto fail;
        if (hp->layer_moe[l]) {
            if ((st = bind_specs(m, w, &router_spec, 1, l, L, dtype_counts)) ||
                (st = bind_experts(m, w, l, L, dtype_counts)))
                goto fail;
        } else {
            st = bind_specs(m, w, dense_specs, (int)(sizeof dense_specs / sizeof dense_specs[0]), l, L,
                            dtype_counts);
            if (st)
                goto fail;
        }
    }
    /* per token: everything but the input embedding and the experts not selected */
    m->n_params_active = m->n_params - (hp->tied ? 0 : embd_params) -
                         (int64_t)hp->n_moe_layers * (hp->n_experts - hp->n_experts_used) * 3 *
                         (int64_t)hp->n_ff_exp * hp->n_embd;

    m->inv_freq = malloc((size_t)(hp->head_dim / 2) * sizeof(float));
    if (!m->inv_freq) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "out of memory");
        goto fail;
    }
    pio_rope_inv_freq(m->inv_freq, hp->head_dim, hp->rope_theta);

    pio_dtype_counts_format(m->dtypes, sizeof m->dtypes, dtype_counts);
    return PIO_STATUS_OK;

fail:
    qwen3_moe_model_free(m);
    return st;
}

void qwen3_moe_model_free(qwen3_moe_model *m)
{
    int l;
    if (m->layers) {
        for (l = 0; l < m->hp.n_layers; l++) {
            free(m->layers[l].attn_norm);
            free(m->layers[l].ffn_norm);
            free(m->layers[l].q_norm);
            free(m->layers[l].k_norm);
            free(m->layers[l].experts);
        }
    }
    free(m->layers);
    free(m->out_norm);
    free(m->inv_freq);
    qwen3_moe_hparams_free(&m->hp);
    memset(m, 0, sizeof *m);
}
