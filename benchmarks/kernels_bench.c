/*
 * kernels_bench.c - matmul kernel micro-benchmark against the memory roofline.
 *
 *   kernels_bench [--level L[,L..]] [--threads 1,2] [--dtypes bf16,q8_0,..]
 *                 [--gemm-n 512] [--reps 5] [--no-gemm] [--no-gemv] [--hot]
 *
 * 1. Read bandwidth: a streaming read of a 1 GiB buffer split over T threads
 *    (4 concurrent prefetched streams per thread).
 * 2. GEMV (n = 1) at Qwen3-4B shapes 2560->9728, 9728->2560, 2560->4096 per
 *    dtype: GB/s of weights streamed, and % of the measured bandwidth. The
 *    weights are cycled over enough copies (>= 384 MiB) that they come from
 *    DRAM, not the last-level cache, as in a real decode step. --hot uses one
 *    copy (cache-resident when it fits): the kernels' compute throughput.
 * 3. GEMM (n = --gemm-n tokens) at the same shapes: tokens/s and GMAC/s;
 *    for F32/F16/BF16 weights also the share of the f32 FMA peak, which a
 *    loop of independent FMAs measures per level and thread count (the
 *    yardstick of a compute-bound prefill; int8 kernels are not bound by it).
 * Each figure is the median of --reps runs. Weights: rows quantized from
 * random floats (std ~0.58), repeated to fill the matrix.
 */
#include "common/cpu.h"
#include "common/threadpool.h"
#include "kernels/dispatch.h"
#include "kernels/quant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* CPU seconds of the whole process (all threads): compute cost even when the
 * machine is shared and wall time is not ours alone. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static uint64_t rng = 0x243f6a8885a308d3ull;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* ---- read bandwidth ---------------------------------------------------------- */

typedef struct bw_job { const uint64_t *buf; size_t words; int n_tasks; uint64_t sink[64]; } bw_job;

/*
 * One task reads its 1/n_tasks of the buffer as 4 concurrent sequential
 * streams with software prefetch, like a 4-row GEMV group: one plain stream
 * per thread leaves the memory system idle and understates the bandwidth
 * (the roofline must be the best we can stream, or the % figures flatter).
 */
static void bw_task(void *p, int task, int thread)
{
    bw_job *job = p;
    size_t per = job->words / (size_t)job->n_tasks, q = per / 4;
    const uint64_t *b0 = job->buf + per * (size_t)task, *b1 = b0 + q, *b2 = b1 + q, *b3 = b2 + q;
    uint64_t s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i;
    int j;
    for (i = 0; i + 8 <= q; i += 8) {
        __builtin_prefetch(b0 + i + 256);     /* 2 KiB ahead per stream, as the GEMV does */
        __builtin_prefetch(b1 + i + 256);
        __builtin_prefetch(b2 + i + 256);
        __builtin_prefetch(b3 + i + 256);
        for (j = 0; j < 8; j++) {
            s0 += b0[i + j];
            s1 += b1[i + j];
            s2 += b2[i + j];
            s3 += b3[i + j];
        }
    }
    job->sink[thread & 63] += s0 ^ s1 ^ s2 ^ s3;
}

static double bandwidth(pio_threadpool *tp, int reps)
{
    size_t bytes = (size_t)1 << 30;
    uint64_t *buf = malloc(bytes);
    double t[16], gbs;
    bw_job job;
    int r;
    if (!buf)
        return 0;
    memset(buf, 1, bytes);
    memset(&job, 0, sizeof job);
    job.buf = buf;
    job.words = bytes / 8;
    job.n_tasks = 64 * pio_threadpool_size(tp);
    for (r = 0; r < reps && r < 16; r++) {
        double t0 = now();
        pio_threadpool_run(tp, job.n_tasks, bw_task, &job);
        t[r] = now() - t0;
    }
    gbs = (double)bytes / median(t, reps < 16 ? reps : 16) / 1e9;
    free(buf);
    return gbs;
}

/* ---- f32 FMA peak ---------------------------------------------------------------- */

