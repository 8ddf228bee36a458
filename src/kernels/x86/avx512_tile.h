/*
 * avx512_tile.h - the parts every AVX-512 tile kernel shares (avx512_impl.h,
 * avx512bf16.c): horizontal sums, storing a tile of R <= 4 rows x T <= 4
 * tokens of 16-lane accumulators, and the tile walk over row and token
 * groups with the decode prefetch. Everything is static inline.
 */
#ifndef PIO_KERNELS_X86_AVX512_TILE_H
#define PIO_KERNELS_X86_AVX512_TILE_H

#include "kernels/dispatch.h"

#include <immintrin.h>
#include <string.h>

#define AI static inline __attribute__((always_inline))

/* ---- helpers ---------------------------------------------------------------- */

AI __m256 fold8(__m512 v)
{
    return _mm256_add_ps(_mm512_castps512_ps256(v),
                         _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
}

/* [Σa, Σb, Σc, Σd] */
AI __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d)
{
    __m256 ab = _mm256_hadd_ps(fold8(a), fold8(b)), cd = _mm256_hadd_ps(fold8(c), fold8(d));
    __m256 abcd = _mm256_hadd_ps(ab, cd);
    return _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
}

/* Write acc[r][t] (+ extra[t][r]) to y[t*ldy + r] for r < R, t < T. */
AI void store_tile(int R, int T, __m512 acc[4][4], const float extra[4][4], float *y, size_t ldy,
                   bool accumulate)
{
    int r, t;
#pragma GCC unroll 4
    for (t = 0; t < T; t++) {
        float *yt = y + (size_t)t * ldy;
        if (R == 4) {
            __m128 v = hsum16x4(acc[0][t], acc[1][t], acc[2][t], acc[3][t]);
            v = _mm_add_ps(v, _mm_loadu_ps(extra[t]));
            if (accumulate)
                v = _mm_add_ps(v, _mm_loadu_ps(yt));
            _mm_storeu_ps(yt, v);
        } else {
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                /* hsum16x4's own sum tree: a row stored alone has the same bits as in
                 * a group of 4 (TILE_WALK_ONE_ROW runs decode one row at a time) */
                __m512 a = acc[r][t];
                float v = _mm_cvtss_f32(hsum16x4(a, a, a, a)) + extra[t][r];
                yt[r] = accumulate ? yt[r] + v : v;
            }
        }
    }
}

static const float no_extra[4][4];

AI void zero_acc(int R, int T, __m512 acc[4][4])
{
    int r, t;
#pragma GCC unroll 4
    for (r = 0; r < R; r++)
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
            acc[r][t] = _mm512_setzero_ps();
}

#define TILE_ARGS int64_t k, int nr, int nt, const void *w, size_t w_stride, const void *x, \
                  size_t x_stride, float *y, size_t ldy, bool accumulate

#define MICRO_CALL(fn, R, T, r, t)                                                         \
    fn(R, T, k, (const uint8_t *)w + (size_t)(r) * w_stride, w_stride,                     \
       (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                              \
       y + (size_t)(t) * ldy + (size_t)(r), ldy, accumulate, pf)

/* Row groups of 4 then single rows; token groups of 4 then the 3/2/1 rest. */
#define TILE_ROWS(R, r, fn)                                                                \
    do {                                                                                   \
        int t_;                                                                            \
        for (t_ = 0; t_ + 4 <= nt; t_ += 4)                                                \
            MICRO_CALL(fn, R, 4, r, t_);                                                   \
        switch (nt - t_) {                                                                 \
        case 3: MICRO_CALL(fn, R, 3, r, t_); break;                                        \
        case 2: MICRO_CALL(fn, R, 2, r, t_); break;                                        \
        case 1: MICRO_CALL(fn, R, 1, r, t_); break;                                        \
        default: break;                                                                    \
        }                                                                                  \
    } while (0)

#define TILE_WALK(fn)                                                                      \
    do {                                                                                   \
        int r_ = 0;                                                                        \
        for (; r_ + 4 <= nr; r_ += 4)                                                      \
            TILE_ROWS(4, r_, fn);                                                          \
        for (; r_ < nr; r_++)                                                              \
            TILE_ROWS(1, r_, fn);                                                          \
    } while (0)

/*
 * Decode (few tokens) streams W from memory: pf = true adds a software
 * prefetch of the same blocks R rows ahead (the next row group), which keeps
 * enough reads in flight when rows are short (k = 2560 is ~1.4-2.7 KB).
 */
#define PF_TOKENS 4
#define TILE_WALK_PF(fn)                                                                   \
    do {                                                                                   \
        if (nt <= PF_TOKENS) {                                                             \
            const bool pf = true;                                                          \
            TILE_WALK(fn);                                                                 \
        } else {                                                                           \
            const bool pf = false;                                                         \
            TILE_WALK(fn);                                                                 \
        }                                                                                  \
    } while (0)

/*
 * As TILE_WALK_PF, but one token (decode) runs one row at a time: a task's
 * rows lie back to back, so they are then read as one sequential stream,
 * which the hardware prefetchers follow best (four rows at a time are four
 * streams a row apart). PF: keep the software prefetch of the next row.
 * Qwen3-4B decode on a Zen 4 VM, 2 threads, in-process roofline share (pio
 * bench --roofline, alternated runs at the same bandwidth):
 *   Q8_0, PF false: 92.6% -> 96.8% (1 thread 87.7% -> 95.5%); with the
 *   prefetch kept, one row at a time read 87% against 94.5% without;
 *   BF16, PF true:  88.6% -> 90.8%, higher in each of 5 pairs. Without the
 *   prefetch BF16 fell to 70%: its one-row micro-kernel converts every
 *   weight, and the stream alone does not keep enough reads in flight.
 */
#define TILE_WALK_ONE_ROW(fn, PF)                                                          \
    do {                                                                                   \
        if (nt == 1) {                                                                     \
            const bool pf = PF;                                                            \
            int r_;                                                                        \
            for (r_ = 0; r_ < nr; r_++)                                                    \
                MICRO_CALL(fn, 1, 1, r_, 0);                                               \
        } else {                                                                           \
            TILE_WALK_PF(fn);                                                              \
        }                                                                                  \
    } while (0)

AI void prefetch_next(bool pf, const void *p, size_t ahead, int lines)
{
    int i;
    if (!pf)
        return;
    for (i = 0; i < lines; i++)
        _mm_prefetch((const char *)p + ahead + 64 * (size_t)i, _MM_HINT_T1);
}

#endif
