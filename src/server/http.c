/*
 * http.c - the libmicrohttpd side of `pio serve`: routing, auth, body
 * limits, error bodies, streaming responses, and the server's life cycle
 * (load, serve, SIGTERM -> drain -> stop).
 *
 * MHD runs one thread per connection. A generation request is parsed and
 * tokenized on its connection thread, queued for the inference thread, and
 * answered with a callback response whose reader blocks on the request's
 * event list; while it waits it polls the socket, so a client that hangs up
 * cancels its sequences within a step even when nothing is being written.
 */
#include "server/server_int.h"

#include "chat/output_parse.h"
#include "pio/chat_template.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if MHD_VERSION < 0x00097002
typedef int mhd_result;
#else
typedef enum MHD_Result mhd_result;
#endif

static volatile sig_atomic_t g_signal;

/* Monotonic seconds. */
double srv_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Defaults of every option (see pio serve --help). */
void pio_server_config_default(pio_server_config *c)
{
    memset(c, 0, sizeof *c);
    c->host = "127.0.0.1";
    c->port = 8080;
    c->max_seqs = 16;
    c->batch_tokens = 512;
    c->max_queue = 64;
    c->timeout_s = 600;
    c->max_body = 4u << 20;
    c->shutdown_grace_s = 10;
}

/* ---- responses ------------------------------------------------------------------ */

typedef struct conn_ctx {
    char *body;
    size_t len, cap;
    bool too_large;
    bool answered;
} conn_ctx;

/* Queue a complete response; takes ownership of the malloc'ed body. */
static mhd_result respond(struct MHD_Connection *conn, unsigned status, const char *type, char *body,
                          const char *retry_after)
{
    struct MHD_Response *resp;
    mhd_result ret;
    if (!body)
        body = strdup("");
    resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    if (retry_after)
        MHD_add_response_header(resp, "Retry-After", retry_after);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* An OpenAI-shaped error response (counted in the metrics). */
static mhd_result respond_error(pio_server *s, struct MHD_Connection *conn, const srv_error *err,
                                const char *retry_after)
{
    pthread_mutex_lock(&s->metrics.mu);
    if (err->status == 429)
        s->metrics.requests_rejected++;
    else
        s->metrics.requests_errors++;
    pthread_mutex_unlock(&s->metrics.mu);
    return respond(conn, (unsigned)err->status, "application/json", srv_error_json(err), retry_after);
}

/* respond_error with a message; 429 and 503 say Retry-After: 1. */
static mhd_result simple_error(pio_server *s, struct MHD_Connection *conn, int status, const char *type,
                               const char *code, const char *msg)
{
    srv_error err;
    memset(&err, 0, sizeof err);
    err.status = status;
    err.type = type;
    err.code = code;
    snprintf(err.message, sizeof err.message, "%s", msg);
    return respond_error(s, conn, &err, status == 429 || status == 503 ? "1" : NULL);
}

/* ---- streaming ---------------------------------------------------------------------- */

/* True when the peer closed or reset the connection. */
static bool peer_gone(int fd)
{
    struct pollfd p = { fd, POLLRDHUP, 0 };
    if (fd < 0)
        return false;
    if (poll(&p, 1, 0) <= 0)
        return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

/*
 * MHD content reader: copy serialized bytes out; when none are left, take
 * the request's events (or wait up to 50 ms for them), serialize them, and
 * once every choice has ended add the final chunk / body.
 */
static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    srv_request *r = cls;
    pio_server *s = r->srv;
    (void)pos;
    for (;;) {
        srv_event *events;
        bool finished;
        if (r->out_pos < r->out_len) {
            size_t n = r->out_len - r->out_pos;
            if (n > max)
                n = max;
            memcpy(buf, r->out + r->out_pos, n);
            r->out_pos += n;
            if (r->out_pos == r->out_len)
                r->out_pos = r->out_len = 0;
            return (ssize_t)n;
        }
        if (r->sent_done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        pthread_mutex_lock(&s->mu);
        if (!r->ev_head && r->n_finished < r->n) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 50 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &s->mu, &ts);
        }
        events = r->ev_head;
        r->ev_head = r->ev_tail = NULL;
        finished = r->n_finished == r->n;
        pthread_mutex_unlock(&s->mu);
        if (!events && !finished) {
            if (peer_gone(r->conn_fd)) {
                pthread_mutex_lock(&s->mu);
                r->cancelled = true;
                pthread_cond_signal(&s->cv);
                pthread_mutex_unlock(&s->mu);
                return MHD_CONTENT_READER_END_WITH_ERROR;
            }
            continue;
        }
        if (events)
            srv_serialize_events(s, r, events);
        if (finished) {
            srv_serialize_final(s, r);
            r->sent_done = true;
            pthread_mutex_lock(&s->metrics.mu);
            s->metrics.requests_ok++;
            pthread_mutex_unlock(&s->metrics.mu);
        }
    }
}