/*
 * Independent multiply-add chains, FMA_ITERS rounds: enough chains to hide
 * the FMA latency on every pipe (4 cycles x 2 pipes on current x86 cores,
 * 4 x 4 on wide ARM cores), each a named variable so that it stays in a
 * register (AVX2 has 16: 12 chains and the two operands; an array of
 * vectors ends up on the stack). Returns the multiply-adds done (lanes x
 * chains x rounds); *sink keeps the result live.
 */
#define FMA_ITERS 20000000L
#define CHAINS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define CHAINS16(X) CHAINS12(X) X(12) X(13) X(14) X(15)

/* The loop over the vector type V_T of the enclosing function, whose SET_F
 * broadcasts, FMA_F(c, a, m) = c + a·m, ADD_F adds and PIN_F keeps a value
 * in a register; FIRST(v) is lane 0 (or the sum) of v. */
#define FMA_LOOP(CHAINS, n_chains, lanes, FIRST)                                          \
    V_T m_ = SET_F(0.999f), c_ = SET_F(1e-3f);                                            \
    long it_;                                                                             \
    CHAINS(FMA_DECL)                                                                      \
    for (it_ = 0; it_ < FMA_ITERS; it_++) {                                               \
        CHAINS(FMA_STEP)                                                                  \
    }                                                                                     \
    CHAINS(FMA_SUM)                                                                       \
    *sink += FIRST(s_);                                                                   \
    return (double)(lanes) * (n_chains) * FMA_ITERS
#define FMA_DECL(i) V_T a##i = SET_F((float)(i));
#define FMA_STEP(i) a##i = FMA_F(c_, a##i, m_); PIN_F(a##i);
#define FMA_SUM(i) s_ = (i) == 0 ? a##i : ADD_F(s_, a##i);

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static double fma_loop_avx2(float *sink)
{
#define V_T __m256
#define SET_F _mm256_set1_ps
#define FMA_F(c, a, m) _mm256_fmadd_ps(a, m, c)
#define ADD_F _mm256_add_ps
#define PIN_F(v) __asm__("" : "+x"(v))
    __m256 s_ = _mm256_setzero_ps();
    FMA_LOOP(CHAINS12, 12, 8, _mm256_cvtss_f32);
#undef V_T
#undef SET_F
#undef FMA_F
#undef ADD_F
#undef PIN_F
}

__attribute__((target("avx512f"))) static double fma_loop_avx512(float *sink)
{
#define V_T __m512
#define SET_F _mm512_set1_ps
#define FMA_F(c, a, m) _mm512_fmadd_ps(a, m, c)
#define ADD_F _mm512_add_ps
#define PIN_F(v) __asm__("" : "+v"(v))
    __m512 s_ = _mm512_setzero_ps();
    FMA_LOOP(CHAINS16, 16, 16, _mm512_reduce_add_ps);
#undef V_T
#undef SET_F
#undef FMA_F
#undef ADD_F
#undef PIN_F
}
#elif defined(__aarch64__)
static double fma_loop_neon(float *sink)
{
#define V_T float32x4_t
#define SET_F vdupq_n_f32
#define FMA_F(c, a, m) vfmaq_f32(c, a, m)
#define ADD_F vaddq_f32
#define PIN_F(v) __asm__("" : "+w"(v))
    float32x4_t s_ = vdupq_n_f32(0.0f);
    FMA_LOOP(CHAINS16, 16, 4, vaddvq_f32);
#undef V_T
#undef SET_F
#undef FMA_F
#undef ADD_F
#undef PIN_F
}
#endif

typedef double (*fma_loop_fn)(float *sink);

/* The FMA loop of the vector width a level's float kernels use; NULL for scalar. */
static fma_loop_fn fma_loop_for(pio_cpu_level level)
{
#if defined(__x86_64__)
    if (level == PIO_CPU_LEVEL_AVX2)
        return fma_loop_avx2;
    if (level == PIO_CPU_LEVEL_AVX512 || level == PIO_CPU_LEVEL_AVX512VNNI || level == PIO_CPU_LEVEL_AVX512BF16)
        return fma_loop_avx512;
#elif defined(__aarch64__)
    if (level == PIO_CPU_LEVEL_NEON)
        return fma_loop_neon;
#endif
    (void)level;
    return NULL;
}

