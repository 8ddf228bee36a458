/*
 * avx512_impl.h - AVX-512 (F/BW/VL/DQ) tile kernels, compiled twice:
 * by avx512.c with PIO_VNNI 0 and by avx512vnni.c with PIO_VNNI 1
 * (-mavx512vnni). Only the int8 inner products differ:
 *
 *                 PIO_VNNI 0                         PIO_VNNI 1
 *   Q8_0   maddubs(|w|, ±x) + madd          vpdpbusd(-128·Σx, w^0x80, x)
 *   Q4_0   maddubs(q, x) + madd - 8·Σx      vpdpbusd(-8·Σx, q, x)
 *   Q4_K/  maddubs(q, x), madd by scale,    maddubs(q, x), vpdpwssd by scale
 *   Q6_K   add
 *
 * A zmm holds two Q8_0/Q4_0 blocks (scales spread over 8 lanes each) or 64
 * values of a K-quant super-block. Micro-kernels are R rows x T tokens with
 * R <= 4, T <= 4 (16 accumulators of 32 registers). Every function here is
 * static; the file defines one pio_kernels_init_<PIO_ISA_NAME>().
 */
#include "avx512_tile.h"

/* ---- float weights -------------------------------------------------------------- */

AI __m512 load_w16(pio_dtype dt, const uint8_t *p, __mmask16 m)
{
    if (dt == PIO_DTYPE_F32)
        return _mm512_maskz_loadu_ps(m, p);
    if (dt == PIO_DTYPE_F16)
        return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

/*
 * One-token BF16 rows of at least NTA_MIN_K columns (Qwen3-4B's o_proj and
 * down_proj) also prefetch the weights NTA_AHEAD bytes ahead with the
 * non-temporal hint. Their f32 activation row (16-38 KiB) is half of L1D or
 * more, and the weight stream, each line used once, otherwise keeps evicting
 * it, so every x load goes to L2 and fewer weight misses are in flight. A
 * stand-alone GEMV on 2 threads (k = 9728) went from 0.74-0.81 to 0.86-0.89
 * of a bare read loop at ~55-60 GB/s and from 0.89-0.93 to 0.97-1.02 at ~35;
 * the Qwen3-4B decode (pio bench --roofline, alternated runs) from 62-67% to
 * 65-71% at ~57-62 GB/s, unchanged at ~35. With k = 2560 (x of 10 KiB) it
 * lost 5-10% at the fast state, so shorter rows do without.
 */
#define NTA_MIN_K 4096
#define NTA_AHEAD 3072

/*
 * The one-token BF16 row's prefetch into L2 (pf) runs at least PF_MIN_AHEAD
 * bytes ahead, not one row: a k = 2560 row is only 5 KiB, which the unmasked
 * loop below reaches too soon after the prefetch at the VM's fast memory
 * state. Qwen3-4B BF16 decode, 2 threads, alternated runs (pio bench
 * --roofline): 77.9-80.5% -> 80.0-83.2% of ~49-56 GB/s, median 92.6 -> 91.3%
 * of ~33-35. In one alternated run of distances, 20 KiB read 84.0-87.0% and
 * 92.6%, two rows (10 KiB) 86.4% and 92.6%, 12 KiB 84.7-88.2% and 92.6%.
 */
#define PF_MIN_AHEAD 12288

/*
 * 16 columns from i (m: the valid ones) of R rows x T tokens. pf_line: this
 * step starts a 64-byte line of W, so it issues the prefetch, ahead bytes on.
 */
AI void float_step(pio_dtype dt, int R, int T, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, int64_t i, __mmask16 m, __m512 acc[4][4], bool pf_line, size_t ahead)
{
    const size_t esz = dt == PIO_DTYPE_F32 ? 4 : 2;
    __m512 xv[4];
    int r, t;
#pragma GCC unroll 4
    for (t = 0; t < T; t++)
        xv[t] = _mm512_maskz_loadu_ps(m, (const float *)(x + (size_t)t * xs) + i);
#pragma GCC unroll 4
    for (r = 0; r < R; r++) {
        __m512 wv = load_w16(dt, w + (size_t)r * ws + (size_t)i * esz, m);
        prefetch_next(pf_line, w + (size_t)r * ws + (size_t)i * esz, ahead, 1);
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
            acc[r][t] = _mm512_fmadd_ps(wv, xv[t], acc[r][t]);
    }
}

/*
 * Each accumulator sums its 16 lanes over k in order, 16 columns a step.
 * Whole 32-column steps (one line of BF16/F16 W, two of F32) run without a
 * mask or a per-step line test and the masked rest after them, in the same
 * order: one token's one-row BF16 loop had ~20 instructions per 32 bytes,
 * near the core's dispatch width at the ~30 GB/s per core of the VM's fast
 * memory state.
 */
AI void float_micro(pio_dtype dt, int R, int T, int64_t k, const uint8_t *w, size_t ws,
                    const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const bool f32 = dt == PIO_DTYPE_F32, one_bf16 = dt == PIO_DTYPE_BF16 && R == 1 && T == 1;
    const bool nta = pf && one_bf16 && k >= NTA_MIN_K;
    const size_t ahead = one_bf16 && ws < PF_MIN_AHEAD ? PF_MIN_AHEAD : (size_t)R * ws;
    const __mmask16 all = (__mmask16)0xffff;
    __m512 acc[4][4];
    int64_t i;

    zero_acc(R, T, acc);
    for (i = 0; i + 32 <= k; i += 32) {
        if (nta)        /* one BF16 row: this step's line, NTA_AHEAD bytes on */
            _mm_prefetch((const char *)w + 2 * (size_t)i + NTA_AHEAD, _MM_HINT_NTA);
        float_step(dt, R, T, w, ws, x, xs, i, all, acc, pf, ahead);
        float_step(dt, R, T, w, ws, x, xs, i + 16, all, acc, pf && f32, ahead);
    }
    for (; i < k; i += 16) {
        __mmask16 m = k - i >= 16 ? all : (__mmask16)((1u << (k - i)) - 1);
        float_step(dt, R, T, w, ws, x, xs, i, m, acc, pf && (f32 || !(i & 31)), ahead);
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

#define FLOAT_MICRO(dt, DT)                                                                 \
    AI void float_micro_##dt(int R, int T, int64_t k, const uint8_t *w, size_t ws,         \
                             const uint8_t *x, size_t xs, float *y, size_t ldy, bool acc,  \
                             bool pf)                                                      \
    {                                                                                      \
        float_micro(DT, R, T, k, w, ws, x, xs, y, ldy, acc, pf);                           \
    }

FLOAT_MICRO(f32, PIO_DTYPE_F32)
FLOAT_MICRO(f16, PIO_DTYPE_F16)
FLOAT_MICRO(bf16, PIO_DTYPE_BF16)
static void tile_f32(TILE_ARGS) { TILE_WALK_PF(float_micro_f32); }
static void tile_f16(TILE_ARGS) { TILE_WALK_PF(float_micro_f16); }
static void tile_bf16(TILE_ARGS) { TILE_WALK_ONE_ROW(float_micro_bf16, true); }

/* ---- Q8_0 / Q4_0: two blocks per zmm ----------------------------------------------- */

/* lanes 0..7 <- element 0, lanes 8..15 <- element 1 */
#define SPREAD2 _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)

/* Activation blocks b (and b+1 when two) of a PIO_ACT_Q8 row: quants, d, Σq. */
AI void act_pair(const uint8_t *row, int64_t b, bool two, __m512i *q, __m512 *d, __m512i *s)
{
    const uint8_t *g = row + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES;
    int j = (int)(b & 7);
    __m128i dd, ss;
    if (two) {
        *q = _mm512_loadu_si512((const void *)(g + 32 * j));
        dd = _mm_loadl_epi64((const __m128i *)(g + 256 + 4 * j));
        ss = _mm_loadl_epi64((const __m128i *)(g + 288 + 4 * j));
    } else {
        int32_t d0, s0;
        memcpy(&d0, g + 256 + 4 * j, 4);
        memcpy(&s0, g + 288 + 4 * j, 4);
        *q = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(g + 32 * j)));
        dd = _mm_cvtsi32_si128(d0);
        ss = _mm_cvtsi32_si128(s0);
    }
    *d = _mm512_permutexvar_ps(SPREAD2, _mm512_castps128_ps512(_mm_castsi128_ps(dd)));
    *s = _mm512_permutexvar_epi32(SPREAD2, _mm512_castsi128_si512(ss));
}