/* The response is gone (sent, or the connection failed): drop the HTTP ref. */
static void reader_free(void *cls)
{
    srv_request *r = cls;
    pio_server *s = r->srv;
    pthread_mutex_lock(&s->mu);
    if (r->n_finished < r->n) {
        r->cancelled = true;
        pthread_cond_signal(&s->cv);
    }
    srv_request_release_locked(r);
    pthread_mutex_unlock(&s->mu);
}

/* POST /v1/(chat/)completions: parse, queue, answer with a streaming callback response. */
static mhd_result handle_generate(pio_server *s, struct MHD_Connection *conn, srv_kind kind, conn_ctx *cc)
{
    srv_error err;
    srv_request *r = srv_parse_request(s, kind, cc->body ? cc->body : "", cc->len, &err);
    struct MHD_Response *resp;
    const union MHD_ConnectionInfo *ci;
    mhd_result ret;

    if (!r)
        return respond_error(s, conn, &err, NULL);
    pthread_mutex_lock(&s->mu);
    r->id = ++s->next_id;
    pthread_mutex_unlock(&s->mu);
    snprintf(r->id_str, sizeof r->id_str, "%s-%llx%08llx", kind == SRV_KIND_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long)s->started, (unsigned long long)r->id);
    r->conn = conn;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->conn_fd = ci ? ci->connect_fd : -1;
    r->t_arrival = srv_now();
    r->deadline = r->t_arrival + s->cfg.timeout_s;
    if (!srv_submit(s, r)) {
        srv_request_release(s, r);
        if (atomic_load(&s->shutting_down))
            return simple_error(s, conn, 503, "server_error", "shutting_down", "the server is shutting down");
        return simple_error(s, conn, 429, "rate_limit_exceeded", "queue_full",
                            "the server is busy: too many requests are waiting, retry later");
    }
    resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, r, reader_free);
    if (!resp) {
        reader_free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", r->stream ? "text/event-stream" : "application/json");
    if (r->stream)
        MHD_add_response_header(resp, "Cache-Control", "no-cache");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- routing --------------------------------------------------------------------------- */

static bool authorized(pio_server *s, struct MHD_Connection *conn)
{
    const char *h;
    if (!s->cfg.api_key || !s->cfg.api_key[0])
        return true;
    h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    return h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, s->cfg.api_key) == 0;
}

