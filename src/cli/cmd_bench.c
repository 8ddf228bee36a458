/*
 * cmd_bench.c - `pio bench`: prompt-processing and generation speed, the way
 * llama-bench measures them, so the two can be compared side by side
 * (benchmarks/run_vs_llamacpp.py runs both on the same machine).
 *
 * Tests (each repeated -r times, median and spread reported):
 *   pp: -p random token ids at positions depth .. depth+p-1 in one forward
 *       call, logits for the last one only (llama_batch_get_one does the
 *       same). tokens/s = p / seconds.
 *   tg: -n forward calls of one random token each at positions
 *       depth .. depth+n-1, logits every step; no sampling (llama-bench
 *       feeds random ids too). tokens/s = n / seconds.
 * With --depth D > 0, D random tokens are prefilled once (not timed) before
 * the first repetition and kept, as llama-bench keeps its cached depth
 * state: each repetition writes positions >= D again, and attention at
 * position p reads only rows <= p, which this repetition has written, so
 * rows left by the previous repetition are never read. Without a depth the sequence is
 * reset (pio_engine_seq_reset) before every repetition.
 *
 * A warmup (one forward of min(p, 16) tokens, or of one token when p = 0)
 * pages the mmap'd weights in first; --no-warmup skips it.
 *
 * Memory: peak RSS from getrusage (ru_maxrss) and VmHWM from
 * /proc/self/status; both count the mmap'd weight pages that were touched,
 * as llama.cpp's do. Bandwidth: weight_bytes x tg tokens/s is the rate at
 * which the weights stream from memory if every token reads them all once
 * (true for a dense model whose lm_head is its tied embedding).
 *
 * Roofline (--roofline): after the tests, -n more tokens are generated one
 * at a time with a read of a 512 MiB buffer by -t threads (bench_membw.c)
 * before the first and after every token. Token i's share of the roofline is
 * its read rate (weights + the KV rows it attends over, / its seconds) over
 * the better of the two passes around it; the median share is reported.
 * The probe runs after the peak RSS is taken, so its buffer is not counted.
 */
#include "cli/bench_membw.h"
#include "cli/cli.h"
#include "cli/options.h"
#include "common/cpu.h"
#include "kernels/dispatch.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define BENCH_WARMUP_TOKENS 16
#define BENCH_MEMBW_BYTES ((size_t)512 << 20)   /* 16x a 32 MiB L3 */

typedef struct bench_opts {
    cli_model_opts mo;         /* -m, -t, -c, --dtype, --plugin-dir */
    long n_prompt;             /* -p */
    long n_gen;                /* -n */
    long depth;                /* -d/--depth */
    long reps;                 /* -r */
    unsigned long long seed;   /* --seed */
    bool json, warmup, roofline;
} bench_opts;

/* The --roofline phase: medians over its tokens. */
typedef struct bench_roofline {
    int n;                     /* tokens measured (0 = not run) */
    double share;              /* median of read rate / bandwidth around the token */
    double share_lo, share_hi; /* the quartiles of those shares */
    double read_gb_s;          /* median read rate of the tokens, GB/s */
    double bw_gb_s;            /* median bandwidth of the passes, GB/s */
    double bw_min_gb_s, bw_max_gb_s;
} bench_roofline;

/* Per-test samples (seconds) and their statistics (tokens/s). */
typedef struct bench_stats {
    int n;
    double *seconds;           /* [n] */
    double median, mean, sd, min, max;   /* tokens/s */
} bench_stats;

