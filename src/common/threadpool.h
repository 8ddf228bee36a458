/*
 * threadpool.h - a fixed pool of worker threads running parallel-for loops.
 *
 * pio_threadpool_run(tp, n_tasks, fn, ctx) calls fn(ctx, task, thread) for
 * every task in [0, n_tasks) across the pool's threads (the caller is
 * thread 0) and returns when all are done. Tasks are handed out in order
 * through an atomic counter, so uneven tasks balance themselves.
 */
#ifndef PIO_THREADPOOL_H
#define PIO_THREADPOOL_H

#include "pio/pio.h"

typedef struct pio_threadpool pio_threadpool;
typedef void (*pio_task_fn)(void *ctx, int task, int thread);

/* n_threads <= 0: number of online CPUs. */
pio_status pio_threadpool_new(int n_threads, pio_threadpool **out);
void pio_threadpool_free(pio_threadpool *tp);
int pio_threadpool_size(const pio_threadpool *tp);

/* Run fn over n_tasks tasks; tp may be NULL (runs serially). Not reentrant. */
void pio_threadpool_run(pio_threadpool *tp, int n_tasks, pio_task_fn fn, void *ctx);

#endif