/* MHD access handler: body accumulation and limits, then routing. */
static mhd_result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                          const char *version, const char *upload_data, size_t *upload_data_size,
                          void **con_cls)
{
    pio_server *s = cls;
    conn_ctx *cc = *con_cls;
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    (void)version;

    if (!cc) {
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        cc = calloc(1, sizeof *cc);
        if (!cc)
            return MHD_NO;
        *con_cls = cc;
        atomic_fetch_add(&s->n_open_requests, 1);
        if (cl && strtoull(cl, NULL, 10) > s->cfg.max_body) {
            char msg[128];
            cc->answered = true;
            snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->cfg.max_body);
            return simple_error(s, conn, 413, "invalid_request_error", "request_too_large", msg);
        }
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (!cc->too_large && !cc->answered) {
            if (cc->len + *upload_data_size > s->cfg.max_body) {
                cc->too_large = true;
            } else {
                if (cc->len + *upload_data_size + 1 > cc->cap) {
                    size_t cap = (cc->len + *upload_data_size + 1) * 2;
                    char *nb = realloc(cc->body, cap);
                    if (!nb)
                        return MHD_NO;
                    cc->body = nb;
                    cc->cap = cap;
                }
                memcpy(cc->body + cc->len, upload_data, *upload_data_size);
                cc->len += *upload_data_size;
                cc->body[cc->len] = '\0';
            }
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (cc->answered)
        return MHD_YES;
    cc->answered = true;
    if (cc->too_large) {
        char msg[128];
        snprintf(msg, sizeof msg, "the request body is larger than %zu bytes", s->cfg.max_body);
        return simple_error(s, conn, 413, "invalid_request_error", "request_too_large", msg);
    }

    if (!strcmp(url, "/health")) {
        if (atomic_load(&s->load_failed))
            return respond(conn, 500, "application/json", strdup("{\"status\":\"error\"}"), NULL);
        if (!atomic_load(&s->ready))
            return respond(conn, 503, "application/json", strdup("{\"status\":\"loading\"}"), "1");
        return respond(conn, 200, "application/json", strdup("{\"status\":\"ok\"}"), NULL);
    }
    if (!strcmp(url, "/metrics")) {
        if (!get)
            return simple_error(s, conn, 405, "invalid_request_error", "method_not_allowed", "use GET");
        return respond(conn, 200, "text/plain; version=0.0.4", srv_metrics_text(s), NULL);
    }
    if (!authorized(s, conn))
        return simple_error(s, conn, 401, "invalid_request_error", "invalid_api_key",
                            "Incorrect or missing API key (send Authorization: Bearer <key>)");
    if (!strcmp(url, "/v1/models") || !strncmp(url, "/v1/models/", 11)) {
        if (!get)
            return simple_error(s, conn, 405, "invalid_request_error", "method_not_allowed", "use GET");
        if (url[10] == '/') {
            char *list, msg[400];
            if (strcmp(url + 11, s->model_name) != 0) {
                snprintf(msg, sizeof msg, "The model '%.300s' does not exist", url + 11);
                return simple_error(s, conn, 404, "invalid_request_error", "model_not_found", msg);
            }
            list = srv_models_json(s);     /* {"data":[model]}: send the model object */
            if (list) {
                char *start = strstr(list, "[{"), *end = strrchr(list, ']');
                if (start && end && end > start) {
                    *end = '\0';
                    memmove(list, start + 1, strlen(start + 1) + 1);
                }
            }
            return respond(conn, 200, "application/json", list, NULL);
        }
        return respond(conn, 200, "application/json", srv_models_json(s), NULL);
    }
    if (!strcmp(url, "/v1/chat/completions") || !strcmp(url, "/v1/completions")) {
        if (!post)
            return simple_error(s, conn, 405, "invalid_request_error", "method_not_allowed", "use POST");
        if (atomic_load(&s->shutting_down))
            return simple_error(s, conn, 503, "server_error", "shutting_down", "the server is shutting down");
        if (!atomic_load(&s->ready))
            return simple_error(s, conn, 503, "server_error", "model_loading", "the model is still loading");
        return handle_generate(s, conn, strcmp(url, "/v1/completions") ? SRV_KIND_CHAT : SRV_KIND_COMPLETION, cc);
    }
    {
        char msg[400];
        snprintf(msg, sizeof msg, "no route for %.10s %.300s", method, url);
        return simple_error(s, conn, 404, "invalid_request_error", "not_found", msg);
    }
}

/* MHD: the request is over (its response fully sent or abandoned); free its body buffer. */
static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    conn_ctx *cc = *con_cls;
    pio_server *s = cls;
    (void)conn;
    (void)toe;
    if (cc) {
        atomic_fetch_sub(&s->n_open_requests, 1);
        free(cc->body);
        free(cc);
        *con_cls = NULL;
    }
}

