/*
 * hello_plugin.c - a toy model plugin built outside the pio tree.
 *
 * It serves the architecture "HelloForCausalLM": the "model" has no weights
 * and always predicts (last token + 1) mod vocab_size, so greedy decoding
 * from token t yields t+1, t+2, ... It shows the whole plugin ABI with the
 * public headers only:
 *   - one exported symbol, pio_plugin_entry, returning a static table that
 *     starts with PIO_PLUGIN_ABI_VERSION;
 *   - plugin state in a ctx the plugin defines (struct pio_plugin_ctx);
 *   - optional methods (supports_config, execute, update_config) filled in
 *     here, though NULL would be allowed;
 *   - the KV cache reached only through kv->ops.
 * pio_error() resolves against the libpio already loaded by the host.
 */
#include <pio/plugin.h>

#include <stdlib.h>
#include <string.h>


/* Big enough to make the predicted token the clear argmax. */
#define HELLO_LOGIT_HIGH 10.0f

struct pio_plugin_ctx {
    pio_options opts;
    int64_t n_vocab;      /* config.json vocab_size; 0 until load_model */
};

/* Any config with a sane vocabulary: the toy model has no other shape. */
static bool hello_supports_config(const pio_hf_config *cfg)
{
    return cfg->vocab_size > 0 && cfg->vocab_size <= (int64_t)1 << 24;
}

static pio_status hello_initialize(pio_plugin_ctx **ctx, const pio_options *opts)
{
    pio_plugin_ctx *c = calloc(1, sizeof *c);
    if (!c)
        return pio_error(PIO_STATUS_ERR_NOMEM, "hello: out of memory");
    if (opts)
        c->opts = *opts;
    *ctx = c;
    return PIO_STATUS_OK;
}

/* Reads vocab_size from the parsed config; there are no weights to bind. */
static pio_status hello_load_model(pio_plugin_ctx *ctx, const pio_model_files *files)
{
    if (!hello_supports_config(files->config))
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "%s: hello: vocab_size %lld out of range",
                         files->config->path, (long long)files->config->vocab_size);
    ctx->n_vocab = files->config->vocab_size;
    return PIO_STATUS_OK;
}

/*
 * For each token with want_logits set, write a row of n_vocab logits that
 * puts HELLO_LOGIT_HIGH on (token + 1) mod n_vocab and 0 elsewhere. The
 * token id is also stored in the KV cache (layer 0, k and v element 0) to
 * show how a plugin writes rows (from f32, whatever the cache's dtype); the
 * toy model never reads them back.
 */
static pio_status hello_infer(pio_plugin_ctx *ctx, const pio_batch *batch, pio_kv *kv,
                              float *logits)
{
    float *row = logits;
    if (ctx->n_vocab <= 0)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG, "hello: infer before load_model");
    for (int i = 0; i < batch->n_tokens; i++) {
        int32_t tok = batch->tokens[i];
        if (tok < 0 || tok >= ctx->n_vocab)
            return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                             "hello: token %d at batch index %d outside vocab of %lld",
                             (int)tok, i, (long long)ctx->n_vocab);
        if (kv) {
            pio_status st = kv->ops->reserve(kv, batch->seq_id[i], batch->pos[i] + 1);
            if (st != PIO_STATUS_OK)
                return st;
            float row = (float)tok;          /* k_dim = v_dim = 1; stored in kv->dtype */
            pio_kv_store(kv, 0, batch->seq_id[i], batch->pos[i], &row, &row);
        }
        if (!batch->want_logits[i])
            continue;
        memset(row, 0, (size_t)ctx->n_vocab * sizeof *row);
        row[(tok + 1) % ctx->n_vocab] = HELLO_LOGIT_HIGH;
        row += ctx->n_vocab;
    }
    return PIO_STATUS_OK;
}

/* One command, "hello", answering {"message": "..."}; json_in is ignored. */
static pio_status hello_execute(pio_plugin_ctx *ctx, const char *command, const char *json_in,
                                char **json_out)
{
    static const char reply[] = "{\"message\": \"hello from the hello plugin\"}";
    if (strcmp(command, "hello") != 0)
        return pio_error(PIO_STATUS_ERR_UNSUPPORTED, "hello: unknown command \"%s\"", command);
    *json_out = malloc(sizeof reply);
    if (!*json_out)
        return pio_error(PIO_STATUS_ERR_NOMEM, "hello: out of memory");
    memcpy(*json_out, reply, sizeof reply);
    return PIO_STATUS_OK;
}

/* A minimal KV geometry (one layer, one float per row) so an engine that
 * allocates a cache from these numbers gets a valid, tiny one. */
static pio_status hello_get_model_info(pio_plugin_ctx *ctx, pio_model_info *info)
{
    memset(info, 0, sizeof *info);
    info->name = "hello";
    info->architecture = "HelloForCausalLM";
    info->n_vocab = ctx->n_vocab;
    info->n_layers = 1;
    info->hidden_size = 1;
    info->n_ctx_train = 4096;
    strcpy(info->dtypes, "none");
    info->kv_layers = 1;
    info->kv_k_dim = 1;
    info->kv_v_dim = 1;
    return PIO_STATUS_OK;
}

static pio_status hello_update_config(pio_plugin_ctx *ctx, const pio_options *opts)
{
    ctx->opts = *opts;
    return PIO_STATUS_OK;
}

static void hello_cleanup(pio_plugin_ctx *ctx)
{
    free(ctx);
}

static const char *const hello_architectures[] = { "HelloForCausalLM", NULL };

static const pio_model_plugin hello_plugin = {
    .abi_version = PIO_PLUGIN_ABI_VERSION,
    .name = "hello",
    .description = "toy example: always predicts (last token + 1) mod vocab_size",
    .hf_architectures = hello_architectures,
    .supports_config = hello_supports_config,
    .initialize = hello_initialize,
    .load_model = hello_load_model,
    .infer = hello_infer,
    .execute = hello_execute,
    .get_model_info = hello_get_model_info,
    .update_config = hello_update_config,
    .cleanup = hello_cleanup,
};

PIO_PLUGIN_EXPORT const pio_model_plugin *pio_plugin_entry(void)
{
    return &hello_plugin;
}
