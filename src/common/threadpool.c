/*
 * threadpool.c - persistent workers woken per parallel-for by a generation
 * counter under a mutex/condvar; tasks are claimed with an atomic counter.
 */
#include "common/threadpool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

struct pio_threadpool {
    int n_threads;
    pthread_t *threads;        /* [n_threads-1] workers; the caller is thread 0 */
    pthread_mutex_t mu;
    pthread_cond_t wake;       /* workers wait here for a new generation */
    pthread_cond_t done;       /* the caller waits here for all workers */
    unsigned generation;
    int n_busy;                /* workers still in the current job */
    bool quit;
    /* current job */
    pio_task_fn fn;
    void *ctx;
    int n_tasks;
    atomic_int next_task;
};

typedef struct worker_arg { pio_threadpool *tp; int index; } worker_arg;

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
    pthread_mutex_lock(&tp->mu);
    for (;;) {
        while (!tp->quit && tp->generation == seen)
            pthread_cond_wait(&tp->wake, &tp->mu);
        if (tp->quit)
            break;
        seen = tp->generation;
        pthread_mutex_unlock(&tp->mu);
        run_tasks(tp, index);
        pthread_mutex_lock(&tp->mu);
        if (--tp->n_busy == 0)
            pthread_cond_signal(&tp->done);
    }
    pthread_mutex_unlock(&tp->mu);
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
    tp->quit = true;
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
    pthread_mutex_lock(&tp->mu);
    tp->fn = fn;
    tp->ctx = ctx;
    tp->n_tasks = n_tasks;
    atomic_store(&tp->next_task, 0);
    tp->n_busy = tp->n_threads - 1;
    tp->generation++;
    pthread_cond_broadcast(&tp->wake);
    pthread_mutex_unlock(&tp->mu);

    run_tasks(tp, 0);

    pthread_mutex_lock(&tp->mu);
    while (tp->n_busy > 0)
        pthread_cond_wait(&tp->done, &tp->mu);
    pthread_mutex_unlock(&tp->mu);
}
