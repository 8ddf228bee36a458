/*
 * metrics.c - counters, gauges and latency histograms, rendered in the
 * Prometheus text exposition format (GET /metrics).
 */
#include "server/server_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Histogram bucket upper bounds in seconds (SRV_HIST_BUCKETS of them). */
static const double hist_bounds[SRV_HIST_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
};

void srv_metrics_init(srv_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->mu, NULL);
}

/* Count one observation (caller holds m->mu). O(buckets). */
void srv_hist_add(srv_hist *h, double seconds)
{
    int i;
    for (i = 0; i < SRV_HIST_BUCKETS && seconds > hist_bounds[i]; i++)
        ;
    h->counts[i]++;
    h->sum += seconds;
    h->n++;
}

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (b->p && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        {
            size_t cap = (b->cap + (size_t)n + 1) * 2;
            char *np = realloc(b->p, cap);
            if (!np)
                return;
            b->p = np;
            b->cap = cap;
        }
    }
}

static void metric(sbuf *b, const char *name, const char *type, const char *help, double v)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

static void hist(sbuf *b, const char *name, const char *help, const srv_hist *h)
{
    uint64_t cum = 0;
    int i;
    sb_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (i = 0; i < SRV_HIST_BUCKETS; i++) {
        cum += h->counts[i];
        sb_printf(b, "%s_bucket{le=\"%g\"} %llu\n", name, hist_bounds[i], (unsigned long long)cum);
    }
    cum += h->counts[SRV_HIST_BUCKETS];
    sb_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n%s_sum %.9g\n%s_count %llu\n", name,
              (unsigned long long)cum, name, h->sum, name, (unsigned long long)h->n);
}

/* The /metrics body (malloc'ed). */
char *srv_metrics_text(pio_server *s)
{
    srv_metrics m;
    sbuf b = { 0 };
    pthread_mutex_lock(&s->metrics.mu);
    m = s->metrics;
    pthread_mutex_unlock(&s->metrics.mu);

    metric(&b, "pio_requests_total", "counter", "Requests accepted into the queue", (double)m.requests_total);
    metric(&b, "pio_requests_success_total", "counter", "Requests answered completely", (double)m.requests_ok);
    metric(&b, "pio_requests_rejected_total", "counter", "Requests refused with 429 (queue full)",
           (double)m.requests_rejected);
    metric(&b, "pio_requests_errors_total", "counter", "Requests answered with a 4xx/5xx error",
           (double)m.requests_errors);
    metric(&b, "pio_requests_cancelled_total", "counter", "Sequences cancelled (client gone or shutdown)",
           (double)m.requests_cancelled);
    metric(&b, "pio_requests_timed_out_total", "counter", "Sequences stopped by --timeout",
           (double)m.requests_timed_out);
    metric(&b, "pio_prompt_tokens_total", "counter", "Prompt tokens of accepted requests",
           (double)m.prompt_tokens);
    metric(&b, "pio_generation_tokens_total", "counter", "Tokens generated", (double)m.generated_tokens);
    metric(&b, "pio_prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache",
           (double)m.prefix_query_tokens);
    metric(&b, "pio_prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache (prefill skipped)",
           (double)m.prefix_hit_tokens);
    metric(&b, "pio_prefix_cache_hit_rate", "gauge", "Prefix cache hits / queries (tokens)",
           m.prefix_query_tokens ? (double)m.prefix_hit_tokens / (double)m.prefix_query_tokens : 0.0);
    metric(&b, "pio_preemptions_total", "counter", "Sequences preempted for lack of KV blocks",
           (double)m.preemptions);
    metric(&b, "pio_steps_total", "counter", "Forward steps", (double)m.steps);
    metric(&b, "pio_batch_tokens_total", "counter", "Tokens run through forward steps",
           (double)m.batch_tokens);
    metric(&b, "pio_queue_depth", "gauge", "Sequences waiting to run", (double)m.waiting);
    metric(&b, "pio_running_sequences", "gauge", "Sequences in the running batch", (double)m.running);
    metric(&b, "pio_kv_blocks_total", "gauge", "KV cache blocks in the pool", (double)m.kv_blocks_total);
    metric(&b, "pio_kv_blocks_used", "gauge", "KV blocks held by running sequences", (double)m.kv_blocks_used);
    metric(&b, "pio_kv_blocks_cached", "gauge", "KV blocks holding cached prefixes (evictable)",
           (double)m.kv_blocks_cached);
    metric(&b, "pio_kv_usage_ratio", "gauge", "Fraction of KV blocks held by running sequences",
           m.kv_blocks_total ? (double)m.kv_blocks_used / (double)m.kv_blocks_total : 0.0);
    hist(&b, "pio_time_to_first_token_seconds", "Arrival to first generated token", &m.ttft);
    hist(&b, "pio_inter_token_latency_seconds", "Time between consecutive tokens of a sequence", &m.itl);
    return b.p;
}