/* f16 scales of weight blocks blk[0] (and blk[1]) spread over 8 lanes each. */
#define BLK_SCALES(blk, stride, two) scales_pair((const uint8_t *)(blk), stride, two)
AI __m512 scales_pair(const uint8_t *blk, size_t bstride, bool two)
{
    uint16_t d0, d1 = 0;
    memcpy(&d0, blk, 2);
    if (two)
        memcpy(&d1, blk + bstride, 2);
    return _mm512_permutexvar_ps(SPREAD2, _mm512_castps128_ps512(
        _mm_cvtph_ps(_mm_cvtsi32_si128((int)((uint32_t)d0 | ((uint32_t)d1 << 16))))));
}

AI void q8_0_step(int R, int T, bool two, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs,
                  int64_t b, __m512 acc[4][4], bool pf)
{
    __m512i xq[4], xc[4];
    __m512 xd[4];
    int r, t;
#pragma GCC unroll 4
    for (t = 0; t < T; t++) {
        __m512i s;
        act_pair(x + (size_t)t * xs, b, two, &xq[t], &xd[t], &s);
        (void)s;
#if PIO_VNNI
        /* w+128 is unsigned: Σ(w+128)x = Σwx + 128Σx, with 128Σx taken out of
         * each 4-byte lane exactly (not -16Σx of the block in each of its 8
         * lanes: those lanes' float sums would cancel large terms), so every
         * lane holds the same integer as the maddubs path's */
        xc[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                     _mm512_set1_epi8((char)0x80), xq[t]));
#else
        xc[t] = _mm512_setzero_si512();
#endif
    }
#pragma GCC unroll 4
    for (r = 0; r < R; r++) {
        const pio_block_q8_0 *blk = (const pio_block_q8_0 *)(w + (size_t)r * ws) + b;
        __m512i wq = two ? _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)blk[0].qs)),
                                              _mm256_loadu_si256((const __m256i *)blk[1].qs), 1)
                         : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)blk[0].qs));
        __m512 dw = BLK_SCALES(blk, sizeof *blk, two);
        prefetch_next(pf, blk, (size_t)R * ws, 2);
#if PIO_VNNI
        __m512i wu = _mm512_xor_si512(wq, _mm512_set1_epi8((char)0x80));
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            __m512i p = _mm512_dpbusd_epi32(xc[t], wu, xq[t]);
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, xd[t]), acc[r][t]);
        }
#else
        __m512i aw = _mm512_abs_epi8(wq);
        __mmask64 neg = _mm512_movepi8_mask(wq);
        (void)xc;
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            __m512i sx = _mm512_mask_sub_epi8(xq[t], neg, _mm512_setzero_si512(), xq[t]);
            __m512i p = _mm512_madd_epi16(_mm512_maddubs_epi16(aw, sx), _mm512_set1_epi16(1));
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, xd[t]), acc[r][t]);
        }
#endif
    }
}

AI void q4_0_step(int R, int T, bool two, const uint8_t *w, size_t ws, const uint8_t *x, size_t xs,
                  int64_t b, __m512 acc[4][4], bool pf)
{
    const __m512i m4 = _mm512_set1_epi8(15);
    __m512i xq[4], xc[4];
    __m512 xd[4];
    int r, t;
#pragma GCC unroll 4
    for (t = 0; t < T; t++) {
        __m512i s;
        act_pair(x + (size_t)t * xs, b, two, &xq[t], &xd[t], &s);
        (void)s;
        /* -8Σx of each 4-byte lane, exactly: lane by lane Σ(q-8)x */
#if PIO_VNNI
        xc[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                 _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8(8), xq[t]));
#else
        xc[t] = _mm512_sub_epi32(_mm512_setzero_si512(),
                                 _mm512_madd_epi16(_mm512_maddubs_epi16(_mm512_set1_epi8(8), xq[t]),
                                                   _mm512_set1_epi16(1)));
#endif
    }
#pragma GCC unroll 4
    for (r = 0; r < R; r++) {
        const pio_block_q4_0 *blk = (const pio_block_q4_0 *)(w + (size_t)r * ws) + b;
        __m128i q0 = _mm_loadu_si128((const __m128i *)blk[0].qs);
        __m256i q = two ? _mm256_set_m128i(_mm_loadu_si128((const __m128i *)blk[1].qs), q0)
                        : _mm256_zextsi128_si256(q0);
        /* [b0 lo | b1 lo | b0 hi | b1 hi] -> [b0 lo | b0 hi | b1 lo | b1 hi] */
        __m512i z = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q), _mm256_srli_epi16(q, 4), 1), m4);
        __m512i wq = _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
        __m512 dw = BLK_SCALES(blk, sizeof *blk, two);
        prefetch_next(pf, blk, (size_t)R * ws, 1);
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
#if PIO_VNNI
            __m512i p = _mm512_dpbusd_epi32(xc[t], wq, xq[t]);
#else
            __m512i p = _mm512_add_epi32(xc[t], _mm512_madd_epi16(_mm512_maddubs_epi16(wq, xq[t]),
                                                                   _mm512_set1_epi16(1)));
#endif
            acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, xd[t]), acc[r][t]);
        }
    }
}

