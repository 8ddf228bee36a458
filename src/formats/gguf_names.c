/*
 * gguf_names.c - a GGUF model seen as a Hugging Face one: tensor names
 * (llama.cpp's "blk.N.attn_q.weight" <-> "model.layers.N.self_attn.q_proj.weight"),
 * hyperparameters (<arch>.* keys <-> config.json fields), generation
 * settings, and the weights through the pio_weights API.
 *
 * The tables follow llama.cpp's gguf-py (constants.py MODEL_TENSORS for
 * QWEN3/QWEN3MOE, tensor_mapping.py) and convert_hf_to_gguf.py
 * (TextModel.set_gguf_parameters, Qwen2MoeModel, SpecialVocab).
 */
#include "gguf_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- tensor names -------------------------------------------------------------- */

/* Whole-model tensors. */
static const struct { const char *gguf, *hf; } gguf_global_names[] = {
    { "token_embd.weight", "model.embed_tokens.weight" },
    { "output_norm.weight", "model.norm.weight" },
    { "output.weight", "lm_head.weight" },
};

/* Per-layer tensors: "blk.N.<gguf>" <-> "model.layers.N.<hf>". */
static const struct { const char *gguf, *hf; } gguf_layer_names[] = {
    { "attn_norm.weight", "input_layernorm.weight" },
    { "attn_q.weight", "self_attn.q_proj.weight" },
    { "attn_k.weight", "self_attn.k_proj.weight" },
    { "attn_v.weight", "self_attn.v_proj.weight" },
    { "attn_output.weight", "self_attn.o_proj.weight" },
    { "attn_q.bias", "self_attn.q_proj.bias" },
    { "attn_k.bias", "self_attn.k_proj.bias" },
    { "attn_v.bias", "self_attn.v_proj.bias" },
    { "attn_q_norm.weight", "self_attn.q_norm.weight" },
    { "attn_k_norm.weight", "self_attn.k_norm.weight" },
    { "ffn_norm.weight", "post_attention_layernorm.weight" },
    { "ffn_gate.weight", "mlp.gate_proj.weight" },
    { "ffn_up.weight", "mlp.up_proj.weight" },
    { "ffn_down.weight", "mlp.down_proj.weight" },
    { "ffn_gate_inp.weight", "mlp.gate.weight" },
    /* MoE experts fused into one 3-D tensor [n_expert, rows, cols]; llama.cpp's
     * converter stacks HF's experts.E.<w>.weight under these names first. */
    { "ffn_gate_exps.weight", "mlp.experts.gate_proj.weight" },
    { "ffn_up_exps.weight", "mlp.experts.up_proj.weight" },
    { "ffn_down_exps.weight", "mlp.experts.down_proj.weight" },
    { "ffn_gate_up_exps.weight", "mlp.experts.gate_up_proj.weight" },
};

#define N_OF(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* If s starts with `prefix` followed by a decimal layer number and '.', the
 * number into *layer and the rest into *rest. */
static bool split_layer(const char *s, const char *prefix, long *layer, const char **rest)
{
    size_t pl = strlen(prefix);
    char *end;
    if (strncmp(s, prefix, pl) != 0 || !isdigit((unsigned char)s[pl]))
        return false;
    if (s[pl] == '0' && isdigit((unsigned char)s[pl + 1]))
        return false;   /* "01" is not a layer number either converter writes */
    *layer = strtol(s + pl, &end, 10);
    if (*end != '.' || *layer < 0 || *layer > 1000000)
        return false;
    *rest = end + 1;
    return true;
}

/* Map `name` through one direction of the tables. */
static bool map_name(const char *name, bool to_hf, char *buf, size_t cap)
{
    const char *from_prefix = to_hf ? "blk." : "model.layers.";
    const char *to_prefix = to_hf ? "model.layers." : "blk.";
    const char *rest;
    long layer;
    int n;

    for (int i = 0; i < N_OF(gguf_global_names); i++) {
        const char *from = to_hf ? gguf_global_names[i].gguf : gguf_global_names[i].hf;
        const char *to = to_hf ? gguf_global_names[i].hf : gguf_global_names[i].gguf;
        if (strcmp(name, from) == 0) {
            n = snprintf(buf, cap, "%s", to);
            return n >= 0 && (size_t)n < cap;
        }
    }
    if (!split_layer(name, from_prefix, &layer, &rest))
        return false;
    for (int i = 0; i < N_OF(gguf_layer_names); i++) {
        const char *from = to_hf ? gguf_layer_names[i].gguf : gguf_layer_names[i].hf;
        const char *to = to_hf ? gguf_layer_names[i].hf : gguf_layer_names[i].gguf;
        if (strcmp(rest, from) == 0) {
            n = snprintf(buf, cap, "%s%ld.%s", to_prefix, layer, to);
            return n >= 0 && (size_t)n < cap;
        }
    }
    return false;
}

