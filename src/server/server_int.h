/*
 * server_int.h - the server's private structures, shared by http.c (the
 * libmicrohttpd side), api.c (OpenAI JSON in and out), sched.c (the
 * inference thread) and metrics.c.
 *
 * Ownership: a request is created by its HTTP thread and shared with the
 * inference thread by reference count (both under srv->mu); the inference
 * thread alone owns sequences, samplers and the engine; events flow one way,
 * inference -> HTTP, through the request's event list.
 */
#ifndef PIO_SERVER_INT_H
#define PIO_SERVER_INT_H

#include "server/server.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SRV_MAX_STOPS 16
#define SRV_MAX_TOP_LOGPROBS 20
#define SRV_MAX_N 16

typedef enum srv_kind {
    SRV_KIND_CHAT = 0,         /* /v1/chat/completions */
    SRV_KIND_COMPLETION,       /* /v1/completions */
} srv_kind;

typedef enum srv_finish {
    SRV_FINISH_NONE = 0,
    SRV_FINISH_STOP,           /* EOS or a stop string */
    SRV_FINISH_LENGTH,         /* max_tokens or the context */
    SRV_FINISH_TIMEOUT,        /* --timeout passed (reported as "length") */
    SRV_FINISH_CANCELLED,      /* client gone or shutdown */
    SRV_FINISH_ERROR,          /* the engine failed */
} srv_finish;

/* Log-probability of one chosen token and its top alternatives. */
typedef struct srv_logprob {
    int32_t token;
    float logprob;
    int n_top;
    int32_t top_ids[SRV_MAX_TOP_LOGPROBS];
    float top_lp[SRV_MAX_TOP_LOGPROBS];
} srv_logprob;

/* Inference -> HTTP: text of one choice that became final, and/or its end. */
typedef struct srv_event {
    struct srv_event *next;
    int choice;
    char *text;                /* malloc'ed, may be NULL */
    size_t len;
    bool has_lp;
    srv_logprob lp;
    srv_finish finish;         /* NONE, or how the choice ended (last event of a choice) */
} srv_event;

/* HTTP-side state of one choice (serialization only). */
typedef struct srv_choice_out {
    char *text;                /* accumulated content (non-stream, or no parser) */
    size_t len, cap;
    struct pio_output_parser *parser;   /* chat: reasoning / tool-call parser, or NULL */
    void *lp_json;             /* cJSON array of logprob entries (non-stream) */
    srv_finish finish;
    int n_tokens;
} srv_choice_out;

typedef struct srv_request {
    /* ---- fixed after parsing (HTTP thread) ---- */
    uint64_t id;
    char id_str[48];
    srv_kind kind;
    bool stream, include_usage;
    int n;                     /* choices */
    int max_tokens;            /* per choice */
    pio_sampler_params sp;
    char *stops[SRV_MAX_STOPS + 1];   /* NULL-terminated */
    bool logprobs;
    int top_logprobs;
    bool ignore_eos;
    int32_t *prompt;
    int n_prompt;
    struct pio_tool_grammar *tool_grammar;   /* tool_choice "required"/named: the forced call, or NULL */
    double t_arrival, deadline;
    int64_t created;

    /* ---- shared, under srv->mu ---- */
    int refs;
    bool cancelled;            /* HTTP side gone: stop generating */
    int n_finished;            /* choices that ended */
    srv_event *ev_head, *ev_tail;
    int usage_prompt, usage_completion, usage_cached;
    pthread_cond_t cv;
    struct srv_request *next;  /* incoming queue link */

    /* ---- HTTP side only ---- */
    struct MHD_Connection *conn;
    int conn_fd;
    char *out;                 /* serialized bytes not yet sent */
    size_t out_len, out_pos, out_cap;
    bool sent_head, sent_done, http_done;
    srv_choice_out *choices;   /* [n] */
    const char *model_name;
    struct pio_server *srv;
} srv_request;

/* ---- metrics (updated by the inference thread, read by /metrics) ---- */

#define SRV_HIST_BUCKETS 14
typedef struct srv_hist {
    uint64_t counts[SRV_HIST_BUCKETS + 1];   /* last: +Inf */
    double sum;
    uint64_t n;
} srv_hist;

