/*
 * attn_bench.c - attention alone, one layer with Qwen3-4B's geometry
 * (32 query heads, 8 KV heads, head_dim 128), before and after the tiled
 * kernels:
 *   old   the previous driver: one task per (token, query head), keys one
 *         at a time (pio_dot_f32 + scalar axpy) over an F32 cache;
 *   new   pio_attention_run (tiles of a KV-head group, split-K) at the
 *         active CPU level over F32 and F16 caches.
 * Decode: one token at position `depth` (the cache holds depth+1 random
 * rows); prefill: 512 tokens at positions 0..511. Prints the median of
 * -r runs in ms per layer, and the KV bytes a decode step reads.
 *
 *   build/benchmarks/attn_bench [-t THREADS] [-r REPS] [DEPTH ...]
 */
#include "common/threadpool.h"
#include "kernels/attn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NH 32
#define NKV 8
#define HD 128

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The attention kernel as it was before the tiled kernels (f32 rows). */
static void old_head(float *out, const float *q, pio_kv *kv, int seq, int n_kv, int kv_offset,
                     float scale)
{
    float m = -INFINITY, l = 0.0f;
    int p = 0, d;
    memset(out, 0, HD * sizeof(float));
    while (p < n_kv) {
        int run = kv->ops->contiguous(kv, seq, p), j;
        const float *k = kv->ops->k_row(kv, 0, seq, p), *v = kv->ops->v_row(kv, 0, seq, p);
        if (run > n_kv - p)
            run = n_kv - p;
        for (j = 0; j < run; j++) {
            const float *kj = k + (size_t)j * kv->k_dim + kv_offset;
            const float *vj = v + (size_t)j * kv->v_dim + kv_offset;
            float s = pio_dot_f32(q, kj, HD) * scale, e;
            if (s > m) {
                float corr = expf(m - s);
                l *= corr;
                for (d = 0; d < HD; d++)
                    out[d] *= corr;
                m = s;
            }
            e = expf(s - m);
            l += e;
            for (d = 0; d < HD; d++)
                out[d] += e * vj[d];
        }
        p += run;
    }
    for (d = 0; d < HD; d++)
        out[d] /= l;
}

typedef struct old_job {
    const pio_batch *b;
    pio_kv *kv;
    const float *q;
    float *out;
} old_job;

static void old_task(void *ctx, int task, int thread)
{
    const old_job *j = ctx;
    int t = task / NH, h = task % NH;
    size_t off = ((size_t)t * NH + (size_t)h) * HD;
    (void)thread;
    old_head(j->out + off, j->q + off, j->kv, j->b->seq_id[t], j->b->pos[t] + 1,
             (h / (NH / NKV)) * HD, 0.08838834764f);
}

static pio_kv *make_cache(pio_dtype dt, int n_pos)
{
    pio_kv *kv = NULL;
    float row[NKV * HD];
    int p, i;
    if (pio_kv_paged_new(1, 1, n_pos, NKV * HD, NKV * HD, dt, 16, 0, &kv) ||
        kv->ops->reserve(kv, 0, n_pos)) {
        fprintf(stderr, "attn_bench: %s\n", pio_last_error());
        exit(1);
    }
    srand(1);
    for (p = 0; p < n_pos; p++) {
        for (i = 0; i < NKV * HD; i++)
            row[i] = (float)rand() / RAND_MAX - 0.5f;
        pio_kv_store(kv, 0, 0, p, row, row);
    }
    return kv;
}

/* median ms of `reps` runs of old (mode 0) or new (mode 1) over the batch */
static double time_it(int mode, pio_threadpool *tp, pio_kv *kv, const pio_batch *b, const float *q,
                      float *out, int reps)
{
    double *t = malloc((size_t)reps * sizeof(double)), med;
    int r;
    for (r = 0; r < reps; r++) {
        double t0 = now();
        if (mode == 0) {
            old_job j = { b, kv, q, out };
            pio_threadpool_run(tp, b->n_tokens * NH, old_task, &j);
        } else if (pio_attention_run(pio_attn_kernels_get(), tp, out, q, b, kv, 0, NH, NKV, HD,
                                     0.08838834764f, 0)) {
            fprintf(stderr, "attn_bench: %s\n", pio_last_error());
            exit(1);
        }
        t[r] = (now() - t0) * 1e3;
    }
    qsort(t, (size_t)reps, sizeof(double), cmp_double);
    med = t[reps / 2];
    free(t);
    return med;
}

int main(int argc, char **argv)
{
    int threads = 2, reps = 7, depths[16], n_depths = 0, i, d;
    pio_threadpool *tp;
    float *q, *out;
    int32_t pos[512], seq[512];

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-t") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (n_depths < 16)
            depths[n_depths++] = atoi(argv[i]);
    }
    if (!n_depths) {
        depths[0] = 0; depths[1] = 2048; depths[2] = 8192;
        n_depths = 3;
    }
    if (pio_threadpool_new(threads, &tp))
        return 1;
    q = malloc(512 * NH * HD * sizeof(float));
    out = malloc(512 * NH * HD * sizeof(float));
    srand(2);
    for (i = 0; i < 512 * NH * HD; i++)
        q[i] = (float)rand() / RAND_MAX - 0.5f;
    printf("attention of one layer, %d q heads / %d kv heads / head_dim %d, %d threads, "
           "median of %d, level %s\n", NH, NKV, HD, threads, reps,
           pio_cpu_level_name(pio_attn_kernels_get()->level));
    printf("%-16s %10s %12s %12s %12s %10s %10s\n", "test", "KV f16 MB", "old f32 ms", "new f32 ms",
           "new f16 ms", "f32 x", "f16 x");
    for (d = 0; d < n_depths; d++) {
        int n_pos = depths[d] + 1;
        pio_kv *k32 = make_cache(PIO_DTYPE_F32, n_pos), *k16 = make_cache(PIO_DTYPE_F16, n_pos);
        pio_batch b = { 1, NULL, pos, seq, NULL };
        double to, t32, t16;
        char name[32];
        pos[0] = depths[d];
        seq[0] = 0;
        to = time_it(0, tp, k32, &b, q, out, reps);
        t32 = time_it(1, tp, k32, &b, q, out, reps);
        t16 = time_it(1, tp, k16, &b, q, out, reps);
        snprintf(name, sizeof name, "decode @ d%d", depths[d]);
        printf("%-16s %10.1f %12.3f %12.3f %12.3f %9.2fx %9.2fx\n", name,
               (double)n_pos * NKV * HD * 2 * 2 / 1e6, to, t32, t16, to / t32, to / t16);
        pio_kv_free(k32);
        pio_kv_free(k16);
    }
    {
        pio_kv *k32 = make_cache(PIO_DTYPE_F32, 512), *k16 = make_cache(PIO_DTYPE_F16, 512);
        pio_batch b = { 512, NULL, pos, seq, NULL };
        double to, t32, t16;
        for (i = 0; i < 512; i++) {
            pos[i] = i;
            seq[i] = 0;
        }
        to = time_it(0, tp, k32, &b, q, out, reps > 3 ? 3 : reps);
        t32 = time_it(1, tp, k32, &b, q, out, reps);
        t16 = time_it(1, tp, k16, &b, q, out, reps);
        printf("%-16s %10s %12.3f %12.3f %12.3f %9.2fx %9.2fx\n", "prefill 512", "-", to, t32, t16,
               to / t32, to / t16);
        pio_kv_free(k32);
        pio_kv_free(k16);
    }
    free(q);
    free(out);
    pio_threadpool_free(tp);
    return 0;
}