bool pio_gguf_name_to_hf(const char *name, char *buf, size_t cap)
{
    return name && buf && map_name(name, true, buf, cap);
}

bool pio_gguf_name_from_hf(const char *name, char *buf, size_t cap)
{
    return name && buf && map_name(name, false, buf, cap);
}

/* ---- architectures and hyperparameters ------------------------------------------ */

static const struct { const char *gguf, *hf, *model_type; bool moe; } gguf_archs[] = {
    { "qwen3", "Qwen3ForCausalLM", "qwen3", false },
    { "qwen3moe", "Qwen3MoeForCausalLM", "qwen3_moe", true },
};

const char *pio_gguf_arch_to_hf(const char *arch)
{
    for (int i = 0; arch && i < N_OF(gguf_archs); i++)
        if (strcmp(arch, gguf_archs[i].gguf) == 0)
            return gguf_archs[i].hf;
    return NULL;
}

const char *pio_gguf_arch_from_hf(const char *hf_arch)
{
    for (int i = 0; hf_arch && i < N_OF(gguf_archs); i++)
        if (strcmp(hf_arch, gguf_archs[i].hf) == 0)
            return gguf_archs[i].gguf;
    return NULL;
}

/*
 * "<arch>.<gguf>" <-> config.json. llama.cpp writes key_length and
 * value_length both from head_dim; feed_forward_length is the dense MLP
 * (Qwen3-MoE files carry intermediate_size there too).
 */
const pio_gguf_hparam pio_gguf_hparams[] = {
    { "context_length", "max_position_embeddings", 'u', true },
    { "embedding_length", "hidden_size", 'u', true },
    { "block_count", "num_hidden_layers", 'u', true },
    { "feed_forward_length", "intermediate_size", 'u', false },
    { "attention.head_count", "num_attention_heads", 'u', true },
    { "attention.head_count_kv", "num_key_value_heads", 'u', false },
    { "attention.key_length", "head_dim", 'u', false },
    { "attention.layer_norm_rms_epsilon", "rms_norm_eps", 'f', true },
    { "rope.freq_base", "rope_theta", 'f', false },
    { "expert_count", "num_experts", 'u', false },
    { "expert_used_count", "num_experts_per_tok", 'u', false },
    { "expert_feed_forward_length", "moe_intermediate_size", 'u', false },
};
const int pio_gguf_n_hparams = N_OF(pio_gguf_hparams);

bool pio_gguf_is_pad_token(const char *s, size_t len, uint64_t id)
{
    char want[40];
    int n = snprintf(want, sizeof want, "[PAD%llu]", (unsigned long long)id);
    return n > 0 && (size_t)n == len && memcmp(s, want, len) == 0;
}

/*
 * A positive integer hyperparameter `key`: a scalar, or a per-layer array
 * whose values are all equal (llama.cpp allows both). *found = false when
 * absent.
 */
static pio_status gguf_uint_param(const pio_gguf *g, const char *key, int64_t *out, bool *found)
{
    int i = pio_gguf_find_key(g, key);
    pio_status st;
    *found = i >= 0;
    if (i < 0)
        return PIO_STATUS_OK;
    if (pio_gguf_kv_type(g, i) == PIO_GGUF_ARRAY) {
        uint64_t n = pio_gguf_kv_len(g, i);
        int64_t v0 = 0, v;
        if (n == 0 || !pio_gguf_arr_int(g, i, 0, &v0))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" must be an integer or a non-empty integer array",
                             pio_gguf_name(g), key);
        for (uint64_t j = 1; j < n; j++)
            if (!pio_gguf_arr_int(g, i, j, &v) || v != v0)
                return pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                                 "%s: key \"%s\" differs between layers (%lld at 0, %lld at %llu); not supported",
                                 pio_gguf_name(g), key, (long long)v0, (long long)v, (unsigned long long)j);
        *out = v0;
    } else if ((st = pio_gguf_get_int(g, key, out)) != PIO_STATUS_OK) {
        return st;
    }
    if (*out < 1 || *out > INT32_MAX)
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" = %lld must be in [1, 2^31)", pio_gguf_name(g), key,
                         (long long)*out);
    return PIO_STATUS_OK;
}

