/*
 * hf_config.c - config.json into pio_hf_config.
 *
 * Where the keys live:
 *   - multimodal configs (Qwen3-VL) keep the language model under
 *     "text_config"; LM keys are read there first, then at the root, while
 *     "architectures" and "model_type" come from the root;
 *   - RoPE is "rope_parameters" {rope_theta, rope_type, factor, mrope_*}
 *     (transformers >= 5) or top-level "rope_theta" + "rope_scaling"
 *     {rope_type | type, factor, mrope_section, mrope_interleaved} (older).
 * A JSON null counts as absent (transformers writes e.g. "rope_scaling": null).
 */
#include "formats_int.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where to look up keys, and the file name for messages. */
typedef struct hf_ctx {
    const char *file;
    const cJSON *root;
    const cJSON *text;   /* text_config, or NULL when the root is the LM */
} hf_ctx;

/*
 * Find LM key `key`: text_config first, then the root. Writes the field's
 * path as the user would find it ("text_config.hidden_size") into label.
 */
static const cJSON *hf_lm_key(const hf_ctx *c, const char *key, char *label, size_t cap)
{
    const cJSON *v = c->text ? pio_fmt_json_child(c->text, key) : NULL;
    if (v) {
        snprintf(label, cap, "text_config.%s", key);
        return v;
    }
    snprintf(label, cap, "%s", key);
    return pio_fmt_json_child(c->root, key);
}

/* Optional integer >= min; *out keeps its default when absent. */
static pio_status hf_int(const hf_ctx *c, const char *key, int64_t min, int64_t *out)
{
    char label[96];
    const cJSON *v = hf_lm_key(c, key, label, sizeof label);
    return v ? pio_fmt_json_int(v, c->file, label, min, out) : PIO_STATUS_OK;
}

/* Required positive integer: absent is ERR_MISSING naming the field. */
static pio_status hf_required(const hf_ctx *c, const char *key, int64_t *out)
{
    char label[96];
    const cJSON *v = hf_lm_key(c, key, label, sizeof label);
    if (!v)
        return pio_error(PIO_STATUS_ERR_MISSING, "%s: required field \"%s\" is missing%s", c->file, key,
                         c->text ? " (looked in text_config and at the top level)" : "");
    return pio_fmt_json_int(v, c->file, label, 1, out);
}

static pio_status hf_double(const hf_ctx *c, const char *key, double lo, double *out)
{
    char label[96];
    const cJSON *v = hf_lm_key(c, key, label, sizeof label);
    return v ? pio_fmt_json_double(v, c->file, label, lo, DBL_MAX, out) : PIO_STATUS_OK;
}

static pio_status hf_bool(const hf_ctx *c, const char *key, bool *out)
{
    char label[96];
    const cJSON *v = hf_lm_key(c, key, label, sizeof label);
    return v ? pio_fmt_json_bool(v, c->file, label, out) : PIO_STATUS_OK;
}

static pio_status hf_str(const hf_ctx *c, const char *key, char *buf, size_t cap)
{
    char label[96];
    const cJSON *v = hf_lm_key(c, key, label, sizeof label);
    return v ? pio_fmt_json_str(v, c->file, label, buf, cap) : PIO_STATUS_OK;
}

/*
 * RoPE settings from one object `o` (rope_parameters or rope_scaling),
 * whose name `oname` prefixes the field names in messages.
 */