#define PAIR_MICRO(name, step)                                                              \
    AI void name(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,     \
                 size_t xs, float *y, size_t ldy, bool accumulate, bool pf)                  \
    {                                                                                        \
        const int64_t nb = k / 32;                                                           \
        __m512 acc[4][4];                                                                    \
        int64_t b;                                                                           \
        zero_acc(R, T, acc);                                                                 \
        for (b = 0; b + 2 <= nb; b += 2)                                                     \
            step(R, T, true, w, ws, x, xs, b, acc, pf);                                      \
        if (b < nb)                                                                          \
            step(R, T, false, w, ws, x, xs, b, acc, pf);                                     \
        store_tile(R, T, acc, no_extra, y, ldy, accumulate);                                 \
    }

PAIR_MICRO(q8_0_micro, q8_0_step)
PAIR_MICRO(q4_0_micro, q4_0_step)
static void tile_q8_0(TILE_ARGS) { TILE_WALK_ONE_ROW(q8_0_micro, false); }
static void tile_q4_0(TILE_ARGS) { TILE_WALK_PF(q4_0_micro); }

/* ---- Q4_K / Q6_K -------------------------------------------------------------------- */

/* acc += p · scale per i16 pair, in int32 */
AI __m512i dot_scaled(__m512i acc, __m512i p, __m512i scale)
{
#if PIO_VNNI
    return _mm512_dpwssd_epi32(acc, p, scale);
#else
    return _mm512_add_epi32(acc, _mm512_madd_epi16(p, scale));
#endif
}

/* Q4_K scales[12] -> u[0..1]: 8 scales as bytes, u[2..3]: 8 mins (GGML's utmp). */
AI void q4k_unpack(const uint8_t *scales, uint32_t u[4])
{
    const uint32_t m1 = 0x3f3f3f3f, m2 = 0x0f0f0f0f, m3 = 0x03030303;
    uint32_t aux;
    memcpy(u, scales, 12);
    u[3] = ((u[2] >> 4) & m2) | (((u[1] >> 6) & m3) << 4);
    aux = u[1] & m1;
    u[1] = (u[2] & m2) | (((u[0] >> 6) & m3) << 4);
    u[2] = aux;
    u[0] &= m1;
}

/* i16 lane i of 64-value chunk jp <- scale 2jp + i/16 */
static const int16_t q4k_spread[4][32] = {
#define SPREAD_ROW(j) { 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, 2*j, \
                        2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, \
                        2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1, 2*j+1 }
    SPREAD_ROW(0), SPREAD_ROW(1), SPREAD_ROW(2), SPREAD_ROW(3)
#undef SPREAD_ROW
};

AI void q4_K_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m512i m4 = _mm512_set1_epi8(15);
    const int64_t nb = k / PIO_QK_K;
    __m512 acc[4][4];
    int64_t i;
    int r, t, jp;

    zero_acc(R, T, acc);
    for (i = 0; i < nb; i++) {
        const pio_block_q4_K *wb[4];
        const pio_block_q8_K *xb[4];
        __m512i scv[4][4], ai[4][4];
        __m128i mins[4], bs8[4];
        float dw[4], dmw[4];
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            uint32_t u[4];
            __m256i ms;
            int j;
            wb[r] = (const pio_block_q4_K *)(w + (size_t)r * ws) + i;
            prefetch_next(pf, wb[r], (size_t)R * ws, 3);
            q4k_unpack(wb[r]->scales, u);
            ms = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)u));   /* 8 scales | 8 mins */
            mins[r] = _mm256_extracti128_si256(ms, 1);
#pragma GCC unroll 4
            for (j = 0; j < 4; j++)
                scv[r][j] = _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)q4k_spread[j]),
                                                     _mm512_castsi256_si512(ms));
            dw[r] = _cvtsh_ss(wb[r]->d);
            dmw[r] = _cvtsh_ss(wb[r]->dmin);
        }
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + i;
            bs8[t] = _mm_hadd_epi16(_mm_loadu_si128((const __m128i *)xb[t]->bsums),
                                    _mm_loadu_si128((const __m128i *)xb[t]->bsums + 1));
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                ai[r][t] = _mm512_setzero_si512();
        }
#pragma GCC unroll 4
        for (jp = 0; jp < 4; jp++) {
            __m512i wz[4];
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                __m256i q = _mm256_loadu_si256((const __m256i *)(wb[r]->qs + 32 * jp));
                wz[r] = _mm512_and_si512(_mm512_inserti64x4(_mm512_castsi256_si512(q),
                                                            _mm256_srli_epi16(q, 4), 1), m4);
            }
#pragma GCC unroll 4
            for (t = 0; t < T; t++) {
                __m512i xv = _mm512_loadu_si512((const void *)(xb[t]->qs + 64 * jp));
#pragma GCC unroll 4
                for (r = 0; r < R; r++)
                    ai[r][t] = dot_scaled(ai[r][t], _mm512_maddubs_epi16(wz[r], xv), scv[r][jp]);
            }
        }
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                __m512 fm = _mm512_cvtepi32_ps(_mm512_zextsi128_si512(_mm_madd_epi16(mins[r], bs8[t])));
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[r][t]),
                                            _mm512_set1_ps(dw[r] * xb[t]->d), acc[r][t]);
                acc[r][t] = _mm512_fnmadd_ps(fm, _mm512_set1_ps(dmw[r] * xb[t]->d), acc[r][t]);
            }
        }
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

/* i16 lane i of pair p <- scale 4p + i/8 */
static const int16_t q6k_spread[4][32] = {
#define SPREAD_ROW(p) { 4*p, 4*p, 4*p, 4*p, 4*p, 4*p, 4*p, 4*p, 4*p+1, 4*p+1, 4*p+1, 4*p+1, 4*p+1, 4*p+1, \
                        4*p+1, 4*p+1, 4*p+2, 4*p+2, 4*p+2, 4*p+2, 4*p+2, 4*p+2, 4*p+2, 4*p+2, 4*p+3, \
                        4*p+3, 4*p+3, 4*p+3, 4*p+3, 4*p+3, 4*p+3, 4*p+3 }
    SPREAD_ROW(0), SPREAD_ROW(1), SPREAD_ROW(2), SPREAD_ROW(3)
#undef SPREAD_ROW
};

AI void q6_K_micro(int R, int T, int64_t k, const uint8_t *w, size_t ws, const uint8_t *x,
                   size_t xs, float *y, size_t ldy, bool accumulate, bool pf)
{
    const __m512i m4 = _mm512_set1_epi8(15), m2 = _mm512_set1_epi8(3);
    const int64_t nb = k / PIO_QK_K;
    __m512 acc[4][4];
    int64_t i;
    int r, t, h;

    zero_acc(R, T, acc);
    for (i = 0; i < nb; i++) {
        const pio_block_q6_K *wb[4];
        const pio_block_q8_K *xb[4];
        __m512i scv[4][4], ai[4][4];
        __m256i sc16[4];
        float dw[4];
#pragma GCC unroll 4
        for (r = 0; r < R; r++) {
            __m512i scz;
            int p;
            wb[r] = (const pio_block_q6_K *)(w + (size_t)r * ws) + i;
            prefetch_next(pf, wb[r], (size_t)R * ws, 4);
            sc16[r] = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)wb[r]->scales));
            scz = _mm512_castsi256_si512(sc16[r]);
            /* pair p covers 64 values = 16-value sub-blocks 4p..4p+3, 8 i16 pairs each */
            for (p = 0; p < 4; p++)
                scv[r][p] = _mm512_permutexvar_epi16(_mm512_loadu_si512((const void *)q6k_spread[p]), scz);
            dw[r] = _cvtsh_ss(wb[r]->d);
        }
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            __m256i bs;
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + i;
            bs = _mm256_loadu_si256((const __m256i *)xb[t]->bsums);
