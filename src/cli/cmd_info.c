/*
 * cmd_info.c - `pio info` and `pio logits`.
 */
#include "cli/cli.h"
#include "cli/options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void info_usage(FILE *f)
{
    fprintf(f, "usage: pio info [-m DIR] [options]\n\n"
               "Print a model's architecture, plugin, parameter count, dtypes and the memory it needs.\n\n"
               "options:\n" CLI_MODEL_OPTS_HELP
               "  -h, --help            this help\n");
}

int pio_cmd_info(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    pio_engine *e;
    const pio_model_info *mi;
    int i, r;
    double kv_per_token, weights;
    pio_dtype kv_dtype;

    for (i = 1; i < argc; i++) {
        if ((r = cli_parse_model_opt(&mo, argc, argv, &i))) {
            if (r < 0)
                return 2;
            continue;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            info_usage(stdout);
            return 0;
        }
        fprintf(stderr, "pio info: unknown option \"%s\"\n", argv[i]);
        info_usage(stderr);
        return 2;
    }
    if (cli_load_engine(&mo, false, 1, &e))
        return 1;
    mi = pio_engine_model_info(e);
    kv_dtype = pio_engine_kv(e)->dtype;
    kv_per_token = (double)mi->kv_layers * (mi->kv_k_dim + mi->kv_v_dim) * pio_dtype_size(kv_dtype);
    weights = (double)mi->weight_bytes;
    printf("architecture:   %s\n", mi->architecture);
    printf("plugin:         %s\n", mi->name);
    printf("parameters:     %lld (%.3f B)\n", (long long)mi->n_params, (double)mi->n_params / 1e9);
    printf("dtypes:         %s\n", mi->dtypes);
    printf("layers:         %lld\n", (long long)mi->n_layers);
    if (pio_engine_config(e)->num_experts > 0) {        /* MoE: config.json / GGUF expert_* keys */
        const pio_hf_config *cfg = pio_engine_config(e);
        printf("experts:        %lld routed, %lld per token (ff %lld%s)\n", (long long)cfg->num_experts,
               (long long)cfg->num_experts_per_tok, (long long)cfg->moe_intermediate_size,
               cfg->norm_topk_prob ? ", top-k weights renormalized" : "");
    }
    printf("hidden size:    %lld\n", (long long)mi->hidden_size);
    printf("vocab (rows):   %lld\n", (long long)mi->n_vocab);
    if (pio_engine_tokenizer(e))
        printf("tokenizer:      %d tokens\n", pio_tokenizer_n_vocab(pio_engine_tokenizer(e)));
    printf("context:        %lld trained, %d configured\n", (long long)mi->n_ctx_train, pio_engine_n_ctx(e));
    printf("weights:        %.1f MB (mmap'd)\n", weights / 1e6);
    printf("KV cache:       %.1f KB per token (%s), %.1f MB at %d tokens\n", kv_per_token / 1e3,
           pio_dtype_name(kv_dtype), kv_per_token * pio_engine_n_ctx(e) / 1e6, pio_engine_n_ctx(e));
    printf("memory needed:  %.1f MB (weights + KV cache at the configured context)\n",
           (weights + kv_per_token * pio_engine_n_ctx(e)) / 1e6);
    pio_engine_free(e);
    return 0;
}

static void logits_usage(FILE *f)
{
    fprintf(f, "usage: pio logits -m DIR --ids 1,2,3 [options]\n\n"
               "Run the ids through the model and print one JSON object {\"logits\": [[...], ...]}\n"
               "with the logits (all vocabulary rows) at every position. Meant for tiny models.\n\n"
               "options:\n"
               "      --ids LIST        comma-separated token ids\n" CLI_MODEL_OPTS_HELP
               "  -h, --help            this help\n");
}

/* Parse "1,2,3" into a malloc'ed array. */
static int parse_ids(const char *s, int32_t **out, int *n)
{
    int cap = 16, cnt = 0;
    int32_t *ids = malloc((size_t)cap * sizeof *ids);
    const char *p = s;
    while (ids && *p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            fprintf(stderr, "pio logits: --ids: bad token id near \"%s\"\n", p);
            free(ids);
            return -1;
        }
        if (cnt == cap) {
            int32_t *nb = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            if (!nb)
                break;
            ids = nb;
        }
        ids[cnt++] = (int32_t)v;
        p = *end ? end + 1 : end;
    }
    if (!ids || *p) {
        free(ids);
        pio_cli_fail("out of memory");
        return -1;
    }
    *out = ids;
    *n = cnt;
    return 0;
}

int pio_cmd_logits(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    const char *ids_arg = NULL;
    int32_t *ids = NULL;
    float *logits = NULL;
    pio_engine *e = NULL;
    int i, r, n = 0, rc = 1;
    int64_t V, t, v;

    for (i = 1; i < argc; i++) {
        if ((r = cli_parse_model_opt(&mo, argc, argv, &i))) {
            if (r < 0)
                return 2;
            continue;
        }
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            logits_usage(stdout);
            return 0;
        }
        if (!strcmp(argv[i], "--ids") && i + 1 < argc) {
            ids_arg = argv[++i];
            continue;
        }
        fprintf(stderr, "pio logits: unknown or incomplete option \"%s\"\n", argv[i]);
        logits_usage(stderr);
        return 2;
    }
    if (!ids_arg || !mo.model) {
        fprintf(stderr, "pio logits: -m DIR and --ids are required\n");
        logits_usage(stderr);
        return 2;
    }
    if (parse_ids(ids_arg, &ids, &n))
        return 2;
    if (n == 0) {
        fprintf(stderr, "pio logits: --ids is empty\n");
        free(ids);
        return 2;
    }
    if (cli_load_engine(&mo, false, 1, &e))
        goto out;
    if (pio_engine_logits(e, ids, n, &logits)) {
        fprintf(stderr, "pio logits: %s\n", pio_last_error());
        goto out;
    }
    V = pio_engine_model_info(e)->n_vocab;
    fputs("{\"logits\": [", stdout);
    for (t = 0; t < n; t++) {
        fputs(t ? ", [" : "[", stdout);
        for (v = 0; v < V; v++)
            printf(v ? ", %.9g" : "%.9g", (double)logits[t * V + v]);
        fputs("]", stdout);
    }
    fputs("]}\n", stdout);
    rc = 0;
out:
    free(logits);
    free(ids);
    pio_engine_free(e);
    return rc;
}
