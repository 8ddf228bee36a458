/*
 * engine.h - load a model directory and generate: the layer between the CLI
 * (or server) and a model plugin.
 *
 * pio_engine_load reads config.json, generation_config.json, the weights and
 * tokenizer.json, picks the plugin from config.json's `architectures`, and
 * allocates a paged KV cache for opts->n_seqs sequences of opts->n_ctx
 * positions. The engine remembers which tokens each sequence has in the
 * cache, so a generate call whose prompt extends an earlier one (a chat's
 * next turn) only computes the new tokens.
 */
#ifndef PIO_ENGINE_H
#define PIO_ENGINE_H

#include "pio/plugin.h"
#include "pio/sampler.h"
#include "pio/tokenizer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct pio_engine pio_engine;

typedef struct pio_engine_params {
    pio_options opts;
    const char *plugin_dir;    /* extra plugin directory, or NULL */
    bool progress;             /* show a progress bar while paging weights in (on a tty) */
    int kv_blocks;             /* KV pool in blocks of PIO_ENGINE_KV_BLOCK positions;
                                * 0 = enough for every sequence to reach n_ctx */
    pio_dtype kv_dtype;        /* KV cache rows: PIO_DTYPE_F16 (default), F32 or BF16 */
    bool preload;              /* MoE experts too are read (and repacked) at load, so all of
                                * the model is resident; default false: an expert is paged in
                                * (and repacked) the first time it is routed to */
} pio_engine_params;

#define PIO_ENGINE_KV_BLOCK 16   /* positions per KV cache block */

void pio_engine_params_default(pio_engine_params *p);

pio_status pio_engine_load(const char *model_dir, const pio_engine_params *params, pio_engine **out);
void pio_engine_free(pio_engine *e);

const pio_model_info *pio_engine_model_info(const pio_engine *e);
const pio_hf_config *pio_engine_config(const pio_engine *e);
const pio_generation_config *pio_engine_generation_config(const pio_engine *e);
const pio_model_plugin *pio_engine_plugin(const pio_engine *e);
/* NULL when the model directory has no tokenizer.json. */
const pio_tokenizer *pio_engine_tokenizer(const pio_engine *e);
int pio_engine_n_ctx(const pio_engine *e);
/* The KV cache (a scheduler counts its blocks and truncates its sequences). */
pio_kv *pio_engine_kv(pio_engine *e);

/* One raw forward step through the plugin (logits: [rows wanted][n_vocab]). */
pio_status pio_engine_forward(pio_engine *e, const pio_batch *batch, float *logits);

/*
 * Logits at every position of `ids` for sequence 0 (cache cleared first):
 * *logits is malloc'ed [n][n_vocab].
 */
pio_status pio_engine_logits(pio_engine *e, const int32_t *ids, int n, float **logits);

/*
 * Render a chat to a prompt. context_json is the template's render context:
 * {"messages": [{role, content, ...}], "tools": [...]?, "add_generation_prompt":
 * true, "enable_thinking": false, ...}. The model directory's own Jinja chat
 * template is used when it has one (pio/chat_template.h), else the plugin's
 * chat format. *prompt is malloc'ed.
 */
pio_status pio_engine_format_chat(pio_engine *e, const char *context_json, char **prompt);

typedef struct pio_gen_params {
    pio_sampler_params sampling;
    int max_tokens;              /* < 0: until the context is full */
    const char *const *stop;     /* NULL-terminated stop strings, or NULL */
    bool ignore_eos;
} pio_gen_params;

/* Generation defaults: the model's generation_config.json sampling values. */
void pio_engine_gen_params_default(const pio_engine *e, pio_gen_params *p);

/* Called for each generated token with the text it completes (may be "");
 * text held back at the end (an incomplete character, a possible stop
 * string that was not one) comes in a last call with token -1;
 * return false to stop generation. */
typedef bool (*pio_gen_callback)(void *user, int32_t token, const char *text, size_t len);

typedef enum pio_stop_reason {
    PIO_STOP_REASON_EOS = 0,
    PIO_STOP_REASON_STOP_STRING,
    PIO_STOP_REASON_LENGTH,      /* max_tokens reached */
    PIO_STOP_REASON_CONTEXT,     /* context full */
    PIO_STOP_REASON_CALLER,      /* the callback returned false */
} pio_stop_reason;

typedef struct pio_gen_result {
    int n_prompt;                /* prompt tokens */
    int n_reused;                /* of those, found in the cache */
    int n_generated;
    double prompt_seconds;
    double gen_seconds;
    pio_stop_reason stop_reason;
} pio_gen_result;

/*
 * Continue sequence `seq` from the token list `tokens` (the whole
 * conversation so far: the cached common prefix is reused) and generate.
 * Fails with PIO_STATUS_ERR_LIMIT when the prompt does not fit the context.
 */
pio_status pio_engine_generate(pio_engine *e, int seq, const int32_t *tokens, int n_tokens,
                               const pio_gen_params *params, pio_gen_callback cb, void *user,
                               pio_gen_result *res);

/* Forget sequence `seq` (its cache rows and history). */
void pio_engine_seq_reset(pio_engine *e, int seq);

#ifdef __cplusplus
}
#endif

#endif /* PIO_ENGINE_H */
