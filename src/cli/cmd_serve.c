/*
 * cmd_serve.c - `pio serve`: parse the options and run the OpenAI-compatible
 * server (src/server/).
 */
#include "cli/cli.h"
#include "cli/options.h"
#include "server/server.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void serve_usage(FILE *f)
{
    fprintf(f, "usage: pio serve [options]\n\n"
               "Serve the model over an OpenAI-compatible HTTP API: GET /v1/models,\n"
               "POST /v1/chat/completions and /v1/completions (streaming or not),\n"
               "GET /health and GET /metrics (Prometheus). Requests are batched\n"
               "continuously; SIGTERM finishes in-flight requests, then exits.\n\n"
               "options:\n"
               CLI_MODEL_OPTS_HELP
               "      --ctx-size N      same as --ctx: positions per sequence\n"
               "      --host ADDR       IPv4 address to listen on (default 127.0.0.1)\n"
               "      --port N          TCP port (default 8080; 0 = any free port)\n"
               "      --api-key KEY     require Authorization: Bearer KEY (/health, /metrics stay open)\n"
               "      --model-name ID   model id in the API (default: the directory's name)\n"
               "      --max-seqs N      sequences running at once (default 16)\n"
               "      --kv-blocks N     KV cache pool in blocks of 16 positions, shared by running\n"
               "                        sequences and the prefix cache (default: every running\n"
               "                        sequence can reach the context)\n"
               "      --kv-memory MIB   KV cache pool size in MiB (instead of --kv-blocks)\n"
               "      --no-prefix-cache     always prefill the whole prompt (no block reuse)\n"
               "      --batch-tokens N  tokens per forward step, decode + prompt chunks (default 512)\n"
               "      --max-queue N     requests waiting before 429 (default 64)\n"
               "      --timeout S       per-request time limit in seconds (default 600)\n"
               "      --max-body BYTES  request body limit, 413 past it (default 4194304)\n"
               "      --max-tokens-limit N  largest max_tokens accepted (default: the context)\n"
               "      --shutdown-grace S    seconds SIGTERM waits for in-flight requests (default 10)\n"
               "  -q, --quiet           no progress bar\n"
               "  -h, --help            this help\n");
}

int pio_cmd_serve(int argc, char **argv)
{
    cli_model_opts mo = { 0 };
    pio_server_config c;
    long kv_mib = 0;
    int i, r;

    pio_server_config_default(&c);
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        double d;
        if ((r = cli_parse_model_opt(&mo, argc, argv, &i))) {
            if (r < 0)
                return 2;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            serve_usage(stdout);
            return 0;
        }
        if (!strcmp(a, "--no-prefix-cache")) {
            c.no_prefix_cache = true;
            continue;
        }
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            c.quiet = true;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "pio serve: unknown option %s (or it needs a value)\n\n", a);
            serve_usage(stderr);
            return 2;
        }
#define INT_OPT(name, lo, hi, dst)                                  \
        if (!strcmp(a, name)) {                                     \
            if (cli_parse_int(a, argv[++i], lo, hi, &v))            \
                return 2;                                           \
            dst = (int)v;                                           \
            continue;                                               \
        }
#define SEC_OPT(name, dst)                                          \
        if (!strcmp(a, name)) {                                     \
            if (cli_parse_float(a, argv[++i], &d))                  \
                return 2;                                           \
            if (d <= 0) {                                           \
                fprintf(stderr, "pio: %s must be > 0\n", a);        \
                return 2;                                           \
            }                                                       \
            dst = d;                                                \
            continue;                                               \
        }
        INT_OPT("--ctx-size", 1, INT_MAX, mo.n_ctx)
        INT_OPT("--port", 0, 65535, c.port)
        INT_OPT("--max-seqs", 1, 4096, c.max_seqs)
        INT_OPT("--kv-blocks", 1, INT_MAX, c.kv_blocks)
        INT_OPT("--batch-tokens", 1, 1 << 20, c.batch_tokens)
        INT_OPT("--max-queue", 1, 1 << 20, c.max_queue)
        INT_OPT("--max-tokens-limit", 1, INT_MAX, c.max_tokens_limit)
        SEC_OPT("--timeout", c.timeout_s)
        SEC_OPT("--shutdown-grace", c.shutdown_grace_s)
        if (!strcmp(a, "--kv-memory")) {
            if (cli_parse_int(a, argv[++i], 1, 1 << 30, &kv_mib))
                return 2;
            continue;
        }
        if (!strcmp(a, "--max-body")) {
            if (cli_parse_int(a, argv[++i], 1, LONG_MAX, &v))
                return 2;
            c.max_body = (size_t)v;
            continue;
        }
        if (!strcmp(a, "--host")) {
            c.host = argv[++i];
            continue;
        }
        if (!strcmp(a, "--api-key")) {
            c.api_key = argv[++i];
            continue;
        }
        if (!strcmp(a, "--model-name")) {
            c.model_name = argv[++i];
            continue;
        }
#undef INT_OPT
#undef SEC_OPT
        fprintf(stderr, "pio serve: unknown option %s\n\n", a);
        serve_usage(stderr);
        return 2;
    }
    c.model_dir = mo.model ? mo.model : cli_default_model_dir();
    if (!c.model_dir) {
        fprintf(stderr, "pio: no -m given and the bundled demo model (models/demo) was not found\n");
        return 1;
    }
    c.n_threads = mo.n_threads;
    c.n_ctx = mo.n_ctx;
    c.plugin_dir = mo.plugin_dir;
    c.dtype = mo.dtype;
    c.kv_memory_mib = kv_mib;
    return pio_server_run(&c);
}