static void bench_usage(FILE *f)
{
    fprintf(f, "usage: pio bench -m DIR [-p N] [-n N] [-t N] [--depth N] [-r N] [--dtype SPEC] [--json]\n\n"
               "Measure prompt processing (pp) and generation (tg) speed in tokens/s, as llama-bench\n"
               "does: pp = N random tokens in one forward call; tg = N forward calls of one token\n"
               "each, after --depth tokens already in the KV cache. Prints the median over the\n"
               "repetitions and their spread, peak RSS, weight bytes and the weight-read bandwidth\n"
               "that the tg speed implies (weight bytes x tokens/s).\n\n"
               "options:\n"
               "  -p, --n-prompt N      prompt tokens for pp (default 512; 0 = skip pp)\n"
               "  -n, --n-gen N         generated tokens for tg (default 128; 0 = skip tg)\n"
               "  -d, --depth N         tokens already in the cache before each test (default 0)\n"
               "  -r, --reps N          repetitions of each test (default 3)\n"
               "      --seed N          seed of the random token ids (default 42)\n"
               "      --no-warmup       skip the warmup forward\n"
               "      --json            print one JSON object instead of the table\n"
               "      --roofline        after the tests, generate -n more tokens with a DRAM read\n"
               "                        pass (512 MiB, -t threads) around each, and report the\n"
               "                        median share of the bandwidth that the tokens' reads\n"
               "                        (all weights + KV) used (dense models: MoE tokens read\n"
               "                        only their experts)\n"
               CLI_MODEL_OPTS_HELP
               "                        (-c defaults to depth + p + n here)\n"
               "  -h, --help            this help\n");
}

/* splitmix64: the token-id stream, the same for a given --seed. */
static uint64_t bench_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A "Vm...:  N kB" line of /proc/self/status in bytes; -1 where unavailable. */
static long long proc_status_bytes(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t klen = strlen(key);
    long long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, klen) && line[klen] == ':') {
            kb = strtoll(line + klen + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

static long long maxrss_bytes(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru))
        return -1;
    return (long long)ru.ru_maxrss * 1024;   /* Linux reports KiB */
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Fill the statistics of `s` from its samples for `tokens` tokens per sample. */
static void bench_stats_compute(bench_stats *s, long tokens)
{
    double *tps = malloc((size_t)s->n * sizeof *tps), sum = 0.0, ss = 0.0;
    int i;
    if (!tps || s->n == 0) {
        free(tps);
        return;
    }
    for (i = 0; i < s->n; i++) {
        tps[i] = s->seconds[i] > 0 ? (double)tokens / s->seconds[i] : 0.0;
        sum += tps[i];
    }
    s->mean = sum / s->n;
    for (i = 0; i < s->n; i++)
        ss += (tps[i] - s->mean) * (tps[i] - s->mean);
    s->sd = s->n > 1 ? sqrt(ss / (s->n - 1)) : 0.0;
    qsort(tps, (size_t)s->n, sizeof *tps, cmp_double);
    s->min = tps[0];
    s->max = tps[s->n - 1];
    s->median = s->n % 2 ? tps[s->n / 2] : 0.5 * (tps[s->n / 2 - 1] + tps[s->n / 2]);
    free(tps);
}

/* Batch buffers of one bench run and the token-id stream. */
typedef struct bench_bufs {
    int32_t *tok, *pos, *seq;
    uint8_t *want;
    float *logits;             /* [n_vocab] */
    uint64_t rng;
    int32_t n_ids;
} bench_bufs;

/*
 * One forward of n random ids (below b->n_ids) at positions [pos0, pos0+n)
 * of sequence 0, logits for the last token only. The buffers hold at least
 * n entries. Returns the status of pio_engine_forward.
 */
static pio_status bench_forward(pio_engine *e, bench_bufs *b, int pos0, int n)
{
    pio_batch batch = { n, b->tok, b->pos, b->seq, b->want };
    int i;
    for (i = 0; i < n; i++) {
        b->tok[i] = (int32_t)(bench_rand(&b->rng) % (uint64_t)b->n_ids);
        b->pos[i] = pos0 + i;
        b->seq[i] = 0;
        b->want[i] = i == n - 1;
    }
    return pio_engine_forward(e, &batch, b->logits);
}

/* Prefill `n` tokens from position pos0 in chunks of at most `chunk`. */
static pio_status bench_prefill(pio_engine *e, bench_bufs *b, int pos0, int n, int chunk)
{
    pio_status st = PIO_STATUS_OK;
    int done = 0;
    while (!st && done < n) {
        int cnt = n - done < chunk ? n - done : chunk;
        st = bench_forward(e, b, pos0 + done, cnt);
        done += cnt;
    }
    return st;
}

/* Parse the arguments into `o` (defaults already set): 0 = run, -1 = --help
 * was printed, 2 = usage error (message printed). */
static int bench_parse(bench_opts *o, int argc, char **argv)
{
    int i, r;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        bool has_val = i + 1 < argc;
        if ((r = cli_parse_model_opt(&o->mo, argc, argv, &i))) {
            if (r < 0)
                return 2;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            bench_usage(stdout);
            return -1;
        } else if (!strcmp(a, "--json")) {
            o->json = true;
        } else if (!strcmp(a, "--no-warmup")) {
            o->warmup = false;
        } else if (!strcmp(a, "--roofline")) {
            o->roofline = true;
        } else if (!strcmp(a, "-p") || !strcmp(a, "--n-prompt")) {
            if (!has_val)
                goto need_value;
            if (cli_parse_int(a, argv[++i], 0, 1 << 20, &o->n_prompt))
                return 2;
        } else if (!strcmp(a, "-n") || !strcmp(a, "--n-gen")) {
            if (!has_val)
                goto need_value;
            if (cli_parse_int(a, argv[++i], 0, 1 << 20, &o->n_gen))
                return 2;
        } else if (!strcmp(a, "-d") || !strcmp(a, "--depth")) {
            if (!has_val)
                goto need_value;
            if (cli_parse_int(a, argv[++i], 0, 1 << 24, &o->depth))
                return 2;
        } else if (!strcmp(a, "-r") || !strcmp(a, "--reps")) {
            if (!has_val)
                goto need_value;
            if (cli_parse_int(a, argv[++i], 1, 1000, &o->reps))
                return 2;
        } else if (!strcmp(a, "--seed")) {
            long v;
            if (!has_val)
                goto need_value;
            if (cli_parse_int(a, argv[++i], 0, LONG_MAX, &v))
                return 2;
            o->seed = (unsigned long long)v;
        } else {
            fprintf(stderr, "pio bench: unknown option \"%s\"\n", a);
            bench_usage(stderr);
            return 2;
        }
        continue;
need_value:
        fprintf(stderr, "pio bench: %s needs a value\n", a);
        return 2;
    }
    if (o->n_prompt == 0 && o->n_gen == 0) {
        fprintf(stderr, "pio bench: nothing to measure (-p 0 and -n 0)\n");
        return 2;
    }
    if (o->roofline && o->n_gen == 0) {
        fprintf(stderr, "pio bench: --roofline measures generated tokens: it needs -n > 0\n");
        return 2;
    }
    return 0;
}

