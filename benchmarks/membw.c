/*
 * membw.c - DRAM read bandwidth with N threads, the number the decode
 * roofline is computed from (benchmarks/run_vs_llamacpp.py builds and runs it).
 *
 *   cc -O2 -march=native -pthread benchmarks/membw.c -o membw
 *   ./membw [threads=2] [MiB=2048] [passes=8]
 *
 * A buffer of MiB (far above the last-level cache) is filled once, then each
 * pass has every thread sum its own contiguous slice with 8 independent
 * 64-bit accumulators (the compiler vectorizes the loop; loads only, no
 * stores, as weight streaming in decode). Prints one JSON object with the
 * best and the median pass in GB/s (1e9 bytes/s). The best pass is the
 * roofline's bandwidth: the most the machine delivered while we measured.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

typedef struct slice {
    const uint64_t *p;
    size_t n;                 /* uint64 words */
    uint64_t sum;
    pthread_barrier_t *start;
} slice;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void *read_slice(void *arg)
{
    slice *s = arg;
    uint64_t a[8] = { 0 };
    size_t i, k;
    pthread_barrier_wait(s->start);
    for (i = 0; i + 8 <= s->n; i += 8)
        for (k = 0; k < 8; k++)
            a[k] += s->p[i + k];
    for (; i < s->n; i++)
        a[0] += s->p[i];
    s->sum = a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
    return NULL;
}

static int cmp(const void *x, const void *y)
{
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

int main(int argc, char **argv)
{
    int nt = argc > 1 ? atoi(argv[1]) : 2;
    size_t mib = argc > 2 ? (size_t)atol(argv[2]) : 2048;
    int passes = argc > 3 ? atoi(argv[3]) : 8;
    size_t bytes = mib << 20, words = bytes / 8, i;
    uint64_t *buf, total = 0;
    double *gbs;
    int p, t;

    if (nt < 1 || nt > 256 || mib < 64 || passes < 1) {
        fprintf(stderr, "usage: membw [threads>=1] [MiB>=64] [passes>=1]\n");
        return 2;
    }
    /* 2 MiB pages (where THP is "always" or "madvise"), as pio maps the weights: on
     * 4 KiB pages a TLB miss every 4 KiB (a two-level walk in a VM) held this loop to
     * 22-31 GB/s where it read 33-35 on a Zen 4 VM */
    bytes = (bytes + ((size_t)2 << 20) - 1) & ~(((size_t)2 << 20) - 1);
    words = bytes / 8;
    buf = aligned_alloc((size_t)2 << 20, bytes);
    if (buf)
        madvise(buf, bytes, MADV_HUGEPAGE);
    gbs = calloc((size_t)passes, sizeof *gbs);
    if (!buf || !gbs) {
        fprintf(stderr, "membw: out of memory for %zu MiB\n", mib);
        return 1;
    }
    for (i = 0; i < words; i++)
        buf[i] = i * 0x9e3779b97f4a7c15ull;
    for (p = 0; p < passes; p++) {
        pthread_t th[256];
        slice sl[256];
        pthread_barrier_t start;
        double t0;
        pthread_barrier_init(&start, NULL, (unsigned)nt + 1);
        for (t = 0; t < nt; t++) {
            size_t a = words * (size_t)t / (size_t)nt, b = words * (size_t)(t + 1) / (size_t)nt;
            sl[t] = (slice){ buf + a, b - a, 0, &start };
            pthread_create(&th[t], NULL, read_slice, &sl[t]);
        }
        t0 = now();
        pthread_barrier_wait(&start);
        for (t = 0; t < nt; t++) {
            pthread_join(th[t], NULL);
            total += sl[t].sum;
        }
        gbs[p] = (double)bytes / (now() - t0) / 1e9;
        pthread_barrier_destroy(&start);
    }
    qsort(gbs, (size_t)passes, sizeof *gbs, cmp);
    printf("{\"threads\": %d, \"mib\": %zu, \"passes\": %d, \"best_gb_per_s\": %.3f, "
           "\"median_gb_per_s\": %.3f, \"worst_gb_per_s\": %.3f, \"checksum\": %llu}\n",
           nt, mib, passes, gbs[passes - 1], gbs[passes / 2], gbs[0], (unsigned long long)(total & 0xffff));
    free(gbs);
    free(buf);
    return 0;
}
