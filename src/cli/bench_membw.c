/*
 * bench_membw.c - DRAM read bandwidth between decode tokens (see
 * bench_membw.h). Each reader sums a contiguous slice of 64-bit words,
 * loads only, as weight streaming in decode (benchmarks/membw.c's method).
 * Readers are plain pthreads asleep on a condition variable between passes,
 * so they use no CPU while the engine's own pool decodes.
 */
#include "cli/bench_membw.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#define MEMBW_MAX_THREADS 256
#define MEMBW_HUGE ((size_t)2 << 20)

struct bench_membw {
    uint64_t *buf;
    size_t words;
    int n_threads;                    /* readers running */
    pthread_mutex_t mu;               /* guards gen, pending, quit */
    pthread_cond_t go, done;
    unsigned gen;                     /* pass number: readers start when it moves */
    int pending;                      /* readers still in the pass */
    bool quit;
    pthread_t th[MEMBW_MAX_THREADS];
    struct membw_reader {
        bench_membw *m;
        size_t a, b;                  /* its slice of buf, in words */
        double t0, t1;                /* this reader's pass, own clock */
        uint64_t sum;                 /* kept so the loads are not optimized away */
    } rd[MEMBW_MAX_THREADS];
};

static double membw_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/*
 * Sum words [a, b) (a multiple of 8 apart) with four 16-byte accumulators
 * held in registers. (A uint64_t s[8] array loop compiled, at the baseline
 * x86-64 flags, to a load-add-store on the stack per 16 bytes: ~30 GB/s of
 * compute on Zen 4, so the probe measured itself, not the DRAM.)
 */
typedef uint64_t membw_v2 __attribute__((vector_size(16)));

static uint64_t membw_sum(const uint64_t *p, size_t a, size_t b)
{
    membw_v2 s0 = { 0, 0 }, s1 = s0, s2 = s0, s3 = s0, v0, v1, v2, v3;
    size_t i;
    for (i = a; i + 8 <= b; i += 8) {
        memcpy(&v0, p + i, 16);
        memcpy(&v1, p + i + 2, 16);
        memcpy(&v2, p + i + 4, 16);
        memcpy(&v3, p + i + 6, 16);
        s0 += v0;
        s1 += v1;
        s2 += v2;
        s3 += v3;
    }
    s0 += s1 + s2 + s3;
    return s0[0] + s0[1];
}

static void *membw_reader_main(void *arg)
{
    struct membw_reader *r = arg;
    bench_membw *m = r->m;
    unsigned seen = 0;
    for (;;) {
        uint64_t sum;
        bool quit;
        pthread_mutex_lock(&m->mu);
        while (m->gen == seen && !m->quit)
            pthread_cond_wait(&m->go, &m->mu);
        seen = m->gen;
        quit = m->quit;
        pthread_mutex_unlock(&m->mu);
        if (quit)
            return NULL;
        r->t0 = membw_now();
        sum = membw_sum(m->buf, r->a, r->b);
        r->t1 = membw_now();
        r->sum += sum;
        pthread_mutex_lock(&m->mu);
        if (--m->pending == 0)
            pthread_cond_signal(&m->done);
        pthread_mutex_unlock(&m->mu);
    }
}

bench_membw *bench_membw_new(int n_threads, size_t bytes)
{
    bench_membw *m;
    size_t i;
    int t;

    if (n_threads < 1 || n_threads > MEMBW_MAX_THREADS || bytes < 64 * (size_t)n_threads) {
        fprintf(stderr, "pio bench: bandwidth probe: bad thread count %d or size %zu\n", n_threads, bytes);
        return NULL;
    }
    m = calloc(1, sizeof *m);
    /* 2 MiB pages, as the weights get (pio_weights_advise_hugepages, the X8 copies): on
     * 4 KiB pages the probe read 22-31 GB/s where it read 33-35 on 2 MiB pages (Zen 4
     * VM, alternated runs of benchmarks/membw.c), so the roofline would sit below what
     * the DRAM delivers */
    bytes = (bytes + MEMBW_HUGE - 1) & ~(MEMBW_HUGE - 1);
    if (m && (m->buf = aligned_alloc(MEMBW_HUGE, bytes)) != NULL)
        madvise(m->buf, bytes, MADV_HUGEPAGE);
    if (!m || !m->buf) {
        fprintf(stderr, "pio bench: bandwidth probe: out of memory for %zu MB\n", bytes >> 20);
        free(m);
        return NULL;
    }
    m->words = bytes / 64 * 8;   /* whole 64-byte lines: each slice is a multiple of 8 words */
    m->n_threads = n_threads;
    for (i = 0; i < m->words; i++)   /* fault every page in: the passes read RAM, not the zero page */
        m->buf[i] = i * 0x9e3779b97f4a7c15ull;
    pthread_mutex_init(&m->mu, NULL);
    pthread_cond_init(&m->go, NULL);
    pthread_cond_init(&m->done, NULL);
    for (t = 0; t < n_threads; t++) {
        m->rd[t] = (struct membw_reader){ .m = m, .a = m->words / 8 * (size_t)t / (size_t)n_threads * 8,
                                          .b = m->words / 8 * (size_t)(t + 1) / (size_t)n_threads * 8 };
        if (pthread_create(&m->th[t], NULL, membw_reader_main, &m->rd[t])) {
            fprintf(stderr, "pio bench: bandwidth probe: cannot start reader thread %d\n", t);
            m->n_threads = t;   /* bench_membw_free joins the ones that started */
            bench_membw_free(m);
            return NULL;
        }
    }
    return m;
}

double bench_membw_pass(bench_membw *m)
{
    double t0, t1;
    int t;
    pthread_mutex_lock(&m->mu);
    m->pending = m->n_threads;
    m->gen++;
    pthread_cond_broadcast(&m->go);
    while (m->pending > 0)
        pthread_cond_wait(&m->done, &m->mu);
    pthread_mutex_unlock(&m->mu);
    /* first start to last end, on the readers' clocks: the wake-ups are not the memory's time */
    t0 = m->rd[0].t0;
    t1 = m->rd[0].t1;
    for (t = 1; t < m->n_threads; t++) {
        t0 = m->rd[t].t0 < t0 ? m->rd[t].t0 : t0;
        t1 = m->rd[t].t1 > t1 ? m->rd[t].t1 : t1;
    }
    return (double)(m->words * sizeof *m->buf) / (t1 - t0);
}

void bench_membw_free(bench_membw *m)
{
    int t;
    if (!m)
        return;
    pthread_mutex_lock(&m->mu);
    m->quit = true;
    pthread_cond_broadcast(&m->go);
    pthread_mutex_unlock(&m->mu);
    for (t = 0; t < m->n_threads; t++)
        pthread_join(m->th[t], NULL);
    pthread_cond_destroy(&m->go);
    pthread_cond_destroy(&m->done);
    pthread_mutex_destroy(&m->mu);
    free(m->buf);
    free(m);
}