#pragma GCC unroll 4
            for (r = 0; r < R; r++)            /* -32·Σ sc_j·bsum_j: the q-32 offset */
                ai[r][t] = _mm512_zextsi256_si512(_mm256_sub_epi32(
                    _mm256_setzero_si256(), _mm256_slli_epi32(_mm256_madd_epi16(sc16[r], bs), 5)));
        }
        for (h = 0; h < 2; h++) {
            __m512i wa[4], wbv[4];
#pragma GCC unroll 4
            for (r = 0; r < R; r++) {
                __m512i ql = _mm512_loadu_si512((const void *)(wb[r]->ql + 64 * h));
                __m256i qh = _mm256_loadu_si256((const __m256i *)(wb[r]->qh + 32 * h));
                __m512i qhz = _mm512_inserti64x4(_mm512_castsi256_si512(qh), _mm256_srli_epi16(qh, 2), 1);
                wa[r] = _mm512_or_si512(_mm512_and_si512(ql, m4),
                                        _mm512_slli_epi16(_mm512_and_si512(qhz, m2), 4));
                wbv[r] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), m4),
                                         _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qhz, 4), m2), 4));
            }
#pragma GCC unroll 4
            for (t = 0; t < T; t++) {
                __m512i xa = _mm512_loadu_si512((const void *)(xb[t]->qs + 128 * h));
                __m512i xc = _mm512_loadu_si512((const void *)(xb[t]->qs + 128 * h + 64));
#pragma GCC unroll 4
                for (r = 0; r < R; r++) {
                    ai[r][t] = dot_scaled(ai[r][t], _mm512_maddubs_epi16(wa[r], xa), scv[r][2 * h]);
                    ai[r][t] = dot_scaled(ai[r][t], _mm512_maddubs_epi16(wbv[r], xc), scv[r][2 * h + 1]);
                }
            }
        }
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
#pragma GCC unroll 4
            for (r = 0; r < R; r++)
                acc[r][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[r][t]),
                                            _mm512_set1_ps(dw[r] * xb[t]->d), acc[r][t]);
    }
    store_tile(R, T, acc, no_extra, y, ldy, accumulate);
}

static void tile_q4_K(TILE_ARGS) { TILE_WALK_PF(q4_K_micro); }
static void tile_q6_K(TILE_ARGS) { TILE_WALK_PF(q6_K_micro); }

/* ---- Q8_0_X8 / Q4_0_X8 on VNNI: decode and small batches ----------------------------- */
#if PIO_VNNI
/*
 * One group of 8 rows (quant.h's X8 layouts) x T <= 4 tokens, on 8-lane
 * vpdpbusd (AVX512VL). Per block column, 8 vectors of 4 unsigned bytes per
 * row, vector c against the token's activation dword c broadcast from
 * memory:
 *   Q8_0_X8  chunk c, made unsigned (w+128) by an xor; 128·Σx is taken out;
 *   Q4_0_X8  the low nibbles of chunk c (values 4c..4c+3) as vector c and
 *            its high nibbles (values 16+4c..) as vector 4+c; 8·Σx taken out.
 * Two chains (even and odd vectors) are added in int32, which gives each
 * row's exact integer dot product - the AVX2 level's q8x8_micro's and
 * q4x8_micro's - and the block is applied with the same FMA in the same
 * order, so a row's result has the same bits whatever T is and at either
 * level. Lane i is row i: no horizontal sums, and no shuffles (a 16-lane
 * form needs a lane-crossing permute of x per pair of chunks, which ran
 * slower for 2-4 tokens).
 */
AI void x8_vnni_micro(bool q4, int T, int64_t k, const uint8_t *w, const uint8_t *x, size_t xs,
                      float *y, size_t ldy, bool accumulate, size_t pf_ahead)
{
    const size_t col = q4 ? sizeof(pio_block_q4_0x8) : sizeof(pio_block_q8_0x8);
    const __m256i bias = _mm256_set1_epi8((char)0x80), m4 = _mm256_set1_epi8(15);
    const int32_t off = q4 ? 8 : 128;
    const int64_t nb = k / 32;
    __m256 acc[4];
    int64_t b;
    int t, c;

#pragma GCC unroll 4
    for (t = 0; t < T; t++)
        acc[t] = _mm256_setzero_ps();
    for (b = 0; b < nb; b++) {
        const uint8_t *blk = w + (size_t)b * col;
        const size_t xoff = (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES;
        const int j = (int)(b & 7);
        __m256 dw = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)blk));
        __m256i wu[8];
        if (pf_ahead)                 /* the column pf_ahead bytes on: 3 or 5 lines */
            for (c = 0; c < (q4 ? 3 : 5); c++)
                _mm_prefetch((const char *)blk + pf_ahead + 64 * c, _MM_HINT_T0);
        if (q4) {
#pragma GCC unroll 4
            for (c = 0; c < 4; c++) {
                __m256i v = _mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c));
                wu[c] = _mm256_and_si256(v, m4);
                wu[c + 4] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
            }
        } else {
#pragma GCC unroll 8
            for (c = 0; c < 8; c++)
                wu[c] = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(blk + 16 + 32 * c)), bias);
        }
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            const uint8_t *g = x + (size_t)t * xs + xoff;
            __m256i even = _mm256_setzero_si256(), odd = _mm256_setzero_si256(), q;
            int32_t sx;
#pragma GCC unroll 4
            for (c = 0; c < 8; c += 2) {
                int32_t x0, x1;
                memcpy(&x0, g + 32 * j + 4 * c, 4);
                memcpy(&x1, g + 32 * j + 4 * c + 4, 4);
                even = _mm256_dpbusd_epi32(even, wu[c], _mm256_set1_epi32(x0));
                odd = _mm256_dpbusd_epi32(odd, wu[c + 1], _mm256_set1_epi32(x1));
            }
            memcpy(&sx, g + 288 + 4 * j, 4);
            q = _mm256_sub_epi32(_mm256_add_epi32(even, odd), _mm256_set1_epi32(off * sx));
            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q),
                                     _mm256_mul_ps(dw, _mm256_broadcast_ss((const float *)(g + 256) + j)), acc[t]);
        }
    }
#pragma GCC unroll 4
    for (t = 0; t < T; t++) {
        float *yt = y + (size_t)t * ldy;
        __m256 v = acc[t];
        if (accumulate)
            v = _mm256_add_ps(v, _mm256_loadu_ps(yt));
        _mm256_storeu_ps(yt, v);
    }
}