/*
 * Does the loaded model use the format that --dtype asked for? The spec's
 * first name (before any ',' or ':' of per-tensor overrides) must appear in
 * the plugin's dtype summary ("Q8_0 x 252, F32 x 73"). A false answer means
 * the engine ran the weights as stored and the numbers are not for `spec`.
 */
static bool bench_dtype_applied(const char *spec, const char *dtypes)
{
    char name[32];
    size_t n = strcspn(spec, ",:"), i, k;
    if (n == 0 || n >= sizeof name)
        return false;
    for (i = 0; i < n; i++)
        name[i] = (char)toupper((unsigned char)spec[i]);
    name[n] = '\0';
    for (i = 0; dtypes[i]; i++) {
        for (k = 0; k < n && toupper((unsigned char)dtypes[i + k]) == name[k]; k++)
            ;
        /* a whole name: "Q4_0" must not match inside "Q4_0_X" or "BF16" inside "xBF16" */
        if (k == n && (i == 0 || dtypes[i - 1] == ' ' || dtypes[i - 1] == ',') &&
            (dtypes[i + n] == '\0' || dtypes[i + n] == ' ' || dtypes[i + n] == ','))
            return true;
    }
    return false;
}

/* The statistics of one test as a JSON object (caller owns it). */
static cJSON *stats_json(const bench_stats *s, long tokens)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "seconds");
    int i;
    cJSON_AddNumberToObject(o, "tokens", (double)tokens);
    cJSON_AddNumberToObject(o, "tokens_per_s", s->median);
    cJSON_AddNumberToObject(o, "tokens_per_s_mean", s->mean);
    cJSON_AddNumberToObject(o, "tokens_per_s_sd", s->sd);
    cJSON_AddNumberToObject(o, "tokens_per_s_min", s->min);
    cJSON_AddNumberToObject(o, "tokens_per_s_max", s->max);
    for (i = 0; i < s->n; i++)
        cJSON_AddItemToArray(arr, cJSON_CreateNumber(s->seconds[i]));
    return o;
}