typedef struct srv_metrics {
    pthread_mutex_t mu;
    uint64_t requests_total, requests_ok, requests_rejected, requests_errors;
    uint64_t requests_cancelled, requests_timed_out;
    uint64_t prompt_tokens, generated_tokens;
    uint64_t prefix_query_tokens, prefix_hit_tokens;
    uint64_t preemptions, steps, batch_tokens;
    int waiting, running;      /* sequences */
    int kv_blocks_total, kv_blocks_used, kv_blocks_cached;
    srv_hist ttft, itl;
} srv_metrics;

typedef struct pio_server {
    pio_server_config cfg;
    char model_name[256];
    pio_engine *engine;        /* owned by the inference thread once loaded */
    const pio_tokenizer *tok;
    int n_ctx, n_vocab, n_valid;
    pio_sampler_params default_sampling;   /* generation_config.json */
    int tool_format;           /* pio_tool_format of the model's chat template */
    int64_t started;           /* unix time */
    atomic_bool ready;         /* model loaded */
    atomic_bool load_failed;
    atomic_bool shutting_down; /* no new requests */
    atomic_int n_open_requests; /* HTTP requests whose response is not fully sent */
    atomic_bool stop;          /* inference thread: cancel everything and exit */

    pthread_mutex_t mu;        /* incoming queue, requests' shared fields */
    pthread_cond_t cv;         /* inference thread wakes on new work */
    srv_request *in_head, *in_tail;
    int n_waiting_requests;    /* queued, not yet running a sequence */
    int n_inflight;            /* requests the inference thread holds */
    uint64_t next_id;
    uint64_t next_call_id;     /* tool-call id prefixes */

    pthread_mutex_t chat_mu;   /* rendering chat templates (plugin execute) */
    srv_metrics metrics;
    pthread_t infer_thread;
} pio_server;

/* ---- prefix_cache.c (inference thread only) ---- */
struct srv_pcache_entry;
typedef struct srv_pcache {
    struct pio_kv *kv;
    struct srv_pcache_entry *e;   /* [cap] */
    int cap, n_entries;
    int *buckets;              /* [n_buckets] entry chains, -1 = empty */
    int n_buckets;
    int *free_idx;             /* unused entry slots */
    int n_free_idx;
    uint64_t clock;
} srv_pcache;

uint64_t srv_pcache_hash(uint64_t parent, const int32_t *tokens);
pio_status srv_pcache_init(srv_pcache *pc, struct pio_kv *kv);
void srv_pcache_free(srv_pcache *pc);
/* Block holding (parent, tokens[PIO_ENGINE_KV_BLOCK]) under `hash`, or -1; marks it used. */
int srv_pcache_lookup(srv_pcache *pc, uint64_t hash, uint64_t parent, const int32_t *tokens);
/* Remember a full block (takes a reference); no-op when already known. */
void srv_pcache_insert(srv_pcache *pc, uint64_t hash, uint64_t parent, const int32_t *tokens, int block);
bool srv_pcache_evict_one(srv_pcache *pc);
int srv_pcache_n_idle(const srv_pcache *pc);

/* ---- sched.c ---- */
void *srv_infer_main(void *arg);
/* Queue a parsed request (takes a reference). false when the queue is full. */
bool srv_submit(pio_server *s, srv_request *r);

/* ---- api.c ---- */
/* Parse an OpenAI request body into *out; on failure, *status and a JSON
 * error body (malloc'ed) to send. */
typedef struct srv_error {
    int status;
    const char *type, *code, *param;
    char message[512];
} srv_error;
srv_request *srv_parse_request(pio_server *s, srv_kind kind, const char *body, size_t len,
                               srv_error *err);
void srv_request_release(pio_server *s, srv_request *r);   /* drops one ref (locks srv->mu) */
void srv_request_release_locked(srv_request *r);            /* same, srv->mu held */
char *srv_error_json(const srv_error *err);
/* Append the SSE chunks or final JSON for `events` (consumed) to r->out. */
void srv_serialize_events(pio_server *s, srv_request *r, srv_event *events);
/* After the last event: the usage chunk and [DONE] (stream), or the whole body. */
void srv_serialize_final(pio_server *s, srv_request *r);
char *srv_models_json(pio_server *s);

/* ---- metrics.c ---- */
void srv_metrics_init(srv_metrics *m);
void srv_hist_add(srv_hist *h, double seconds);
char *srv_metrics_text(pio_server *s);

/* ---- http.c ---- */
double srv_now(void);

#endif /* PIO_SERVER_INT_H */
