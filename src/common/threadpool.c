/*
 * threadpool.c - persistent workers woken per parallel-for by a generation
 * counter; tasks are claimed with an atomic counter.
 *
 * Decode runs a few hundred short parallel-fors per token, so a futex wake
 * per call (tens of microseconds in a VM) would cost a large share of the
 * step. Workers and the caller therefore spin on the counters for a while
 * (SPIN_ITERS pauses, ~0.1 ms) before sleeping on the condvars; the
 * generation is bumped under the mutex, so a sleeping worker never misses it.
 */
#include "common/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#elif defined(__aarch64__)
#define cpu_relax() __asm__ __volatile__("yield")
#else
#define cpu_relax() ((void)0)
#endif
#include <stdlib.h>
#include <unistd.h>

struct pio_threadpool {
    int n_threads;
    pthread_t *threads;        /* [n_threads-1] workers; the caller is thread 0 */
    pthread_mutex_t mu;
    pthread_cond_t wake;       /* workers wait here for a new generation */
    pthread_cond_t done;       /* the caller waits here for all workers */
    atomic_uint generation;    /* bumped (under mu) once per job */
    atomic_int n_busy;         /* workers still in the current job */
    atomic_bool quit;
    /* current job */
    pio_task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
};

typedef struct worker_arg { pio_threadpool *tp; int index; } worker_arg;

#define SPIN_ITERS 4096

/* Wait until the generation differs from `seen`: spin, then sleep. */
static unsigned wait_generation(pio_threadpool *tp, unsigned seen)
{
    unsigned g;
    int i;
    for (i = 0; i < SPIN_ITERS; i++) {
        g = atomic_load_explicit(&tp->generation, memory_order_acquire);
        if (g != seen)
            return g;
        cpu_relax();
    }
    pthread_mutex_lock(&tp->mu);
    while ((g = atomic_load(&tp->generation)) == seen)
        pthread_cond_wait(&tp->wake, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
    return g;
}

static void run_tasks(pio_threadpool *tp, int thread)
{
    for (;;) {
        int t = atomic_fetch_add(&tp->next_task, 1);
        if (t >= tp->n_tasks)
            break;
        tp->fn(tp->ctx, t, thread);
    }
}

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    pio_threadpool *tp = wa->tp;
    int index = wa->index;
    unsigned seen = 0;
    free(wa);
    for (;;) {
        seen = wait_generation(tp, seen);
        if (atomic_load(&tp->quit))
            break;
        run_tasks(tp, index);
        if (atomic_fetch_sub(&tp->n_busy, 1) == 1) {
            pthread_mutex_lock(&tp->mu);
            pthread_cond_signal(&tp->done);
            pthread_mutex_unlock(&tp->mu);
        }
    }
    return NULL;
}

pio_status pio_threadpool_new(int n_threads, pio_threadpool **out)
{
    pio_threadpool *tp;
    int i;

    if (n_threads <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        n_threads = n > 0 ? (int)n : 1;
    }
    tp = calloc(1, sizeof *tp);
    if (!tp)
        return pio_error(PIO_STATUS_ERR_NOMEM, "thread pool: out of memory");
    tp->n_threads = n_threads;
    pthread_mutex_init(&tp->mu, NULL);
    pthread_cond_init(&tp->wake, NULL);
    pthread_cond_init(&tp->done, NULL);
    tp->threads = calloc((size_t)n_threads, sizeof *tp->threads);
    if (!tp->threads)
        goto fail_alloc;
    for (i = 1; i < n_threads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa)
            goto fail_threads;
        wa->tp = tp;
        wa->index = i;
        if (pthread_create(&tp->threads[i - 1], NULL, worker_main, wa) != 0) {
            free(wa);
            goto fail_threads;
        }
    }
    *out = tp;
    return PIO_STATUS_OK;

fail_threads:
    tp->n_threads = i;   /* workers 1..i-1 exist */
    pio_threadpool_free(tp);
    return pio_error(PIO_STATUS_ERR_NOMEM, "thread pool: cannot start thread %d", i);
fail_alloc:
    free(tp);
    return pio_error(PIO_STATUS_ERR_NOMEM, "thread pool: out of memory");
}

void pio_threadpool_free(pio_threadpool *tp)
{
    int i;
    if (!tp)
        return;
    pthread_mutex_lock(&tp->mu);
    atomic_store(&tp->quit, true);
    atomic_fetch_add(&tp->generation, 1);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);
    for (i = 1; i < tp->n_threads; i++)
        pthread_join(tp->threads[i - 1], NULL);
    pthread_cond_destroy(&tp->wake);
    pthread_cond_destroy(&tp->done);
    pthread_mutex_destroy(&tp->mu);
    free(tp->threads);
    free(tp);
}

int pio_threadpool_size(const pio_threadpool *tp) { return tp ? tp->n_threads : 1; }

void pio_threadpool_run(pio_threadpool *tp, int n_tasks, pio_task_fn fn, void *ctx)
{
    int t;
    if (n_tasks <= 0)
        return;
    if (!tp || tp->n_threads == 1 || n_tasks == 1) {
        for (t = 0; t < n_tasks; t++)
            fn(ctx, t, 0);
        return;
    }
    tp->fn = fn;
    tp->ctx = ctx;
    tp->n_tasks = n_tasks;
    atomic_store(&tp->next_task, 0);
    atomic_store(&tp->n_busy, tp->n_threads - 1);
    pthread_mutex_lock(&tp->mu);
    atomic_fetch_add_explicit(&tp->generation, 1, memory_order_release);
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);

    run_tasks(tp, 0);

    for (t = 0; t < SPIN_ITERS && atomic_load_explicit(&tp->n_busy, memory_order_acquire) > 0; t++)
        cpu_relax();
    if (atomic_load_explicit(&tp->n_busy, memory_order_acquire) > 0) {
        pthread_mutex_lock(&tp->mu);
        while (atomic_load(&tp->n_busy) > 0)
            pthread_cond_wait(&tp->done, &tp->mu);
        pthread_mutex_unlock(&tp->mu);
    }
}