/* One llama-bench-style table row. */
static void print_row(const char *model, const char *dtype, double gib, double bparams, int threads,
                      const char *test, const bench_stats *s)
{
    printf("| %-24.24s | %-10.10s | %8.2f GiB | %7.2f B | %7d | %13s | %10.2f ± %6.2f | %8.2f .. %8.2f |\n",
           model, dtype, gib, bparams, threads, test, s->median, s->sd, s->min, s->max);
}

/* Quantile q (0..1) of the sorted v[0..n) (nearest rank). */
static double quantile(const double *v, int n, double q)
{
    return v[(int)(q * (n - 1) + 0.5)];
}

/*
 * The --roofline phase: n tokens at positions depth.., each timed between
 * two bandwidth passes. Bytes read by the token at position p: the weights
 * plus p + 1 K and V rows of every KV layer.
 */
static pio_status bench_roofline_run(pio_engine *e, bench_bufs *b, const bench_opts *o, int n_threads,
                                     bench_roofline *out)
{
    const pio_model_info *mi = pio_engine_model_info(e);
    const pio_kv *kv = pio_engine_kv(e);
    /* K and V row bytes of one position over all layers, in the cache's own element type */
    double kv_row = (double)mi->kv_layers * (kv->k_dim + kv->v_dim) * (double)pio_dtype_size(kv->dtype);
    int n = (int)o->n_gen, i;
    double *bw = malloc((size_t)(n + 1) * sizeof *bw), *share = malloc((size_t)n * sizeof *share);
    double *rate = malloc((size_t)n * sizeof *rate);
    bench_membw *m = NULL;
    pio_status st = PIO_STATUS_OK;

    if (!bw || !share || !rate || !(m = bench_membw_new(n_threads, BENCH_MEMBW_BYTES))) {
        st = pio_error(PIO_STATUS_ERR_NOMEM, "no memory or threads for the bandwidth probe");
        goto out;
    }
    if (o->depth == 0)
        pio_engine_seq_reset(e, 0);
    bench_membw_pass(m);   /* warm the readers (first-touch of their stacks, wake-up paths) */
    bw[0] = bench_membw_pass(m);
    for (i = 0; i < n; i++) {
        double t0 = now_seconds(), sec, bytes;
        st = bench_forward(e, b, (int)o->depth + i, 1);
        if (st)
            goto out;
        sec = now_seconds() - t0;
        bw[i + 1] = bench_membw_pass(m);
        bytes = (double)mi->weight_bytes + kv_row * (double)(o->depth + i + 1);
        rate[i] = bytes / sec;
        share[i] = rate[i] / (bw[i] > bw[i + 1] ? bw[i] : bw[i + 1]);
    }
    qsort(share, (size_t)n, sizeof *share, cmp_double);
    qsort(rate, (size_t)n, sizeof *rate, cmp_double);
    qsort(bw, (size_t)n + 1, sizeof *bw, cmp_double);
    out->n = n;
    out->share_lo = quantile(share, n, 0.25);
    out->share = quantile(share, n, 0.5);
    out->share_hi = quantile(share, n, 0.75);
    out->read_gb_s = quantile(rate, n, 0.5) / 1e9;
    out->bw_min_gb_s = bw[0] / 1e9;
    out->bw_gb_s = quantile(bw, n + 1, 0.5) / 1e9;
    out->bw_max_gb_s = bw[n] / 1e9;
out:
    bench_membw_free(m);
    free(bw);
    free(share);
    free(rate);
    return st;
}