typedef struct fma_job { fma_loop_fn fn; double macs[64]; float sink[64]; } fma_job;

static void fma_task(void *p, int task, int thread)
{
    fma_job *job = p;
    (void)thread;
    job->macs[task & 63] = job->fn(&job->sink[task & 63]);
}

/* Multiply-adds per second of one FMA loop on each of the pool's threads at
 * once (GMAC/s, all threads together); 0 when the level has no vector FMA. */
static double fma_peak(pio_threadpool *tp, pio_cpu_level level)
{
    fma_job job;
    int n = pio_threadpool_size(tp), i;
    double t0, dt, macs = 0;
    memset(&job, 0, sizeof job);
    job.fn = fma_loop_for(level);
    if (!job.fn || n > 64)
        return 0;
    t0 = now();
    pio_threadpool_run(tp, n, fma_task, &job);
    dt = now() - t0;
    for (i = 0; i < n; i++)
        macs += job.macs[i];
    return macs / dt / 1e9;
}

/* ---- weights ------------------------------------------------------------------- */

/* rows x cols of dtype dt: 16 quantized random rows repeated (X8 layouts:
 * plain rows repacked 8 at a time, rows a multiple of 8). */
static void *make_weights(pio_dtype dt, int64_t rows, int64_t cols)
{
    size_t rb = pio_dtype_row_bytes(dt, cols);
    uint8_t *w, *seed;
    float *f;
    int64_t r, i;
    if (pio_dtype_is_x8(dt)) {
        uint8_t *q = make_weights(pio_x8_base(dt), rows, cols);
        w = q ? malloc(rb * (size_t)rows) : NULL;
        if (w)
            for (r = 0; r + 8 <= rows; r += 8)
                pio_x8_pack(dt, w + (size_t)r * rb, q + (size_t)r * rb, rb, cols);
        free(q);
        return w;
    }
    w = malloc(rb * (size_t)rows);
    f = malloc(sizeof(float) * (size_t)cols * 16);
    if (!w || !f)
        goto fail;
    for (i = 0; i < cols * 16; i++)
        f[i] = frand();
    seed = w;
    if (pio_quantize_rows(dt, f, seed, rows < 16 ? rows : 16, cols) != PIO_STATUS_OK)
        goto fail;
    for (r = 16; r < rows; r++)
        memcpy(w + (size_t)r * rb, seed + (size_t)(r % 16) * rb, rb);
    free(f);
    return w;
fail:
    free(w);
    free(f);
    return NULL;
}

/* ---- main -------------------------------------------------------------------------- */

static int parse_list(const char *s, int *out, int max, int (*parse)(const char *))
{
    char buf[256], *tok, *save = NULL;
    int n = 0;
    snprintf(buf, sizeof buf, "%s", s);
    for (tok = strtok_r(buf, ",", &save); tok && n < max; tok = strtok_r(NULL, ",", &save)) {
        int v = parse(tok);
        if (v < 0) {
            fprintf(stderr, "kernels_bench: unknown value '%s'\n", tok);
            exit(2);
        }
        out[n++] = v;
    }
    return n;
}

static int parse_int(const char *s) { return atoi(s); }
static int parse_dtype(const char *s) { return pio_dtype_from_name(s); }
static int parse_level(const char *s) { return pio_cpu_level_from_name(s); }