static pio_status hf_rope_object(const hf_ctx *c, pio_hf_config *cfg, const cJSON *o,
                                 const char *oname)
{
    pio_status st = PIO_STATUS_OK;
    char label[128];
    const cJSON *v;

#define HF_LABEL(k) (snprintf(label, sizeof label, "%s.%s", oname, k), label)
    if ((v = pio_fmt_json_child(o, "rope_theta")))
        st = pio_fmt_json_double(v, c->file, HF_LABEL("rope_theta"), DBL_MIN, DBL_MAX, &cfg->rope_theta);
    if (st == PIO_STATUS_OK && (v = pio_fmt_json_child(o, "rope_type")))
        st = pio_fmt_json_str(v, c->file, HF_LABEL("rope_type"), cfg->rope_type, sizeof cfg->rope_type);
    else if (st == PIO_STATUS_OK && (v = pio_fmt_json_child(o, "type")))
        st = pio_fmt_json_str(v, c->file, HF_LABEL("type"), cfg->rope_type, sizeof cfg->rope_type);
    if (st == PIO_STATUS_OK && (v = pio_fmt_json_child(o, "factor")))
        st = pio_fmt_json_double(v, c->file, HF_LABEL("factor"), DBL_MIN, DBL_MAX, &cfg->rope_factor);
    if (st == PIO_STATUS_OK && (v = pio_fmt_json_child(o, "mrope_interleaved")))
        st = pio_fmt_json_bool(v, c->file, HF_LABEL("mrope_interleaved"), &cfg->mrope_interleaved);
    if (st == PIO_STATUS_OK && (v = pio_fmt_json_child(o, "mrope_section"))) {
        const cJSON *e;
        int k = 0;
        HF_LABEL("mrope_section");
        if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 3)
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be a list of 3 integers",
                             c->file, label);
        cJSON_ArrayForEach(e, v) {
            int64_t x;
            if (!pio_fmt_json_is_int(e, &x) || x < 0 || x > 1 << 20)
                return pio_error(PIO_STATUS_ERR_FORMAT,
                                 "%s: field \"%s\" element %d must be a non-negative integer", c->file,
                                 label, k);
            cfg->mrope_section[k++] = (int)x;
        }
    }
#undef HF_LABEL
    return st;
}

/* RoPE from rope_parameters, or rope_theta + rope_scaling. */
static pio_status hf_rope(const hf_ctx *c, pio_hf_config *cfg)
{
    pio_status st;
    char label[96];
    const cJSON *params = hf_lm_key(c, "rope_parameters", label, sizeof label);
    const cJSON *scaling;

    /* A top-level rope_theta is the fallback when rope_parameters lacks one. */
    st = hf_double(c, "rope_theta", DBL_MIN, &cfg->rope_theta);
    if (st != PIO_STATUS_OK)
        return st;
    if (params) {
        if (!cJSON_IsObject(params))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be an object", c->file, label);
        return hf_rope_object(c, cfg, params, label);
    }
    scaling = hf_lm_key(c, "rope_scaling", label, sizeof label);
    if (!scaling)
        return PIO_STATUS_OK;
    if (!cJSON_IsObject(scaling))
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"%s\" must be an object or null", c->file,
                         label);
    return hf_rope_object(c, cfg, scaling, label);
}

/* Spellings of the routed-expert count, first match wins. */
static const char *const hf_expert_keys[] = {"num_experts", "num_local_experts", "n_routed_experts"};

/* Fill `cfg` from the parsed tree; cfg already holds the defaults. */
static pio_status hf_fill(const hf_ctx *c, pio_hf_config *cfg)
{
    pio_status st = PIO_STATUS_OK;
    const cJSON *v;
    char label[96];

    /* Model identity from the root: the wrapper class, not the text model's. */
    v = pio_fmt_json_child(c->root, "architectures");
    if (v) {
        if (!cJSON_IsArray(v) || (cJSON_GetArraySize(v) > 0 && !cJSON_IsString(v->child)))
            return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"architectures\" must be a list of strings",
                             c->file);
        if (v->child &&
            (st = pio_fmt_json_str(v->child, c->file, "architectures[0]", cfg->architecture,
                                   sizeof cfg->architecture)) != PIO_STATUS_OK)
            return st;
    }
    if ((v = pio_fmt_json_child(c->root, "model_type")))
        st = pio_fmt_json_str(v, c->file, "model_type", cfg->model_type, sizeof cfg->model_type);
    else
        st = hf_str(c, "model_type", cfg->model_type, sizeof cfg->model_type);
    if (st != PIO_STATUS_OK)
        return st;