/*
 * nr a multiple of 8. Groups one after another, each with its tokens in
 * fours, so a task reads its rows as one sequential stream (see
 * TILE_WALK_ONE_ROW) and the tokens after the first four reuse a group's
 * weights from cache. From 3 tokens on, the micro-kernel's longer loop
 * keeps too few reads in flight, and a software prefetch 16 block columns
 * (2.3-4.3 KB) ahead in the stream makes up for it. kernels_bench --hot,
 * the Qwen3-4B shapes, Q8_0_X8, 1 thread, GMAC/s without and with it: 4
 * tokens 39-52 -> 64-82, 8 tokens 53-57 -> 75-81; 2 tokens ran slower with
 * it (first shape 63 -> 50-53), and so did one token on the row-major Q8_0
 * tile (see TILE_WALK_ONE_ROW).
 */
#define X8_PF_COLUMNS 16
#define X8_VNNI_CALL(T)                                                                    \
    x8_vnni_micro(q4, T, k, wg, (const uint8_t *)x + (size_t)t * x_stride, x_stride,       \
                  y + (size_t)t * ldy + 8 * (size_t)g, ldy, accumulate, pf)

AI void tile_x8_vnni(bool q4, TILE_ARGS)
{
    const size_t gs = 8 * w_stride;
    const size_t col = q4 ? sizeof(pio_block_q4_0x8) : sizeof(pio_block_q8_0x8);
    const size_t pf = nt >= 3 ? X8_PF_COLUMNS * col : 0;
    int ng = nr / 8, g, t;
    for (g = 0; g < ng; g++) {
        const uint8_t *wg = (const uint8_t *)w + (size_t)g * gs;
        for (t = 0; t + 4 <= nt; t += 4)
            X8_VNNI_CALL(4);
        switch (nt - t) {
        case 3: X8_VNNI_CALL(3); break;
        case 2: X8_VNNI_CALL(2); break;
        case 1: X8_VNNI_CALL(1); break;
        default: break;
        }
    }
}

static void tile_q8_0_x8(TILE_ARGS) { tile_x8_vnni(false, k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate); }

/*
 * Q4_0_X8 keeps the AVX2 level's tile (inherited, same bits) for 1-2 tokens:
 * its pmaddubsw sums of nibbles are as cheap as vpdpbusd there, and it
 * decoded slightly faster (Qwen3-4B, 1 thread, roofline share median 95.3%
 * against 92.0% over 7 alternated runs; 2 threads equal). From 3 tokens on
 * this level's tile, with its prefetch, is faster: kernels_bench --hot, 1
 * thread, 8 tokens 79-101 -> 106-109 GMAC/s; a 12-token prompt, 2
 * threads, 39-41 -> 48-49 tokens/s.
 */
static pio_tile_fn tile_q4_0_x8_narrow;

static void tile_q4_0_x8(TILE_ARGS)
{
    if (nt < 3)
        tile_q4_0_x8_narrow(k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
    else
        tile_x8_vnni(true, k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate);
}
#endif

/* ---- VNNI prefill: packed Q8_0 / Q4_0 panels ------------------------------------------- */
#if PIO_VNNI
/*
 * Panel layout, per group of 16 rows (the last one zero-padded) and block b
 * of 32 columns, 576 bytes:
 *   u8 q[8][16][4]: chunk c, row i, bytes 4c..4c+3 of the row's block as
 *                   unsigned (Q8_0: w+128; Q4_0: the nibble 0..15);
 *   f32 d[16]:      the rows' block scales (0 for padding rows).
 * vpdpbusd(acc, q[c], broadcast(x bytes 4c..4c+3)) then gives 16 rows' partial
 * dot products in one instruction; the +128 / +8 offset is taken out with
 * Σx, and the block scales are applied as one 16-lane FMA per block.
 */
#define PK_BLOCK 576

static size_t pack_size_q(int nr, int64_t k)
{
    return (size_t)((nr + 15) / 16) * (size_t)(k / 32) * PK_BLOCK;
}

AI void pack_q(bool q4, void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nb = k / 32;
    const size_t bsz = q4 ? sizeof(pio_block_q4_0) : sizeof(pio_block_q8_0);
    int ng = (nr + 15) / 16, g, i, c, j;
    int64_t b;
    for (g = 0; g < ng; g++) {
        for (b = 0; b < nb; b++) {
            uint8_t *o = (uint8_t *)dst + ((size_t)g * (size_t)nb + (size_t)b) * PK_BLOCK;
            float d[16];
            for (i = 0; i < 16; i++) {
                int r = 16 * g + i;
                uint8_t e[32];
                if (r < nr) {
                    const uint8_t *blk = (const uint8_t *)w + (size_t)r * ws + (size_t)b * bsz;
                    uint16_t h;
                    memcpy(&h, blk, 2);
                    d[i] = _cvtsh_ss(h);
                    if (q4) {
                        for (j = 0; j < 16; j++) {
                            e[j] = blk[2 + j] & 15;
                            e[j + 16] = blk[2 + j] >> 4;
                        }
                    } else {
                        for (j = 0; j < 32; j++)
                            e[j] = (uint8_t)(blk[2 + j] ^ 0x80);
                    }
                } else {
                    d[i] = 0.0f;
                    memset(e, q4 ? 0 : 0x80, sizeof e);
                }
                for (c = 0; c < 8; c++)
                    memcpy(o + 64 * c + 4 * i, e + 4 * c, 4);
            }
            memcpy(o + 512, d, sizeof d);
        }
    }
}

static void pack_q8_0(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_q(false, dst, w, ws, nr, k); }
static void pack_q4_0(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_q(true, dst, w, ws, nr, k); }

/*
 * The same panels from the X8 layouts (quant.h), which decode runs on. The
 * 8 rows' f16 scales open a block column; rows come in whole groups of 8,
 * and a missing second group of a panel is padding (w = 0, d = 0) as in
 * pack_q. Each 64-byte panel chunk row is two X8 halves side by side:
 *   Q8_0_X8  chunk c (32 bytes: bytes 4c..4c+3 of each of 8 rows) is the
 *            panel's chunk c for those rows, made unsigned (w+128);
 *   Q4_0_X8  chunk c < 4 holds bytes 4c..4c+3 of qs, whose low nibbles are
 *            the panel's chunk c and high nibbles its chunk 4 + c.
 */
AI void pack_q_x8(bool q4, void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nb = k / 32;
    const size_t col = q4 ? sizeof(pio_block_q4_0x8) : sizeof(pio_block_q8_0x8);
    const __m256i m4 = _mm256_set1_epi8(15), bias = _mm256_set1_epi8((char)0x80);
    const __m256i pad = q4 ? _mm256_setzero_si256() : bias;
    int ng = (nr + 15) / 16, g, h, c;
    int64_t b;
    for (g = 0; g < ng; g++) {
        for (b = 0; b < nb; b++) {
            uint8_t *o = (uint8_t *)dst + ((size_t)g * (size_t)nb + (size_t)b) * PK_BLOCK;
            float d[16];
            for (h = 0; h < 2; h++) {
                int r0 = 16 * g + 8 * h;
                const uint8_t *gc = (const uint8_t *)w + (size_t)r0 * ws + (size_t)b * col;
                if (r0 >= nr) {                             /* padding rows */
                    memset(d + 8 * h, 0, 8 * sizeof(float));
                    for (c = 0; c < 8; c++)
                        _mm256_storeu_si256((__m256i *)(o + 64 * c + 32 * h), pad);
                    continue;
                }
                _mm256_storeu_ps(d + 8 * h, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)gc)));
                for (c = 0; c < (q4 ? 4 : 8); c++) {
                    __m256i v = _mm256_loadu_si256((const __m256i *)(gc + 16 + 32 * c));
                    if (q4) {
                        _mm256_storeu_si256((__m256i *)(o + 64 * c + 32 * h), _mm256_and_si256(v, m4));
                        _mm256_storeu_si256((__m256i *)(o + 64 * (c + 4) + 32 * h),
                                            _mm256_and_si256(_mm256_srli_epi16(v, 4), m4));
                    } else {
                        _mm256_storeu_si256((__m256i *)(o + 64 * c + 32 * h), _mm256_xor_si256(v, bias));
                    }
                }
            }
            memcpy(o + 512, d, sizeof d);
        }
    }
}

