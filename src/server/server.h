/*
 * server.h - `pio serve`: an OpenAI-compatible HTTP server (libmicrohttpd)
 * over one inference thread that owns the engine and every sequence.
 *
 *   HTTP threads (one per connection)         inference thread
 *   parse JSON, render, tokenize, validate --> incoming queue
 *   serialize events as SSE / JSON        <--  per-request event queue
 *
 * The inference thread runs continuous batching: each step is one
 * pio_engine_forward over the decode tokens of all running sequences plus
 * chunks of prompts under a token budget; sequences join and leave at every
 * step; when KV blocks run out a sequence is preempted and recomputed later.
 */
#ifndef PIO_SERVER_H
#define PIO_SERVER_H

#include "pio/engine.h"

typedef struct pio_server_config {
    const char *model_dir;     /* -m */
    const char *model_name;    /* id in /v1/models; NULL = the directory's base name */
    const char *host;          /* "127.0.0.1" */
    int port;                  /* 8080; 0 = any free port (printed) */
    const char *api_key;       /* NULL = no auth */
    int n_threads;             /* 0 = all cores */
    int n_ctx;                 /* positions per sequence; 0 = model default */
    int max_seqs;              /* running sequences at once */
    bool no_prefix_cache;      /* never reuse a cached prefix (always prefill) */
    int kv_blocks;             /* KV pool blocks; 0 = every running sequence can reach n_ctx */
    long kv_memory_mib;        /* KV pool size in MiB, instead of kv_blocks */
    int batch_tokens;          /* tokens per forward step (decode + prefill chunks) */
    int max_queue;             /* waiting requests before 429 */
    double timeout_s;          /* per-request wall time limit */
    size_t max_body;           /* request body bytes before 413 */
    int max_tokens_limit;      /* largest max_tokens accepted (0 = the context) */
    double shutdown_grace_s;   /* SIGTERM: seconds to let in-flight requests finish */
    const char *plugin_dir;
    const char *dtype;
    bool quiet;
} pio_server_config;

void pio_server_config_default(pio_server_config *c);

/* Run until SIGTERM/SIGINT. Returns a process exit code; prints its errors. */
int pio_server_run(const pio_server_config *c);

#endif /* PIO_SERVER_H */
