/*
 * check.h - the minimal test harness shared by the C tests.
 *
 * CHECK(cond, fmt, ...) records a failure with file and line and goes on;
 * a test's main() ends with `return check_report("name");`, which prints a
 * summary and returns 0 (all passed) or 1. check_skip() exits with 77, which
 * ctest reports as skipped.
 */
#ifndef PIO_TESTS_CHECK_H
#define PIO_TESTS_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

static int check_n_pass, check_n_fail;

#define CHECK(cond, ...) do { \
    if (cond) { check_n_pass++; } else { \
        check_n_fail++; \
        fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
        fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } \
} while (0)

/* For pio_status calls: prints pio_last_error() on failure. */
#define CHECK_OK(expr) do { \
    pio_status check_st_ = (expr); \
    CHECK(check_st_ == PIO_STATUS_OK, "%s -> %s: %s", #expr, pio_status_name(check_st_), pio_last_error()); \
} while (0)

static inline int check_report(const char *name) {
    printf("%s: %d passed, %d failed\n", name, check_n_pass, check_n_fail);
    return check_n_fail ? 1 : 0;
}

/* Random test data: one xorshift64 step of *state (a test's own seed),
 * returned as a float uniform in [-1, 1). */
static inline float check_frand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x << 13; x ^= x >> 7; x ^= x << 17;
    *state = x;
    return (float)((double)(x >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* malloc that ends the test when memory runs out (never NULL, also for n = 0). */
static inline void *check_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    return p;
}

static inline void check_skip(const char *why) {
    printf("SKIP: %s\n", why);
    exit(77);
}

/* ../shared/data (or $PIO_SHARED/data) when present, else NULL. */
static inline const char *check_shared_data(void) {
    static char buf[4096];
    const char *root = getenv("PIO_SHARED");
    snprintf(buf, sizeof buf, "%s/data", root ? root : "../shared");
    FILE *f;
    char probe[4200];
    snprintf(probe, sizeof probe, "%s/README.md", buf);
    f = fopen(probe, "r");
    if (!f) return NULL;
    fclose(f);
    return buf;
}

#endif