#define HF_TRY(expr) do { if ((st = (expr)) != PIO_STATUS_OK) return st; } while (0)
    HF_TRY(hf_required(c, "vocab_size", &cfg->vocab_size));
    HF_TRY(hf_required(c, "hidden_size", &cfg->hidden_size));
    HF_TRY(hf_required(c, "num_hidden_layers", &cfg->num_hidden_layers));
    HF_TRY(hf_required(c, "num_attention_heads", &cfg->num_attention_heads));
    HF_TRY(hf_int(c, "intermediate_size", 1, &cfg->intermediate_size));
    cfg->num_key_value_heads = cfg->num_attention_heads;
    HF_TRY(hf_int(c, "num_key_value_heads", 1, &cfg->num_key_value_heads));
    cfg->head_dim = 0;
    HF_TRY(hf_int(c, "head_dim", 1, &cfg->head_dim));
    /* MLA configs (GLM-4.7-Flash: hidden 2048, 20 heads) have no single head
     * size; head_dim stays 0 there and the plugin reads its own keys. */
    if (cfg->head_dim == 0 && cfg->hidden_size % cfg->num_attention_heads == 0)
        cfg->head_dim = cfg->hidden_size / cfg->num_attention_heads;
    if (cfg->num_attention_heads % cfg->num_key_value_heads != 0)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: field \"num_key_value_heads\" (%lld) does not divide num_attention_heads (%lld)",
                         c->file, (long long)cfg->num_key_value_heads, (long long)cfg->num_attention_heads);
    HF_TRY(hf_int(c, "max_position_embeddings", 1, &cfg->max_position_embeddings));
    HF_TRY(hf_double(c, "rms_norm_eps", DBL_MIN, &cfg->rms_norm_eps));
    HF_TRY(hf_rope(c, cfg));
    HF_TRY(hf_bool(c, "tie_word_embeddings", &cfg->tie_word_embeddings));
    HF_TRY(hf_bool(c, "attention_bias", &cfg->attention_bias));
    HF_TRY(hf_str(c, "hidden_act", cfg->hidden_act, sizeof cfg->hidden_act));
    /* transformers >= 5 writes "dtype", older files "torch_dtype". */
    if ((v = hf_lm_key(c, "dtype", label, sizeof label)) && cJSON_IsString(v))
        HF_TRY(pio_fmt_json_str(v, c->file, label, cfg->torch_dtype, sizeof cfg->torch_dtype));
    else
        HF_TRY(hf_str(c, "torch_dtype", cfg->torch_dtype, sizeof cfg->torch_dtype));
    HF_TRY(hf_int(c, "bos_token_id", 0, &cfg->bos_token_id));
    if ((v = hf_lm_key(c, "eos_token_id", label, sizeof label)))
        HF_TRY(pio_fmt_json_ids(v, c->file, label, cfg->eos_token_ids, &cfg->n_eos, PIO_MAX_EOS));

    /* MoE expert count: Qwen's files say num_experts, transformers >= 5 saves
     * it as num_local_experts (Mixtral's name), DeepSeek/GLM n_routed_experts. */
    for (size_t i = 0; i < sizeof hf_expert_keys / sizeof hf_expert_keys[0]; i++) {
        if (hf_lm_key(c, hf_expert_keys[i], label, sizeof label)) {
            HF_TRY(hf_int(c, hf_expert_keys[i], 0, &cfg->num_experts));
            break;
        }
    }
    HF_TRY(hf_int(c, "num_experts_per_tok", 0, &cfg->num_experts_per_tok));
    HF_TRY(hf_int(c, "moe_intermediate_size", 0, &cfg->moe_intermediate_size));
    HF_TRY(hf_int(c, "decoder_sparse_step", 0, &cfg->decoder_sparse_step));
    HF_TRY(hf_bool(c, "norm_topk_prob", &cfg->norm_topk_prob));
    if (cfg->num_experts > 0 && cfg->num_experts_per_tok > cfg->num_experts)
        return pio_error(PIO_STATUS_ERR_FORMAT,
                         "%s: field \"num_experts_per_tok\" (%lld) exceeds the number of experts (%lld)",
                         c->file, (long long)cfg->num_experts_per_tok, (long long)cfg->num_experts);