/* ---- life cycle --------------------------------------------------------------------------- */

static void on_signal(int sig) { g_signal = sig; }

/* Load the model with a KV pool for max_seqs sequences; read defaults and the tool-call format. */
static pio_status load_engine(pio_server *s)
{
    const pio_server_config *c = &s->cfg;
    pio_engine_params p;
    pio_gen_params gp;
    const pio_model_info *info;
    pio_status st;
    int per_seq;

    pio_engine_params_default(&p);
    if (c->kv_memory_mib > 0 && c->kv_blocks <= 0) {
        /* blocks that fit: layers x 16 positions x (k + v) f32 rows, from config.json */
        pio_hf_config hc;
        char path[4096];
        double per_block;
        snprintf(path, sizeof path, "%s/config.json", c->model_dir);
        if (pio_hf_config_load(path, &hc))
            return pio_error(PIO_STATUS_ERR_INVALID_ARG, "--kv-memory needs a model directory with "
                             "config.json (use --kv-blocks): %s", pio_last_error());
        per_block = (double)hc.num_hidden_layers * PIO_ENGINE_KV_BLOCK * 2.0 *
                    (double)(hc.num_key_value_heads * hc.head_dim) * (double)pio_dtype_size(p.kv_dtype);
        pio_hf_config_free(&hc);
        s->cfg.kv_blocks = (int)((double)c->kv_memory_mib * 1048576.0 / (per_block > 0 ? per_block : 1));
        if (s->cfg.kv_blocks < 1)
            s->cfg.kv_blocks = 1;
        c = &s->cfg;
    }
    p.opts.n_threads = c->n_threads;
    p.opts.n_ctx = c->n_ctx;
    p.opts.n_seqs = c->max_seqs;
    p.opts.dtype = c->dtype;
    p.plugin_dir = c->plugin_dir;
    p.progress = !c->quiet;
    p.kv_blocks = c->kv_blocks;
    st = pio_engine_load(c->model_dir, &p, &s->engine);
    if (st)
        return st;
    info = pio_engine_model_info(s->engine);
    s->tok = pio_engine_tokenizer(s->engine);
    s->n_ctx = pio_engine_n_ctx(s->engine);
    s->n_vocab = (int)info->n_vocab;
    s->n_valid = s->n_vocab;
    if (s->tok && pio_tokenizer_n_vocab(s->tok) < s->n_valid)
        s->n_valid = pio_tokenizer_n_vocab(s->tok);
    per_seq = (s->n_ctx + PIO_ENGINE_KV_BLOCK - 1) / PIO_ENGINE_KV_BLOCK;
    if (c->kv_blocks > 0 && c->kv_blocks < per_seq)
        return pio_error(PIO_STATUS_ERR_INVALID_ARG,
                         "--kv-blocks %d is less than one sequence of %d positions needs (%d blocks)",
                         c->kv_blocks, s->n_ctx, per_seq);
    pio_engine_gen_params_default(s->engine, &gp);
    s->default_sampling = gp.sampling;
    /* the tool-call format the chat template teaches, else the model type's */
    {
        pio_chat_template *t = NULL;
        int f = -1;
        if (!pio_chat_template_load(c->model_dir, &t) && t)
            f = pio_tool_format_from_template(pio_chat_template_source(t));
        pio_chat_template_free(t);
        pio_clear_error();
        if (f < 0)
            f = pio_tool_format_from_name(pio_engine_config(s->engine)->model_type);
        s->tool_format = f < 0 ? PIO_TOOL_FORMAT_NONE : f;
    }
    return PIO_STATUS_OK;
}

