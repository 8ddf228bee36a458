/*
 * plugin.c - the qwen3 plugin table (factory: pio_plugin_entry) and its
 * life cycle: initialize -> load_model -> infer... -> cleanup.
 */
#include "qwen3.h"

#include "pio/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pio_plugin_ctx {
    pio_options opts;
    pio_threadpool *tp;
    qwen3_model model;
    bool loaded;
    char architecture[128];
};

static const char *const qwen3_architectures[] = { "Qwen3ForCausalLM", NULL };

/* A Qwen3 dense config (by architecture, or by model_type when the
 * architecture is absent) whose hyperparameters this forward pass handles. */
static bool qwen3_supports_config(const pio_hf_config *cfg)
{
    qwen3_hparams hp;
    bool ok = false;
    int i;
    for (i = 0; qwen3_architectures[i]; i++)
        ok |= strcmp(cfg->architecture, qwen3_architectures[i]) == 0;
    if (!cfg->architecture[0])
        ok = strcmp(cfg->model_type, "qwen3") == 0;
    if (!ok)
        return false;
    ok = qwen3_hparams_from_config(cfg, &hp) == PIO_STATUS_OK;
    pio_clear_error();
    return ok;
}

static pio_status qwen3_initialize(pio_plugin_ctx **out, const pio_options *opts)
{
    pio_plugin_ctx *c = calloc(1, sizeof *c);
    pio_status st;
    if (!c)
        return pio_error(PIO_STATUS_ERR_NOMEM, "qwen3: out of memory");
    if (opts)
        c->opts = *opts;
    st = pio_threadpool_new(c->opts.n_threads, &c->tp);
    if (st) {
        free(c);
        return st;
    }
    *out = c;
    return PIO_STATUS_OK;
}

static pio_status qwen3_load_model(pio_plugin_ctx *c, const pio_model_files *files)
{
    pio_status st;
    if (c->loaded)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "qwen3: a model is already loaded");
    st = qwen3_model_load(&c->model, files->config, files->weights);
    if (st)
        return st;
    snprintf(c->architecture, sizeof c->architecture, "%s", files->config->architecture);
    c->loaded = true;
    return PIO_STATUS_OK;
}

static pio_status qwen3_infer(pio_plugin_ctx *c, const pio_batch *batch, pio_kv *kv, float *logits)
{
    if (!c->loaded)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "qwen3: infer before load_model");
    return qwen3_forward(&c->model, c->tp, batch, kv, logits);
}

static pio_status qwen3_execute(pio_plugin_ctx *c, const char *command, const char *json_in,
                                char **json_out)
{
    if (strcmp(command, "format_chat") == 0)
        return pio_chatml_format(json_in, json_out);
    return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "qwen3: unknown command \"%s\"", command);
}

static pio_status qwen3_get_model_info(pio_plugin_ctx *c, pio_model_info *info)
{
    const qwen3_hparams *hp = &c->model.hp;
    if (!c->loaded)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "qwen3: no model loaded");
    memset(info, 0, sizeof *info);
    info->name = "qwen3";
    info->architecture = c->architecture;
    info->n_params = c->model.n_params;
    info->n_vocab = hp->n_vocab;
    info->n_layers = hp->n_layers;
    info->hidden_size = hp->n_embd;
    info->n_ctx_train = hp->n_ctx_train;
    info->weight_bytes = c->model.weight_bytes;
    snprintf(info->dtypes, sizeof info->dtypes, "%s", c->model.dtypes);
    info->kv_layers = hp->n_layers;
    info->kv_k_dim = hp->n_kv_heads * hp->head_dim;
    info->kv_v_dim = hp->n_kv_heads * hp->head_dim;
    return PIO_STATUS_OK;
}

static pio_status qwen3_update_config(pio_plugin_ctx *c, const pio_options *opts)
{
    pio_threadpool *tp;
    pio_status st;
    if (opts->n_threads != c->opts.n_threads) {
        st = pio_threadpool_new(opts->n_threads, &tp);
        if (st)
            return st;
        pio_threadpool_free(c->tp);
        c->tp = tp;
    }
    c->opts = *opts;
    return PIO_STATUS_OK;
}

static void qwen3_cleanup(pio_plugin_ctx *c)
{
    if (!c)
        return;
    if (c->loaded)
        qwen3_model_free(&c->model);
    pio_threadpool_free(c->tp);
    free(c);
}

static const pio_model_plugin qwen3_plugin = {
    .abi_version = PIO_PLUGIN_ABI_VERSION,
    .name = "qwen3",
    .description = "Qwen3 dense decoder (QK-norm, GQA, rotate-half RoPE)",
    .hf_architectures = qwen3_architectures,
    .supports_config = qwen3_supports_config,
    .initialize = qwen3_initialize,
    .load_model = qwen3_load_model,
    .infer = qwen3_infer,
    .execute = qwen3_execute,
    .get_model_info = qwen3_get_model_info,
    .update_config = qwen3_update_config,
    .cleanup = qwen3_cleanup,
};

PIO_PLUGIN_EXPORT const pio_model_plugin *pio_plugin_entry(void)
{
    return &qwen3_plugin;
}