static void pack_q8_0_x8(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_q_x8(false, dst, w, ws, nr, k); }
static void pack_q4_0_x8(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_q_x8(true, dst, w, ws, nr, k); }

/*
 * G groups of 16 packed rows (G <= 2, `rows` of them valid) x T tokens
 * (T <= 4): y[t*ldy + r] for r < rows.
 */
AI void packed_micro(bool q4, int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                     const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const int64_t nb = k / 32;
    const int32_t off = q4 ? 8 : 128;
    __m512 accf[2][4];
    int64_t b;
    int gi, t, c;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
            accf[gi][t] = _mm512_setzero_ps();
    for (b = 0; b < nb; b++) {
        const uint8_t *xg[4];
        const uint8_t *pb = pk + (size_t)b * PK_BLOCK;
        __m512i ai[2][4];
        int j = (int)(b & 7);
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            int32_t sx;
            xg[t] = x + (size_t)t * xs + (size_t)(b >> 3) * PIO_ACT_Q8_GROUP_BYTES;
            memcpy(&sx, xg[t] + 288 + 4 * j, 4);
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++)
                ai[gi][t] = _mm512_set1_epi32(-off * sx);
        }
#pragma GCC unroll 8
        for (c = 0; c < 8; c++) {
            __m512i wv[2];
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++)
                wv[gi] = _mm512_load_si512((const void *)(pb + (size_t)gi * gstride + 64 * c));
#pragma GCC unroll 4
            for (t = 0; t < T; t++) {
                int32_t q4b;
                __m512i xb;
                memcpy(&q4b, xg[t] + 32 * j + 4 * c, 4);
                xb = _mm512_set1_epi32(q4b);
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++)
                    ai[gi][t] = _mm512_dpbusd_epi32(ai[gi][t], wv[gi], xb);
            }
        }
#pragma GCC unroll 2
        for (gi = 0; gi < G; gi++) {
            __m512 dw = _mm512_load_ps((const float *)(pb + (size_t)gi * gstride + 512));
#pragma GCC unroll 4
            for (t = 0; t < T; t++) {
                float dx;
                memcpy(&dx, xg[t] + 256 + 4 * j, 4);
                accf[gi][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[gi][t]),
                                              _mm512_mul_ps(dw, _mm512_set1_ps(dx)), accf[gi][t]);
            }
        }
    }
#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++) {
        int valid = rows - 16 * gi;
        __mmask16 m = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            float *yt = y + (size_t)t * ldy + 16 * gi;
            __m512 v = accf[gi][t];
            if (accumulate)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yt));
            _mm512_mask_storeu_ps(yt, m, v);
        }
    }
}