/* The shortest decimal that reads back as the float32 value f: a GGUF holds
 * 1e-06 as 9.99999997e-07, config.json says 1e-06. */
static double f32_decimal(double f)
{
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, f);
        double d = strtod(buf, NULL);
        if ((float)d == (float)f)
            return d;
    }
    return f;
}

/* Token id key `key` (optional): -1 when absent; checked against n_tokens when > 0. */
static pio_status gguf_token_id(const pio_gguf *g, const char *key, int64_t n_tokens, int64_t *out)
{
    pio_status st;
    *out = -1;
    if (pio_gguf_find_key(g, key) < 0)
        return PIO_STATUS_OK;
    if ((st = pio_gguf_get_int(g, key, out)) != PIO_STATUS_OK)
        return st;
    if (*out < 0 || (n_tokens > 0 && *out >= n_tokens))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" = %lld is not a token id (0..%lld)", pio_gguf_name(g),
                         key, (long long)*out, (long long)(n_tokens > 0 ? n_tokens - 1 : INT32_MAX));
    return PIO_STATUS_OK;
}

static int64_t gguf_n_tokens(const pio_gguf *g)
{
    int i = pio_gguf_find_key(g, "tokenizer.ggml.tokens");
    return i >= 0 && pio_gguf_kv_elem_type(g, i) == PIO_GGUF_STRING ? (int64_t)pio_gguf_kv_len(g, i) : 0;
}

/* general.architecture, which must be one we map; its index in gguf_archs. */
static pio_status gguf_arch(const pio_gguf *g, int *which, char *arch, size_t cap)
{
    const char *s;
    size_t n;
    pio_status st = pio_gguf_get_str(g, "general.architecture", &s, &n);
    if (st != PIO_STATUS_OK)
        return st;
    snprintf(arch, cap, "%.*s", (int)(n < cap ? n : cap - 1), s);
    for (int i = 0; i < N_OF(gguf_archs); i++) {
        if (strlen(gguf_archs[i].gguf) == n && memcmp(s, gguf_archs[i].gguf, n) == 0) {
            *which = i;
            return PIO_STATUS_OK;
        }
    }
    return pio_error(PIO_STATUS_ERR_UNSUPPORTED,
                     "%s: general.architecture \"%s\" is not supported (GGUF support: qwen3, qwen3moe)",
                     pio_gguf_name(g), arch);
}

