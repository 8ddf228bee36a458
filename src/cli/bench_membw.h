/*
 * bench_membw.h - the DRAM read bandwidth probe of `pio bench --roofline`.
 *
 * A shared VM's bandwidth drifts by half within minutes, so a figure
 * measured before or after a decode run cannot judge what share of the
 * machine's bandwidth that run used. The probe is measured between decode
 * tokens instead: the roofline share of token i is its weight-read rate over
 * the bandwidth of the passes right before and after it.
 *
 * bench_membw_new() starts n_threads readers (the decode's thread count) and
 * a buffer of `bytes`, written once so every page is resident;
 * bench_membw_pass() has each reader sum its slice once and returns the
 * bytes read per second of that pass.
 */
#ifndef PIO_CLI_BENCH_MEMBW_H
#define PIO_CLI_BENCH_MEMBW_H

#include <stddef.h>

typedef struct bench_membw bench_membw;

/* NULL on failure (out of memory or threads); the reason goes to stderr. */
bench_membw *bench_membw_new(int n_threads, size_t bytes);
double bench_membw_pass(bench_membw *m);   /* bytes per second */
void bench_membw_free(bench_membw *m);

#endif