/* See server.h: listen, load, serve until a signal, drain, stop. */
int pio_server_run(const pio_server_config *cfg)
{
    pio_server *s = calloc(1, sizeof *s);
    struct MHD_Daemon *d = NULL;
    struct sockaddr_in addr;
    struct sigaction sa;
    const union MHD_DaemonInfo *di;
    const char *base;
    bool thread_started = false;
    int rc = 1, port;

    if (!s) {
        fprintf(stderr, "pio serve: out of memory\n");
        return 1;
    }
    s->cfg = *cfg;
    s->started = (int64_t)time(NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    pthread_mutex_init(&s->chat_mu, NULL);
    srv_metrics_init(&s->metrics);
    if (cfg->model_name) {
        snprintf(s->model_name, sizeof s->model_name, "%s", cfg->model_name);
    } else {                          /* the directory's base name: "models/demo/" -> "demo" */
        char tmp[sizeof s->model_name];
        size_t n;
        snprintf(tmp, sizeof tmp, "%s", cfg->model_dir);
        n = strlen(tmp);
        while (n > 1 && tmp[n - 1] == '/')
            tmp[--n] = '\0';
        base = strrchr(tmp, '/');
        snprintf(s->model_name, sizeof s->model_name, "%s", base ? base + 1 : tmp);
    }
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)cfg->port);
    if (inet_pton(AF_INET, strcmp(cfg->host, "localhost") ? cfg->host : "127.0.0.1", &addr.sin_addr) != 1) {
        fprintf(stderr, "pio serve: --host %s is not an IPv4 address\n", cfg->host);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL |
                             MHD_USE_ERROR_LOG,
                         0, NULL, NULL, handler, s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)(cfg->timeout_s + 60),
                         MHD_OPTION_NOTIFY_COMPLETED, request_completed, s,
                         MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "pio serve: cannot listen on %s:%d: %s\n", cfg->host, cfg->port, strerror(errno));
        goto out;
    }
    di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    port = di ? di->port : cfg->port;
    fprintf(stderr, "pio serve: listening on http://%s:%d (loading %s)\n", cfg->host, port, cfg->model_dir);

    if (load_engine(s)) {
        fprintf(stderr, "pio serve: %s\n", pio_last_error());
        atomic_store(&s->load_failed, true);
        goto out;
    }
    if (pthread_create(&s->infer_thread, NULL, srv_infer_main, s) != 0) {
        fprintf(stderr, "pio serve: cannot start the inference thread\n");
        goto out;
    }
    thread_started = true;
    atomic_store(&s->ready, true);
    fprintf(stderr, "pio serve: ready: model %s, context %d, up to %d sequences, %d-token steps\n",
            s->model_name, s->n_ctx, s->cfg.max_seqs, s->cfg.batch_tokens);

    while (!g_signal && !atomic_load(&s->load_failed))
        usleep(50 * 1000);
    fprintf(stderr, "pio serve: shutting down (signal %d)\n", (int)g_signal);
    /* drain: refuse new requests, let running ones finish within the grace period */
    atomic_store(&s->shutting_down, true);
    {
        double until = srv_now() + s->cfg.shutdown_grace_s;
        for (;;) {
            int inflight;
            pthread_mutex_lock(&s->mu);
            inflight = s->n_inflight;
            pthread_mutex_unlock(&s->mu);
            /* done when no sequence runs and every response has been sent in full */
            if ((inflight == 0 && atomic_load(&s->n_open_requests) == 0) || srv_now() > until)
                break;
            usleep(20 * 1000);
        }
    }
    rc = 0;

out:
    atomic_store(&s->stop, true);
    pthread_mutex_lock(&s->mu);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (thread_started)
        pthread_join(s->infer_thread, NULL);
    if (d)
        MHD_stop_daemon(d);
    pio_engine_free(s->engine);
    pthread_mutex_destroy(&s->chat_mu);
    free(s);
    return rc;
}