pio_status pio_hf_config_from_gguf(const pio_gguf *g, pio_hf_config *cfg)
{
    pio_status st;
    cJSON *root = cJSON_CreateObject(), *arr;
    char *text = NULL, arch[64], key[160];
    const char *file = pio_gguf_name(g);
    const pio_tensor *embd, *t;
    int which = 0;
    int64_t head_dim = 0, n_heads = 0, n_embd = 0, v;
    bool found;

    memset(cfg, 0, sizeof *cfg);
    snprintf(cfg->path, sizeof cfg->path, "%s", file);
    if (!root)
        return pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", file);
    if ((st = gguf_arch(g, &which, arch, sizeof arch)) != PIO_STATUS_OK)
        goto done;
    arr = cJSON_AddArrayToObject(root, "architectures");
    if (arr)
        cJSON_AddItemToArray(arr, cJSON_CreateString(gguf_archs[which].hf));
    cJSON_AddStringToObject(root, "model_type", gguf_archs[which].model_type);
    cJSON_AddStringToObject(root, "hidden_act", "silu");

    for (int i = 0; i < pio_gguf_n_hparams; i++) {
        const pio_gguf_hparam *h = &pio_gguf_hparams[i];
        bool required = h->required || (!gguf_archs[which].moe && strcmp(h->hf, "intermediate_size") == 0) ||
                        (gguf_archs[which].moe && (strcmp(h->hf, "num_experts") == 0 ||
                                                   strcmp(h->hf, "num_experts_per_tok") == 0));
        snprintf(key, sizeof key, "%s.%s", arch, h->gguf);
        if (pio_gguf_find_key(g, key) < 0) {
            if (required) {
                st = pio_error(PIO_STATUS_ERR_MISSING, "%s: key \"%s\" (%s) is missing", file, key, h->hf);
                goto done;
            }
            continue;
        }
        if (h->kind == 'u') {
            if ((st = gguf_uint_param(g, key, &v, &found)) != PIO_STATUS_OK)
                goto done;
            cJSON_AddNumberToObject(root, h->hf, (double)v);
            if (strcmp(h->hf, "head_dim") == 0)
                head_dim = v;
            else if (strcmp(h->hf, "num_attention_heads") == 0)
                n_heads = v;
            else if (strcmp(h->hf, "hidden_size") == 0)
                n_embd = v;
        } else {
            double d;
            if ((st = pio_gguf_get_float(g, key, &d)) != PIO_STATUS_OK)
                goto done;
            if (!(d > 0))
                st = pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" = %g must be positive", file, key, d);
            if (st != PIO_STATUS_OK)
                goto done;
            cJSON_AddNumberToObject(root, h->hf, f32_decimal(d));
        }
    }
    if (head_dim == 0)
        head_dim = n_heads > 0 ? n_embd / n_heads : 0;
    /* value_length must equal key_length; RoPE must cover the whole head. */
    snprintf(key, sizeof key, "%s.attention.value_length", arch);
    if ((st = gguf_uint_param(g, key, &v, &found)) != PIO_STATUS_OK)
        goto done;
    if (found && v != head_dim) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: key \"%s\" = %lld differs from the key length %lld", file, key,
                       (long long)v, (long long)head_dim);
        goto done;
    }
    snprintf(key, sizeof key, "%s.rope.dimension_count", arch);
    if ((st = gguf_uint_param(g, key, &v, &found)) != PIO_STATUS_OK)
        goto done;
    if (found && v != head_dim) {
        st = pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: key \"%s\" = %lld: partial RoPE (head size %lld) is not supported",
                       file, key, (long long)v, (long long)head_dim);
        goto done;
    }
    snprintf(key, sizeof key, "%s.rope.scaling.type", arch);
    if (pio_gguf_find_key(g, key) >= 0) {
        const char *s;
        size_t n;
        if ((st = pio_gguf_get_str(g, key, &s, &n)) != PIO_STATUS_OK)
            goto done;
        if (!(n == 4 && memcmp(s, "none", 4) == 0)) {
            cJSON *rs = cJSON_AddObjectToObject(root, "rope_scaling");
            char type[32];
            double factor = 1.0;
            snprintf(type, sizeof type, "%.*s", (int)(n < sizeof type ? n : sizeof type - 1), s);
            cJSON_AddStringToObject(rs, "rope_type", type);
            snprintf(key, sizeof key, "%s.rope.scaling.factor", arch);
            if (pio_gguf_find_key(g, key) >= 0 && (st = pio_gguf_get_float(g, key, &factor)) != PIO_STATUS_OK)
                goto done;
            cJSON_AddNumberToObject(rs, "factor", f32_decimal(factor));
        }
    }

    /* From the tensors: vocabulary rows, tied embeddings, attention bias. */
    embd = pio_gguf_find_tensor(g, "token_embd.weight");
    if (!embd || embd->n_dims != 2) {
        st = pio_error(embd ? PIO_STATUS_ERR_SHAPE : PIO_STATUS_ERR_MISSING,
                       "%s: tensor \"token_embd.weight\" %s (the vocabulary size comes from its rows)", file,
                       embd ? "is not 2-D" : "is missing");
        goto done;
    }
    cJSON_AddNumberToObject(root, "vocab_size", (double)embd->shape[0]);
    cJSON_AddBoolToObject(root, "tie_word_embeddings", pio_gguf_find_tensor(g, "output.weight") == NULL);
    t = pio_gguf_find_tensor(g, "blk.0.attn_q.bias");
    cJSON_AddBoolToObject(root, "attention_bias", t != NULL);
    if (gguf_archs[which].moe) {
        /* llama.cpp makes every qwen3moe layer sparse; a layer without a
         * router (blk.N.ffn_gate_inp) is listed as dense, as transformers'
         * mlp_only_layers would (pio's converters write such files) */
        cJSON *dense = cJSON_CreateArray();
        const cJSON *nl = cJSON_GetObjectItemCaseSensitive(root, "num_hidden_layers");
        for (int l = 0; dense && cJSON_IsNumber(nl) && l < nl->valueint; l++) {
            snprintf(key, sizeof key, "blk.%d.ffn_gate_inp.weight", l);
            if (!pio_gguf_find_tensor(g, key))
                cJSON_AddItemToArray(dense, cJSON_CreateNumber(l));
        }
        /* llama.cpp always renormalizes qwen3moe's top-k weights; a file may
         * say otherwise with <arch>.expert_weights_norm (pio's converters
         * write it false for norm_topk_prob = false) */
        bool norm = true;
        snprintf(key, sizeof key, "%s.expert_weights_norm", arch);
        if (pio_gguf_find_key(g, key) >= 0 && (st = pio_gguf_get_bool(g, key, &norm)) != PIO_STATUS_OK) {
            cJSON_Delete(dense);
            goto done;
        }
        cJSON_AddBoolToObject(root, "norm_topk_prob", norm);
        cJSON_AddNumberToObject(root, "decoder_sparse_step", 1);
        cJSON_AddItemToObject(root, "mlp_only_layers", dense);
    }
    {
        int64_t n_tok = gguf_n_tokens(g), bos, eos;
        if ((st = gguf_token_id(g, "tokenizer.ggml.bos_token_id", n_tok, &bos)) != PIO_STATUS_OK ||
            (st = gguf_token_id(g, "tokenizer.ggml.eos_token_id", n_tok, &eos)) != PIO_STATUS_OK)
            goto done;
        if (bos >= 0)
            cJSON_AddNumberToObject(root, "bos_token_id", (double)bos);
        if (eos >= 0)
            cJSON_AddNumberToObject(root, "eos_token_id", (double)eos);
    }
    {
        const char *dt = pio_dtype_name(embd->dtype);
        cJSON_AddStringToObject(root, "torch_dtype", !strcmp(dt, "BF16") ? "bfloat16" : !strcmp(dt, "F16") ? "float16"
                                                                                                        : "float32");
    }

    text = cJSON_PrintUnformatted(root);
    if (!text) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", file);
        goto done;
    }
    st = pio_hf_config_parse(text, strlen(text), file, cfg);