int pio_cmd_bench(int argc, char **argv)
{
    bench_opts o;
    pio_engine *e = NULL;
    const pio_model_info *mi;
    bench_bufs b = { 0 };
    bench_stats pp = { 0 }, tg = { 0 };
    bench_roofline roof = { 0 };
    double t0, load_s;
    long long rss, hwm, cur;
    int n_threads, n_ctx, rep, i, rc = 1, max_batch;
    pio_status st = PIO_STATUS_OK;
    char test_pp[48], test_tg[48];
    const char *model_name;
    bool dtype_applied;

    memset(&o, 0, sizeof o);
    o.n_prompt = 512;
    o.n_gen = 128;
    o.reps = 3;
    o.seed = 42;
    o.warmup = true;
    if ((i = bench_parse(&o, argc, argv)))
        return i < 0 ? 0 : i;

    /* the context llama-bench uses: depth + prompt + generation */
    n_ctx = o.mo.n_ctx > 0 ? o.mo.n_ctx : (int)(o.depth + o.n_prompt + o.n_gen);
    if (o.depth + (o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen) > n_ctx) {
        fprintf(stderr, "pio bench: --ctx %d is too small for depth %ld + %ld tokens\n", n_ctx,
                o.depth, o.n_prompt > o.n_gen ? o.n_prompt : o.n_gen);
        return 2;
    }
    o.mo.n_ctx = n_ctx;
    t0 = now_seconds();
    if (cli_load_engine(&o.mo, !o.json && isatty(STDERR_FILENO), 1, &e))
        return 1;
    load_s = now_seconds() - t0;
    mi = pio_engine_model_info(e);
    dtype_applied = !o.mo.dtype || bench_dtype_applied(o.mo.dtype, mi->dtypes);
    if (!dtype_applied)
        fprintf(stderr, "pio bench: warning: --dtype %s was asked for but the weights are %s; "
                "the numbers below are for those\n", o.mo.dtype, mi->dtypes);
    n_threads = o.mo.n_threads > 0 ? o.mo.n_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);

    /* token ids: the tokenizer's (real tokens only) or else every embedding row */
    b.n_ids = pio_engine_tokenizer(e) ? pio_tokenizer_n_vocab(pio_engine_tokenizer(e)) : (int32_t)mi->n_vocab;
    if (b.n_ids <= 0 || b.n_ids > mi->n_vocab)
        b.n_ids = (int32_t)mi->n_vocab;
    b.rng = o.seed;
    max_batch = (int)(o.n_prompt > BENCH_WARMUP_TOKENS ? o.n_prompt : BENCH_WARMUP_TOKENS);
    if (o.depth > 0 && max_batch < 512)
        max_batch = 512;   /* depth prefill chunk */
    b.tok = malloc((size_t)max_batch * sizeof *b.tok);
    b.pos = malloc((size_t)max_batch * sizeof *b.pos);
    b.seq = malloc((size_t)max_batch * sizeof *b.seq);
    b.want = malloc((size_t)max_batch);
    b.logits = malloc((size_t)mi->n_vocab * sizeof *b.logits);
    pp.seconds = calloc((size_t)o.reps, sizeof *pp.seconds);
    tg.seconds = calloc((size_t)o.reps, sizeof *tg.seconds);
    if (!b.tok || !b.pos || !b.seq || !b.want || !b.logits || !pp.seconds || !tg.seconds) {
        pio_cli_fail("out of memory");
        goto out;
    }

    if (o.warmup) {
        int n = o.n_prompt > 0 ? (int)(o.n_prompt < BENCH_WARMUP_TOKENS ? o.n_prompt : BENCH_WARMUP_TOKENS) : 1;
        if (!o.json)
            fprintf(stderr, "pio bench: warmup (%d token%s)\n", n, n == 1 ? "" : "s");
        st = bench_forward(e, &b, 0, n);
        if (st)
            goto fail;
        pio_engine_seq_reset(e, 0);
    }
    if (o.depth > 0) {
        if (!o.json)
            fprintf(stderr, "pio bench: prefilling depth %ld (not timed)\n", o.depth);
        t0 = now_seconds();
        st = bench_prefill(e, &b, 0, (int)o.depth, max_batch);
        if (st)
            goto fail;
        if (!o.json)
            fprintf(stderr, "pio bench: depth prefill took %.1f s\n", now_seconds() - t0);
    }

    for (rep = 0; rep < o.reps; rep++) {
        if (o.n_prompt > 0) {
            if (o.depth == 0)
                pio_engine_seq_reset(e, 0);
            t0 = now_seconds();
            st = bench_forward(e, &b, (int)o.depth, (int)o.n_prompt);
            if (st)
                goto fail;
            pp.seconds[pp.n++] = now_seconds() - t0;
            if (!o.json)
                fprintf(stderr, "pio bench: pp%ld rep %d/%ld: %.2f tokens/s\n", o.n_prompt, rep + 1,
                        o.reps, (double)o.n_prompt / pp.seconds[pp.n - 1]);
        }
        if (o.n_gen > 0) {
            if (o.depth == 0)
                pio_engine_seq_reset(e, 0);
            t0 = now_seconds();
            for (i = 0; i < o.n_gen; i++) {
                st = bench_forward(e, &b, (int)o.depth + i, 1);
                if (st)
                    goto fail;
            }
            tg.seconds[tg.n++] = now_seconds() - t0;
            if (!o.json)
                fprintf(stderr, "pio bench: tg%ld rep %d/%ld: %.2f tokens/s\n", o.n_gen, rep + 1,
                        o.reps, (double)o.n_gen / tg.seconds[tg.n - 1]);
        }
    }
    bench_stats_compute(&pp, o.n_prompt);
    bench_stats_compute(&tg, o.n_gen);
    rss = maxrss_bytes();
    hwm = proc_status_bytes("VmHWM");
    cur = proc_status_bytes("VmRSS");
    if (o.roofline) {
        if (!o.json)
            fprintf(stderr, "pio bench: roofline: %ld tokens, each between two bandwidth passes\n", o.n_gen);
        st = bench_roofline_run(e, &b, &o, n_threads, &roof);
        if (st)
            goto fail;
    }

    model_name = o.mo.model ? o.mo.model : "demo";
    if (strrchr(model_name, '/') && strrchr(model_name, '/')[1])
        model_name = strrchr(model_name, '/') + 1;
    snprintf(test_pp, sizeof test_pp, o.depth ? "pp%ld @ d%ld" : "pp%ld", o.n_prompt, o.depth);
    snprintf(test_tg, sizeof test_tg, o.depth ? "tg%ld @ d%ld" : "tg%ld", o.n_gen, o.depth);

    if (o.json) {
        cJSON *j = cJSON_CreateObject();
        char *s;
        cJSON_AddStringToObject(j, "engine", "pio");
        cJSON_AddStringToObject(j, "version", PIO_VERSION_STRING);
        cJSON_AddStringToObject(j, "model", o.mo.model ? o.mo.model : "demo");
        cJSON_AddStringToObject(j, "architecture", mi->architecture);
        if (o.mo.dtype)
            cJSON_AddStringToObject(j, "dtype", o.mo.dtype);
        else
            cJSON_AddNullToObject(j, "dtype");
        cJSON_AddBoolToObject(j, "dtype_applied", dtype_applied);
        cJSON_AddStringToObject(j, "dtypes", mi->dtypes);
        cJSON_AddNumberToObject(j, "n_params", (double)mi->n_params);
        cJSON_AddNumberToObject(j, "weight_bytes", (double)mi->weight_bytes);
        cJSON_AddNumberToObject(j, "kv_layers", mi->kv_layers);
        cJSON_AddNumberToObject(j, "kv_k_dim", mi->kv_k_dim);
        cJSON_AddNumberToObject(j, "kv_v_dim", mi->kv_v_dim);
        cJSON_AddStringToObject(j, "kernels", pio_cpu_level_name(pio_kernels_get()->level));
        cJSON_AddStringToObject(j, "cpu_features", pio_cpu_features_string());
        cJSON_AddNumberToObject(j, "n_threads", n_threads);
        cJSON_AddNumberToObject(j, "n_ctx", pio_engine_n_ctx(e));
        cJSON_AddNumberToObject(j, "n_depth", (double)o.depth);
        cJSON_AddNumberToObject(j, "reps", (double)o.reps);
        cJSON_AddNumberToObject(j, "seed", (double)o.seed);
        cJSON_AddNumberToObject(j, "load_s", load_s);
        if (o.n_prompt > 0)
            cJSON_AddItemToObject(j, "pp", stats_json(&pp, o.n_prompt));
        if (o.n_gen > 0) {
            cJSON *t = stats_json(&tg, o.n_gen);
            cJSON_AddNumberToObject(t, "weight_gb_per_s", (double)mi->weight_bytes * tg.median / 1e9);
            cJSON_AddItemToObject(j, "tg", t);
        }
        if (roof.n) {
            cJSON *r = cJSON_AddObjectToObject(j, "roofline");
            cJSON_AddNumberToObject(r, "tokens", roof.n);
            cJSON_AddNumberToObject(r, "share", roof.share);
            cJSON_AddNumberToObject(r, "share_q1", roof.share_lo);
            cJSON_AddNumberToObject(r, "share_q3", roof.share_hi);
            cJSON_AddNumberToObject(r, "read_gb_per_s", roof.read_gb_s);
            cJSON_AddNumberToObject(r, "membw_gb_per_s", roof.bw_gb_s);
            cJSON_AddNumberToObject(r, "membw_min_gb_per_s", roof.bw_min_gb_s);
            cJSON_AddNumberToObject(r, "membw_max_gb_per_s", roof.bw_max_gb_s);
            cJSON_AddNumberToObject(r, "membw_bytes", (double)BENCH_MEMBW_BYTES);
        }
        cJSON_AddNumberToObject(j, "peak_rss_bytes", (double)rss);
        cJSON_AddNumberToObject(j, "vm_hwm_bytes", (double)hwm);
        cJSON_AddNumberToObject(j, "vm_rss_bytes", (double)cur);
        s = cJSON_PrintUnformatted(j);
        if (s)
            printf("%s\n", s);
        free(s);
        cJSON_Delete(j);
    } else {
        double gib = (double)mi->weight_bytes / (1024.0 * 1024.0 * 1024.0);
        double bp = (double)mi->n_params / 1e9;
        const char *dt = o.mo.dtype ? o.mo.dtype : "as stored";
        printf("| %-24s | %-10s | %12s | %9s | %7s | %13s | %19s | %20s |\n", "model", "dtype", "size",
               "params", "threads", "test", "t/s (median ± sd)", "min .. max");
        printf("| %.24s | %.10s | %.12s | %.9s | %.7s | %.13s | %.19s | %.20s |\n",
               "--------------------------------", "--------------------------------",
               "--------------------------------", "--------------------------------",
               "--------------------------------", "--------------------------------",
               "--------------------------------", "--------------------------------");
        if (o.n_prompt > 0)
            print_row(model_name, dt, gib, bp, n_threads, test_pp, &pp);
        if (o.n_gen > 0)
            print_row(model_name, dt, gib, bp, n_threads, test_tg, &tg);
        printf("\nweights: %s, %.1f MB; context %d; %ld repetition%s; load %.1f s; kernels: %s (CPU: %s)\n",
               mi->dtypes, (double)mi->weight_bytes / 1e6, pio_engine_n_ctx(e), o.reps, o.reps == 1 ? "" : "s",
               load_s, pio_cpu_level_name(pio_kernels_get()->level), pio_cpu_features_string());
        if (o.n_gen > 0)
            printf("tg weight-read bandwidth: %.2f GB/s (weight bytes x tg tokens/s)\n",
                   (double)mi->weight_bytes * tg.median / 1e9);
        printf("peak RSS: %.1f MB (ru_maxrss), VmHWM %.1f MB, VmRSS now %.1f MB\n", (double)rss / 1e6,
               (double)hwm / 1e6, (double)cur / 1e6);
        if (roof.n)
            printf("roofline: %.1f%% (quartiles %.1f .. %.1f%%) of the DRAM read bandwidth around each of %d "
                   "tokens; tokens read %.2f GB/s, bandwidth %.1f GB/s (%.1f .. %.1f)\n",
                   100 * roof.share, 100 * roof.share_lo, 100 * roof.share_hi, roof.n, roof.read_gb_s,
                   roof.bw_gb_s, roof.bw_min_gb_s, roof.bw_max_gb_s);
    }
    rc = 0;
    goto out;

fail:
    fprintf(stderr, "pio bench: %s\n", pio_last_error());
out:
    free(b.tok);
    free(b.pos);
    free(b.seq);
    free(b.want);
    free(b.logits);
    free(pp.seconds);
    free(tg.seconds);
    pio_engine_free(e);
    return rc;
}