#define PACKED_CALL(q4, G, T, g, t, rows)                                                  \
    packed_micro(q4, G, T, k, (const uint8_t *)w + (size_t)(g) * gstride, gstride, rows,  \
                 (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                   \
                 y + (size_t)(t) * ldy + (size_t)(g) * 16, ldy, accumulate)

#define PACKED_TOKENS(q4, G, g, rows)                                                      \
    do {                                                                                   \
        int t_;                                                                            \
        for (t_ = 0; t_ + 4 <= nt; t_ += 4)                                                \
            PACKED_CALL(q4, G, 4, g, t_, rows);                                            \
        switch (nt - t_) {                                                                 \
        case 3: PACKED_CALL(q4, G, 3, g, t_, rows); break;                                 \
        case 2: PACKED_CALL(q4, G, 2, g, t_, rows); break;                                 \
        case 1: PACKED_CALL(q4, G, 1, g, t_, rows); break;                                 \
        default: break;                                                                    \
        }                                                                                  \
    } while (0)

/* w: a panel from pack_q (w_stride unused); 32 rows x 4 tokens per micro-kernel. */
AI void tile_packed_q(bool q4, TILE_ARGS)
{
    const size_t gstride = (size_t)(k / 32) * PK_BLOCK;
    int ng = (nr + 15) / 16, g;
    (void)w_stride;
    for (g = 0; g + 2 <= ng; g += 2) {
        int rows = nr - 16 * g < 32 ? nr - 16 * g : 32;
        PACKED_TOKENS(q4, 2, g, rows);
    }
    if (g < ng)
        PACKED_TOKENS(q4, 1, g, nr - 16 * g);
}

static void tile_packed_q8_0(TILE_ARGS) { tile_packed_q(false, k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate); }
static void tile_packed_q4_0(TILE_ARGS) { tile_packed_q(true, k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate); }

/*
 * K-quant panels, per group of 16 rows and super-block of 256 columns, 5120
 * bytes: one record per sub-block s (Q4_K: 8 of 32 values, 640 bytes; Q6_K:
 * 16 of 16 values, 320 bytes):
 *   u8 q[S/4][16][4]: the quants (Q4_K 0..15, Q6_K 0..63), dword-interleaved;
 *   f32 dsc[16]:      d·scale_s per row;
 *   f32 dmn[16]:      Q4_K only: dmin·min_s per row.
 * Per sub-block and token: S/4 vpdpbusd, then one FMA by dsc·dx (Q4_K: and
 * one by dmn·dx·Σx_s from bsums; Q6_K: the -32 offset starts the int sum).
 */
#define PKK_SUPER 5120

static size_t pack_size_k(int nr, int64_t k)
{
    return (size_t)((nr + 15) / 16) * (size_t)(k / PIO_QK_K) * PKK_SUPER;
}

/* q[256], dsc[NS], dmn[NS] of one weight super-block. */
AI void decode_k(bool q6, const uint8_t *blk, uint8_t q[256], float *dsc, float *dmn)
{
    int j, l;
    if (!q6) {
        const pio_block_q4_K *b = (const pio_block_q4_K *)blk;
        uint32_t u[4];
        const uint8_t *sc = (const uint8_t *)u, *mn = (const uint8_t *)u + 8;
        float d = _cvtsh_ss(b->d), dm = _cvtsh_ss(b->dmin);
        q4k_unpack(b->scales, u);
        for (j = 0; j < 8; j++) {
            for (l = 0; l < 32; l++)
                q[32 * j + l] = (b->qs[32 * (j / 2) + l] >> (4 * (j & 1))) & 15;
            dsc[j] = d * sc[j];
            dmn[j] = dm * mn[j];
        }
    } else {
        const pio_block_q6_K *b = (const pio_block_q6_K *)blk;
        float d = _cvtsh_ss(b->d);
        int h, c;
        for (h = 0; h < 2; h++)
            for (c = 0; c < 4; c++)
                for (l = 0; l < 32; l++)
                    q[128 * h + 32 * c + l] =
                        (uint8_t)(((b->ql[64 * h + 32 * (c & 1) + l] >> (4 * (c >> 1))) & 15) |
                                  (((b->qh[32 * h + l] >> (2 * c)) & 3) << 4));
        for (j = 0; j < 16; j++)
            dsc[j] = d * b->scales[j];
    }
}

/* x8: W in the Q4_K_X8 / Q6_K_X8 layout (each row's super-block gathered
 * from its group's block column first), else as stored. */
AI void pack_k(bool q6, bool x8, void *dst, const void *w, size_t ws, int nr, int64_t k)
{
    const int64_t nsb = k / PIO_QK_K;
    const int S = q6 ? 16 : 32, NS = 256 / S, REC = q6 ? 320 : 640;
    const size_t bsz = q6 ? sizeof(pio_block_q6_K) : sizeof(pio_block_q4_K);
    int ng = (nr + 15) / 16, g, i, sb, c;
    int64_t b;
    for (g = 0; g < ng; g++) {
        for (b = 0; b < nsb; b++) {
            uint8_t *o = (uint8_t *)dst + ((size_t)g * (size_t)nsb + (size_t)b) * PKK_SUPER;
            for (i = 0; i < 16; i++) {
                int r = 16 * g + i;
                uint8_t q[256];
                float dsc[16] = { 0 }, dmn[16] = { 0 };
                if (r < nr && x8) {
                    uint8_t blk[sizeof(pio_block_q6_K)];
                    pio_x8_gather_block(q6 ? PIO_DTYPE_Q6_K_X8 : PIO_DTYPE_Q4_K_X8,
                                        (const uint8_t *)w + (size_t)(r & ~7) * ws +
                                            (size_t)b * PIO_X8_ROWS * bsz, r & 7, blk);
                    decode_k(q6, blk, q, dsc, dmn);
                } else if (r < nr)
                    decode_k(q6, (const uint8_t *)w + (size_t)r * ws + (size_t)b * bsz, q, dsc, dmn);
                else
                    memset(q, 0, sizeof q);
                for (sb = 0; sb < NS; sb++) {
                    uint8_t *rec = o + (size_t)sb * REC;
                    for (c = 0; c < S / 4; c++)
                        memcpy(rec + 64 * c + 4 * i, q + S * sb + 4 * c, 4);
                    memcpy(rec + 16 * S + 4 * i, &dsc[sb], 4);
                    if (!q6)
                        memcpy(rec + 16 * S + 64 + 4 * i, &dmn[sb], 4);
                }
            }
        }
    }
}

static void pack_q4_K(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_k(false, false, dst, w, ws, nr, k); }
static void pack_q6_K(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_k(true, false, dst, w, ws, nr, k); }
static void pack_q4_K_x8(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_k(false, true, dst, w, ws, nr, k); }
static void pack_q6_K_x8(void *dst, const void *w, size_t ws, int nr, int64_t k) { pack_k(true, true, dst, w, ws, nr, k); }

AI void packedk_micro(bool q6, int G, int T, int64_t k, const uint8_t *pk, size_t gstride, int rows,
                      const uint8_t *x, size_t xs, float *y, size_t ldy, bool accumulate)
{
    const int S = q6 ? 16 : 32, NS = 256 / S, REC = q6 ? 320 : 640;
    const int64_t nsb = k / PIO_QK_K;
    __m512 accf[2][4];
    int64_t i;
    int gi, t, c, sb;

#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++)
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
            accf[gi][t] = _mm512_setzero_ps();
    for (i = 0; i < nsb; i++) {
        const pio_block_q8_K *xb[4];
#pragma GCC unroll 4
        for (t = 0; t < T; t++)
            xb[t] = (const pio_block_q8_K *)(x + (size_t)t * xs) + i;
        for (sb = 0; sb < NS; sb++) {
            const uint8_t *rec = pk + (size_t)i * PKK_SUPER + (size_t)sb * REC;
            __m512i ai[2][4];
#pragma GCC unroll 4
            for (t = 0; t < T; t++) {
                __m512i init = q6 ? _mm512_set1_epi32(-32 * xb[t]->bsums[sb]) : _mm512_setzero_si512();
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++)
                    ai[gi][t] = init;
            }
#pragma GCC unroll 8
            for (c = 0; c < S / 4; c++) {
                __m512i wv[2];
#pragma GCC unroll 2
                for (gi = 0; gi < G; gi++)
                    wv[gi] = _mm512_load_si512((const void *)(rec + (size_t)gi * gstride + 64 * c));
#pragma GCC unroll 4
                for (t = 0; t < T; t++) {
                    int32_t q4b;
                    __m512i xv;
                    memcpy(&q4b, xb[t]->qs + S * sb + 4 * c, 4);
                    xv = _mm512_set1_epi32(q4b);
#pragma GCC unroll 2
                    for (gi = 0; gi < G; gi++)
                        ai[gi][t] = _mm512_dpbusd_epi32(ai[gi][t], wv[gi], xv);
                }
            }
#pragma GCC unroll 2
            for (gi = 0; gi < G; gi++) {
                const float *sc = (const float *)(rec + (size_t)gi * gstride + 16 * S);
                __m512 dsc = _mm512_load_ps(sc);
#pragma GCC unroll 4
                for (t = 0; t < T; t++) {
                    accf[gi][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ai[gi][t]),
                                                  _mm512_mul_ps(dsc, _mm512_set1_ps(xb[t]->d)), accf[gi][t]);
                    if (!q6) {
                        float sx = xb[t]->d * (float)(xb[t]->bsums[2 * sb] + xb[t]->bsums[2 * sb + 1]);
                        accf[gi][t] = _mm512_fnmadd_ps(_mm512_load_ps(sc + 16), _mm512_set1_ps(sx),
                                                       accf[gi][t]);
                    }
                }
            }
        }
    }
#pragma GCC unroll 2
    for (gi = 0; gi < G; gi++) {
        int valid = rows - 16 * gi;
        __mmask16 m = valid >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << valid) - 1);