done:
    if (st != PIO_STATUS_OK) {
        memset(cfg, 0, sizeof *cfg);
        snprintf(cfg->path, sizeof cfg->path, "%s", file);
    }
    free(text);
    cJSON_Delete(root);
    return st;
}

/* Append id to the eos list unless it is there or the list is full. */
static void eos_add(pio_generation_config *gc, int64_t id)
{
    if (id < 0 || gc->n_eos >= PIO_MAX_EOS)
        return;
    for (int i = 0; i < gc->n_eos; i++)
        if (gc->eos_token_ids[i] == id)
            return;
    gc->eos_token_ids[gc->n_eos++] = id;
}

/* Control tokens llama.cpp also ends generation on (llama-vocab.cpp, by text). */
static const char *const gguf_eog_texts[] = { "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>" };

pio_status pio_generation_config_from_gguf(const pio_gguf *g, pio_generation_config *gc)
{
    pio_status st;
    int64_t n_tok = gguf_n_tokens(g), id;
    int ti = pio_gguf_find_key(g, "tokenizer.ggml.tokens");
    int ty = pio_gguf_find_key(g, "tokenizer.ggml.token_type");
    static const char *const eog_keys[] = { "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                                            "tokenizer.ggml.eom_token_id" };

    pio_generation_config_defaults(gc);
    if ((st = gguf_token_id(g, "tokenizer.ggml.bos_token_id", n_tok, &gc->bos_token_id)) != PIO_STATUS_OK ||
        (st = gguf_token_id(g, "tokenizer.ggml.padding_token_id", n_tok, &gc->pad_token_id)) != PIO_STATUS_OK)
        return st;
    for (int k = 0; k < N_OF(eog_keys); k++) {
        if ((st = gguf_token_id(g, eog_keys[k], n_tok, &id)) != PIO_STATUS_OK)
            return st;
        eos_add(gc, id);
    }
    for (int64_t j = 0; ti >= 0 && j < n_tok; j++) {
        const char *s;
        size_t n;
        int64_t type = PIO_GGUF_TOKEN_NORMAL;
        if (ty >= 0)
            pio_gguf_arr_int(g, ty, (uint64_t)j, &type);
        if (type != PIO_GGUF_TOKEN_CONTROL || !pio_gguf_arr_str(g, ti, (uint64_t)j, &s, &n))
            continue;
        for (int k = 0; k < N_OF(gguf_eog_texts); k++)
            if (strlen(gguf_eog_texts[k]) == n && memcmp(s, gguf_eog_texts[k], n) == 0)
                eos_add(gc, j);
    }

    /* Sampling defaults the converter copies from generation_config.json. */
    {
        static const struct { const char *key; int what; } keys[] = {
            { "general.sampling.temp", 0 }, { "general.sampling.top_k", 1 }, { "general.sampling.top_p", 2 },
            { "general.sampling.min_p", 3 }, { "general.sampling.penalty_repeat", 4 },
        };
        for (int k = 0; k < N_OF(keys); k++) {
            double d;
            if (pio_gguf_find_key(g, keys[k].key) < 0)
                continue;
            if ((st = pio_gguf_get_float(g, keys[k].key, &d)) != PIO_STATUS_OK)
                return st;
            if (!(d >= 0) || (keys[k].what >= 2 && keys[k].what <= 3 && d > 1) || (keys[k].what == 4 && d <= 0))
                return pio_error(PIO_STATUS_ERR_FORMAT, "%s: key \"%s\" = %g is out of range", pio_gguf_name(g),
                                 keys[k].key, d);
            gc->do_sample = true;
            switch (keys[k].what) {
            case 0: gc->temperature = f32_decimal(d); break;
            case 1: gc->top_k = (int64_t)d; break;
            case 2: gc->top_p = f32_decimal(d); break;
            case 3: gc->min_p = f32_decimal(d); break;
            default: gc->repetition_penalty = f32_decimal(d); break;
            }
        }
    }
    return PIO_STATUS_OK;
}

/* ---- weights ---------------------------------------------------------------------- */

/* What a GGUF-backed pio_weights owns: the file and the renamed descriptors. */
typedef struct gguf_weights {
    pio_gguf *g;
    pio_tensor *tensors;
    char *names;
} gguf_weights;

static void gguf_weights_free(void *p)
{
    gguf_weights *gw = p;
    if (!gw)
        return;
    pio_gguf_free(gw->g);
    free(gw->tensors);
    free(gw->names);
    free(gw);
}

pio_status pio_weights_from_gguf(pio_gguf *g, pio_weights **out)
{
    int n = pio_gguf_tensor_count(g);
    size_t total = 0, o = 0;
    gguf_weights *gw;
    char buf[256];

    *out = NULL;
    gw = calloc(1, sizeof *gw);
    if (!gw) {
        pio_status st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", pio_gguf_name(g));
        pio_gguf_free(g);
        return st;
    }
    gw->g = g;
    for (int i = 0; i < n; i++) {
        const char *name = pio_gguf_tensor_at(g, i)->name;
        total += (pio_gguf_name_to_hf(name, buf, sizeof buf) ? strlen(buf) : strlen(name)) + 1;
    }
    gw->tensors = calloc((size_t)n + 1, sizeof *gw->tensors);
    gw->names = malloc(total + 1);
    if (!gw->tensors || !gw->names) {
        pio_status st = pio_error(PIO_STATUS_ERR_NOMEM, "%s: out of memory", pio_gguf_name(g));
        gguf_weights_free(gw);
        return st;
    }
    for (int i = 0; i < n; i++) {
        const pio_tensor *t = pio_gguf_tensor_at(g, i);
        const char *name = pio_gguf_name_to_hf(t->name, buf, sizeof buf) ? buf : t->name;
        size_t l = strlen(name) + 1;
        memcpy(gw->names + o, name, l);
        gw->tensors[i] = *t;
        gw->tensors[i].name = gw->names + o;
        o += l;
    }
    {
        bool mapped = pio_gguf_is_mapped(g);
        pio_status st = pio_weights_wrap(pio_gguf_name(g), gw->tensors, n, gw, gguf_weights_free, out);
        if (st == PIO_STATUS_OK && mapped)      /* its pages may be dropped once converted */
            pio_weights_set_file_backed(*out);
        return st;
    }
}

pio_status pio_weights_open_gguf(const char *path, pio_weights **out)
{
    pio_gguf *g;
    pio_status st = pio_gguf_open(path, &g);
    *out = NULL;
    if (st != PIO_STATUS_OK)
        return st;
    return pio_weights_from_gguf(g, out);
}