#undef HF_TRY
    return PIO_STATUS_OK;
}

/* Defaults for the optional fields (transformers' PretrainedConfig / Qwen3Config). */
static void hf_defaults(pio_hf_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->rms_norm_eps = 1e-6;
    cfg->rope_theta = 10000.0;
    snprintf(cfg->rope_type, sizeof cfg->rope_type, "default");
    cfg->rope_factor = 1.0;
    snprintf(cfg->hidden_act, sizeof cfg->hidden_act, "silu");
    cfg->bos_token_id = -1;
}

pio_status pio_hf_config_parse(const char *json, size_t len, const char *name, pio_hf_config *cfg)
{
    pio_status st;
    cJSON *root = NULL;
    hf_ctx c;

    hf_defaults(cfg);
    if (!name)
        name = "config.json";
    snprintf(cfg->path, sizeof cfg->path, "%s", name);
    st = pio_fmt_json_parse_named(json, len, name, &root);
    if (st != PIO_STATUS_OK)
        return st;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: not a JSON object", name);
    }
    c.file = name;
    c.root = root;
    c.text = pio_fmt_json_child(root, "text_config");
    if (c.text && !cJSON_IsObject(c.text)) {
        cJSON_Delete(root);
        return pio_error(PIO_STATUS_ERR_FORMAT, "%s: field \"text_config\" must be an object", name);
    }
    st = hf_fill(&c, cfg);
    if (st != PIO_STATUS_OK) {
        cJSON_Delete(root);
        hf_defaults(cfg);
        snprintf(cfg->path, sizeof cfg->path, "%s", name);
        return st;
    }
    cfg->json_root = root;
    cfg->json_text = c.text ? c.text : root;
    return PIO_STATUS_OK;
}

pio_status pio_hf_config_load(const char *path, pio_hf_config *cfg)
{
    pio_status st;
    char *text = NULL;
    size_t len = 0;

    st = pio_fmt_read_file(path, PIO_FMT_MAX_JSON_FILE, &text, &len);
    if (st != PIO_STATUS_OK) {
        hf_defaults(cfg);
        snprintf(cfg->path, sizeof cfg->path, "%s", path);
        return st;
    }
    st = pio_hf_config_parse(text, len, path, cfg);
    free(text);
    return st;
}

void pio_hf_config_free(pio_hf_config *cfg)
{
    if (!cfg)
        return;
    cJSON_Delete(cfg->json_root);
    cfg->json_root = NULL;
    cfg->json_text = NULL;
}

/* The text part's value for `key`, else the root's; NULL when absent. */
static const cJSON *hf_plugin_key(const pio_hf_config *cfg, const char *key)
{
    const cJSON *v = pio_fmt_json_child(cfg->json_text, key);
    return v ? v : pio_fmt_json_child(cfg->json_root, key);
}

/* Integers and booleans (as 0/1) are returned; anything else gives `def`. */
int64_t pio_hf_config_int(const pio_hf_config *cfg, const char *key, int64_t def)
{
    const cJSON *v;
    int64_t x;
    if (!cfg || !key)
        return def;
    v = hf_plugin_key(cfg, key);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    return pio_fmt_json_is_int(v, &x) ? x : def;
}

/* Numbers and booleans (as 0/1) are returned; anything else gives `def`. */
double pio_hf_config_double(const pio_hf_config *cfg, const char *key, double def)
{
    const cJSON *v;
    if (!cfg || !key)
        return def;
    v = hf_plugin_key(cfg, key);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}