#pragma GCC unroll 4
        for (t = 0; t < T; t++) {
            float *yt = y + (size_t)t * ldy + 16 * gi;
            __m512 v = accf[gi][t];
            if (accumulate)
                v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(m, yt));
            _mm512_mask_storeu_ps(yt, m, v);
        }
    }
}

#define PACKEDK_CALL(q6, G, T, g, t, rows)                                                 \
    packedk_micro(q6, G, T, k, (const uint8_t *)w + (size_t)(g) * gstride, gstride, rows, \
                  (const uint8_t *)x + (size_t)(t) * x_stride, x_stride,                  \
                  y + (size_t)(t) * ldy + (size_t)(g) * 16, ldy, accumulate)

#define PACKEDK_TOKENS(q6, G, g, rows)                                                     \
    do {                                                                                   \
        int t_;                                                                            \
        for (t_ = 0; t_ + 4 <= nt; t_ += 4)                                                \
            PACKEDK_CALL(q6, G, 4, g, t_, rows);                                           \
        switch (nt - t_) {                                                                 \
        case 3: PACKEDK_CALL(q6, G, 3, g, t_, rows); break;                                \
        case 2: PACKEDK_CALL(q6, G, 2, g, t_, rows); break;                                \
        case 1: PACKEDK_CALL(q6, G, 1, g, t_, rows); break;                                \
        default: break;                                                                    \
        }                                                                                  \
    } while (0)

AI void tile_packed_k(bool q6, TILE_ARGS)
{
    const size_t gstride = (size_t)(k / PIO_QK_K) * PKK_SUPER;
    int ng = (nr + 15) / 16, g;
    (void)w_stride;
    for (g = 0; g + 2 <= ng; g += 2) {
        int rows = nr - 16 * g < 32 ? nr - 16 * g : 32;
        PACKEDK_TOKENS(q6, 2, g, rows);
    }
    if (g < ng)
        PACKEDK_TOKENS(q6, 1, g, nr - 16 * g);
}

static void tile_packed_q4_K(TILE_ARGS) { tile_packed_k(false, k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate); }
static void tile_packed_q6_K(TILE_ARGS) { tile_packed_k(true, k, nr, nt, w, w_stride, x, x_stride, y, ldy, accumulate); }

static void init_packed(pio_kernels *kt)
{
    kt->pack_size[PIO_DTYPE_Q4_K] = pack_size_k;
    kt->pack[PIO_DTYPE_Q4_K] = pack_q4_K;
    kt->tile_packed[PIO_DTYPE_Q4_K] = tile_packed_q4_K;
    kt->pack_size[PIO_DTYPE_Q6_K] = pack_size_k;
    kt->pack[PIO_DTYPE_Q6_K] = pack_q6_K;
    kt->tile_packed[PIO_DTYPE_Q6_K] = tile_packed_q6_K;
    kt->pack_size[PIO_DTYPE_Q4_K_X8] = pack_size_k;
    kt->pack[PIO_DTYPE_Q4_K_X8] = pack_q4_K_x8;
    kt->tile_packed[PIO_DTYPE_Q4_K_X8] = tile_packed_q4_K;
    kt->pack_size[PIO_DTYPE_Q6_K_X8] = pack_size_k;
    kt->pack[PIO_DTYPE_Q6_K_X8] = pack_q6_K_x8;
    kt->tile_packed[PIO_DTYPE_Q6_K_X8] = tile_packed_q6_K;
    kt->pack_size[PIO_DTYPE_Q8_0] = pack_size_q;
    kt->pack[PIO_DTYPE_Q8_0] = pack_q8_0;
    kt->tile_packed[PIO_DTYPE_Q8_0] = tile_packed_q8_0;
    kt->pack_size[PIO_DTYPE_Q4_0] = pack_size_q;
    kt->pack[PIO_DTYPE_Q4_0] = pack_q4_0;
    kt->tile_packed[PIO_DTYPE_Q4_0] = tile_packed_q4_0;
    kt->pack_size[PIO_DTYPE_Q4_0_X8] = pack_size_q;
    kt->pack[PIO_DTYPE_Q4_0_X8] = pack_q4_0_x8;
    kt->tile_packed[PIO_DTYPE_Q4_0_X8] = tile_packed_q4_0;
    if (kt->tile[PIO_DTYPE_Q4_0_X8] != tile_q4_0_x8)      /* the AVX2 level's */
        tile_q4_0_x8_narrow = kt->tile[PIO_DTYPE_Q4_0_X8];
    kt->tile[PIO_DTYPE_Q4_0_X8] = tile_q4_0_x8;
    kt->tile[PIO_DTYPE_Q8_0_X8] = tile_q8_0_x8;
    kt->pack_size[PIO_DTYPE_Q8_0_X8] = pack_size_q;
    kt->pack[PIO_DTYPE_Q8_0_X8] = pack_q8_0_x8;
    kt->tile_packed[PIO_DTYPE_Q8_0_X8] = tile_packed_q8_0;
}
#else
static void init_packed(pio_kernels *kt) { (void)kt; }
#endif

#define PIO_INIT_NAME2(isa) pio_kernels_init_##isa
#define PIO_INIT_NAME(isa) PIO_INIT_NAME2(isa)

void PIO_INIT_NAME(PIO_ISA_NAME)(pio_kernels *kt)
{
    kt->tile[PIO_DTYPE_F32] = tile_f32;
    kt->tile[PIO_DTYPE_F16] = tile_f16;
    kt->tile[PIO_DTYPE_BF16] = tile_bf16;
    kt->tile[PIO_DTYPE_Q8_0] = tile_q8_0;
    kt->tile[PIO_DTYPE_Q4_0] = tile_q4_0;
    kt->tile[PIO_DTYPE_Q4_K] = tile_q4_K;
    kt->tile[PIO_DTYPE_Q6_K] = tile_q6_K;
    /* Q8_0, Q4_0, Q4_K and Q6_K keep the AVX2 level's X8 layouts
     * (inherited): their AVX2 tiles decode faster than this level's on W as
     * stored (Zen 4, Qwen3-4B, 1 thread: Q4_0 10.3-11.1 against 7.9
     * tokens/s, Q4_K_M ~9.9 against 7.1-8.1), and the VNNI level packs its
     * prefill panels from them (Q4_0 pp256 79-81 against 66-70; Q4_K_M
     * unchanged, 63-65). Q8_0 ran as stored here until Q8_0_X8's decode
     * read one group at a time. Since then Q8_0_X8 decodes faster at both
     * memory states, on the AVX2 tile (avx512) and more so on the VNNI
     * levels' own tile_q8_0_x8: 2 threads, alternated runs, median share
     * of the DRAM roofline 90.8% -> 98.2%, and 82-87% -> 98-103% when the
     * VM's memory ran at ~54 GB/s. */
    /* Float weights keep the AVX2 level's packed prefill panels (16 x 6
     * outer products, inherited): on Zen 4 (two 256-bit FMA pipes) they
     * beat this level's 16-lane dot tiles on f32 panels, Qwen3-4B BF16
     * pp256 28.6 against 22.7 tokens/s. */
    init_packed(kt);
}