int main(int argc, char **argv)
{
    static const int64_t shapes[][2] = { { 9728, 2560 }, { 2560, 9728 }, { 4096, 2560 } };
    int threads[4] = { 1, 2 }, n_threads = 2;
    int dtypes[16] = { PIO_DTYPE_F32, PIO_DTYPE_BF16, PIO_DTYPE_F16, PIO_DTYPE_Q8_0, PIO_DTYPE_Q8_0_X8,
                       PIO_DTYPE_Q4_0, PIO_DTYPE_Q4_0_X8, PIO_DTYPE_Q4_K, PIO_DTYPE_Q6_K };
    int n_dtypes = 9, levels[PIO_CPU_LEVEL_COUNT], n_levels = 1, reps = 5, gemm_n = 512;
    int do_gemm = 1, do_gemv = 1, hot = 0;
    int ti, di, li, a;
    double bw[4] = { 0 }, peak[4] = { 0 };

    levels[0] = pio_cpu_level_active();
    for (a = 1; a < argc; a++) {
        if (!strcmp(argv[a], "--threads") && a + 1 < argc)
            n_threads = parse_list(argv[++a], threads, 4, parse_int);
        else if (!strcmp(argv[a], "--dtypes") && a + 1 < argc)
            n_dtypes = parse_list(argv[++a], dtypes, 16, parse_dtype);
        else if (!strcmp(argv[a], "--level") && a + 1 < argc)
            n_levels = parse_list(argv[++a], levels, PIO_CPU_LEVEL_COUNT, parse_level);
        else if (!strcmp(argv[a], "--reps") && a + 1 < argc)
            reps = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--gemm-n") && a + 1 < argc)
            gemm_n = atoi(argv[++a]);
        else if (!strcmp(argv[a], "--no-gemm"))
            do_gemm = 0;
        else if (!strcmp(argv[a], "--no-gemv"))
            do_gemv = 0;
        else if (!strcmp(argv[a], "--hot"))
            hot = 1;
        else {
            fprintf(stderr, "usage: %s [--level L,..] [--threads 1,2] [--dtypes bf16,q8_0,..] "
                            "[--gemm-n N] [--reps R] [--no-gemm] [--no-gemv] [--hot]\n", argv[0]);
            return 2;
        }
    }
    if (reps < 1)
        reps = 1;
    printf("cpu: %s| detected %s\n", pio_cpu_features_string(),
           pio_cpu_level_name(pio_cpu_level_detected()));

    for (ti = 0; ti < n_threads; ti++) {
        pio_threadpool *tp;
        if (pio_threadpool_new(threads[ti], &tp) != PIO_STATUS_OK)
            return 1;
        bw[ti] = bandwidth(tp, reps);
        printf("read bandwidth, %d thread(s): %.1f GB/s\n", threads[ti], bw[ti]);
        pio_threadpool_free(tp);
    }

    for (li = 0; li < n_levels; li++) {
        const pio_kernels *kt = pio_kernels_for_level((pio_cpu_level)levels[li]);
        if (!kt) {
            printf("level %s: not available on this CPU\n", pio_cpu_level_name((pio_cpu_level)levels[li]));
            continue;
        }
        printf("\n== level %s ==\n", pio_cpu_level_name(kt->level));
        for (ti = 0; do_gemm && ti < n_threads; ti++) {
            pio_threadpool *tp;
            double p[3];
            int r;
            peak[ti] = 0;
            if (!fma_loop_for(kt->level) || pio_threadpool_new(threads[ti], &tp) != PIO_STATUS_OK)
                continue;
            for (r = 0; r < 3; r++)
                p[r] = fma_peak(tp, kt->level);
            peak[ti] = median(p, 3);
            printf("f32 FMA peak, %d thread(s): %.1f GMAC/s\n", threads[ti], peak[ti]);
            pio_threadpool_free(tp);
        }
        for (di = 0; di < n_dtypes; di++) {
            pio_dtype dt = (pio_dtype)dtypes[di];
            size_t si;
            if (do_gemv) {
                for (si = 0; si < sizeof shapes / sizeof shapes[0]; si++) {
                    int64_t rows = shapes[si][0], cols = shapes[si][1];
                    size_t wbytes = pio_dtype_row_bytes(dt, cols) * (size_t)rows;
                    int copies = hot ? 1 : (int)((384u << 20) / wbytes) + 1, c, r;
                    void **w = calloc((size_t)copies, sizeof *w);
                    float *x = malloc(sizeof(float) * (size_t)cols), *y = malloc(sizeof(float) * (size_t)rows);
                    for (c = 0; c < copies; c++)
                        w[c] = make_weights(dt, rows, cols);
                    for (c = 0; c < cols; c++)
                        x[c] = frand();
                    for (ti = 0; ti < n_threads; ti++) {
                        pio_threadpool *tp;
                        double t[32], cpu[32], med;
                        int iters = copies < 8 ? 8 : copies;
                        pio_threadpool_new(threads[ti], &tp);
                        for (r = 0; r < reps && r < 32; r++) {
                            double t0 = now(), c0 = cpu_now();
                            int it;
                            for (it = 0; it < iters; it++) {
                                pio_wmat wm = { dt, w[it % copies], rows, cols };
                                pio_matmul_kernels(kt, tp, y, x, 1, &wm);
                            }
                            t[r] = (now() - t0) / iters;
                            cpu[r] = (cpu_now() - c0) / iters;
                        }
                        med = median(t, reps < 32 ? reps : 32);
                        printf("gemv %-5s %5lld->%-5lld t=%d: %7.3f ms  %6.1f GB/s  %5.1f%% of read bw"
                               "  (cpu %.3f ms)\n",
                               pio_dtype_name(dt), (long long)cols, (long long)rows, threads[ti],
                               med * 1e3, (double)wbytes / med / 1e9,
                               100.0 * (double)wbytes / med / 1e9 / bw[ti], median(cpu, reps < 32 ? reps : 32) * 1e3);
                        pio_threadpool_free(tp);
                    }
                    for (c = 0; c < copies; c++)
                        free(w[c]);
                    free(w);
                    free(x);
                    free(y);
                }
            }
            for (si = 0; do_gemm && gemm_n > 0 && si < sizeof shapes / sizeof shapes[0]; si++) {
                int64_t rows = shapes[si][0], cols = shapes[si][1];
                void *w = make_weights(dt, rows, cols);
                float *x = malloc(sizeof(float) * (size_t)cols * (size_t)gemm_n);
                float *y = malloc(sizeof(float) * (size_t)rows * (size_t)gemm_n);
                int64_t i;
                for (i = 0; i < cols * gemm_n; i++)
                    x[i] = frand();
                for (ti = 0; ti < n_threads; ti++) {
                    pio_threadpool *tp;
                    pio_wmat wm = { dt, w, rows, cols };
                    double t[32], cpu[32], med, gmacs;
                    char share[32];
                    int r, rr = reps < 32 ? reps : 32;
                    pio_threadpool_new(threads[ti], &tp);
                    pio_matmul_kernels(kt, tp, y, x, gemm_n, &wm);       /* warm-up */
                    for (r = 0; r < rr; r++) {
                        double t0 = now(), c0 = cpu_now();
                        pio_matmul_kernels(kt, tp, y, x, gemm_n, &wm);
                        t[r] = now() - t0;
                        cpu[r] = cpu_now() - c0;
                    }
                    med = median(t, rr);
                    gmacs = (double)rows * cols * gemm_n / med / 1e9;
                    share[0] = '\0';
                    if (peak[ti] > 0 && !pio_dtype_is_quantized(dt))
                        snprintf(share, sizeof share, "  %4.1f%% of FMA peak", 100.0 * gmacs / peak[ti]);
                    printf("gemm %-5s %5lld->%-5lld n=%d t=%d: %8.1f ms  %7.1f tokens/s  %6.1f GMAC/s%s"
                           "  (cpu %.1f ms: %.1f GMAC per cpu-s)\n",
                           pio_dtype_name(dt), (long long)cols, (long long)rows, gemm_n, threads[ti],
                           med * 1e3, gemm_n / med, gmacs, share,
                           median(cpu, rr) * 1e3, (double)rows * cols * gemm_n / median(cpu, rr) / 1e9);
                    pio_threadpool_free(tp);
                }
                free(w);
                free(x);
                free(y);
            }
        }
    }
    return 0;
}
